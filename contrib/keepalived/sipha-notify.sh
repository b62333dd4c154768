#!/bin/sh
# keepalived notify script: tell the local sipha dispatcher (run with --ha-mode external)
# which role keepalived gave it. SIPHA_HTTP / SIPHA_TOKEN may be set in the environment.
HTTP="${SIPHA_HTTP:-127.0.0.1:8060}"
TOKEN_ARG=""
[ -n "$SIPHA_TOKEN" ] && TOKEN_ARG="--token $SIPHA_TOKEN"
SIPHA="${SIPHA_BIN:-sipha}"
# keepalived starts one notify per state change without waiting for the last: take a lock so
# a slow "backup" started first cannot land after the "master" that followed it.
exec 9>"${SIPHA_NOTIFY_LOCK:-/run/sipha-notify.lock}"
flock 9
case "$1" in
    master) exec $SIPHA dispatcher ctl --http "$HTTP" $TOKEN_ARG promote ;;
    backup|fault|stop) exec $SIPHA dispatcher ctl --http "$HTTP" $TOKEN_ARG demote ;;
    *) echo "usage: $0 master|backup|fault|stop" >&2; exit 2 ;;
esac
