#!/bin/sh
# bench/bench_failover.py with the project's venv (make setup creates it); options pass through.
here="$(dirname "$0")"
exec "$here/../.venv/bin/python" "$here/bench_failover.py" "$@"
