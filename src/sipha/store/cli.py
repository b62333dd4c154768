"""``sipha users add|del|list|import|generate``: argparse over :mod:`sipha.store.users_cli`."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from sipha.store import users_cli

__all__ = ["add_arguments", "main"]

DEFAULT_STORE = "sqlite:sipha.db"
DEFAULT_DOMAIN = "sipha.local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="URL",
        help=f"sqlite:PATH or redis://HOST:PORT/DB (default {DEFAULT_STORE})",
    )
    sub = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="add or replace a user")
    add.add_argument("username")
    add.add_argument("password")
    add.add_argument("--domain", default=DEFAULT_DOMAIN)
    add.add_argument("--realm", help="digest realm (default: the domain)")

    delete = sub.add_parser("del", help="delete a user")
    delete.add_argument("aor", metavar="USER@DOMAIN")

    listing = sub.add_parser("list", help="list users")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--offset", type=int, default=0)

    imp = sub.add_parser("import", help="import users from CSV: username,password[,domain][,realm]")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--domain", default=DEFAULT_DOMAIN, help="for rows without a domain")

    gen = sub.add_parser("generate", help="create PREFIX1..PREFIXN users with one password")
    gen.add_argument("--count", type=int, required=True)
    gen.add_argument("--prefix", default="user")
    gen.add_argument("--password", required=True)
    gen.add_argument("--domain", default=DEFAULT_DOMAIN)
    gen.add_argument("--start", type=int, default=1)


def main(args: argparse.Namespace) -> int:
    store = args.store
    out = sys.stdout  # read now, not at import (users_cli binds its default then)
    try:
        match args.users_command:
            case "add":
                return users_cli.cmd_add(
                    store, args.username, args.domain, args.password, args.realm, out=out
                )
            case "del":
                return users_cli.cmd_del(store, args.aor, out=out)
            case "list":
                return users_cli.cmd_list(store, limit=args.limit, offset=args.offset, out=out)
            case "import":
                users_cli.cmd_import(store, args.file, args.domain, out=out)
                return 0
            case "generate":
                users_cli.cmd_generate(
                    store,
                    args.count,
                    args.prefix,
                    args.password,
                    args.domain,
                    start=args.start,
                    out=out,
                )
                return 0
    except (ValueError, OSError, sqlite3.Error) as exc:
        print(f"sipha users: {exc}", file=sys.stderr)
        return 2
    return 2
