#!/usr/bin/env bash
# lmtasks-fcgi behind a real nginx (SPEC §2, §4), end to end: nginx and the responder are
# started here from their own configs in a temporary directory, on 127.0.0.1 and a free
# random port (never 80), and stopped by PID at the end.
#
#   (a) mounted at / with the stock fastcgi_params
#   (b) under /api/ with fastcgi_split_path_info and PATH_INFO
#   (c) an upstream keepalive pool with fastcgi_keep_conn on, more clients than threads
#   (d) reads through nginx while lmtasks writes (and grows the map)
#   (e) a store that appears after the responder started: 503, then 200 without a restart
#   (f) SIGTERM: the responder exits at once, nothing is left listening
#   and the other ways to start it: spawn-fcgi (socket on stdin), systemd socket
#   activation (LISTEN_FDS).
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.
# Every load loop is bounded in time and in count; the suite takes well under a minute.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/nginx.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries nginx.sh
http_need_nginx

T=$HTTP_TMP
S=$T/store
START=$(now)
SOCKS=()	# every responder socket, for the final "nothing listens" check
PORTS=()
NGINX_PIDS=()

http_demo_store nginx.sh


# reply NAME CODE [BODY]: the last http answer has status CODE, Content-Type
# application/json, a Content-Length equal to the body's size, and the body BODY (when
# given; else any JSON).  One line.
# (Headers and the body's size read by the shell: no process for a check.)
reply() {
	local why=() len
	[ "$HTTP_STATUS" = "$2" ] || why+=("status: expected $2, got $HTTP_STATUS")
	http_headers_load
	[ "${HTTP_HDR[content-type]-}" = application/json ] ||
		why+=("Content-Type: '${HTTP_HDR[content-type]-}'")
	http_file_bytes "$HTTP_BODY_FILE"
	len=$REPLY
	[ "${HTTP_HDR[content-length]-}" = "$len" ] ||
		why+=("Content-Length: '${HTTP_HDR[content-length]-}' for a body of $len bytes")
	if [ $# -ge 3 ]; then
		[ "$HTTP_BODY" == "$3" ] || why+=("body expected: ${3:0:300}" "body got:      ${HTTP_BODY:0:300}")
	elif ! http_json_ok "$HTTP_BODY_FILE"; then
		why+=("body is not JSON: ${HTTP_BODY:0:300}")
	fi
	if [ ${#why[@]} -eq 0 ]; then ok "$1"; else fail "$1" "${why[@]}"; fi
}

# cli_body CMD...: what `lmtasks CMD...` prints, its trailing newline dropped.
cli_body() { L "$@" 2>/dev/null | head -c -1; }

# no_errors NAME NGINX_DIR [FCGI_LOG]: nginx logged no error (and the responder no failure).
no_errors() {
	local bad
	bad=$(grep -hE '\[(error|crit|alert|emerg)\]' "$2/error.log" 2>/dev/null | head -n 5)
	if [ -n "${3:-}" ]; then
		bad+=$(grep -v -e ': serving ' -e 'can be read again' -e 'no readable store at' "$3" | head -n 5)
	fi
	if [ -z "$bad" ]; then ok "$1"; else fail "$1" "$bad"; fi
}

# start_nginx NAME HTTP_CONF SERVER_CONF: http_nginx_start, or the suite cannot go on.
start_nginx() {
	http_nginx_start "$@" || { fail "nginx $1 starts"; summary; exit 1; }
	PORTS+=("$HTTP_PORT")
	NGINX_PIDS+=("$HTTP_NGINX_PID")
}

# start_fcgi SOCK STORE THREADS: fcgi_start, or the suite cannot go on.
start_fcgi() {
	SOCKS+=("$1")
	fcgi_start "$@" || { fail "lmtasks-fcgi starts on $1"; summary; exit 1; }
}

section "(a) mounted at / with the stock fastcgi_params"
start_fcgi "$T/a.sock" "$S" 2
A_PID=$FCGI_PID
A_LOG=$FCGI_LOG
start_nginx plain "" "
		location / {
			include $PARAMS;
			fastcgi_pass unix:$T/a.sock;
		}"
A_BASE=$HTTP_BASE
A_DIR=$HTTP_NGINX_DIR
echo "# nginx on $HTTP_BASE (pid $HTTP_NGINX_PID), lmtasks-fcgi pid $A_PID"
http GET /tasks/1
reply "GET /tasks/1: 200, the bytes of lmtasks get 1" 200 "$(cli_body get 1)"
http GET /tasks
reply "GET /tasks: the bytes of lmtasks list" 200 "$(cli_body list)"
http GET '/tasks?limit=2&from=3'
reply "GET /tasks?limit=2&from=3: the bytes of lmtasks list --limit 2 --from 3" 200 \
	"$(cli_body list --limit 2 --from 3)"
http GET '/indexes/movies/tasks?reverse=true'
json_assert "GET /indexes/movies/tasks?reverse=true: [0,2]" "$HTTP_BODY_FILE" \
	'[t["uid"] for t in d["results"]] == [0,2] and d["total"] == 2'
http GET /indexes/books/tasks/1
reply "GET /indexes/books/tasks/1" 200 "$(cli_body get 1)"
http GET /health
reply "GET /health" 200 '{"status":"available"}'
http GET /tasks/%31/
reply "GET /tasks/%31/ (escaped, trailing slash) = task 1" 200 "$(cli_body get 1)"
http GET /tasks/abc
reply "GET /tasks/abc: 400 invalid_task_uids" 400 \
	"$(errbody invalid_task_uids 'Task uid `abc` is invalid. It should only contain numeric characters.')"
http GET /tasks/9
reply "GET /tasks/9: 404 task_not_found" 404 "$(errbody task_not_found 'Task `9` not found.')"
http GET /indexes/nope/tasks
reply "GET /indexes/nope/tasks: 404 index_not_found" 404 "$(errbody index_not_found 'Index `nope` not found.')"
http GET '/tasks?colour=red'
json_assert "GET /tasks?colour=red: 400 bad_request naming it" "$HTTP_BODY_FILE" \
	'd["code"] == "bad_request" and d["message"].startswith("Unknown parameter `colour`")'
http GET /nope
reply "GET /nope: 404 JSON" 404 "$(errbody not_found 'Route `/nope` not found.')"
for m in POST DELETE PUT; do
	http "$m" /tasks/1
	if [ "$HTTP_STATUS" = 405 ] && [ "$(http_header Allow)" = "GET, HEAD" ]; then
		reply "$m /tasks/1: 405 JSON with Allow: GET, HEAD" 405
	else
		fail "$m /tasks/1: 405 JSON with Allow: GET, HEAD" "status $HTTP_STATUS, Allow: '$(http_header Allow)'"
	fi
done
http GET /tasks/1
get_len=$(http_header Content-Length)
http HEAD /tasks/1
if [ "$HTTP_STATUS" = 200 ] && [ "$(http_header Content-Length)" = "$get_len" ] &&
    [ "$(http_header Content-Type)" = application/json ]; then
	ok "HEAD /tasks/1: 200, the Content-Type and Content-Length of GET"
else
	fail "HEAD /tasks/1: 200, the Content-Type and Content-Length of GET" \
		"status $HTTP_STATUS" "$(cat "$HTTP_HEADERS")"
fi

section "(b) under /api/ with fastcgi_split_path_info"
start_nginx prefix "" "
		location /api/ {
			fastcgi_split_path_info ^(/api)(/.*)\$;
			include $PARAMS;
			fastcgi_param PATH_INFO \$fastcgi_path_info;
			fastcgi_pass unix:$T/a.sock;
		}"
B_DIR=$HTTP_NGINX_DIR
http GET /api/tasks/1
reply "GET /api/tasks/1 = task 1" 200 "$(cli_body get 1)"
http GET '/api/tasks?limit=1&from=2'
reply "GET /api/tasks?limit=1&from=2" 200 "$(cli_body list --limit 1 --from 2)"
http GET /api/tasks/%30
reply "GET /api/tasks/%30 = task 0" 200 "$(cli_body get 0)"
http GET /api/indexes/movies/tasks/0/
reply "GET /api/indexes/movies/tasks/0/" 200 "$(cli_body get 0)"
http GET /api/health
reply "GET /api/health" 200 '{"status":"available"}'
http GET /api/nope
reply "GET /api/nope: 404 naming /nope" 404 "$(errbody not_found 'Route `/nope` not found.')"
http GET /api/tasks/abc
reply "GET /api/tasks/abc: 400" 400 \
	"$(errbody invalid_task_uids 'Task uid `abc` is invalid. It should only contain numeric characters.')"
http POST /api/tasks
reply "POST /api/tasks: 405" 405
no_errors "(a), (b): no errors in nginx's error logs or the responder's" "$A_DIR" "$A_LOG"
no_errors "(b): no errors in nginx's error log" "$B_DIR"

section "the shipped configs: nginx/lmtasks.conf, nginx/lmtasks-location.conf, the systemd units"
NG=$top_srcdir/nginx
if [ -f "$NG/lmtasks.conf" ]; then
	start_nginx shipped "$(sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/a.sock|" \
		-e 's|127\.0\.0\.1:7700|127.0.0.1:@PORT@|' "$NG/lmtasks.conf")" -
	http GET /tasks/1
	reply "nginx/lmtasks.conf (socket and port moved): GET /tasks/1" 200 "$(cli_body get 1)"
	http GET '/tasks?limit=1&from=2'
	reply "nginx/lmtasks.conf: GET /tasks?limit=1&from=2" 200 "$(cli_body list --limit 1 --from 2)"
	no_errors "nginx/lmtasks.conf: no errors in nginx's error log" "$HTTP_NGINX_DIR"
else
	fail "nginx/lmtasks.conf exists"
fi
if [ -f "$NG/lmtasks-location.conf" ]; then
	start_nginx location "" "$(sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/a.sock|" "$NG/lmtasks-location.conf")"
	http GET /tasks/0
	reply "nginx/lmtasks-location.conf in a server: GET /tasks/0" 200 "$(cli_body get 0)"
	variant=$(sed -n '/^#location \/api\//,/^#}/s/^#//p' "$NG/lmtasks-location.conf")
	start_nginx location-prefix "" "$(printf '%s\n' "$variant" | sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/a.sock|")"
	http GET /api/tasks/0
	reply "its prefix variant (uncommented): GET /api/tasks/0" 200 "$(cli_body get 0)"
	http GET /api/nope
	reply "its prefix variant: GET /api/nope names /nope" 404 "$(errbody not_found 'Route `/nope` not found.')"
else
	fail "nginx/lmtasks-location.conf exists"
fi
SD=$top_srcdir/systemd
if command -v systemd-analyze >/dev/null && [ -f "$SD/lmtasks-fcgi.service.in" ]; then
	mkdir -p "$T/units"
	cp "$SD/lmtasks-fcgi.socket" "$T/units/"
	# The binary as built here; the rest as shipped.
	sed "s|^ExecStart=@sbindir@/lmtasks-fcgi|ExecStart=$LMTASKS_FCGI|" "$SD/lmtasks-fcgi.service.in" \
		>"$T/units/lmtasks-fcgi.service"
	check "systemd-analyze verify lmtasks-fcgi.socket lmtasks-fcgi.service" \
		systemd-analyze verify "$T/units/lmtasks-fcgi.socket" "$T/units/lmtasks-fcgi.service"
else
	lmt_missing "systemd-analyze verify the units" systemd-analyze "no systemd-analyze"
fi

section "the store named by fastcgi_param LMTASKS_DB (no --db)"
start_fcgi "$T/p.sock" - 2
P_PID=$FCGI_PID
P_LOG=$FCGI_LOG
start_nginx param "" "
		location / {
			include $PARAMS;
			fastcgi_param LMTASKS_DB $S;
			fastcgi_pass unix:$T/p.sock;
		}
		location /other/ {
			fastcgi_split_path_info ^(/other)(/.*)\$;
			include $PARAMS;
			fastcgi_param PATH_INFO \$fastcgi_path_info;
			fastcgi_param LMTASKS_DB $T/other;
			fastcgi_pass unix:$T/p.sock;
		}"
http GET /tasks/0
reply "fastcgi_param LMTASKS_DB: GET /tasks/0 from that store" 200 "$(cli_body get 0)"
http GET /other/tasks/0
if [ "$HTTP_STATUS" = 503 ]; then
	reply "a request naming another store: 503 JSON (one responder, one store)" 503
else
	fail "a request naming another store: 503 JSON (one responder, one store)" "$HTTP_STATUS $HTTP_BODY"
fi
http GET /tasks
reply "and the first store is still served" 200 "$(cli_body list)"

section "a master key: the Authorization header reaches the responder through fastcgi_params"
printf '%s\n' "nginx-suite-master-key-0123456789abcdef" >"$T/master.key"
chmod 600 "$T/master.key"
start_fcgi "$T/k.sock" "$S" 2 --master-key-file "$T/master.key"
K_PID=$FCGI_PID
start_nginx key "" "
		location / {
			include $PARAMS;
			fastcgi_pass unix:$T/k.sock;
		}"
http GET /tasks/0
reply "no Authorization: 401 missing_authorization_header" 401 \
	"$(errbody missing_authorization_header 'The Authorization header is missing. It must use the bearer authorization method.' auth)"
http GET /tasks/0 -H "Authorization: Bearer wrong-key"
reply "a wrong key: 403 invalid_api_key" 403 "$(errbody invalid_api_key 'The provided API key is invalid.' auth)"
http GET /tasks/0 -H "Authorization: Bearer nginx-suite-master-key-0123456789abcdef"
reply "the master key: 200, the task" 200 "$(cli_body get 0)"

section "(c) keepalive upstream, fastcgi_keep_conn on, 2 threads, 16 and 32 clients"
start_fcgi "$T/c.sock" "$S" 2
C_PID=$FCGI_PID
C_LOG=$FCGI_LOG
start_nginx keepalive "
	upstream lmtasks {
		server unix:$T/c.sock;
		keepalive 8;
	}" "
		location / {
			include $PARAMS;
			fastcgi_pass lmtasks;
			fastcgi_keep_conn on;
		}"
C_BASE=$HTTP_BASE
C_DIR=$HTTP_NGINX_DIR
t0=$(now)
run http_load "$C_BASE" 20 16 50 /tasks /tasks/{uid:6} '/tasks?limit=2&reverse=true' \
	/indexes/movies/tasks /health /indexes/books/tasks/{uid:5}
if [ "$LMT_RC" -eq 0 ] && [[ $LMT_STDOUT == "requests=800 bad=0 unfinished=0"* ]]; then
	ok "16 clients x 50 requests, keep-alive: 800 answers, all 200/404 with complete JSON ($(elapsed "$t0") s)"
else
	fail "16 clients x 50 requests, keep-alive: 800 answers, all 200/404 with complete JSON" \
		"$LMT_STDOUT" "$LMT_STDERR"
fi
# nginx now holds idle connections in its pool (at most 8); each must still be served at
# once by the 2 threads, whichever of them nginx picks.
kept=$(ss -Hx state established 2>/dev/null | grep -cF "$T/c.sock")
if [ "$kept" -ge 2 ] && [ "$kept" -le 8 ]; then
	ok "after 16 clients: nginx keeps $kept idle connections to the responder (2..8)"
else
	fail "after 16 clients: nginx keeps 2..8 idle connections to the responder" "$kept open"
fi
t0=$(now)
slow=""
for ((i = 0; i < 20; i++)); do
	HTTP_BASE=$C_BASE http GET "/tasks/$((i % 5))"
	[ "$HTTP_STATUS" = 200 ] || slow+=" $i:$HTTP_STATUS"
done
took=$(elapsed "$t0")
# A stalled kept connection shows as a request that curl gives up on (--max-time 10, a
# thousand times what one takes), so "all 200" is the check; the time is only printed.
if [ -z "$slow" ]; then
	ok "then 20 requests one after another over the kept connections: all 200, no stall ($took s)"
else
	fail "then 20 requests one after another over the kept connections: all 200, no stall" \
		"took $took s; not 200:$slow"
fi
if command -v wrk >/dev/null; then
	run timeout 60 wrk -t2 -c32 -d3s --timeout 30s "$C_BASE/tasks?limit=5"
	reqs=$(printf '%s\n' "$LMT_STDOUT" | sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p')
	if [ "$LMT_RC" -eq 0 ] && [ "${reqs:-0}" -gt 0 ] &&
	    ! printf '%s\n' "$LMT_STDOUT" | grep -qE 'Non-2xx|Socket errors'; then
		ok "wrk -t2 -c32 -d3s: $reqs requests, no socket errors, no non-2xx"
	else
		fail "wrk -t2 -c32 -d3s: no socket errors, no non-2xx" "$LMT_STDOUT" "$LMT_STDERR"
	fi
else
	lmt_missing "wrk -t2 -c32 -d3s" wrk "wrk is not installed"
fi
no_errors "(c): no errors in nginx's error log or the responder's" "$C_DIR" "$C_LOG"

section "(d) reads through nginx during writes that also grow the map"
D=$T/dstore
# Both indexes exist before the load starts: a reader that comes before the writer's
# first books task would rightly get index_not_found.
LMTASKS_MAPSIZE=131072 "$LMTASKS" --db "$D" init >/dev/null 2>&1 &&
	"$LMTASKS" --db "$D" enqueue movies indexCreation >/dev/null &&
	"$LMTASKS" --db "$D" enqueue books indexCreation >/dev/null ||
	{ fail "(d): a store with a small map"; }
map0=$("$LMTASKS" --db "$D" stats 2>/dev/null | sed -n 's/.*"mapSize":\([0-9]*\).*/\1/p')
start_fcgi "$T/d.sock" "$D" 2
D_PID=$FCGI_PID
D_LOG=$FCGI_LOG
start_nginx writes "
	upstream lmtasks {
		server unix:$T/d.sock;
		keepalive 8;
	}" "
		location / {
			include $PARAMS;
			fastcgi_pass lmtasks;
			fastcgi_keep_conn on;
		}"
D_BASE=$HTTP_BASE
D_DIR=$HTTP_NGINX_DIR
BLOB=$(printf 'x%.0s' {1..2000})
# The writer: at most 100 rounds or 12 s, and no more than 30 once the reads are over
# (the map has grown twice by then); each round enqueues two tasks (one batch: one
# process), claims the oldest and finishes it (succeed or fail), and now and then cancels
# one.  (Uids read by the shell from a file: one process a command.)
writer() {
	local i uid end=$((SECONDS + 12))
	for ((i = 0; i < 100 && SECONDS < end; i++)); do
		((i >= 30)) && [ -e "$T/reads.done" ] && break
		"$LMTASKS" --db "$D" enqueue --batch - >"$T/writer.last" <<-EOF || return 1
			{"indexUid":"movies","type":"documentAddition","details":{"receivedDocuments":$i,"blob":"$BLOB"}}
			{"indexUid":"books","type":"documentAddition"}
		EOF
		[[ $(<"$T/writer.last") =~ \"lastUid\":([0-9]+) ]] || return 1
		uid=${BASH_REMATCH[1]}
		if ((i % 4 == 3)); then
			"$LMTASKS" --db "$D" cancel "$uid" >/dev/null || return 1
		fi
		"$LMTASKS" --db "$D" claim >"$T/writer.last" || return 1
		[[ $(<"$T/writer.last") =~ ^\{\"uid\":([0-9]+), ]] || return 1
		uid=${BASH_REMATCH[1]}
		if ((i % 3 == 0)); then
			"$LMTASKS" --db "$D" fail "$uid" --code internal --message "round $i" >/dev/null || return 1
		else
			"$LMTASKS" --db "$D" succeed "$uid" --details "{\"indexedDocuments\":$i}" >/dev/null || return 1
		fi
	done
	echo "$i rounds"
}
writer >"$T/writer.out" 2>&1 &
W_PID=$!
lmt_on_exit "http_stop $W_PID"
t0=$(now)
run http_load "$D_BASE" 25 8 150 '/tasks?limit=50' '/tasks/{uid:300}' '/indexes/movies/tasks?limit=50' \
	'/tasks?limit=50&reverse=true' '/indexes/books/tasks/{uid:300}' '/tasks?limit=1'
load_rc=$LMT_RC load_out=$LMT_STDOUT
: >"$T/reads.done"
writer_busy=no
http_alive "$W_PID" && writer_busy=yes
wait "$W_PID"
w_rc=$?
if [ "$load_rc" -eq 0 ] && [[ $load_out == "requests=1200 bad=0"* ]]; then
	ok "8 clients x 150 GETs of lists and tasks during the writes: all 200/404, complete JSON ($(elapsed "$t0") s)"
else
	fail "8 clients x 150 GETs of lists and tasks during the writes: all 200/404, complete JSON" \
		"$load_out" "$LMT_STDERR"
fi
if [ "$w_rc" -eq 0 ]; then
	ok "the writer ran alongside ($(cat "$T/writer.out"); still writing when the reads ended: $writer_busy)"
else
	fail "the writer ran alongside" "exit $w_rc" "$(cat "$T/writer.out")"
fi
map1=$("$LMTASKS" --db "$D" stats 2>/dev/null | sed -n 's/.*"mapSize":\([0-9]*\).*/\1/p')
assert_lt "the map grew while the responder read ($map0 -> $map1 bytes)" "${map0:-0}" "${map1:-0}"
http GET '/tasks?limit=1000'
want=$("$LMTASKS" --db "$D" list --limit 1000 2>/dev/null | head -c -1)
reply "after the writes: GET /tasks?limit=1000 = lmtasks list --limit 1000 (no restart)" 200 "$want"
last=$(json_get "$HTTP_BODY_FILE" 'd["results"][0]["uid"]' 2>/dev/null)
http GET "/tasks/$last"
reply "after the writes: GET /tasks/$last (the newest) = lmtasks get" 200 \
	"$("$LMTASKS" --db "$D" get "$last" 2>/dev/null | head -c -1)"
check "lmtasks check: the store is consistent after the writes" "$LMTASKS" --db "$D" check
no_errors "(d): no errors in nginx's error log or the responder's" "$D_DIR" "$D_LOG"

section "(e) a store that does not exist yet"
E=$T/late
start_fcgi "$T/e.sock" "$E" 2
E_PID=$FCGI_PID
start_nginx late "" "
		location / {
			include $PARAMS;
			fastcgi_pass unix:$T/e.sock;
		}"
http GET /health
if [ "$HTTP_STATUS" = 503 ]; then reply "no store: GET /health: 503 JSON" 503; else
	fail "no store: GET /health: 503 JSON" "status $HTTP_STATUS: $HTTP_BODY"; fi
json_assert "no store: the 503 body is an error object" "$HTTP_BODY_FILE" \
	'keys(d) == ["message","code","type","link"] and d["type"] == "internal"'
http GET /tasks
if [ "$HTTP_STATUS" = 503 ]; then reply "no store: GET /tasks: 503 JSON" 503; else
	fail "no store: GET /tasks: 503 JSON" "status $HTTP_STATUS: $HTTP_BODY"; fi
"$LMTASKS" --db "$E" init >/dev/null 2>&1 && "$LMTASKS" --db "$E" enqueue movies indexCreation >/dev/null
# The responder looks for a missing store again every 0.2 s; up to 30 s (a hang guard,
# the loop ends at the first 200).
t0=$(now)
got=""
for ((i = 0; i < 600; i++)); do
	http GET /tasks/0
	[ "$HTTP_STATUS" = 200 ] && { got=$(elapsed "$t0"); break; }
	lmt_sleep 0.05
done
if [ -n "$got" ]; then
	reply "after init + enqueue: GET /tasks/0 is 200 (after ${got} s), no restart" 200 \
		"$("$LMTASKS" --db "$E" get 0 2>/dev/null | head -c -1)"
else
	fail "after init + enqueue: GET /tasks/0 is 200, no restart" \
		"after ${got:-$(elapsed "$t0")} s: $HTTP_STATUS $HTTP_BODY"
fi
http GET /health
reply "then GET /health: 200" 200 '{"status":"available"}'
assert_eq "the same responder answered (pid $E_PID still running)" yes "$(http_alive "$E_PID" && echo yes)"

section "spawn-fcgi and systemd socket activation (the socket inherited)"
if command -v spawn-fcgi >/dev/null; then
	# -n: no fork; spawn-fcgi opens the socket, puts it on standard input and execs the
	# responder, which keeps the PID.
	spawn-fcgi -n -s "$T/spawn.sock" -M 0660 -- "$LMTASKS_FCGI" --db "$S" --threads 2 \
		>"$T/spawn.log" 2>&1 &
	SP_PID=$!
	SOCKS+=("$T/spawn.sock")
	lmt_on_exit "http_stop $SP_PID"
	for ((i = 0; i < 600; i++)); do http_sock_ready "$T/spawn.sock" && break; lmt_sleep 0.05; done
	start_nginx spawn "" "
		location / {
			include $PARAMS;
			fastcgi_pass unix:$T/spawn.sock;
		}"
	http GET /tasks
	reply "spawn-fcgi -n -s SOCK -M 0660 -- lmtasks-fcgi: GET /tasks through nginx" 200 "$(cli_body list)"
	assert_eq "spawn-fcgi: the socket has mode 660" 660 "$(stat -c %a "$T/spawn.sock" 2>/dev/null)"
	assert_eq "spawn-fcgi: the PID is the responder's" "$LMTASKS_FCGI" "$(readlink "/proc/$SP_PID/exe")"
	kill -TERM "$SP_PID" 2>/dev/null
	if http_wait_gone 30 "$SP_PID"; then ok "spawn-fcgi: SIGTERM ends it"; else
		fail "spawn-fcgi: SIGTERM ends it (30 s)"; fi
	rm -f "$T/spawn.sock"	# spawn-fcgi made it; whoever made it removes it
else
	lmt_missing "spawn-fcgi" spawn-fcgi "not installed"
fi
if command -v systemd-socket-activate >/dev/null; then
	# As systemd does: the listening socket as fd 3, LISTEN_FDS=1, LISTEN_PID; the program
	# is exec'd in place on the first connection.
	systemd-socket-activate -l "$T/sd.sock" "$LMTASKS_FCGI" --db "$S" --threads 2 \
		>"$T/sd.log" 2>&1 &
	SD_PID=$!
	SOCKS+=("$T/sd.sock")
	lmt_on_exit "http_stop $SD_PID"
	for ((i = 0; i < 600; i++)); do [ -S "$T/sd.sock" ] && break; lmt_sleep 0.05; done
	start_nginx systemd "" "
		location / {
			include $PARAMS;
			fastcgi_pass unix:$T/sd.sock;
		}"
	http GET /tasks/0
	reply "systemd socket activation (LISTEN_FDS): GET /tasks/0 through nginx" 200 "$(cli_body get 0)"
	kill -TERM "$SD_PID" 2>/dev/null
	if http_wait_gone 30 "$SD_PID"; then ok "socket activation: SIGTERM ends it"; else
		fail "socket activation: SIGTERM ends it (30 s)" "$(cat "$T/sd.log")"; fi
	rm -f "$T/sd.sock"
else
	lmt_missing "systemd socket activation" systemd-socket-activate "systemd-socket-activate is not installed"
fi

section "(f) SIGTERM"
# The keepalive responder (c) has nginx's idle connections open: they must not hold it.
# Each exit is awaited 30 s, a hang guard: it takes milliseconds, and a responder held by
# nginx's idle connections would wait for nginx to close them (60 s of keepalive_timeout).
kept=$(ss -Hx state established 2>/dev/null | grep -cF "$T/c.sock")
t0=$(now)
kill -TERM "$C_PID"
if http_wait_gone 30 "$C_PID"; then
	ok "SIGTERM: the keepalive responder ($kept kept connections) exits ($(elapsed "$t0") s)"
else
	fail "SIGTERM: the keepalive responder ($kept kept connections) exits" \
		"pid $C_PID still runs after 30 s"
fi
wait "$C_PID" 2>/dev/null
assert_eq "SIGTERM: it exits with status 0" 0 "$?"
[ ! -e "$T/c.sock" ] && ok "SIGTERM: its socket file is removed" ||
	fail "SIGTERM: its socket file is removed" "$(ls -la "$T/c.sock")"
HTTP_BASE=$C_BASE http GET /tasks/1
assert_eq "after it: nginx answers 502 (nobody listens)" 502 "$HTTP_STATUS"

# SIGTERM during a load: the requests in flight are finished, then it exits.  8 clients
# (at most 200 requests each, 4 s) through nginx (a), one connection per request; TERM
# once the first answers are in.
HTTP_BASE=$A_BASE
"$LMT_PYTHON" - "$A_BASE" "$T/inflight.started" >"$T/inflight.out" 2>&1 <<'EOF' &
import collections, sys, threading, time, urllib.request, urllib.error
codes = collections.Counter()
lock = threading.Lock()
end = time.monotonic() + 4
def get():
    for _ in range(200):
        if time.monotonic() > end:
            break
        try:
            with urllib.request.urlopen(sys.argv[1] + "/tasks?limit=50", timeout=10) as r:
                body = r.read()
                n = int(r.headers["Content-Length"])
                ok = len(body) == n and body.startswith(b'{"results":') and body.endswith(b"}")
                c = r.status if ok else -1
        except urllib.error.HTTPError as e:
            c = e.code
        except Exception:
            c = 0
        with lock:
            codes[c] += 1
            if codes[c] == 1:
                with open(sys.argv[2], "a") as f:
                    f.write("%d\n" % c)
ts = [threading.Thread(target=get) for _ in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(" ".join("%s:%d" % kv for kv in sorted(codes.items())))
EOF
LOAD_PID=$!
lmt_on_exit "http_stop $LOAD_PID"
wait_for 30 test -s "$T/inflight.started"
t0=$(now)
kill -TERM "$A_PID"
if http_wait_gone 30 "$A_PID"; then
	ok "SIGTERM under load: exits ($(elapsed "$t0") s)"
else
	fail "SIGTERM under load: exits (30 s)"
fi
http_wait_gone 60 "$LOAD_PID"
codes=$(cat "$T/inflight.out")
# Every answer is a complete 200 list, or nginx's 502 once nobody listens; never a
# truncated body (-1), another status, or no answer at all (0).
if [[ $codes =~ ^200:[0-9]+( 502:[0-9]+)?$ ]]; then
	ok "SIGTERM under load: every answer a complete 200, or 502 after the exit ($codes)"
else
	fail "SIGTERM under load: every answer a complete 200, or 502 after the exit" "status:count $codes"
fi

for p in "$D_PID" "$E_PID" "$P_PID" "$K_PID"; do
	kill -TERM "$p"
	http_wait_gone 30 "$p" || fail "SIGTERM: pid $p exits (30 s)"
done
left=""
for s in "${SOCKS[@]}"; do
	ss -Hxl 2>/dev/null | grep -qF "$s" && left+=" $s"
	[ -e "$s" ] && left+=" (file $s)"
done
assert_eq "nothing listens on any responder socket any more" "" "$left"
for p in "${NGINX_PIDS[@]}"; do
	http_stop "$p" QUIT
done
left=""
for p in "${PORTS[@]}"; do
	http_port_free "$p" || left+=" 127.0.0.1:$p"
done
for p in "${NGINX_PIDS[@]}"; do
	http_alive "$p" && left+=" nginx $p"
done
assert_eq "every nginx stopped, nothing listens on its ports" "" "$left"

echo "# nginx.sh took $(elapsed "$START") s"
summary
