"""``sipha certs DIR``: write a test CA and TLS certificates (see :mod:`sipha.common.certs`)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sipha.common.certs import DEFAULT_HOSTS

    parser.add_argument("directory", metavar="DIR", help="folder to write the files into")
    parser.add_argument(
        "--host", action="append", metavar="NAME_OR_IP",
        help="a subjectAltName of the certificates, repeatable "
        f"(default: {' '.join(DEFAULT_HOSTS)})",
    )
    parser.add_argument("--days", type=int, default=365, help="validity (default 365)")
    parser.add_argument("--force", action="store_true", help="replace an existing set")


def main(args: argparse.Namespace) -> int:
    from sipha.common.certs import DEFAULT_HOSTS, make_certs

    try:
        files = make_certs(
            args.directory, tuple(args.host or DEFAULT_HOSTS), days=args.days, force=args.force
        )
    except (ValueError, OSError) as exc:
        print(f"sipha certs: {exc}", file=sys.stderr)
        return 2
    print(f"CA          {files.ca}  (give it as --tls-ca to every peer)")
    print(f"server      {files.server_cert}  {files.server_key}  (--tls-cert / --tls-key)")
    print(f"client      {files.client_cert}  {files.client_key}  (mutual TLS)")
    print("test certificates only: the CA key is in the same folder", file=sys.stderr)
    return 0
