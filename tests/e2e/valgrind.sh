#!/usr/bin/env bash
# Memcheck over the real binaries: a dozen CLI commands, a dozen CGI requests, and
# lmtasks-writer serving FastCGI (writes, hostile records, an aborted request) under
#
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
#            --show-leak-kinds=definite -q
#
# Each run must end with the program's own exit status (and, for CGI, its status line):
# 99 means memcheck found an invalid read or write, a use of uninitialised memory, or a
# definite leak.  Skipped (exit 77) without valgrind, or for a sanitizer build (ASan and
# valgrind do not mix).
#
# Environment (from `make check`): LMTASKS, LMTASKS_FCGI, LMTASKS_WRITER, top_srcdir,
# top_builddir; LMTASKS_MEMCHECK and LMTASKS_FCGI_MEMCHECK, the programs linked dynamically.
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"

set -u
export LC_ALL=C
for b in "$LMTASKS" "$LMTASKS_FCGI"; do
	[ -x "$b" ] || { echo "valgrind.sh: no binary at $b (set LMTASKS and LMTASKS_FCGI)" >&2; exit 99; }
done
lmt_have valgrind || lmt_missing_all valgrind "valgrind.sh: no valgrind here"
if grep -qaE '__asan_init|__tsan_init|__msan_init' "$LMTASKS" "$LMTASKS_FCGI"; then
	lmt_skip_all "valgrind.sh: the binaries are built with a sanitizer; valgrind needs a plain build"
fi
unset LMTASKS_DB LMTASKS_MASTER_KEY_FILE LMTASKS_MAPSIZE
lmt_tmpdir
T=$LMT_TMP
START=$(now)
LMT_CMD_TIMEOUT=60
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
	--show-leak-kinds=definite -q)
DB=$T/store
# Memcheck needs the dynamic loader to watch malloc; a wholly static responder or CLI
# (configure's default where they link) is checked as the same sources linked dynamically.
VG_FCGI=${LMTASKS_FCGI_MEMCHECK:-$LMTASKS_FCGI}
VG_CLI=${LMTASKS_MEMCHECK:-$LMTASKS}

# vg WANT NAME CMD...: CMD (which runs the program under "${VG[@]}") exits WANT (the
# program's normal status), not 99.
vg() {
	local want=$1 name=$2
	shift 2
	run "$@"
	if [ "$LMT_RC" -eq "$want" ]; then
		ok "$name (exit $want)"
	else
		fail "$name" "expected exit $want, got $LMT_RC$([ "$LMT_RC" -eq 99 ] && echo ': memcheck found errors')" \
			"$(grep -m 12 '^==' "$LMT_TMP/last.err")" "stderr: ${LMT_STDERR:0:300}"
	fi
}

# L WANT NAME ARGS...: the CLI on the store.
L() {
	local want=$1 name=$2
	shift 2
	vg "$want" "lmtasks $name" "${VG[@]}" "$VG_CLI" --db "$DB" "$@"
}

echo "# --- the CLI"
L 0 init init
L 0 enqueue enqueue movies documentAddition --details '{"receivedDocuments":3,"t":"\u00e9"}'
printf '%s\n' '{"indexUid":"books","type":"indexCreation"}' \
	'{"indexUid":"movies","type":"settingsUpdate","details":{"rankingRules":["typo"]}}' \
	'{"indexUid":"books","type":"documentAddition","details":null}' >"$T/batch.ndjson"
L 0 "enqueue --batch" enqueue --batch "$T/batch.ndjson"
printf '%s\n' '{"indexUid":"books","type":"x"}' '{"indexUid":"bad index","type":"x"}' >"$T/bad.ndjson"
L 2 "enqueue --batch (a bad line)" enqueue --batch "$T/bad.ndjson"
L 0 claim claim --index movies
L 0 succeed succeed 0 --details '{"indexedDocuments":3}'
L 0 start start 1
L 0 fail fail 1 --code index_already_exists --message 'Index `books` already exists.' --type invalid_request
L 0 cancel cancel 2
L 3 "succeed (a refused transition)" succeed 2
L 0 get get 0
L 1 "get (no such task)" get 99
L 0 "list with filters" list --statuses succeeded,failed,canceled --types '*' --indexUids movies,books \
	--afterEnqueuedAt 2020-01-01 --limit 2 --reverse
L 0 delete delete 1
L 0 "key create" key create --indexes 'movies,book*' --description 'a key'
KEY=$(json_get "$LMT_STDOUT" 'd["key"]' 2>/dev/null)
L 0 "key list" key list
L 0 stats stats
L 0 "index list" index list
L 0 "wait (a finished task)" wait 0 --timeout 1
L 0 check check

echo "# --- the responder (CGI)"
printf '%s\n' "master-key-for-valgrind-0123456789" >"$T/master.key"
printf '%s\n' "too-short" >"$T/short.key"

# C WANT_STATUS NAME METHOD URI [NAME=VALUE...]: one CGI request under memcheck.
C() {
	local want=$1 name=$2 method=$3 uri=$4 qs=""
	shift 4
	case $uri in *\?*) qs=${uri#*\?} ;; esac
	vg 0 "CGI $name" env -i PATH="$PATH" REQUEST_METHOD="$method" REQUEST_URI="$uri" \
		QUERY_STRING="$qs" LMTASKS_DB="$DB" "$@" "${VG[@]}" "$VG_FCGI"
	local st
	st=$(head -n 1 "$LMT_TMP/last.out" | tr -d '\r')
	assert_eq "CGI $name: $want" "Status: $want" "$st"
}
C "200 OK" "/tasks" GET '/tasks?limit=2&statuses=succeeded,enqueued&reverse=true' </dev/null
C "200 OK" "/tasks/{uid}" GET /tasks/0 </dev/null
C "200 OK" "/indexes/{i}/tasks" GET '/indexes/movies/tasks?types=documentAddition' </dev/null
C "200 OK" "/indexes/{i}/tasks/{uid}" GET /indexes/movies/tasks/0/ </dev/null
C "200 OK" "/health" HEAD /health </dev/null
C "404 Not Found" "task not found" GET /tasks/99 </dev/null
C "404 Not Found" "unknown route" GET /nothing/here </dev/null
C "400 Bad Request" "a bad uid" GET /tasks/0x1 </dev/null
C "400 Bad Request" "a bad parameter" GET '/tasks?limit=1&limit=2' </dev/null
C "405 Method Not Allowed" "POST" POST /tasks </dev/null
C "414 URI Too Long" "a long path" GET "/tasks/$(printf '9%.0s' $(seq 1 5000))" </dev/null
C "401 Unauthorized" "no key" GET /tasks LMTASKS_MASTER_KEY_FILE="$T/master.key" </dev/null
C "403 Forbidden" "a wrong key" GET /tasks LMTASKS_MASTER_KEY_FILE="$T/master.key" \
	"HTTP_AUTHORIZATION=Bearer wrong" </dev/null
C "200 OK" "the master key" GET /tasks/3 LMTASKS_MASTER_KEY_FILE="$T/master.key" \
	"HTTP_AUTHORIZATION=Bearer master-key-for-valgrind-0123456789" </dev/null
C "200 OK" "a restricted API key" GET /tasks LMTASKS_MASTER_KEY_FILE="$T/master.key" \
	"HTTP_AUTHORIZATION=Bearer $KEY" </dev/null
C "403 Forbidden" "a restricted API key, another index" GET /indexes/other/tasks \
	LMTASKS_MASTER_KEY_FILE="$T/master.key" "HTTP_AUTHORIZATION=Bearer $KEY" </dev/null
C "503 Service Unavailable" "no store" GET /tasks LMTASKS_DB="$T/nothing" </dev/null
C "500 Internal Server Error" "a short master key" GET /tasks LMTASKS_MASTER_KEY_FILE="$T/short.key" </dev/null

echo "# --- the writer (FastCGI, one process for every request)"
: "${LMTASKS_WRITER:=${top_builddir:-.}/lmtasks-writer}"
F() { "$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" "$@"; }
MASTER=master-key-for-valgrind-0123456789
"${VG[@]}" "$LMTASKS_WRITER" --db "$DB" --listen "unix:$T/w.sock" --master-key-file "$T/master.key" \
	</dev/null >"$T/writer.out" 2>"$T/writer.err" &
WPID=$!
lmt_on_exit "kill -KILL $WPID 2>/dev/null"
# memcheck starts slowly, and more slowly on a busy machine.
wait_for 120 test -S "$T/w.sock" || fail "the writer under valgrind listens" "$(cat "$T/writer.err")"
U=$("$LMTASKS" --db "$DB" enqueue books indexCreation | json_get - 'd["uid"]')
out=$(F get "$T/w.sock" "/tasks/cancel?uids=$U" POST "$MASTER")
assert_eq "writer: POST /tasks/cancel?uids=$U: 200" 200 "${out% *}"
assert_eq "task $U canceled" canceled "$("$LMTASKS" --db "$DB" get "$U" | json_get - 'd["status"]')"
out=$(F get "$T/w.sock" "/tasks?uids=$U" DELETE "$MASTER")
assert_eq "writer: DELETE /tasks?uids=$U: 200" 200 "${out% *}"
assert_eq "task $U deleted" 1 "$("$LMTASKS" --db "$DB" get "$U" >/dev/null 2>&1; echo $?)"
out=$(F get "$T/w.sock" "/tasks/cancel?limit=1" POST "$MASTER")
assert_eq "writer: a bad parameter: 400" 400 "${out% *}"
out=$(F get "$T/w.sock" "/tasks/cancel?uids=1" POST wrong)
assert_eq "writer: a wrong key: 403" 403 "${out% *}"
for kind in overflow huge past_end version many; do
	out=$(F crafted "$T/w.sock" "$kind")
	assert_match "writer: crafted record ($kind): the connection closed" '^closed ' "$out"
done
out=$(F body "$T/w.sock" "/tasks/cancel?uids=1" 1048577)
assert_match "writer: a body past 1 MiB: the connection closed" '^closed ' "$out"
out=$(F abort "$T/w.sock")
assert_eq "writer: FCGI_ABORT_REQUEST, then a request on the kept connection" \
	"$(printf 'end 0000000000000000\nthen 404')" "$out"
kill -TERM "$WPID"
wait "$WPID"
rc=$?
if [ "$rc" = 0 ]; then
	ok "writer: SIGTERM, exit 0: memcheck found no error and no definite leak"
else
	fail "writer: SIGTERM, exit 0" "exit $rc$([ "$rc" = 99 ] && echo ': memcheck found errors')" \
		"$(grep -m 12 '^==' "$T/writer.err")"
fi
vg 0 "writer as CGI: DELETE /tasks?uids=0" env -i PATH="$PATH" REQUEST_METHOD=DELETE \
	REQUEST_URI="/tasks?uids=0" QUERY_STRING=uids=0 HTTP_AUTHORIZATION="Bearer $MASTER" \
	LMTASKS_DB="$DB" LMTASKS_MASTER_KEY_FILE="$T/master.key" "${VG[@]}" "$LMTASKS_WRITER" </dev/null
assert_eq "writer as CGI: 200" "Status: 200 OK" "$(head -n 1 "$LMT_TMP/last.out" | tr -d '\r')"

echo "# $(elapsed "$START") s"
summary
