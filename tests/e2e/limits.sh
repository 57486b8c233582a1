#!/usr/bin/env bash
# What one client may take from the others, against lmtasks-fcgi on its socket:
#
#   (a) an idle kept connection is closed once idle for 120 s (the responder with the
#       clock seam, whose clock the test moves), and served before that
#   (b) out of descriptors: a responder whose every descriptor is held by idle clients
#       closes the longest idle to accept a client with a request, and says so in its
#       log a bounded number of times a second
#   (c) the soft limit of open files is raised to the hard one at start
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
for b in "$LMTASKS" "$LMTASKS_FCGI" "$LMTASKS_FCGI_CLOCKED"; do
	[ -x "$b" ] || { echo "limits.sh: no binary at $b" >&2; exit 99; }
done
command -v prlimit >/dev/null || lmt_missing_all prlimit "no prlimit (util-linux)"

T=$HTTP_TMP
S=$T/store
# The clients left running in the background are started without F, so that $! is
# python's own PID and the kill at the end of each section stops them, not a subshell.
F() { "$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" "$@"; }
http_demo_store limits.sh

section "(a) an idle kept connection"
clock_use "$T/clock"
LMTASKS_FCGI=$LMTASKS_FCGI_CLOCKED fcgi_start "$T/idle.sock" "$S" 1 || exit 99
"$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" idle "$T/idle.sock" "$T/go" >"$T/idle.out" 2>&1 &
IDLE_PID=$!
lmt_bg_track $IDLE_PID
wait_for 30 grep -q "answered 1" "$T/idle.out"
assert_eq "a kept connection: its first request answered" "answered 1" "$(head -n 1 "$T/idle.out")"
# The sweep looks every 250 ms, reading the clock: once the responder has read it since the
# move and every thread sleeps again, a sweep has seen the moved clock (awaited, not slept
# for).
swept() {
	local r f
	r=$(lmt_reads "$1")
	[ -n "$r" ] && [ "$r" -gt "$2" ] || return 1
	for f in /proc/"$1"/task/*/stat; do
		[ "$(sed 's/.*) //' "$f" 2>/dev/null | cut -d' ' -f1)" = S ] || return 1
	done
}
clock_move 100
r=$(lmt_reads "$FCGI_PID")	# (after the move: a read counted from here saw it)
wait_for 30 swept "$FCGI_PID" "$r" || fail "the responder's sweep looks at the moved clock"
touch "$T/go"
wait_for 30 grep -q "answered 2\|closed" "$T/idle.out"
assert_eq "idle 100 s: still kept, the next request answered" "answered 2" "$(sed -n 2p "$T/idle.out")"
clock_move 121
wait $IDLE_PID
assert_match "idle 121 s: the responder closed it" '^closed ' "$(sed -n 3p "$T/idle.out")"
http_alive "$FCGI_PID" && ok "the responder lives" || fail "the responder lives"
http_stop "$FCGI_PID"
unset LMTASKS_TEST_CLOCK

section "(b) every descriptor held by idle clients"
# 64 descriptors: about 50 connections.  The hard limit too, so it cannot be raised.
prlimit --nofile=64:64 "$LMTASKS_FCGI" --db "$S" --listen "unix:$T/few.sock" --threads 1 \
	</dev/null >"$T/few.log" 2>&1 &
FEW=$!
lmt_bg_track $FEW
wait_for 30 http_sock_ready "$T/few.sock" || fail "the responder with 64 descriptors starts"
"$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" hold "$T/few.sock" 120 >"$T/hold.out" 2>&1 &
HOLD=$!
lmt_bg_track $HOLD
wait_for 30 grep -q "sent" "$T/hold.out"
assert_eq "120 idle connections opened" "sent 120" "$(cat "$T/hold.out")"
# fcgi.py get waits up to 10 s for its answer.
out=$(F get "$T/few.sock" /health)
assert_eq "a request on a new connection is answered: 200" 200 "${out% *}"
out=$(F get "$T/few.sock" /tasks/0)
assert_eq "and the next: 200" 200 "${out% *}"
grep -q "idle connections closed to make room" "$T/few.log" &&
	ok "the log says idle connections were closed to make room" ||
	fail "the log says idle connections were closed to make room" "$(tail -n 3 "$T/few.log")"
http_alive "$FEW" && ok "the responder lives" || fail "the responder lives"
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null
# The log: at most 20 lines a second, then one line saying how many were left out.
lines=$(wc -l <"$T/few.log")
secs=$(($(date +%s) - $(stat -c %Y "$T/few.sock") + 2))
if [ "$lines" -le $((secs * 21 + 5)) ]; then
	ok "the log stayed within 20 lines a second ($lines lines in about $secs s)"
else
	fail "the log stayed within 20 lines a second" "$lines lines in about $secs s"
fi
http_stop "$FEW"

section "(c) the limit of open files"
prlimit --nofile=256:4096 "$LMTASKS_FCGI" --db "$S" --listen "unix:$T/lim.sock" --threads 1 \
	</dev/null >"$T/lim.log" 2>&1 &
LIM=$!
lmt_bg_track $LIM
wait_for 30 http_sock_ready "$T/lim.sock" || fail "the responder starts"
assert_eq "soft limit 256, hard 4096: raised to 4096" "4096 4096" \
	"$(awk '/^Max open files/ { print $4, $5 }' "/proc/$LIM/limits")"
http_stop "$LIM"
grep -q "^LimitNOFILE=" "$top_srcdir/systemd/lmtasks-fcgi.service.in" &&
	ok "the systemd unit sets LimitNOFILE" || fail "the systemd unit sets LimitNOFILE"

summary
