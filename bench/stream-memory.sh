#!/usr/bin/env bash
# The responder's memory with streams that do not read: STREAMS (default 1717) raw FastCGI
# streams at lmtasks-fcgi's socket read their first bytes and then nothing, one stream
# reads, and one `enqueue --batch` of COMMIT tasks (default 1900) is written.  Prints the
# responder's VmRSS, RssAnon and VmHWM (/proc/PID/status) and descriptors before the
# streams, with them open, and once the reading stream has had the whole commit.
# Bounded: every wait is a hang guard; the processes it starts are stopped by PID.
#
#   STREAMS=1717 COMMIT=1900 bench/stream-memory.sh      (BUILD: the build directory)
# Fails when the reading stream misses an event.  Nothing about speed is measured.
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top_srcdir/build}
LMTASKS=$BUILD/lmtasks LMTASKS_FCGI=$BUILD/lmtasks-fcgi
export LMTASKS LMTASKS_FCGI top_srcdir
. "$top_srcdir/tests/lib/httplib.sh"
STREAMS=${STREAMS:-1717} COMMIT=${COMMIT:-1900}
S=$HTTP_TMP/store
# A client in the background as python itself: $! is its PID, which the kill stops.
FSB() { GUARD=120 exec "$LMT_PYTHON" "$top_srcdir/tests/lib/fcgistream.py" "$@"; }
L init >/dev/null 2>&1 || { echo "stream-memory.sh: cannot init" >&2; exit 1; }
L enqueue movies documentAddition >/dev/null
ulimit -n $((STREAMS + 256)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fcgi_start "$HTTP_TMP/fcgi.sock" "$S" 2 || exit 1
PID=$FCGI_PID
line() {
	printf '%-28s VmRSS %7s KiB  RssAnon %7s KiB  VmHWM %7s KiB  fds %5s\n' "$1" \
	    "$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")" \
	    "$(awk '/^RssAnon:/ { print $2 }' "/proc/$PID/status")" \
	    "$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status")" "$(ls "/proc/$PID/fd" | wc -l)"
}
line "before the streams"
FSB hold "$HTTP_TMP/fcgi.sock" "$STREAMS" /tasks/stream "$HTTP_TMP/hold.ready" >/dev/null 2>&1 &
HOLD=$!
lmt_bg_track $HOLD
wait_for 120 test -e "$HTTP_TMP/hold.ready" || { echo "the streams did not open" >&2; exit 1; }
line "$STREAMS streams open"
FSB read "$HTTP_TMP/fcgi.sock" 1 /tasks/stream $((COMMIT + 1)) - "$HTTP_TMP/one.ready" \
    >"$HTTP_TMP/one.out" &
ONE=$!
lmt_bg_track $ONE
wait_for 60 test -e "$HTTP_TMP/one.ready"
"$LMT_PYTHON" -c 'import sys
sys.stdout.write("{\"indexUid\":\"movies\",\"type\":\"documentAddition\"}\n" * int(sys.argv[1]))' \
    "$COMMIT" >"$HTTP_TMP/batch.ndjson"
L enqueue --batch "$HTTP_TMP/batch.ndjson" >/dev/null
lmt_wait_pid 120 $ONE
line "after a $COMMIT-task commit"
echo "# the reading stream: $(cat "$HTTP_TMP/one.out")"
kill $HOLD 2>/dev/null
wait $HOLD 2>/dev/null
http_stop "$PID"
grep -q "events $COMMIT first 2 last $((COMMIT + 1)) ordered 1 ended 0" "$HTTP_TMP/one.out"
