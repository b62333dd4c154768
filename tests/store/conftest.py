"""Fixtures: each store test runs against every backend, on real SQLite files and a real
redis-server started for the session (killed by PID at the end)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.sentinel_cluster import sentinel_cluster

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free loopback port; yields its base URL."""
    if not os.access(REDIS_SERVER, os.X_OK):
        # Never a skip: CI must run the Redis backend too (`make deps` installs it).
        pytest.fail(
            f"redis-server not found (PATH, {REDIS_SERVER}): the Redis backend tests need it; "
            "install it with `make deps` (Debian package redis-server)",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--loglevel", "notice"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Ready when it says so; EOF means it died (port race, bad flag): fail with its log.
        assert proc.stdout is not None
        log = []
        for line in proc.stdout:
            log.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            pytest.fail("redis-server did not start:\n" + "".join(log))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="session")
def sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A master, a replica and three Sentinels for the session (never failed over: the
    failover tests start their own); yields the store URL."""
    with sentinel_cluster(tmp_path_factory.mktemp("sentinel")) as cluster:
        yield cluster.url()


@pytest.fixture(params=["sqlite", "redis", "sentinel"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store of each backend (Redis isolated by a fresh key prefix)."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'store.db'}"
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    if request.param == "sentinel":
        return f"{request.getfixturevalue('sentinel_url')}?prefix={prefix}"
    base: str = request.getfixturevalue("redis_url")
    return f"{base}?prefix={prefix}"
