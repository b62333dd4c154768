"""``sipha`` with the nonce-count checked in the process (as before issue 14), for
``bench_auth.py``'s comparison only: the server's ``accept_once`` is replaced by a dict.
Never a way to run a cluster: a replay to another server passes this check."""

from __future__ import annotations

import sys

import sipha.server.node as node
from sipha.cli import main
from sipha.sip.digest_header import DigestCredentials
from sipha.store import Store

_last: dict[str, int] = {}


async def _accept_once_here(store: Store, verifier: object, creds: DigestCredentials,
                            now: float) -> bool:
    del store, verifier, now
    if creds.qop is None or creds.nc is None:
        return True
    if creds.nc <= _last.get(creds.nonce, 0):
        return False
    _last[creds.nonce] = creds.nc
    return True


node.accept_once = _accept_once_here  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main())
