"""contrib/systemd: the example configuration files load with the nodes' own loaders (a
typo'd key would make a unit fail at start), and the units name files that exist there."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sipha.dispatcher.config import load_config as load_dispatcher_config
from sipha.ha.config import load_ha_config, validate_ha
from sipha.server.config import load_config as load_server_config

SYSTEMD = Path(__file__).resolve().parents[2] / "contrib" / "systemd"


def test_example_configs_load() -> None:
    server = load_server_config(SYSTEMD / "server-s1.toml")
    assert server.store.startswith("redis-sentinel://")
    dispatcher = load_dispatcher_config(SYSTEMD / "dispatcher.toml")
    assert len(dispatcher.servers) == 2
    ha = load_ha_config(SYSTEMD / "ha-ds1.toml")
    validate_ha(ha, source="ha-ds1.toml")
    assert ha.mode == "ip"
    assert "{node}" in ha.fence_command


@pytest.mark.parametrize("unit", ["sipha-server@.service", "sipha-dispatcher@.service"])
def test_units_are_well_formed(unit: str) -> None:
    text = (SYSTEMD / unit).read_text()
    assert re.search(r"^ExecStart=/opt/sipha/venv/bin/sipha ", text, re.M)
    assert "EnvironmentFile=-/etc/sipha/sipha.env" in text
    assert "NoNewPrivileges=yes" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # pragma: no cover - Debian's systemd package ships it
        return
    # Only the unit's own syntax: the paths it names are those of a deployment.
    proc = subprocess.run([analyze, "verify", "--man=no", str(SYSTEMD / unit)],
                          capture_output=True, text=True, timeout=30)
    problems = [line for line in proc.stderr.splitlines()
                if "Unknown" in line or "Invalid" in line or "Failed to parse" in line]
    assert problems == [], proc.stderr
