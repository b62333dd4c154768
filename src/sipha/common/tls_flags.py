"""The ``--tls-*`` flags of ``sipha server`` and ``sipha dispatcher``: the ``[tls]`` table of
their TOML files (:class:`sipha.transport.tls.TlsConfig`) on the command line."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_tls_arguments", "tls_overrides"]


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags, in a group of their own."""
    g = parser.add_argument_group("TLS (tls:HOST:PORT listeners and TLS next hops)")
    g.add_argument("--tls-cert", metavar="PEM", help="certificate our tls: listeners present")
    g.add_argument("--tls-key", metavar="PEM", help="its private key (default: in --tls-cert)")
    g.add_argument("--tls-ca", metavar="PEM",
                   help="CA the certificates of TLS peers must chain to (default: system CAs)")
    g.add_argument("--tls-verify", choices=("on", "off"),
                   help="check the certificate of every TLS peer we connect to (default on)")
    g.add_argument("--tls-require-client-cert", action="store_true", default=None,
                   help="mutual TLS: clients of our tls: listeners must present a certificate "
                   "signed by --tls-ca")
    g.add_argument("--tls-client-cert", metavar="PEM",
                   help="certificate presented on outgoing TLS connections (default --tls-cert)")
    g.add_argument("--tls-client-key", metavar="PEM", help="its private key")


def tls_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[tls]`` fields the flags set (the file's value stays for the others)."""
    flags = {
        "cert": args.tls_cert, "key": args.tls_key, "ca": args.tls_ca,
        "verify_server": None if args.tls_verify is None else args.tls_verify == "on",
        "require_client_cert": args.tls_require_client_cert,
        "client_cert": args.tls_client_cert, "client_key": args.tls_client_key,
    }
    return {k: v for k, v in flags.items() if v is not None}
