#!/usr/bin/env bash
# What lmtasks-fcgi(8) and the README promise of a running FastCGI responder, through a
# real nginx on loopback:
#
#   - an API key deleted, or past its expiry, is refused at the next request (403), with
#     no restart;
#   - --listen HOST:PORT on TCP, 127.0.0.1 and [::1] (when this machine has ::1);
#   - --threads takes 1 to 100 and refuses anything else (exit 2) before it serves;
#   - the reader slot left in lock.mdb by a responder killed with SIGKILL is cleared when
#     a program opens the store.
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries responder.sh
http_need_nginx
lmt_have mdb_stat || lmt_missing_all mdb_stat "no mdb_stat (apt-get install lmdb-utils)"
T=$HTTP_TMP
S=$T/store
START=$(now)
http_demo_store responder.sh

# nginx_to ADDR: one nginx in front of the responder at ADDR (unix:PATH or HOST:PORT).
nginx_to() {
	http_nginx_start "$1" "" "
		location / {
			include $PARAMS;
			fastcgi_pass $2;
		}" || { fail "nginx in front of $2 starts"; return 1; }
}

section "keys: refused at the next request by a running responder"
MASTER=master-key-of-responder.sh-$$-0123456789
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"
KL() { "$LMTASKS" --db "$S" key "$@"; }
DELKEY=$(KL create --indexes movies | json_get - 'd["key"]')
# An hour to its expiry; the responder with the clock seam then moves past it (no sleep).
exp=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
EXPKEY=$(KL create --expires-at "$exp" | json_get - 'd["key"]')
clock_use "$T/keys-clock"
LMTASKS_FCGI=$LMTASKS_FCGI_CLOCKED fcgi_start "$T/keys.sock" "$S" 2 \
	--master-key-file "$T/master.key" || fail "lmtasks-fcgi starts with a master key"
nginx_to keys "unix:$T/keys.sock"
bearer() { printf 'Authorization: Bearer %s' "$1"; }
http GET /indexes/movies/tasks -H "$(bearer "$DELKEY")"
assert_eq "a key works through the running responder" 200 "$HTTP_STATUS"
run "$LMTASKS" --db "$S" key delete "$DELKEY"
assert_eq "key delete" 0 "$LMT_RC"
http GET /indexes/movies/tasks -H "$(bearer "$DELKEY")"
assert_eq "the deleted key, at the next request, no restart: 403" 403 "$HTTP_STATUS"
json_check "... invalid_api_key" "$HTTP_BODY_FILE" 'd["code"] == "invalid_api_key"'
http GET /tasks -H "$(bearer "$EXPKEY")"
assert_eq "a key before its expiry ($exp) works" 200 "$HTTP_STATUS"
clock_move 1800
http GET /tasks -H "$(bearer "$EXPKEY")"
assert_eq "the same key half an hour later, same responder: 200" 200 "$HTTP_STATUS"
clock_move 1801
http GET /tasks -H "$(bearer "$EXPKEY")"
assert_eq "the same key once expired, same responder: 403" 403 "$HTTP_STATUS"
json_check "... invalid_api_key" "$HTTP_BODY_FILE" 'd["code"] == "invalid_api_key"'
http GET /tasks -H "Authorization: Bearer $MASTER"
assert_eq "the master key still works" 200 "$HTTP_STATUS"

section "--listen on TCP"
want=$(L get 0)
P4=$(http_random_port)
fcgi_start_tcp() {
	local addr=$1
	"$LMTASKS_FCGI" --db "$S" --listen "$addr" --threads 2 </dev/null >>"$T/tcp.log" 2>&1 &
	local pid=$! i
	lmt_on_exit "http_stop $pid"
	TCP_PID=$pid
	for ((i = 0; i < 600; i++)); do
		grep -q "serving" "$T/tcp.log" 2>/dev/null && ss -Htln | grep -qF "$addr" && return 0
		http_alive "$pid" || return 1
		sleep 0.05
	done
	return 1
}
if fcgi_start_tcp "127.0.0.1:$P4"; then
	ok "lmtasks-fcgi --listen 127.0.0.1:$P4 listens"
	nginx_to tcp4 "127.0.0.1:$P4"
	http GET /tasks/0
	assert_eq "through nginx to 127.0.0.1:$P4: GET /tasks/0 200" 200 "$HTTP_STATUS"
	assert_eq "... the task's bytes" "$want" "$HTTP_BODY"
else
	fail "lmtasks-fcgi --listen 127.0.0.1:$P4 listens" "$(cat "$T/tcp.log")"
fi
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
	P6=$(http_random_port)
	: >"$T/tcp.log"
	if fcgi_start_tcp "[::1]:$P6"; then
		ok "lmtasks-fcgi --listen [::1]:$P6 listens"
		nginx_to tcp6 "[::1]:$P6"
		http GET /tasks/0
		assert_eq "through nginx to [::1]:$P6: GET /tasks/0 200" 200 "$HTTP_STATUS"
		assert_eq "... the task's bytes" "$want" "$HTTP_BODY"
	else
		fail "lmtasks-fcgi --listen [::1]:$P6 listens" "$(cat "$T/tcp.log")"
	fi
else
	skip "--listen [::1]:PORT" "no ::1 on this machine's loopback"
fi
run "$LMTASKS_FCGI" --db "$S" --listen 127.0.0.1
assert_ne "--listen 127.0.0.1 without a port: refused" 0 "$LMT_RC"
assert_contains "... saying HOST:PORT" "HOST:PORT" "$LMT_STDERR"

section "--threads: 1 to 100"
for n in 0 101 -1 abc ""; do
	assert_exit -m "--threads '$n': refused (exit 2)" 2 "$LMTASKS_FCGI" --db "$S" \
		--listen "unix:$T/threads.sock" --threads "$n"
	assert_contains "... saying 1 to 100" "from 1 to 100" "$LMT_STDERR"
done
[ ! -e "$T/threads.sock" ] && ok "a refused --threads opens no socket" ||
	fail "a refused --threads opens no socket"
for n in 1 100; do
	fcgi_start "$T/t$n.sock" "$S" "$n" || fail "--threads $n: lmtasks-fcgi starts"
	nginx_to "threads$n" "unix:$T/t$n.sock"
	http GET /tasks/0
	assert_eq "--threads $n serves: 200" 200 "$HTTP_STATUS"
	assert_contains "... and says $n threads" "with $n threads" "$(cat "$FCGI_LOG")"
done
# Without --threads: half the CPUs, at least one (the web server needs the rest).
half=$(( $(getconf _NPROCESSORS_ONLN) / 2 ))
[ "$half" -ge 1 ] || half=1
"$LMTASKS_FCGI" --db "$S" --listen "unix:$T/tdefault.sock" </dev/null >"$T/tdefault.log" 2>&1 &
tpid=$!
for _ in $(seq 600); do grep -q "threads" "$T/tdefault.log" && break; sleep 0.05; done
http_stop "$tpid"
assert_contains "no --threads: half of $(getconf _NPROCESSORS_ONLN) CPUs, at least 1" \
	"with $half threads," "$(cat "$T/tdefault.log")"

section "readers left by a killed responder are cleared"
R=$T/readers
"$LMTASKS" --db "$R" init 2>/dev/null && "$LMTASKS" --db "$R" enqueue movies documentAddition >/dev/null
# Two responders: the second keeps the store open, so that LMDB does not reset the reader
# table for the next process that opens it (it does when nobody else has it open).
fcgi_start "$T/r1.sock" "$R" 1 || fail "responder 1 starts"
R1=$FCGI_PID
fcgi_start "$T/r2.sock" "$R" 1 || fail "responder 2 starts"
nginx_to readers1 "unix:$T/r1.sock"
http GET /tasks/0
assert_eq "responder 1 answers (its thread now holds a reader slot)" 200 "$HTTP_STATUS"
assert_match "mdb_stat -r lists responder 1 ($R1) as a reader" "^ +$R1 " "$(mdb_stat -r "$R")"
kill -KILL "$R1"
http_wait_gone 5 "$R1"
assert_match "after SIGKILL its slot is still there" "^ +$R1 " "$(mdb_stat -r "$R")"
run "$LMTASKS" --db "$R" list --limit 1
assert_eq "lmtasks list opens the store" 0 "$LMT_RC"
slots=$(mdb_stat -r "$R")
if printf '%s\n' "$slots" | grep -Eq "^ +$R1 "; then
	fail "opening the store cleared the dead responder's slot" "$slots"
else
	ok "opening the store cleared the dead responder's slot"
fi

echo "# $(elapsed "$START") s"
summary
