#!/usr/bin/env bash
# What one FastCGI connection may take from the others, against lmtasks-fcgi on its socket
# (a raw FastCGI client, tests/lib/fcgi.py, and nginx with fastcgi_param LMTASKS_DB):
#
#   (a) the store named by requests: without --db and LMTASKS_DB in its environment, a
#       request naming a store that cannot be read is answered 503 and fixes nothing; the
#       first whose store can be read fixes it; a request naming another after that, 503
#   (b) memory given back: connections that each sent a 64 KiB record (which grew the
#       input buffer of 0.2.0 for good) and are kept open hold their normal buffers, not
#       the grown ones (the responder's anonymous memory, RssAnon)
#   (c) requests sent ahead on one connection are all answered, and a request of another
#       connection meanwhile too (which one comes first is tests/unit/test_loop's part: it
#       records the order inside the loop, where no timing can change it)
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries conns.sh

T=$HTTP_TMP
S=$T/store
F() { "$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" "$@"; }
http_demo_store conns.sh
NOWHERE=$T/no-store-here
status() { local out; out=$(F db "$@"); echo "${out% *}"; }

section "(a) a raw client: a wrong store first fixes nothing"
fcgi_start "$T/a.sock" - 1 || exit 99
assert_eq "a request naming no store there: 503" 503 "$(status "$T/a.sock" /tasks/0 "$NOWHERE")"
assert_eq "the same again at once: 503 (nothing was fixed)" 503 \
	"$(status "$T/a.sock" /tasks/0 "$NOWHERE")"
assert_eq "then a request naming the store: 200" 200 "$(status "$T/a.sock" /tasks/0 "$S")"
assert_eq "a request naming no store there after that: 503" 503 \
	"$(status "$T/a.sock" /tasks/0 "$NOWHERE")"
mkdir -p "$T/other" && "$LMTASKS" --db "$T/other" init >/dev/null 2>&1
assert_eq "one naming another store that can be read: 503 (one responder, one store)" 503 \
	"$(status "$T/a.sock" /tasks/0 "$T/other")"
assert_contains "a request without LMTASKS_DB: answered from the store fixed" '"uid":0' \
	"$(F answer "$T/a.sock" /tasks/0 GET 2>&1)"
assert_eq "the first store is still served" 200 "$(status "$T/a.sock" /tasks/0 "$S")"
grep -q "serving the store at $S, the first a request named" "$FCGI_LOG" &&
	ok "the log says which store was fixed" ||
	fail "the log says which store was fixed" "$(cat "$FCGI_LOG")"
http_stop "$FCGI_PID"

fcgi_start "$T/d.sock" - 1 || exit 99
first=$(F answer "$T/d.sock" /tasks/0 GET 2>&1)
case $first in
*"Status: 503"*)
	ok "a first request without LMTASKS_DB, no store at the default path: 503"
	assert_eq "then one naming the store: 200" 200 "$(status "$T/d.sock" /tasks/0 "$S")"
	;;
*) skip "a first request without LMTASKS_DB" "a store answers at the default path here" ;;
esac
http_stop "$FCGI_PID"

section "(a) through nginx, fastcgi_param LMTASKS_DB"
if [ -x "$HTTP_NGINX" ] && [ -f /etc/nginx/fastcgi_params ] && lmt_have curl; then
	fcgi_start "$T/n.sock" - 2 || exit 99
	http_nginx_start param "" "
		location /wrong/ {
			fastcgi_split_path_info ^(/wrong)(/.*)\$;
			include fastcgi_params;
			fastcgi_param PATH_INFO \$fastcgi_path_info;
			fastcgi_param LMTASKS_DB $NOWHERE;
			fastcgi_pass unix:$T/n.sock;
		}
		location / {
			include fastcgi_params;
			fastcgi_param LMTASKS_DB $S;
			fastcgi_pass unix:$T/n.sock;
		}" || exit 99
	http GET /wrong/tasks/0
	assert_eq "the first request, through a location naming no store: 503" 503 "$HTTP_STATUS"
	assert_contains "its message names that path" "$NOWHERE" "$HTTP_BODY"
	http GET /tasks/0
	assert_eq "the next, through the location naming the store: 200" 200 "$HTTP_STATUS"
	http GET /wrong/tasks/0
	assert_eq "the wrong location still: 503" 503 "$HTTP_STATUS"
	http GET /tasks
	assert_eq "the right one still: 200" 200 "$HTTP_STATUS"
	http_stop "$HTTP_NGINX_PID" QUIT
	http_stop "$FCGI_PID"
else
	lmt_missing "through nginx" nginx "no nginx, its fastcgi_params or curl"
fi

section "(b) the memory of connections that sent a 64 KiB record"
# RssAnon, not VmRSS: the store's pages mapped from data.mdb are no one's buffers.
anon() { awk '/^RssAnon/ { print $2 }' "/proc/$1/status"; }
N=300
fcgi_start "$T/b.sock" "$S" 1 || exit 99
B=$FCGI_PID
# Warm: the thread, its allocator arena and the store's first reads.
F pipeline "$T/b.sock" 50 /health big >/dev/null
F get "$T/b.sock" /tasks >/dev/null
a0=$(anon "$B")
"$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" fat "$T/b.sock" "$N" >"$T/fat.out" 2>&1 &
FAT=$!
lmt_bg_track $FAT
wait_for 60 grep -q "held\|no answer" "$T/fat.out"
assert_eq "$N connections, each after a 64 KiB record answered, held open" "held $N" \
	"$(cat "$T/fat.out")"
a1=$(anon "$B")
grown=$((a1 - a0))
# Kept buffers come to about 8 KiB a connection; one grown for the record held 128 KiB.
if [ -n "${LMTASKS_SANITIZED:-}" ]; then
	skip "memory given back ($grown KiB for $N connections)" "AddressSanitizer keeps freed memory in its quarantine"
elif [ "$grown" -lt $((N * 32)) ]; then
	ok "memory given back: $grown KiB more for $N held connections (under $((N * 32)) KiB, 32 KiB each)"
else
	fail "memory given back" "$grown KiB more for $N held connections (a0 $a0 KiB, a1 $a1 KiB)"
fi
kill "$FAT" 2>/dev/null
wait "$FAT" 2>/dev/null

section "(c) requests sent ahead on one connection"
out=$(F pipeline "$T/b.sock" 2000 "/tasks?limit=2" big)
assert_eq "2000 kept requests sent ahead after a 64 KiB record: every one answered" \
	"answered 2000" "${out% *}"
"$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" pipeline "$T/b.sock" 5000 /health >"$T/p.out" 2>&1 &
P=$!
lmt_bg_track $P
out=$(F get "$T/b.sock" /tasks/0)
assert_eq "a request on another connection meanwhile: 200" 200 "${out% *}"
wait "$P"
assert_eq "and the 5000 sent ahead: every one answered" "answered 5000" "$(cut -d' ' -f1,2 "$T/p.out")"
http_alive "$B" && ok "the responder lives" || fail "the responder lives"
http_stop "$B"

summary
