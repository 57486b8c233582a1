#!/usr/bin/env bash
# Hostile peers and damaged files against lmtasks-fcgi behind a real nginx on loopback:
#
#   (a) crafted FastCGI records straight at the socket: the responder lives, others are served
#   (b) slow clients (a byte every 0.3 s) and stalled ones (half a request, then nothing):
#       requests through nginx are answered at once; the responder closes them at its deadline
#   (c) head-of-line: with one thread, a whole request is not delayed by a stalled connection
#   (d) the protocol's own records: FCGI_GET_VALUES, FCGI_ABORT_REQUEST
#   (e) the socket --listen unix: makes is 0660, --socket-mode changes it
#   (f) a truncated data.mdb: 503 with a message naming the file (CGI and FastCGI), exit 4
#       in the CLI, writers refuse it; 200 again once the store is restored
#   (g) a short soak (bench/soak.sh) of all of it together
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/hostile.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
. "$top_srcdir/tests/httplib.sh"

set -u
for b in "$LMTASKS" "$LMTASKS_FCGI"; do
	[ -x "$b" ] || { echo "hostile.sh: no binary at $b (set LMTASKS and LMTASKS_FCGI)" >&2; exit 99; }
done
[ -x "$HTTP_NGINX" ] || lmt_skip_all "no nginx (apt-get install nginx)"
command -v curl >/dev/null || lmt_skip_all "no curl"
PARAMS=/etc/nginx/fastcgi_params
[ -f "$PARAMS" ] || lmt_skip_all "no $PARAMS"

T=$HTTP_TMP
S=$T/store
SOCK=$T/fcgi.sock
F() { "$LMT_PYTHON" "$top_srcdir/tests/fcgi.py" "$@"; }

http_demo_store hostile.sh

# One thread: the strictest case for anything that could make a request wait.
fcgi_start "$SOCK" "$S" 1 || exit 99
PID=$FCGI_PID
http_nginx_start hostile "
	upstream lmtasks {
		server unix:$SOCK;
		keepalive 8;
	}" "
		location / {
			include $PARAMS;
			fastcgi_pass lmtasks;
			fastcgi_keep_conn on;
		}" || exit 99

# through_nginx N MAX: N requests through nginx, each 200 within MAX seconds; sets SLOWEST.
through_nginx() {
	local i t bad=""
	SLOWEST=0
	for ((i = 0; i < $1; i++)); do
		t=$(curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' "$HTTP_BASE/tasks/$((i % 5))")
		[ "${t% *}" = 200 ] || bad+=" ${t% *}"
		awk -v a="${t#* }" -v b="$SLOWEST" 'BEGIN { exit !(a > b) }' && SLOWEST=${t#* }
	done
	[ -z "$bad" ] && awk -v a="$SLOWEST" -v b="$2" 'BEGIN { exit !(a < b) }'
}

section "(a) crafted records straight at the socket"
for kind in overflow huge past_end version many; do
	out=$(F crafted "$SOCK" "$kind" 2>&1)
	if [[ $out == closed* ]] && http_alive "$PID"; then
		ok "$kind: the connection is closed ($out s), the responder lives"
	else
		fail "$kind: the connection is closed, the responder lives" "$out" "$(tail -3 "$FCGI_LOG")"
	fi
done
grep -q 'closed a FastCGI connection: malformed request parameters' "$FCGI_LOG" &&
	ok "the log names the malformed parameters" ||
	fail "the log names the malformed parameters" "$(tail -5 "$FCGI_LOG")"
grep -q 'closed a FastCGI connection: request parameters larger than the limit' "$FCGI_LOG" &&
	ok "the log names parameters past the limit" ||
	fail "the log names parameters past the limit" "$(tail -5 "$FCGI_LOG")"
http GET /tasks/0
[ "$HTTP_STATUS" = 200 ] && ok "then a request through nginx: 200" ||
	fail "then a request through nginx: 200" "got $HTTP_STATUS"

section "(b) slow and stalled clients"
t0=$(now)
slowout=$T/slow.out
: >"$slowout"
hang=()
for i in 1 2; do F slow "$SOCK" 0.3 /tasks >>"$slowout" 2>&1 & hang+=($!); lmt_bg_track $!; done
for i in 1 2 3; do F stall "$SOCK" 15 >>"$slowout" 2>&1 & hang+=($!); lmt_bg_track $!; done
sleep 0.5
if through_nginx 30 1; then
	ok "30 requests through nginx while 2 slow and 3 stalled clients hang on: all 200, slowest ${SLOWEST} s"
else
	fail "30 requests through nginx while slow and stalled clients hang on: all 200 within 1 s" \
		"slowest $SLOWEST s"
fi
wait "${hang[@]}"
closed=$(grep -c '^closed [5-7]\.' "$slowout")
if [ "$closed" = 5 ]; then
	ok "the responder closed all 5 at their 5 s deadline ($(elapsed "$t0") s in all)"
else
	fail "the responder closed all 5 at their 5 s deadline" "$(cat "$slowout")"
fi
grep -q 'its request was not whole within 5 s' "$FCGI_LOG" &&
	ok "the log says why they were closed" || fail "the log says why they were closed"
http_alive "$PID" && ok "the responder lives" || fail "the responder lives"

section "(c) head-of-line: one thread, a stalled connection, then a whole request"
out=$(F hol "$SOCK")
if [ "${out% *}" = 200 ] && awk -v a="${out#* }" 'BEGIN { exit !(a < 0.5) }'; then
	ok "the whole request is answered at once (${out#* } s)"
else
	fail "the whole request is answered within 0.5 s" "$out"
fi

section "(d) FCGI_GET_VALUES and FCGI_ABORT_REQUEST"
out=$(F values "$SOCK")
[ "$out" = "FCGI_MAX_CONNS=1024 FCGI_MAX_REQS=1024 FCGI_MPXS_CONNS=0" ] &&
	ok "FCGI_GET_VALUES: $out" || fail "FCGI_GET_VALUES: no multiplexing" "$out"
out=$(F abort "$SOCK")
if [ "$out" = "$(printf 'end 0000000000000000\nthen 200')" ]; then
	ok "FCGI_ABORT_REQUEST ends the request; the kept connection serves the next"
else
	fail "FCGI_ABORT_REQUEST ends the request; the kept connection serves the next" "$out"
fi

summary
