#!/bin/sh
# keepalived notify script: tell the local sipha dispatcher (run with --ha-mode external)
# which role keepalived gave it. SIPHA_HTTP / SIPHA_TOKEN may be set in the environment.
#
# The call is one HTTP POST to the dispatcher's API (/ha/promote or /ha/demote). curl makes it
# in a few milliseconds; `sipha dispatcher ctl` makes the same call but starts Python first
# (0.3-0.8 s, which adds straight to the takeover: see docs/performance.md). curl is used when
# present; SIPHA_NOTIFY_VIA=ctl forces the sipha CLI.
HTTP="${SIPHA_HTTP:-127.0.0.1:8060}"
SIPHA="${SIPHA_BIN:-sipha}"
VIA="${SIPHA_NOTIFY_VIA:-}"
[ -z "$VIA" ] && { command -v curl >/dev/null 2>&1 && VIA=curl || VIA=ctl; }
# keepalived starts one notify per state change without waiting for the last: take a lock so
# a slow "backup" started first cannot land after the "master" that followed it.
exec 9>"${SIPHA_NOTIFY_LOCK:-/run/sipha-notify.lock}"
flock 9
case "$1" in
    master) ACTION=promote ;;
    backup|fault|stop) ACTION=demote ;;
    *) echo "usage: $0 master|backup|fault|stop" >&2; exit 2 ;;
esac
if [ "$VIA" = curl ]; then
    if [ -n "$SIPHA_TOKEN" ]; then
        exec curl -fsS -m 2 -o /dev/null -X POST -H "Authorization: Bearer $SIPHA_TOKEN" \
            "http://$HTTP/ha/$ACTION"
    fi
    exec curl -fsS -m 2 -o /dev/null -X POST "http://$HTTP/ha/$ACTION"
fi
TOKEN_ARG=""
[ -n "$SIPHA_TOKEN" ] && TOKEN_ARG="--token $SIPHA_TOKEN"
exec $SIPHA dispatcher ctl --http "$HTTP" $TOKEN_ARG "$ACTION"
