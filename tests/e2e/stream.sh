#!/usr/bin/env bash
# GET /tasks/stream, end to end: lmtasks-fcgi as a CGI program holding a stream (the event
# format, the current state of uids=, live events, the end by itself, Last-Event-ID, 204,
# 410, keys, a maximum duration), then FastCGI behind a real nginx on loopback, also with
# nginx/lmtasks-stream.conf as shipped (events unbuffered, the keep-alive comment passing;
# tests/e2e/apache.sh does the same through Apache with apache/lmtasks-proxy-fcgi.conf).  One line per check; ends with "N passed, M failed".
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/stream.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries stream.sh
T=$HTTP_TMP
S=$T/store
START=$(now)
L init >/dev/null 2>&1 || { echo "stream.sh: cannot init" >&2; exit 99; }
CGI_DB=$S
enq() { json_get "$(L enqueue "$@" 2>/dev/null)" 'd["uid"]'; }

# events FILE: the events of an event-stream body as JSON lines {"id":N,"event":E,"data":D}.
events() {
	"$LMT_PYTHON" -S -c 'import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else text
for block in body.split("\n\n"):
    ev = {}
    for line in block.split("\n"):
        if line.startswith(":") or not line:
            continue
        k, _, v = line.partition(": ")
        ev[k] = v
    if "data" in ev:
        print(json.dumps({"id": int(ev.get("id", -1)), "event": ev.get("event"), "data": json.loads(ev["data"])}))
' "$1"
}

# cgi_stream OUT [NAME=VALUE...]: lmtasks-fcgi as CGI for GET /tasks/stream?$QS in the
# background, its output to OUT; $CGI_PID.
cgi_stream() {
	local out=$1
	shift
	env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET \
		REQUEST_URI="/tasks/stream${QS:+?$QS}" QUERY_STRING="${QS:-}" "$@" \
		"$LMTASKS_FCGI" --db "$S" </dev/null >"$out" 2>"$out.err" &
	CGI_PID=$!
	lmt_bg_track $CGI_PID
}

# Each step below waits for a state of the stream (lmt_asleep: it has read the store once
# and sleeps; an event in its output), never for time.  A stream's maximum duration is
# reached by the clock of the clocked responder: LMTASKS_STREAM_MAX_SECONDS=60, then
# the clock moves 61 s and a touch of the data file (IN_ATTRIB) wakes the stream to read
# it.  The 30 s bounds are hang guards: a stream wakes in milliseconds, and 30 s holds on
# a machine at a fifth of its speed.
clock_use "$T/clock"
# clocked_stream OUT [NAME=VALUE...]: cgi_stream with the clocked responder.
clocked_stream() {
	LMTASKS_FCGI=$LMTASKS_FCGI_CLOCKED cgi_stream "$@" LMTASKS_TEST_CLOCK="$LMTASKS_TEST_CLOCK"
}
# clock_end: moves the clock past a 60 s stream and wakes it; its exit status.
clock_end() {
	clock_move 61
	touch "$S/data.mdb"
	lmt_wait_pid 30 $CGI_PID
}

section "CGI: headers, the retry line, live events"
A=$(enq movies documentAddition)
QS= clocked_stream "$T/live.out" LMTASKS_STREAM_MAX_SECONDS=60
wait_for 30 lmt_asleep $CGI_PID
L start "$A" >/dev/null
L succeed "$A" >/dev/null
B=$(enq books indexCreation)
wait_for 30 grep -q '"uid":'"$B"',' "$T/live.out"
run kill -0 $CGI_PID
assert_eq "a CGI stream stays open before LMTASKS_STREAM_MAX_SECONDS" 0 "$LMT_RC"
clock_end
rc=$?
assert_eq "a CGI stream ends after LMTASKS_STREAM_MAX_SECONDS with exit 0" 0 "$rc"
head -n 4 "$T/live.out" | tr -d '\r' >"$T/live.head"
assert_eq "status, Content-Type, Cache-Control, X-Accel-Buffering" \
    "Status: 200 OK|Content-Type: text/event-stream|Cache-Control: no-cache|X-Accel-Buffering: no" \
    "$(paste -sd '|' "$T/live.head")"
assert_eq "the body starts with retry: 10000" "retry: 10000" "$(sed -n 6p "$T/live.out")"
events "$T/live.out" >"$T/live.ev"
assert_eq "three changes, three events (the start and the success may come in one read)" \
    ok "$(awk 'END { print (NR == 3 || NR == 2) ? "ok" : NR }' "$T/live.ev")"
json_check "events are id: <seq>, event: task, data: the task" "$(tail -n 1 "$T/live.ev")" \
    'd["event"] == "task" and d["id"] == 4 and d["data"]["uid"] == '"$B"
cgi GET "/tasks/$A"
json_check "data is the task as GET /tasks/UID serves it" "$(sed -n "$(($(wc -l <"$T/live.ev") - 1))p" "$T/live.ev")" \
    'json.dumps(d["data"], separators=(",", ":")) == '"$(printf '%s' "$CGI_BODY" | "$LMT_PYTHON" -c 'import sys, json; print(repr(sys.stdin.read()))')"
grep -qxF "data: $CGI_BODY" "$T/live.out" &&
    ok "the data line holds the same bytes as GET /tasks/$A" ||
    fail "the data line holds the same bytes as GET /tasks/$A" "$CGI_BODY" "$(grep '^data:' "$T/live.out")"

section "CGI: uids= current state, then the end by itself"
C=$(enq movies documentAddition)
L start "$C" >/dev/null
QS="uids=$A,$C" cgi_stream "$T/uids.out"
# Asleep: it has sent the current state and waits.
wait_for 30 lmt_asleep $CGI_PID
run kill -0 $CGI_PID
assert_eq "a uids= stream with an unfinished task stays open" 0 "$LMT_RC"
L succeed "$C" >/dev/null
# 30 s: a hang guard (the stream's own limit is 300 s).
lmt_wait_pid 30 $CGI_PID
assert_eq "it ends by itself (exit 0) once every listed task finished" 0 $?
events "$T/uids.out" >"$T/uids.ev"
assert_eq "current state of both (in the order of their latest changes), then C's success" \
    "$A:3:succeeded $C:6:processing $C:7:succeeded" \
    "$(while read -r l; do json_get "$l" '"%s:%s:%s" % (d["data"]["uid"], d["id"], d["data"]["status"])'; done <"$T/uids.ev" | tr '\n' ' ' | sed 's/ $//')"

section "CGI: Last-Event-ID, 204, 410, errors"
cgi GET "/tasks/stream?uids=$A,$C" HTTP_LAST_EVENT_ID=7
assert_eq "resuming a finished uids= stream after its last event: 204" "Status: 204 No Content" "$CGI_STATUS_LINE"
QS="uids=$A,$C" cgi_stream "$T/resume.out" HTTP_LAST_EVENT_ID=5
wait $CGI_PID
events "$T/resume.out" >"$T/resume.ev"
assert_eq "Last-Event-ID: 5 replays what changed after 5 (C twice: once, as it is now), no current state" \
    "$C:7" \
    "$(while read -r l; do json_get "$l" '"%s:%s" % (d["data"]["uid"], d["id"])'; done <"$T/resume.ev" | tr '\n' ' ' | sed 's/ $//')"
cgi GET "/tasks/stream?statuses=nope"
assert_eq "a bad filter: 400 before any event" "400:invalid_task_statuses" "$CGI_CODE:$(json_get "$CGI_BODY" 'd["code"]')"
cgi GET "/tasks/stream?limit=2"
assert_eq "paging: 400" 400 "$CGI_CODE"
cgi GET "/tasks/stream" HTTP_LAST_EVENT_ID=abc
assert_eq "a bad Last-Event-ID: 400" 400 "$CGI_CODE"
L delete "$A" >/dev/null
cgi GET "/tasks/stream?uids=$A"
assert_eq "a listed task that was deleted: 404 task_not_found" "404:task_not_found" "$CGI_CODE:$(json_get "$CGI_BODY" 'd["code"]')"
L config feedRetention 2 >/dev/null
cgi GET "/tasks/stream" HTTP_LAST_EVENT_ID=3
assert_eq "resuming past the pruned log: 410" "Status: 410 Gone" "$CGI_STATUS_LINE"
json_check "... with a Meilisearch-style body" "$CGI_BODY" \
    'keys(d) == ["message","code","type","link"] and d["code"] == "task_stream_pruned" and "`3`" in d["message"]'
assert_eq "... as JSON" application/json "$(cgi_header Content-Type)"
L config feedRetention 100000 >/dev/null
cgi HEAD "/tasks/stream"
assert_eq "HEAD: the stream's headers, no body, and it ends" "200:text/event-stream:" "$CGI_CODE:$(cgi_header Content-Type):$CGI_BODY"

section "CGI: keys"
MK=$T/master.key
printf '%s\n' "stream-suite-master-key-0123456789abcdef" >"$MK"
chmod 600 "$MK"
BOOKS_KEY=$(L key create --indexes books 2>/dev/null | json_get - 'd["key"]')
cgi GET /tasks/stream LMTASKS_MASTER_KEY_FILE="$MK"
assert_eq "no Authorization with a master key: 401" 401 "$CGI_CODE"
QS= clocked_stream "$T/key.out" LMTASKS_MASTER_KEY_FILE="$MK" HTTP_AUTHORIZATION="Bearer $BOOKS_KEY" \
    LMTASKS_STREAM_MAX_SECONDS=60
wait_for 30 lmt_asleep $CGI_PID
enq movies documentAddition >/dev/null
D=$(enq books documentAddition)
wait_for 30 grep -q '"uid":'"$D"',' "$T/key.out"
clock_end
events "$T/key.out" >"$T/key.ev"
assert_eq "a key limited to books sees the books task and not the movies one" "$D:books" \
    "$(while read -r l; do json_get "$l" '"%s:%s" % (d["data"]["uid"], d["data"]["indexUid"])'; done <"$T/key.ev" | tr '\n' ' ' | sed 's/ $//')"
QS= cgi_stream "$T/revoked.out" LMTASKS_MASTER_KEY_FILE="$MK" HTTP_AUTHORIZATION="Bearer $BOOKS_KEY"
wait_for 30 lmt_asleep $CGI_PID
L key delete "$BOOKS_KEY" >/dev/null
enq books documentAddition >/dev/null
# Its own limit is 300 s: ended within the 30 s hang guard, it ended at the change.
lmt_wait_pid 30 $CGI_PID
assert_ne "a stream whose key is revoked ends at the next change" 124 "$?"
assert_eq "... without the change" 0 "$(events "$T/revoked.out" | wc -l | tr -d ' ')"

section "CGI: the polling fallback"
QS= clocked_stream "$T/poll.out" LMTASKS_NO_INOTIFY=1 LMTASKS_STREAM_MAX_SECONDS=60
wait_for 30 lmt_asleep $CGI_PID
assert_eq "LMTASKS_NO_INOTIFY=1: the stream holds no inotify watch" 0 "$(lmt_inotify $CGI_PID)"
E=$(enq movies documentAddition)
wait_for 30 grep -q '"uid":'"$E"',' "$T/poll.out"
clock_end
assert_eq "LMTASKS_NO_INOTIFY=1: the change still comes (polled)" "$E" \
    "$(events "$T/poll.out" | head -n 1 | json_get - 'd["data"]["uid"]')"

section "FastCGI behind a real nginx"
if [ -x "$HTTP_NGINX" ] && [ -f /etc/nginx/fastcgi_params ] && command -v curl >/dev/null; then
	fcgi_start "$T/fcgi.sock" "$S" 2 || { fail "lmtasks-fcgi starts"; summary; exit 1; }
	http_nginx_start stream "upstream lm { server unix:$T/fcgi.sock; keepalive 8; }" \
	    "location / { include fastcgi_params; fastcgi_pass lm; fastcgi_keep_conn on; }" ||
	    { fail "nginx starts"; summary; exit 1; }
	F=$(enq movies documentAddition)
	THREAD_T0=$(now)
	# curl's 120 s and the 30 s waits are hang guards, as above.
	curl -sN --max-time 120 -D "$T/ng.head" -o "$T/ng.out" "$HTTP_BASE/tasks/stream?uids=$F" &
	CP=$!
	lmt_bg_track $CP
	wait_for 30 grep -q '"status":"enqueued"' "$T/ng.out"
	L start "$F" >/dev/null
	# Its current state and the start came: it is open, and stays so.
	wait_for 30 grep -q '"status":"processing"' "$T/ng.out"
	run kill -0 $CP
	assert_eq "through nginx a uids= stream stays open while its task is unfinished" 0 "$LMT_RC"
	L succeed "$F" >/dev/null
	lmt_wait_pid 30 $CP
	assert_eq "... and ends by itself once it finished (curl exits 0)" 0 $?
	assert_match "... 200 text/event-stream" '^Content-Type: text/event-stream' "$(tr -d '\r' <"$T/ng.head")"
	assert_eq "... the current state, then the changes" "enqueued succeeded" \
	    "$(events "$T/ng.out" | while read -r l; do json_get "$l" 'd["data"]["status"]'; done | sed -n '1p;$p' | tr '\n' ' ' | sed 's/ $//')"
	FIRST=$(events "$T/ng.out" | head -n 1 | json_get - 'd["id"]')
	curl -sN --max-time 60 -H "Last-Event-ID: $FIRST" -o "$T/ng2.out" "$HTTP_BASE/tasks/stream?uids=$F"
	assert_eq "Last-Event-ID through nginx replays what followed it and ends (all finished)" \
	    "0:succeeded" "$?:$(events "$T/ng2.out" | tail -n 1 | json_get - 'd["data"]["status"]')"
	http GET "/tasks/stream" -H "Last-Event-ID: 1"
	assert_eq "Last-Event-ID through nginx: 410 for a pruned one (the log was cut to 2 above)" \
	    "410:task_stream_pruned" "$HTTP_STATUS:$(json_get "$HTTP_BODY" 'd["code"]')"
	# Streams held by the responder's one stream thread; plain GETs meanwhile.
	# The responder's keep-alive comes every 15 s of its stream thread's clock, which runs
	# since the first stream above: the check that none came holds only while the thread
	# is younger than 15 s, and is skipped on a machine too slow for that.
	MANY=()
	for i in 1 2 3 4 5; do
		curl -sN --max-time 120 -o "$T/many.$i" "$HTTP_BASE/tasks/stream?indexUids=many" &
		MANY+=($!)
		lmt_bg_track $!
	done
	# Open: each has its retry: line.
	for i in 1 2 3 4 5; do wait_for 30 grep -q '^retry:' "$T/many.$i"; done
	http GET "/tasks/$F"
	assert_eq "a plain GET answers while five streams are open" 200 "$HTTP_STATUS"
	G=$(enq many documentAddition)
	for i in 1 2 3 4 5; do wait_for 30 grep -q '"uid":'"$G"',' "$T/many.$i"; done
	young=$(elapsed "$THREAD_T0")
	kill "${MANY[@]}" 2>/dev/null
	wait "${MANY[@]}" 2>/dev/null
	got=0
	for i in 1 2 3 4 5; do
		[ "$(events "$T/many.$i" | json_get - 'd["data"]["uid"]' 2>/dev/null)" = "$G" ] && got=$((got + 1))
	done
	assert_eq "one commit reaches all five open streams" 5 "$got"
	if awk -v y="$young" 'BEGIN { exit !(y < 14) }'; then
		grep -q ': keep-alive' "$T/many.1" && fail "no keep-alive within the stream thread's first $young s" ||
		    ok "no keep-alive within the stream thread's first $young s (it comes every 15)"
	else
		skip "no keep-alive within the stream thread's first 15 s" "the section took $young s"
	fi
else
	skip "FastCGI behind nginx" "no nginx or curl"
fi

section "nginx with nginx/lmtasks-stream.conf and lmtasks-location.conf as shipped"
if [ -x "$HTTP_NGINX" ] && [ -f /etc/nginx/fastcgi_params ] && command -v curl >/dev/null; then
	# A responder of its own whose keep-alive comes every 300 ms, not 15 s.
	LMTASKS_STREAM_KEEPALIVE_MS=300 fcgi_start "$T/ka.sock" "$S" 2 ||
	    { fail "lmtasks-fcgi starts"; summary; exit 1; }
	ship() { sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/ka.sock|" "$top_srcdir/nginx/$1" >"$T/$1"; }
	ship lmtasks-stream.conf
	ship lmtasks-location.conf
	grep -q '^[[:space:]]*fastcgi_buffering off;' "$T/lmtasks-stream.conf" &&
	    ok "the snippet turns fastcgi_buffering off" || fail "the snippet turns fastcgi_buffering off"
	http_nginx_start shipped "" "include $T/lmtasks-stream.conf; include $T/lmtasks-location.conf;" ||
	    { fail "nginx starts with the shipped snippets"; summary; exit 1; }
	http_stream_watch "nginx/lmtasks-stream.conf" "$(enq movies documentAddition)"
	http GET "/tasks/$F"
	assert_eq "a plain GET beside it goes through lmtasks-location.conf" 200 "$HTTP_STATUS"
else
	skip "nginx with nginx/lmtasks-stream.conf" "no nginx or curl"
fi

echo "# $(elapsed "$START") s"
summary
