#!/usr/bin/env bash
# lmtasks-writer behind a real nginx: the shipped nginx/lmtasks-writer.conf next to
# lmtasks-location.conf (only the socket paths moved) sends POST /tasks/cancel and
# DELETE /tasks to the writer and every other method and path to the read-only responder;
# keys need the action; without the snippet the two routes keep the responder's 405.
# Also: the responder links no write code, the writer's CGI mode, its socket's mode, its
# refusal to run without a master key, SIGTERM.
# Hostile peers at the writer's own socket (tests/lib/fcgi.py, a raw FastCGI client), as
# tests/e2e/hostile.sh does to the responder: five crafted records (a name length of 0x7ffffff0,
# 1 GiB lengths, a length past the record's end, another protocol version, parameters past
# 192 KiB) each close their connection, and the writer lives and answers the next write; a
# body past 1 MiB is refused, one of 1 MiB answered; 2 slow clients (a byte every 0.3 s)
# and 3 stalled ones (half a request, then nothing) hang on while 20 cancel/delete requests
# through nginx are each answered 200 within 1 s, and the writer closes the 5 at their
# 5 s deadline; with its one worker, a stalled connection does not hold up a whole request.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi LMTASKS_WRITER=build/lmtasks-writer \
#       bash tests/e2e/writer.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
: "${LMTASKS_WRITER:=${top_builddir:-.}/lmtasks-writer}"
case $LMTASKS_WRITER in /*) ;; *) LMTASKS_WRITER=$(pwd)/$LMTASKS_WRITER ;; esac
for b in "$LMTASKS" "$LMTASKS_FCGI" "$LMTASKS_WRITER"; do
	[ -x "$b" ] || { echo "writer.sh: no binary at $b" >&2; exit 99; }
done
[ -x "$HTTP_NGINX" ] || lmt_missing_all nginx "no nginx (apt-get install nginx)"
lmt_have curl || lmt_missing_all curl "no curl"
lmt_have ss || lmt_missing_all ss "no ss (iproute2)"

T=$HTTP_TMP
S=$T/store
http_demo_store writer.sh
#   0 movies succeeded  1 books failed  2 movies canceled by 3  3 taskCancelation  4 books enqueued
MASTER=writer-suite-master-key-0123456789
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"
key() { L key create "$@" | json_get - 'd["key"]'; }
READ_KEY=$(key)
CANCEL_KEY=$(key --actions tasks.cancel)
DELETE_KEY=$(key --actions tasks.delete)
MOVIES_KEY=$(key --indexes movies --actions 'tasks.*')
E403=$(errbody invalid_api_key 'The provided API key is invalid.' auth)

section "the public responder links no write code"
syms=$(nm "$LMTASKS_FCGI" 2>/dev/null | grep -E ' [TtWw] (ops_|store_write|store_add|store_remove|store_replace|writer_)' | head -n 5)
assert_eq "lmtasks-fcgi holds no ops_/store write/writer_ function" "" "$syms"
nm "$LMTASKS_WRITER" | grep -q ' T ops_cancel_query$'
assert_eq "lmtasks-writer does (the check can fail)" 0 $?
nm "$LMTASKS_FCGI" | grep -q ' T auth_check$'
assert_eq "and lmtasks-fcgi has symbols to look at" 0 $?

section "the writer's own checks"
run "$LMTASKS_WRITER" --db "$S"
assert_eq "without a master key it refuses to run: exit 2" 2 "$LMT_RC"
assert_match "saying so" "a master key is required" "$LMT_STDERR"
run "$LMTASKS_WRITER" --help
assert_match "--help names the routes" "POST /tasks/cancel" "$LMT_STDOUT"

# The responder and the writer, each on its socket, with the master key.
fcgi_start "$T/fcgi.sock" "$S" 2 --master-key-file "$T/master.key" ||
	{ fail "lmtasks-fcgi starts"; summary; exit 1; }
WLOG=$T/writer.log
# The clocked writer: the hostile peers below hold connections past, then over, their
# deadline by moving its clock.
clock_use "$T/clock"
"$LMTASKS_WRITER_CLOCKED" --db "$S" --listen "unix:$T/writer.sock" --master-key-file "$T/master.key" \
	</dev/null >>"$WLOG" 2>&1 &
WPID=$!
lmt_on_exit "http_stop $WPID"
for ((i = 0; i < 600; i++)); do http_sock_ready "$T/writer.sock" && break; sleep 0.05; done
http_sock_ready "$T/writer.sock" || { fail "lmtasks-writer listens" "$(cat "$WLOG")"; summary; exit 1; }
assert_eq "the writer's socket is 0660" 660 "$(stat -c %a "$T/writer.sock")"

# The shipped snippets, their sockets moved here.
LOC=$(sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" "$top_srcdir/nginx/lmtasks-location.conf")
WCONF=$(sed -e "s|unix:/run/lmtasks/writer.sock|unix:$T/writer.sock|" \
	-e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" "$top_srcdir/nginx/lmtasks-writer.conf")
http_nginx_start plain "" "$LOC" || { fail "nginx starts (responder only)"; summary; exit 1; }
PLAIN=$HTTP_BASE
http_nginx_start writer "" "$LOC
$WCONF" || { fail "nginx starts with lmtasks-writer.conf"; summary; exit 1; }
WBASE=$HTTP_BASE
auth() { printf 'Authorization: Bearer %s' "$1"; }

section "without the writer mounted: the responder's 405"
HTTP_BASE=$PLAIN
http POST "/tasks/cancel?uids=4" -H "$(auth "$MASTER")"
P405_CANCEL=$HTTP_BODY
assert_eq "POST /tasks/cancel: 405" 405 "$HTTP_STATUS"
assert_eq "with Allow: GET, HEAD" "GET, HEAD" "$(http_header Allow)"
assert_match "and a JSON body" '^\{"message":"Method `POST` is not allowed here.*"code":"method_not_allowed"' "$HTTP_BODY"
http DELETE "/tasks?uids=4" -H "$(auth "$MASTER")"
P405_DELETE=$HTTP_BODY
assert_eq "DELETE /tasks: 405" 405 "$HTTP_STATUS"
http GET "/tasks/cancel" -H "$(auth "$MASTER")"
PGET_CANCEL_STATUS=$HTTP_STATUS PGET_CANCEL=$HTTP_BODY
http GET "/tasks?limit=2" -H "$(auth "$MASTER")"
PGET_LIST=$HTTP_BODY
assert_eq "the task stays enqueued" enqueued "$(L get 4 | json_get - 'd["status"]')"

section "with nginx/lmtasks-writer.conf"
HTTP_BASE=$WBASE
http POST "/tasks/cancel?uids=4" -H "$(auth "$READ_KEY")"
assert_eq "a key without tasks.cancel: 403" 403 "$HTTP_STATUS"
assert_eq "with Meilisearch's error" "$E403" "$HTTP_BODY"
http POST "/tasks/cancel?uids=4" -H "$(auth "$DELETE_KEY")"
assert_eq "tasks.delete does not cancel: 403" 403 "$HTTP_STATUS"
http POST "/tasks/cancel" -H "$(auth "$CANCEL_KEY")"
assert_eq "no filter: 400" 400 "$HTTP_STATUS"
assert_eq "missing_task_filters, Meilisearch's message" "$(errbody missing_task_filters \
	'Query parameters to filter the tasks to cancel are missing. Available query parameters are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`.')" \
	"$HTTP_BODY"
assert_eq "nothing changed so far" enqueued "$(L get 4 | json_get - 'd["status"]')"
http POST "/tasks/cancel?uids=4" -H "$(auth "$CANCEL_KEY")" -H 'Content-Type: application/json'
assert_eq "POST /tasks/cancel?uids=4 with tasks.cancel: 200" 200 "$HTTP_STATUS"
assert_eq "Content-Length is the body's" "$(wc -c <"$HTTP_BODY_FILE")" "$(http_header Content-Length)"
assert_eq "Cache-Control: no-store, no ETag" "no-store|" "$(http_header Cache-Control)|$(http_header ETag)"
json_check "the summarized taskCancelation task" "$HTTP_BODY_FILE" \
	'list(d) == ["taskUid","indexUid","status","type","enqueuedAt"] and d["taskUid"] == 5 and d["indexUid"] is None and d["type"] == "taskCancelation"'
json_check "task 4 is canceled by it" "$(L get 4)" 'd["status"] == "canceled" and d["canceledBy"] == 5'
json_check "its details as the CLI's, with the query as originalFilter" "$(L get 5)" \
	'd["details"] == {"matchedTasks":1,"canceledTasks":1,"originalFilter":"?uids=4"}'
assert_eq "GET /tasks/5 through the same nginx is the responder's, as lmtasks get" \
	"$(L get 5 | head -c -1)" "$(curl -s -H "$(auth "$MASTER")" "$WBASE/tasks/5")"

http GET "/tasks/cancel" -H "$(auth "$MASTER")"
assert_eq "GET /tasks/cancel still goes to the responder (same status)" "$PGET_CANCEL_STATUS" "$HTTP_STATUS"
assert_eq "and the same body" "$PGET_CANCEL" "$HTTP_BODY"
http HEAD "/tasks/cancel" -H "$(auth "$MASTER")"
assert_eq "HEAD /tasks/cancel too" "$PGET_CANCEL_STATUS" "$HTTP_STATUS"
http POST "/tasks" -H "$(auth "$MASTER")"
assert_eq "POST /tasks: the responder's 405" 405 "$HTTP_STATUS"
assert_eq "with its Allow" "GET, HEAD" "$(http_header Allow)"
http DELETE "/tasks/1" -H "$(auth "$MASTER")"
assert_eq "DELETE /tasks/1: the responder's 405 (only /tasks is mounted)" 405 "$HTTP_STATUS"
http PUT "/tasks/cancel?uids=1" -H "$(auth "$MASTER")"
assert_eq "PUT /tasks/cancel: the responder's 405" 405 "$HTTP_STATUS"

http DELETE "/tasks?statuses=succeeded" -H "$(auth "$CANCEL_KEY")"
assert_eq "DELETE /tasks with tasks.cancel only: 403" 403 "$HTTP_STATUS"
http DELETE "/tasks?limit=1" -H "$(auth "$DELETE_KEY")"
assert_eq "DELETE /tasks?limit=1: 400 bad_request" 400 "$HTTP_STATUS"
assert_match "naming the filters (at v0.25 without batchUids)" '^\{"message":"Unknown parameter `limit`: expected one of `uids`, `canceledBy`' "$HTTP_BODY"
http DELETE "/tasks?indexUids=movies&statuses=succeeded,canceled" -H "$(auth "$DELETE_KEY")"
assert_eq "DELETE /tasks?indexUids=movies&statuses=... with tasks.delete: 200" 200 "$HTTP_STATUS"
json_check "the summarized taskDeletion task" "$HTTP_BODY_FILE" 'd["type"] == "taskDeletion" and d["taskUid"] == 6'
json_check "movies' finished tasks 0 and 2 are gone, the rest stays" "$(L list --reverse)" \
	'[t["uid"] for t in d["results"]] == [1, 3, 4, 5, 6]'
json_check "details" "$(L get 6)" \
	'd["details"] == {"matchedTasks":2,"deletedTasks":2,"originalFilter":"?indexUids=movies&statuses=succeeded,canceled"}'

L enqueue movies documentAddition >/dev/null	# 7
L enqueue books documentAddition >/dev/null	# 8
http POST "/tasks/cancel?statuses=enqueued" -H "$(auth "$MOVIES_KEY")"
assert_eq "a key for movies with tasks.*: 200" 200 "$HTTP_STATUS"
assert_eq "cancels movies' enqueued task" canceled "$(L get 7 | json_get - 'd["status"]')"
assert_eq "not books'" enqueued "$(L get 8 | json_get - 'd["status"]')"
http GET "/tasks/7" -H "$(auth "$CANCEL_KEY")"
assert_eq "a tasks.cancel key may not read through the responder: 403" 403 "$HTTP_STATUS"
http GET "/tasks/7" -H "$(auth "$MOVIES_KEY")"
assert_eq "tasks.* reads" 200 "$HTTP_STATUS"

assert_match "the writer logged the write: method, query, answer" \
	'^lmtasks-writer: POST \?uids=4: \{"taskUid":5,' "$(cat "$WLOG")"
run "$LMTASKS_WRITER" --version
assert_match "--version" '^lmtasks-writer [0-9]' "$LMT_STDOUT"

section "the writer on a TCP socket"
WPORT=$(http_random_port)
"$LMTASKS_WRITER" --db "$S" --listen "127.0.0.1:$WPORT" --master-key-file "$T/master.key" \
	</dev/null >>"$T/writer-tcp.log" 2>&1 &
TPID=$!
lmt_on_exit "http_stop $TPID"
for ((i = 0; i < 600; i++)); do http_port_free "$WPORT" || break; sleep 0.05; done
TCONF=$(sed -e "s|unix:/run/lmtasks/writer.sock|127.0.0.1:$WPORT|" \
	-e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" "$top_srcdir/nginx/lmtasks-writer.conf")
http_nginx_start tcp "" "$LOC
$TCONF" || { fail "nginx starts with the writer on TCP"; summary; exit 1; }
L enqueue books indexUpdate >/dev/null	# 10
http POST "/tasks/cancel?uids=10" -H "$(auth "$CANCEL_KEY")"
assert_eq "--listen 127.0.0.1:PORT: POST /tasks/cancel through it: 200" 200 "$HTTP_STATUS"
assert_eq "task 10 canceled" canceled "$(L get 10 | json_get - 'd["status"]')"
http_stop "$TPID"
HTTP_BASE=$WBASE

section "CGI"
run env -i REQUEST_METHOD=DELETE REQUEST_URI="/tasks?uids=1" QUERY_STRING=uids=1 \
	GATEWAY_INTERFACE=CGI/1.1 HTTP_AUTHORIZATION="Bearer $MASTER" \
	LMTASKS_MASTER_KEY_FILE="$T/master.key" LMTASKS_DB="$S" "$LMTASKS_WRITER"
assert_match "the writer as a CGI program: DELETE with the master key" '^Status: 200 OK' "$LMT_STDOUT"
assert_eq "task 1 is gone" 1 "$(L get 1 >/dev/null 2>&1; echo $?)"

section "hostile peers at the writer's socket"
WSOCK=$T/writer.sock
F() { "$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" "$@"; }
http_crafted "$WSOCK" "$WPID" "$WLOG" "the writer"
U=$(L enqueue books documentAddition | json_get - 'd["uid"]')
http POST "/tasks/cancel?uids=$U" -H "$(auth "$CANCEL_KEY")"
assert_eq "then POST /tasks/cancel through nginx: 200" 200 "$HTTP_STATUS"
assert_eq "task $U canceled" canceled "$(L get "$U" | json_get - 'd["status"]')"
out=$(F body "$WSOCK" "/tasks/cancel?uids=$U" 1048576)
assert_eq "a request body of 1 MiB is read and dropped: answered (401, no key given)" 401 "${out% *}"
out=$(F body "$WSOCK" "/tasks/cancel?uids=$U" 1048577)
assert_match "one byte more: the connection is closed" '^closed ' "$out"
grep -q 'lmtasks-writer: closed a FastCGI connection: a request body larger than the limit' "$WLOG" &&
	ok "the log says why" || fail "the log says why" "$(tail -3 "$WLOG")"

# write_through_nginx N: N tasks enqueued, each canceled and then deleted through nginx: all
# 200; sets SLOWEST.  One enqueue, one curl for the 2 N requests (one after another, each
# on a connection of its own) and one list: a process or three per request cost more than
# the requests.
write_through_nginx() {
	local i u first args=() out line bad=""
	SLOWEST=0
	for ((i = 0; i < $1; i++)); do echo '{"indexUid":"movies","type":"documentAddition"}'; done |
		L enqueue --batch >"$T/wtn.out" || bad+=" enqueue-failed"
	read -r line <"$T/wtn.out"
	[[ $line =~ \"firstUid\":([0-9]+) ]] && first=${BASH_REMATCH[1]} || { SLOWEST="$line"; return 1; }
	# (After --next, curl's options start again: each request has its own.)
	local each=(-s -o /dev/null --max-time 10 -H 'Connection: close' -w '%{http_code} %{time_total}\n')
	for ((u = first; u < first + $1; u++)); do
		args+=(--next "${each[@]}" -X POST -H "$(auth "$CANCEL_KEY")" "$WBASE/tasks/cancel?uids=$u")
		args+=(--next "${each[@]}" -X DELETE -H "$(auth "$DELETE_KEY")" "$WBASE/tasks?uids=$u")
	done
	out=$(curl "${args[@]:1}")
	SLOWEST=$(awk -v n=$((2 * $1)) '$1 != 200 { bad = bad " " $1 } $2 > s { s = $2 }
		END { print s + 0 bad; if (NR != n) print " " NR " answers"; exit !(NR == n && bad == "") }' <<<"$out") ||
		bad+=" not-all-200"
	# None of them is left.
	out=$(L list --uids "$(seq -s, "$first" $((first + $1 - 1)))" --limit 1000 | json_get - 'd["total"]')
	[ "$out" = 0 ] || bad+=" $out-tasks-still-there"
	[ -z "$bad" ] || { SLOWEST+="$bad"; return 1; }
}
# As in tests/e2e/hostile.sh: each connection's 5 s deadline runs from its accept, by the
# writer's clock.  The clock goes ten minutes back before the five connect (the sweep, on
# the monotonic clock's timetable, then waits ten minutes to look), and ten minutes back
# again once they are accepted (their deadlines ten minutes off, however long the 20
# requests take); then 1206 s forward, past both, and the sweep closes them.  The clients'
# own bounds (60 s) are hang guards.
clock_move -600
hang=()
socks() { find "/proc/$WPID/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
before=$(socks)
# A byte every 2 s: the 137 bytes of a request take 274 s, more than the steps below.
for i in 1 2; do F slow "$WSOCK" 2 /tasks/cancel >"$T/hang.slow$i" 2>&1 & hang+=($!); lmt_bg_track $!; done
for i in 1 2 3; do F stall "$WSOCK" 60 >"$T/hang.stall$i" 2>&1 & hang+=($!); lmt_bg_track $!; done
wait_for 30 eval '[ "$(socks)" -ge $((before + 5)) ]' || fail "the writer accepted the 5 clients" "$(socks) sockets, $before before"
clock_move -600
write_through_nginx 10
all200=$?
hanging=$(cat "$T"/hang.* | wc -c)
if [ "$all200" = 0 ] && [ "$hanging" = 0 ]; then
	ok "10 cancels and 10 deletes through nginx while 2 slow and 3 stalled clients hang on: all 200, slowest ${SLOWEST} s"
else
	fail "10 cancels and 10 deletes through nginx while slow and stalled clients hang on: all 200" \
		"slowest $SLOWEST" "$(cat "$T"/hang.*)"
fi
clock_move 1206
for p in "${hang[@]}"; do lmt_wait_pid 60 "$p"; done
closed=$(cat "$T"/hang.* | grep -c '^closed ')
if [ "$closed" = 5 ]; then
	ok "the writer closed all 5 once its clock passed their 5 s deadline"
else
	fail "the writer closed all 5 once its clock passed their 5 s deadline" "$(cat "$T"/hang.*)"
fi
grep -q 'lmtasks-writer: closed a FastCGI connection: its request was not whole within 5 s' "$WLOG" &&
	ok "the log says why they were closed" || fail "the log says why they were closed" "$(tail -3 "$WLOG")"
# The clock ten minutes back while it runs: the stalled connection's deadline is then
# far off, so a blocked answer could only come after the client's 30 s guard.
clock_move -600
out=$(F hol "$WSOCK")
clock_move 600
# As in tests/e2e/hostile.sh: blocked, the answer would wait for the sweep to close the
# stalled connection, ten minutes off with the clock moved back; the 30 s bound is the
# client's guard.
if [ "${out% *}" = 404 ]; then
	ok "one worker: a whole request beside a stalled connection is answered before its deadline (${out#* } s)"
else
	fail "one worker: a whole request beside a stalled connection is answered before its deadline" "$out"
fi
http_alive "$WPID" && ok "the writer lives" || fail "the writer lives" "$(tail -3 "$WLOG")"

section "the writer on an inherited socket"
# spawn-fcgi: the socket on standard input, the writer exec'd in place (-n: no fork).
if command -v spawn-fcgi >/dev/null; then
	spawn-fcgi -n -s "$T/spawn.sock" -M 0660 -- "$LMTASKS_WRITER" --db "$S" \
		--master-key-file "$T/master.key" >"$T/spawn.log" 2>&1 &
	SP_PID=$!
	lmt_on_exit "http_stop $SP_PID"
	for ((i = 0; i < 600; i++)); do http_sock_ready "$T/spawn.sock" && break; sleep 0.05; done
	U=$(L enqueue books documentAddition | json_get - 'd["uid"]')
	out=$(F get "$T/spawn.sock" "/tasks/cancel?uids=$U" POST "$CANCEL_KEY")
	assert_eq "spawn-fcgi -- lmtasks-writer: POST /tasks/cancel?uids=$U: 200" 200 "${out% *}"
	assert_eq "task $U canceled" canceled "$(L get "$U" | json_get - 'd["status"]')"
	http_stop "$SP_PID"
	rm -f "$T/spawn.sock"
else
	lmt_missing "spawn-fcgi" spawn-fcgi "not installed"
fi
# systemd socket activation: the socket as descriptor 3, LISTEN_FDS=1, LISTEN_PID.
if command -v systemd-socket-activate >/dev/null; then
	systemd-socket-activate -l "$T/sd.sock" "$LMTASKS_WRITER" --db "$S" \
		--master-key-file "$T/master.key" >"$T/sd.log" 2>&1 &
	SD_PID=$!
	lmt_on_exit "http_stop $SD_PID"
	for ((i = 0; i < 600; i++)); do [ -S "$T/sd.sock" ] && break; sleep 0.05; done
	U=$(L enqueue books documentAddition | json_get - 'd["uid"]')
	out=$(F get "$T/sd.sock" "/tasks/cancel?uids=$U" POST "$CANCEL_KEY")
	assert_eq "systemd-socket-activate (LISTEN_FDS) lmtasks-writer: POST /tasks/cancel: 200" 200 "${out% *}"
	assert_eq "task $U canceled" canceled "$(L get "$U" | json_get - 'd["status"]')"
	http_stop "$SD_PID"
else
	lmt_missing "systemd socket activation" systemd-socket-activate "systemd-socket-activate is not installed"
fi

section "the writer's socket options"
run "$LMTASKS_WRITER" --listen "unix:$T/x.sock" --socket-mode 999 --master-key-file "$T/master.key"
assert_eq "--socket-mode 999: usage error (exit 2)" 2 "$LMT_RC"
run "$LMTASKS_WRITER" --listen "unix:$T/x.sock" --socket-group no-such-group-here --master-key-file "$T/master.key"
assert_eq "--socket-group no-such-group-here: usage error (exit 2)" 2 "$LMT_RC"
run "$LMTASKS_WRITER" --listen "127.0.0.1:1" --socket-mode 0600 --master-key-file "$T/master.key"
assert_eq "--socket-mode with a TCP address: usage error (exit 2)" 2 "$LMT_RC"
assert_match "saying the options are for unix:" "are for --listen unix:PATH" "$LMT_STDERR"
run "$LMTASKS_WRITER" --listen "nowhere" --master-key-file "$T/master.key"
assert_eq "--listen nowhere: exit 1" 1 "$LMT_RC"
assert_match "naming the forms" "expected unix:PATH or HOST:PORT" "$LMT_STDERR"
if [ "$(id -u)" -eq 0 ] && getent group nogroup >/dev/null; then
	"$LMTASKS_WRITER" --db "$S" --listen "unix:$T/grp.sock" --socket-group nogroup \
		--socket-mode 0640 --master-key-file "$T/master.key" >"$T/grp.log" 2>&1 &
	G_PID=$!
	lmt_on_exit "http_stop $G_PID"
	for ((i = 0; i < 600; i++)); do http_sock_ready "$T/grp.sock" && break; sleep 0.05; done
	assert_eq "--socket-group nogroup --socket-mode 0640" "640 $(getent group nogroup | cut -d: -f3)" \
		"$(stat -c '%a %g' "$T/grp.sock")"
	http_stop "$G_PID"
else
	skip "--socket-group nogroup --socket-mode 0640" "needs root and the group nogroup"
fi

section "batchUids at compat v0.25"
http POST "/tasks/cancel?batchUids=0" -H "$(auth "$MASTER")"
assert_eq "POST /tasks/cancel?batchUids=0 at v0.25: 400" 400 "$HTTP_STATUS"
json_check "an unknown parameter, and the filters listed are those it takes" "$HTTP_BODY_FILE" \
    'd["code"] == "bad_request" and d["message"] == "Unknown parameter `batchUids`: expected one of `uids`, `canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`"'
L config compat v1 >/dev/null
http DELETE "/tasks?limit=1" -H "$(auth "$MASTER")"
assert_match "at v1 the list names batchUids" '^\{"message":"Unknown parameter `limit`: expected one of `uids`, `batchUids`, `canceledBy`' "$HTTP_BODY"
http DELETE "/tasks?batchUids=999999" -H "$(auth "$MASTER")"
assert_eq "and takes it: 200" 200 "$HTTP_STATUS"
L config compat v0.25 >/dev/null

section "cancelations of nothing stop at the limit"
for i in $(seq 100); do echo '{"indexUid":"movies","type":"documentAddition"}'; done >"$T/b100.ndjson"
for i in $(seq 10); do cat "$T/b100.ndjson"; done >"$T/b1000.ndjson"
L config maxBytes 1MiB >/dev/null
# Filled to within 100 tasks of the limit: 1,000 at a time while they fit, then 100 (an
# enqueue is a process, costly under the sanitizers; the store ends as full).
for b in b1000 b100; do
	for i in $(seq 200); do
		L enqueue --batch "$T/$b.ndjson" >/dev/null 2>&1 || break
	done 2>/dev/null
done
n=0
while [ $n -lt 3000 ]; do
	http POST "/tasks/cancel?uids=999999" -H "$(auth "$CANCEL_KEY")"
	[ "$HTTP_STATUS" = 200 ] || break
	n=$((n + 1))
done
assert_eq "a cancelation of no task past the limit: 422 (after $n recorded)" 422 "$HTTP_STATUS"
json_check "Meilisearch's no_space_left_on_device, type system" "$HTTP_BODY_FILE" \
    'd["code"] == "no_space_left_on_device" and d["type"] == "system" and "Delete finished tasks" in d["message"]'
next=$(L stats | json_get - 'd["nextUid"]')
http DELETE "/tasks?uids=999999" -H "$(auth "$DELETE_KEY")"
assert_eq "a deletion of no task: 422 too" 422 "$HTTP_STATUS"
assert_eq "neither recorded a task" "$next" "$(L stats | json_get - 'd["nextUid"]')"
grep -q 'lmtasks-writer: 422 no_space_left_on_device: DELETE ?uids=999999 refused' "$WLOG" &&
	ok "the writer logs the refusal" || fail "the writer logs the refusal" "$(tail -3 "$WLOG")"
batches() { L batch list --limit 1 | json_get - 'd["total"]'; }
before=$(batches)
http DELETE "/tasks?statuses=succeeded,failed,canceled" -H "$(auth "$DELETE_KEY")"
assert_eq "a deletion that deletes finished tasks goes through: 200" 200 "$HTTP_STATUS"
http POST "/tasks/cancel?statuses=enqueued" -H "$(auth "$CANCEL_KEY")"
assert_eq "and a cancelation that cancels: 200" 200 "$HTTP_STATUS"
http DELETE "/tasks?statuses=canceled" -H "$(auth "$DELETE_KEY")"
assert_eq "the canceled tasks deleted in turn: 200" 200 "$HTTP_STATUS"
after=$(batches)
[ "$before" -gt "$n" ] && [ "$after" -lt 10 ] &&
	ok "the batches of the deleted records went with them ($before batches, then $after)" ||
	fail "the batches of the deleted records went with them" "$before then $after (n=$n)"
# The change log holds an entry per task canceled and deleted, and counts (README): kept
# shorter, it leaves room under this small limit.
check "a shorter change log" L config feedRetention 100
check "new tasks are taken again" L enqueue movies documentAddition
L config maxBytes 1GiB >/dev/null
L config feedRetention 100000 >/dev/null

section "a data.mdb cut short under the running writer"
D=$T/dmg
LD() { "$LMTASKS" --db "$D" "$@"; }
LD init >/dev/null 2>&1
for i in $(seq 30); do cat "$T/b100.ndjson"; done | LD enqueue --batch >/dev/null
size=$(stat -c %s "$D/data.mdb")
half=$((size / 2))
cp "$D/data.mdb" "$T/dmg.good"
DLOG=$T/dmg-writer.log
"$LMTASKS_WRITER" --db "$D" --listen "unix:$T/dmgw.sock" --master-key-file "$T/master.key" \
	</dev/null >>"$DLOG" 2>&1 &
DPID=$!
lmt_on_exit "http_stop $DPID"
wait_for 30 http_sock_ready "$T/dmgw.sock"
assert_match "the writer on the whole store: 200" '^Status: 200' "$(F answer "$T/dmgw.sock" "/tasks/cancel?uids=2999" POST "$MASTER")"
truncate -s "$half" "$D/data.mdb"
out=$(F answer "$T/dmgw.sock" "/tasks/cancel?uids=2998" POST "$MASTER")
assert_match "cut to half under it: 503" '^Status: 503' "$out"
json_check "store_unavailable, naming the file and its size" "$(sed '1,/^$/d' <<<"$out")" \
    "d['code'] == 'store_unavailable' and 'the store is damaged: $D/data.mdb is $half bytes, shorter than the ' in d['message']"
http_alive "$DPID" && ok "the writer lives" || fail "the writer lives" "$(tail -3 "$DLOG")"
grep -q "lmtasks-writer: the store at $D is damaged: $D/data.mdb is $half bytes" "$DLOG" &&
	ok "its log names the file and its size" || fail "its log names the file and its size" "$(tail -3 "$DLOG")"
out=$(F answer "$T/dmgw.sock" "/tasks?uids=0" DELETE "$MASTER")
assert_match "every write: 503" '^Status: 503' "$out"
assert_eq "nothing was written: the file is still $half bytes" "$half" "$(stat -c %s "$D/data.mdb")"
cp "$T/dmg.good" "$D/data.mdb"
assert_match "restored in place: 200, no restart" '^Status: 200' "$(F answer "$T/dmgw.sock" "/tasks/cancel?uids=2998" POST "$MASTER")"
grep -q "lmtasks-writer: the store at $D can be written again" "$DLOG" &&
	ok "its log says so" || fail "its log says so" "$(tail -3 "$DLOG")"
http_stop "$DPID"

# A fault inside a write (the test build's seam: SIGBUS at its second commit, as a file
# cut short between the check and the write would give): 503, the write aborted and its
# lock released, then served again.
if [ -x "${LMTASKS_WRITER_FAULTS:-}" ]; then
	next=$(LD enqueue movies x | json_get - 'd["uid"]')
	LMTASKS_FAULT=sigbus:2 "$LMTASKS_WRITER_FAULTS" --db "$D" --listen "unix:$T/dmgf.sock" \
		--master-key-file "$T/master.key" </dev/null >>"$DLOG" 2>&1 &
	FPID=$!
	lmt_on_exit "http_stop $FPID"
	wait_for 30 http_sock_ready "$T/dmgf.sock"
	assert_match "the first write: 200" '^Status: 200' "$(F answer "$T/dmgf.sock" "/tasks/cancel?uids=$next" POST "$MASTER")"
	out=$(F answer "$T/dmgf.sock" "/tasks?uids=$next" DELETE "$MASTER")
	assert_match "SIGBUS in the second: 503" '^Status: 503' "$out"
	assert_match "which says the file shrank under the write" 'shrank while it was written' "$out"
	http_alive "$FPID" && ok "the writer lives" || fail "the writer lives" "$(tail -3 "$DLOG")"
	run timeout 20 "$LMTASKS" --db "$D" get "$next"
	json_check "the faulted delete wrote nothing: task $next is there" "$LMT_STDOUT" 'd["status"] == "canceled"'
	run timeout 20 "$LMTASKS" --db "$D" enqueue movies x
	assert_eq "its write lock was released: lmtasks enqueue goes through" 0 "$LMT_RC"
	json_check "with the uid after the first write's record" "$LMT_STDOUT" "d['uid'] == $next + 2"
	assert_match "the next write: 200" '^Status: 200' "$(F answer "$T/dmgf.sock" "/tasks?uids=$next" DELETE "$MASTER")"
	http_stop "$FPID"
else
	skip "a fault inside a write" "no LMTASKS_WRITER_FAULTS (the test build)"
fi

section "stopping"
http_stop "$WPID"
assert_eq "SIGTERM: the writer exits" 1 "$(http_alive "$WPID" && echo 0 || echo 1)"
assert_eq "and removes its socket" no "$([ -e "$T/writer.sock" ] && echo yes || echo no)"
bad=$(grep -hE '\[(error|crit|alert|emerg)\]' "$T"/nginx-*/error.log | grep -v 'connect() to unix' | head -n 3)
assert_eq "nginx logged no error" "" "$bad"
check "the store passes lmtasks check" L check
summary
