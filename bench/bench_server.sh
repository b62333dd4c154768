#!/bin/sh
# bench/bench_server.py with the project's venv (make setup creates it); options pass through.
here="$(dirname "$0")"
exec "$here/../.venv/bin/python" "$here/bench_server.py" "$@"
