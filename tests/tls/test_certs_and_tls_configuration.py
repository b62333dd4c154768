"""``sipha certs`` writes a usable test CA and certificates; unusable TLS settings stop the
server and the dispatcher at start with an error naming the field and the fix."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from sipha.common.certs import CertFiles
from sipha.common.process import free_port


def _sipha(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sipha", *args], capture_output=True,
                          text=True, timeout=30, cwd=cwd, check=False)


def test_certs_writes_a_ca_and_certificates_for_the_hosts(tmp_path: Path) -> None:
    out = tmp_path / "c"
    done = _sipha("certs", str(out), "--host", "10.0.0.5", "--host", "sip.example.org")
    assert done.returncode == 0, done.stderr
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in ("server", "client"):
        cert = x509.load_pem_x509_certificate((out / f"{name}.pem").read_bytes())
        assert cert.issuer == ca.subject
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
        assert sans.get_values_for_type(x509.DNSName) == ["sip.example.org"]
        # Keys are for the owner's eyes only.
        assert stat.S_IMODE((out / f"{name}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "ca.key").stat().st_mode) == 0o600
    again = _sipha("certs", str(out))
    assert again.returncode == 2
    assert "--force" in again.stderr
    assert _sipha("certs", str(out), "--force").returncode == 0


def _server(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _sipha("server", "--store", f"sqlite:{cwd / 'db'}", *args, cwd=cwd)


@pytest.mark.parametrize("node", ["server", "dispatcher"])
def test_unusable_tls_settings_name_the_field_and_the_fix(
    tmp_path: Path, certs: CertFiles, node: str
) -> None:
    port = free_port()
    listen = ["--listen", f"udp:127.0.0.1:{port}", "--listen", f"tls:127.0.0.1:{port}"]
    run = (lambda *a: _server(*a, cwd=tmp_path)) if node == "server" else (
        lambda *a: _sipha("dispatcher", "--server", "sip:127.0.0.1:5071", *a, cwd=tmp_path))
    cases = [
        ([], "tls.cert: a tls: listener needs a certificate", "--tls-cert"),
        (["--tls-cert", str(tmp_path / "nope.pem")], "tls.cert: no such file", "sipha certs"),
        (["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.client_key)],
         "tls.cert:", "sipha certs"),
        (["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
          "--tls-ca", str(certs.server_key)], "tls.ca:", "PEM"),
        (["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
          "--tls-require-client-cert"], "tls.ca: require_client_cert needs", "--tls-ca"),
    ]
    for flags, problem, fix in cases:
        done = run(*listen, *flags)
        assert done.returncode == 2, (flags, done.stderr)
        assert problem in done.stderr, (flags, done.stderr)
        assert fix in done.stderr, (flags, done.stderr)
        assert "Traceback" not in done.stderr
    # The same field from a TOML file; the flags complete a file that lacks them.
    toml = tmp_path / f"{node}.toml"
    toml.write_text(f'listen = ["tls:127.0.0.1:{port}"]\n[tls]\ncert = "missing.pem"\n')
    done = run("--config", str(toml))
    assert done.returncode == 2
    assert f"{toml}: tls.cert: no such file 'missing.pem'" in done.stderr
