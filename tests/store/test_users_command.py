"""``sipha users ...`` through the top-level command."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.cli import main


def test_add_list_generate_import_del(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:{tmp_path / 'u.db'}"
    assert main(["users", "--store", store, "add", "alice", "pw", "--domain", "ex.org"]) == 0
    assert main(["users", "--store", store, "generate", "--count", "50", "--prefix", "load",
                 "--password", "p", "--domain", "ex.org"]) == 0
    csv = tmp_path / "u.csv"
    csv.write_text("username,password\nbob,b\ncarol,c\n")
    assert main(["users", "--store", store, "import", str(csv), "--domain", "ex.org"]) == 0
    capsys.readouterr()
    assert main(["users", "--store", store, "list", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["alice@ex.org\tex.org", "bob@ex.org\tex.org",
                                "carol@ex.org\tex.org", "# 3 shown of 53"]
    assert main(["users", "--store", store, "del", "bob@ex.org"]) == 0
    assert main(["users", "--store", store, "del", "bob@ex.org"]) == 1
    assert b"pw" not in (tmp_path / "u.db").read_bytes()


def test_bad_input_is_reported_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("name,secret\nx,y\n")
    store = f"sqlite:{tmp_path / 'u.db'}"
    assert main(["users", "--store", store, "import", str(csv)]) == 2
    assert "missing password, username" in capsys.readouterr().err
