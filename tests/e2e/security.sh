#!/usr/bin/env bash
# Security checks of lmtasks-fcgi run as a CGI program (SPEC §2 Keys, §4), and of the
# store's keys and permissions:
#
#   keys         401/403 bodies exactly as Meilisearch's, the master key, /health public,
#                API keys (printed once, never listed, never stored in clear, revoked by
#                key or uid, restricted to indexes or `prefix*`, expiring), and a master
#                key file that is short or unreadable refusing everything (500, never 200)
#   secrets      neither the master key nor an API key in the responder's stderr
#   permissions  (root only) a store shared with www-data by `init --group`, read by the
#                responder running as www-data, also after more writes; one made without
#                --group refused to www-data with a 503
#   hostile      long paths, query strings and headers; NULs, broken escapes, odd uids,
#                repeated parameters, long lists, binary garbage: every answer JSON (UTF-8)
#                with a right Content-Length, never a 500, never a crash
#   corruption   a record with flipped bytes: 500 naming its uid and one log line; `lmtasks
#                check` exits 4 naming it; the other tasks still answer
#
# Environment (from `make check`): LMTASKS, LMTASKS_FCGI, top_srcdir, top_builddir.
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"

set -u
export LC_ALL=C
# The binaries as absolute paths: the requests run from another directory.
for _v in LMTASKS LMTASKS_FCGI; do
	_p=${!_v}
	case $_p in /*) ;; *) _p=$(cd "$(dirname "$_p")" 2>/dev/null && pwd)/$(basename "$_p") ;; esac
	printf -v "$_v" '%s' "$_p"
done
for b in "$LMTASKS" "$LMTASKS_FCGI"; do
	[ -x "$b" ] || { echo "security.sh: no binary at $b (set LMTASKS and LMTASKS_FCGI)" >&2; exit 99; }
done
unset LMTASKS_DB LMTASKS_MASTER_KEY_FILE LMTASKS_MAPSIZE
lmt_tmpdir
T=$LMT_TMP
START=$(now)
section() { echo "# --- $*"; }
mkdir -p "$T/cwd" "$T/resp"

# ---- the responder as a CGI program ----

CGI_WRAP=()	# a command the responder runs under (setpriv), or nothing
CGI_N=0
SECRETS=()	# every key made: none may appear in any stderr of the responder

# cgi METHOD URI [NAME=VALUE...]: one CGI request in a clean environment, standard input
# /dev/null, LMTASKS_DB=$DB unless given.  QUERY_STRING is what follows the first '?'.
# Sets CGI_RC, CGI_STATUS (the number), CGI_HEAD/CGI_BODY/CGI_ERR (files), CGI_LEN, and
# CGI_HDR (each header's first value, by name).
declare -A CGI_HDR=()
CGI_HDR_RE=$'^([A-Za-z0-9-]+): (.*)\r$'
cgi() {
	local method=$1 uri=$2 qs="" line n=0 pass=()
	shift 2
	case $uri in *\?*) qs=${uri#*\?} ;; esac
	CGI_N=$((CGI_N + 1))
	local base=$T/resp/$CGI_N
	for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS LD_LIBRARY_PATH; do
		[ -n "${!v:-}" ] && pass+=("$v=${!v}")
	done
	# (env -C, not a subshell that cd's: one process less for each of the many requests;
	# lmt_guard, the suite's watchdog, not a timeout process: one more less.)
	lmt_guard 20 env -i -C "$T/cwd" PATH="$PATH" "${pass[@]}" REQUEST_METHOD="$method" \
		REQUEST_URI="$uri" QUERY_STRING="$qs" SCRIPT_NAME= GATEWAY_INTERFACE=CGI/1.1 \
		LMTASKS_DB="$DB" "$@" "${CGI_WRAP[@]}" "$LMTASKS_FCGI" \
		</dev/null >"$base.out" 2>"$base.err"
	CGI_RC=$?
	CGI_ERR=$base.err
	CGI_HEAD=$base.head
	CGI_BODY=$base.body
	CGI_HDR=()
	# The headers end at the first empty line (CR LF); the body is the rest, byte for byte.
	# A header is a line "Name: value" ending in CR.
	while IFS= read -r line; do
		n=$((n + ${#line} + 1))
		printf '%s\n' "$line"
		[ "$line" = $'\r' ] && break
		[[ $line =~ $CGI_HDR_RE ]] && [ -z "${CGI_HDR[${BASH_REMATCH[1]}]+set}" ] &&
			CGI_HDR[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
	done <"$base.out" >"$CGI_HEAD"
	cgi__body "$base.out" "$n"
	local first=
	read -r first <"$CGI_HEAD"
	CGI_STATUS=
	[[ $first =~ ^Status:\ ([0-9]*)\  ]] && CGI_STATUS=${BASH_REMATCH[1]}
}

# cgi__body OUT N: $CGI_BODY is OUT past its first N bytes, CGI_LEN its size.  Cut by
# the shell, in bytes (LC_ALL=C), not by tail and wc: two processes less a request; an
# answer with a NUL, which a shell variable cannot hold, is cut by them.
cgi__body() {
	local LC_ALL=C all=
	if IFS= read -r -d '' all <"$1"; then
		tail -c +$(($2 + 1)) "$1" >"$CGI_BODY"
		CGI_LEN=$(wc -c <"$CGI_BODY")
	else
		printf '%s' "${all:$2}" >"$CGI_BODY"
		CGI_LEN=$((${#all} > $2 ? ${#all} - $2 : 0))
	fi
}

cgi_header() {
	[ -n "${CGI_HDR[$1]+set}" ] && printf '%s\n' "${CGI_HDR[$1]}"
	return 0
}

# body_json EXPR: EXPR (Python, d = the body) on the last body; the body must be strict
# UTF-8 JSON (json_get reads files as UTF-8 and fails otherwise).
body_json() {
	json_get "$CGI_BODY" "$1" 2>/dev/null
}

# answer NAME STATUSES [BODY]: the last answer is well formed: the responder exited 0
# (no crash), its status is one of STATUSES ("200" or "400|404"), never 500 unless asked,
# Content-Type JSON, Content-Length the body's size, the body strict UTF-8 JSON, and
# exactly BODY when given.
answer() {
	local name=$1 want=$2 why=()
	[ "$CGI_RC" -eq 0 ] || why+=("exit status $CGI_RC (a crash or a timeout); stderr: $(head -c 300 "$CGI_ERR")")
	compgen -G "$T/cwd/core*" >/dev/null && why+=("a core file was left in $T/cwd")
	case "|$want|" in *"|$CGI_STATUS|"*) ;; *) why+=("status $CGI_STATUS, expected $want") ;; esac
	[ "${CGI_HDR[Content-Type]-}" = application/json ] ||
		why+=("Content-Type: '${CGI_HDR[Content-Type]-}'")
	[ "${CGI_HDR[Content-Length]-}" = "$CGI_LEN" ] ||
		why+=("Content-Length: '${CGI_HDR[Content-Length]-}' for a body of $CGI_LEN bytes")
	if [ $# -ge 3 ]; then
		[ "$(<"$CGI_BODY")" == "$3" ] && [ "$CGI_LEN" -eq "${#3}" ] ||
			why+=("body expected: ${3:0:300}" "body got:      $(head -c 300 "$CGI_BODY")")
	# (json_get reads a file as strict UTF-8 and parses it as JSON, through the suite's
	# one Python.)
	elif ! json_get "$CGI_BODY" True >/dev/null 2>&1; then
		why+=("body is not UTF-8 JSON: $(head -c 300 "$CGI_BODY" | cat -v)")
	fi
	if [ ${#why[@]} -eq 0 ]; then
		ok "$name"
	else
		fail "$name" "${why[@]}"
	fi
}

# errbody CODE TYPE MESSAGE: Meilisearch's error body, byte for byte.
errbody() {
	printf '{"message":"%s","code":"%s","type":"%s","link":"https://docs.meilisearch.com/errors#%s"}' \
		"$3" "$1" "$2" "$1"
}
MISSING=$(errbody missing_authorization_header auth \
	'The Authorization header is missing. It must use the bearer authorization method.')
INVALID=$(errbody invalid_api_key auth 'The provided API key is invalid.')
notfound() { errbody task_not_found invalid_request "Task \`$1\` not found."; }
baduid() {
	errbody invalid_task_uids invalid_request \
		"Task uid \`$1\` is invalid. It should only contain numeric characters."
}

# ---- the store: four indexes, the store's own task, 8 tasks ----
#   0 movies documentAddition   1 books indexCreation   2 movies2 documentAddition
#   3 mo documentAddition       4 books documentAddition (canceled by 6)
#   5 movies settingsUpdate     6 null taskCancelation   7 movies indexUpdate
DB=$T/store
L() { "$LMTASKS" --db "$DB" "$@"; }
{
	L init &&
	L enqueue movies documentAddition --details '{"receivedDocuments":3}' &&
	L enqueue books indexCreation &&
	L enqueue movies2 documentAddition &&
	L enqueue mo documentAddition &&
	L enqueue books documentAddition &&
	L enqueue movies settingsUpdate &&
	L cancel 4 &&
	L enqueue movies indexUpdate
} >"$T/setup.log" 2>&1 || { echo "security.sh: cannot build the store:" >&2; cat "$T/setup.log" >&2; exit 99; }

MASTER=master-Key-for-the-security-suite-$$-0123456789
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"
SECRETS+=("$MASTER")
MK=LMTASKS_MASTER_KEY_FILE=$T/master.key

# ==== keys ====
section "keys: the master key"

cgi GET /tasks
answer "no key configured: every route is open" 200
cgi GET /tasks "$MK"
answer "master key, no Authorization header: 401, Meilisearch's body" 401 "$MISSING"
cgi GET /tasks "$MK" "HTTP_AUTHORIZATION=Basic x"
answer "master key, Basic scheme: 401" 401 "$MISSING"
cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer"
answer "master key, 'Bearer' and nothing: 401" 401 "$MISSING"
cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer "
if [ "$CGI_STATUS" = 401 ]; then
	answer "master key, 'Bearer ' and an empty key: refused" 401 "$MISSING"
else
	answer "master key, 'Bearer ' and an empty key: refused" 403 "$INVALID"
fi
cgi GET /tasks "$MK" "HTTP_AUTHORIZATION=Bearer wrong-key-0123456789abcdef"
answer "master key, a wrong key: 403, Meilisearch's body" 403 "$INVALID"
cgi GET /indexes/movies/tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer ${MASTER}x"
answer "master key plus a byte: 403" 403 "$INVALID"
cgi GET /indexes/movies/tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer ${MASTER:0:${#MASTER}-1}"
answer "master key less a byte: 403" 403 "$INVALID"
cgi GET /tasks "$MK" "HTTP_AUTHORIZATION=Bearer $MASTER"
answer "the master key opens /tasks" 200
json_assert "the master key sees every task" "$CGI_BODY" 'd["total"] == 8'
cgi GET /health "$MK"
answer "/health stays public with a master key" 200 '{"status":"available"}'
cgi GET /health "$MK" "HTTP_AUTHORIZATION=Bearer wrong"
answer "/health with a wrong key: still public" 200 '{"status":"available"}'

section "keys: API keys"

# key_create ARGS...: makes a key; sets KEY (the secret) and KEY_UID, or fails the check.
key_create() {
	KEY= KEY_UID=
	run L key create "$@"
	if [ "$LMT_RC" -ne 0 ]; then
		fail "key create $*" "exit $LMT_RC: $LMT_STDERR"
		return 1
	fi
	KEY=$(json_get "$LMT_STDOUT" 'd["key"]')
	KEY_UID=$(json_get "$LMT_STDOUT" 'd["uid"]')
	SECRETS+=("$KEY")
	[[ $KEY =~ ^[0-9a-f]{64}$ ]] || fail "key create $*: a 64-hex-digit key" "got: $LMT_STDOUT"
}

key_create
ALLKEY=$KEY ALLUID=$KEY_UID
assert_re "key create prints the key once, with its uid" '^\{"key":"[0-9a-f]{64}","uid":"[0-9a-f-]{36}"' "$LMT_STDOUT"
key_create --indexes movies --description 'movies only'
MOVKEY=$KEY MOVUID=$KEY_UID
key_create --indexes 'mov*'
PREFKEY=$KEY
key_create --indexes books,movies2
DELKEY=$KEY DELUID=$KEY_UID
key_create --indexes movies
DEL2KEY=$KEY DEL2UID=$KEY_UID

run L key list
LIST=$LMT_STDOUT
assert_eq "key list exits 0" 0 "$LMT_RC"
json_assert "key list: five keys, no secret field" "$LIST" \
	'len(d["results"]) == 5 and all("key" not in k for k in d["results"])'
leaked=0
for k in "${SECRETS[@]}"; do
	case $LIST in *"$k"*) leaked=1 ;; esac
done
assert_eq "key list shows no key's text" 0 "$leaked"
json_assert "key list shows the uids and the restrictions" "$LIST" \
	"[k['indexes'] for k in d['results'] if k['uid'] == '$MOVUID'] == [['movies']]"

found=""
for k in "${SECRETS[@]}"; do
	# The text of the key in any store file.
	if grep -rqaF "$k" "$DB"; then found+=" text:${k:0:8}"; fi
done
# The raw bytes a 64-digit key's hex decodes to, in any store file: one Python for all keys.
found+=$("$LMT_PYTHON" -S -c 'import sys
sep = sys.argv.index("--")
data = [open(f, "rb").read() for f in sys.argv[sep + 1:]]
for k in sys.argv[1:sep]:
    try:
        raw = bytes.fromhex(k) if len(k) == 64 else None
    except ValueError:
        raw = None
    if raw is not None and any(raw in b for b in data):
        sys.stdout.write(" raw:" + k[:8])' "${SECRETS[@]}" -- "$DB"/*.mdb) || found+=" (the look for raw bytes failed)"
assert_eq "the store files never hold a key (as text or as its bytes)" "" "$found"

cgi GET /tasks "$MK" "HTTP_AUTHORIZATION=Bearer $ALLKEY"
answer "an API key for every index opens /tasks" 200
json_assert "... and sees every task" "$CGI_BODY" 'd["total"] == 8'

AUTH="HTTP_AUTHORIZATION=Bearer $MOVKEY"
cgi GET /tasks "$MK" "$AUTH"
answer "--indexes movies: /tasks answers" 200
json_assert "--indexes movies: /tasks lists only movies tasks" "$CGI_BODY" \
	'[t["uid"] for t in d["results"]] == [7, 5, 0] and {t["indexUid"] for t in d["results"]} == {"movies"}'
json_assert "--indexes movies: total counts only movies tasks" "$CGI_BODY" 'd["total"] == 3'
cgi GET '/tasks?indexUids=books,movies&limit=1' "$MK" "$AUTH"
answer "--indexes movies: asking for books too answers" 200
json_assert "--indexes movies: indexUids=books,movies gives movies only" "$CGI_BODY" \
	'd["total"] == 3 and [t["uid"] for t in d["results"]] == [7] and d["next"] == 5'
cgi GET '/tasks?indexUids=books' "$MK" "$AUTH"
json_assert "--indexes movies: indexUids=books gives nothing" "$CGI_BODY" 'd["total"] == 0 and d["results"] == []'
cgi GET '/tasks?uids=1,4,6' "$MK" "$AUTH"
json_assert "--indexes movies: uids of other tasks give nothing" "$CGI_BODY" 'd["total"] == 0 and d["results"] == []'
cgi GET /tasks/1 "$MK" "$AUTH"
answer "--indexes movies: /tasks/{uid} of a books task is 404 task_not_found" 404 "$(notfound 1)"
cgi GET /tasks/6 "$MK" "$AUTH"
answer "--indexes movies: the store's own task (null index) is 404" 404 "$(notfound 6)"
cgi GET /tasks/5 "$MK" "$AUTH"
answer "--indexes movies: /tasks/{uid} of a movies task is 200" 200
cgi GET /indexes/books/tasks "$MK" "$AUTH"
answer "--indexes movies: /indexes/books/tasks is 403 invalid_api_key" 403 "$INVALID"
cgi GET /indexes/books/tasks/1 "$MK" "$AUTH"
answer "--indexes movies: /indexes/books/tasks/1 is 403" 403 "$INVALID"
cgi GET /indexes/nosuch/tasks "$MK" "$AUTH"
answer "--indexes movies: another index that does not exist is 403 too" 403 "$INVALID"
cgi GET /indexes/movies2/tasks "$MK" "$AUTH"
answer "--indexes movies: movies2 is another index (403)" 403 "$INVALID"
cgi GET /indexes/movies/tasks "$MK" "$AUTH"
answer "--indexes movies: /indexes/movies/tasks is 200" 200
json_assert "--indexes movies: /indexes/movies/tasks lists the three" "$CGI_BODY" \
	'd["total"] == 3 and [t["uid"] for t in d["results"]] == [7, 5, 0]'

AUTH="HTTP_AUTHORIZATION=Bearer $PREFKEY"
cgi GET /tasks "$MK" "$AUTH"
answer "--indexes 'mov*': /tasks answers" 200
json_assert "--indexes 'mov*': movies and movies2, not mo, books or null" "$CGI_BODY" \
	'[t["uid"] for t in d["results"]] == [7, 5, 2, 0] and d["total"] == 4'
cgi GET /indexes/movies2/tasks "$MK" "$AUTH"
answer "--indexes 'mov*': /indexes/movies2/tasks is 200" 200
cgi GET /indexes/mo/tasks "$MK" "$AUTH"
answer "--indexes 'mov*': /indexes/mo/tasks is 403" 403 "$INVALID"
cgi GET /tasks/3 "$MK" "$AUTH"
answer "--indexes 'mov*': /tasks/3 (index mo) is 404" 404 "$(notfound 3)"
cgi GET /tasks/2 "$MK" "$AUTH"
answer "--indexes 'mov*': /tasks/2 (index movies2) is 200" 200

section "keys: a prefix covers every index it matches, however many"
# 300 indexes b000-b299, books1, books2, other: one task each, uids 0-302.
P=$T/prefix
PL() { "$LMTASKS" --db "$P" "$@"; }
{
	for i in $(seq 0 299); do printf '{"indexUid":"b%03d","type":"documentAddition"}\n' "$i"; done
	printf '{"indexUid":"%s","type":"documentAddition"}\n' books1 books2 other
} >"$T/prefix.ndjson"
run PL init
run PL enqueue --batch "$T/prefix.ndjson"
json_assert "prefix store: 303 tasks in 303 indexes" "$LMT_STDOUT" 'd["enqueued"] == 303'
pkey() {
	run PL key create --indexes "$1"
	json_get "$LMT_STDOUT" 'd["key"]'
}
BKEY=$(pkey 'b*') BOOKSKEY=$(pkey 'books*') STARKEY=$(pkey '*') B7KEY=$(pkey 'b007,other')
SECRETS+=("$BKEY" "$BOOKSKEY" "$STARKEY" "$B7KEY")
PA=LMTASKS_DB=$P
cgi GET '/tasks?limit=1' "$MK" "$PA" "HTTP_AUTHORIZATION=Bearer $MASTER"
json_assert "master key: total 303" "$CGI_BODY" 'd["total"] == 303'
cgi GET '/tasks?limit=1' "$MK" "$PA" "HTTP_AUTHORIZATION=Bearer $STARKEY"
answer "key create --indexes '*': /tasks answers" 200
json_assert "... and sees every task, like the master key (303)" "$CGI_BODY" 'd["total"] == 303'
AUTH="HTTP_AUTHORIZATION=Bearer $BKEY"
cgi GET '/tasks?limit=1' "$MK" "$PA" "$AUTH"
json_assert "'b*' with 302 matching indexes: total 302 (every b index, books1, books2)" "$CGI_BODY" \
	'd["total"] == 302 and d["results"][0]["uid"] == 301'
cgi GET '/tasks?limit=1000' "$MK" "$PA" "$AUTH"
json_assert "'b*': the pages hold the 302 tasks, not other's" "$CGI_BODY" \
	'len(d["results"]) == 302 and all(t["indexUid"].startswith("b") for t in d["results"])'
cgi GET /indexes/b299/tasks "$MK" "$PA" "$AUTH"
answer "'b*': /indexes/b299/tasks answers" 200
json_assert "... with its task (total 1, uid 299)" "$CGI_BODY" \
	'd["total"] == 1 and [t["uid"] for t in d["results"]] == [299]'
cgi GET '/tasks?indexUids=b299,other' "$MK" "$PA" "$AUTH"
json_assert "'b*': indexUids=b299,other gives b299's task only" "$CGI_BODY" \
	'd["total"] == 1 and [t["uid"] for t in d["results"]] == [299]'
cgi GET '/tasks?statuses=enqueued&types=documentAddition&limit=0' "$MK" "$PA" "$AUTH"
json_assert "'b*' with status and type filters: total 302" "$CGI_BODY" 'd["total"] == 302'
cgi GET /tasks/302 "$MK" "$PA" "$AUTH"
answer "'b*': /tasks/302 (index other) is 404" 404 "$(notfound 302)"
cgi GET /tasks "$MK" "$PA" "HTTP_AUTHORIZATION=Bearer $B7KEY"
json_assert "exact names b007,other: their two tasks" "$CGI_BODY" \
	'd["total"] == 2 and [t["uid"] for t in d["results"]] == [302, 7]'
run PL index delete books1
check "index delete books1" test "$LMT_RC" -eq 0
AUTH="HTTP_AUTHORIZATION=Bearer $BOOKSKEY"
cgi GET /tasks "$MK" "$PA" "$AUTH"
json_assert "'books*' after index delete books1: /tasks still lists books1's task" "$CGI_BODY" \
	'd["total"] == 2 and [t["uid"] for t in d["results"]] == [301, 300]'
cgi GET /tasks/300 "$MK" "$PA" "$AUTH"
answer "... as /tasks/300 serves it" 200

section "keys: revocation and expiry"
cgi GET /tasks/1 "$MK" "HTTP_AUTHORIZATION=Bearer $DELKEY"
answer "a key to be deleted works first" 200
assert_exit -m "key delete KEY" 0 L key delete "$DELKEY"
cgi GET /tasks/1 "$MK" "HTTP_AUTHORIZATION=Bearer $DELKEY"
answer "a key deleted by its text: 403" 403 "$INVALID"
assert_exit -m "key delete UID" 0 L key delete "$DEL2UID"
cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer $DEL2KEY"
answer "a key deleted by its uid: 403" 403 "$INVALID"
assert_exit -m "key delete of a key that is gone exits 1" 1 L key delete "$DELKEY"
assert_exit -m "key delete of an unknown uid exits 1" 1 L key delete 00000000-0000-0000-0000-000000000000
run L key list
json_assert "key list: the deleted keys are gone" "$LMT_STDOUT" \
	"len(d['results']) == 3 and '$DELUID' not in [k['uid'] for k in d['results']] and '$DEL2UID' not in [k['uid'] for k in d['results']]"
cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer $MOVKEY"
answer "the other keys still work" 200

# Expires an hour from now: works now, refused once the CGI program with the clock seam
# is an hour on (no sleep).
EXP_AT=$(date -u -d "@$(($(date +%s) + 3600))" +%Y-%m-%dT%H:%M:%S.000000Z)
key_create --expires-at "$EXP_AT"
EXPKEY=$KEY
cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer $EXPKEY"
answer "a key before its expiry works" 200
run L key list
json_assert "key list shows the expiry" "$LMT_STDOUT" "'$EXP_AT' in [k['expiresAt'] for k in d['results']]"
clock_use "$T/exp-clock"
clock_move 3601
LMTASKS_FCGI=$LMTASKS_FCGI_CLOCKED cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer $EXPKEY" \
	"LMTASKS_TEST_CLOCK=$LMTASKS_TEST_CLOCK"
answer "an expired key (the clock an hour on): 403" 403 "$INVALID"
cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer $EXPKEY" "LMTASKS_TEST_CLOCK=$LMTASKS_TEST_CLOCK"
answer "... the installed program has no clock seam: the key still works" 200
unset LMTASKS_TEST_CLOCK
assert_exit -m "key create --expires-at in the past is refused" 2 L key create --expires-at 2020-01-01

section "keys: a master key file that cannot be used"
printf '%s\n' 'fifteen-bytes!!' >"$T/short.key"	# 15 bytes
cgi GET /tasks "LMTASKS_MASTER_KEY_FILE=$T/short.key"
answer "a 15-byte master key: 500, not an open API" 500
cgi GET /tasks "LMTASKS_MASTER_KEY_FILE=$T/short.key" "HTTP_AUTHORIZATION=Bearer fifteen-bytes!!"
answer "a 15-byte master key refuses itself too" 500
grep -qF 'fifteen-bytes!!' "$CGI_ERR" && fail "the short key is not logged" "stderr: $(cat "$CGI_ERR")" ||
	ok "the short key is not logged"
assert_re "the refusal is logged" 'master key' "$(cat "$CGI_ERR")"
printf '   \n\n  \t\n' >"$T/blank.key"
cgi GET /tasks "LMTASKS_MASTER_KEY_FILE=$T/blank.key"
answer "a blank master key file: 500" 500
cgi GET /tasks "LMTASKS_MASTER_KEY_FILE=$T/no-such.key"
answer "a missing master key file: 500" 500
cgi GET /health "LMTASKS_MASTER_KEY_FILE=$T/no-such.key"
answer "a missing master key file: even /health is 500" 500
cgi GET /tasks "LMTASKS_MASTER_KEY_FILE=$T"
answer "a directory as master key file: 500" 500
printf '%s' 'sixteen-bytes-ok' >"$T/sixteen.key"
cgi GET /tasks/0 "LMTASKS_MASTER_KEY_FILE=$T/sixteen.key" "HTTP_AUTHORIZATION=Bearer sixteen-bytes-ok"
answer "a 16-byte master key (no newline) works" 200
cgi GET /tasks/0 "LMTASKS_MASTER_KEY_FILE=$T/sixteen.key"
answer "... and is required" 401 "$MISSING"
cp "$T/master.key" "$T/unreadable.key"
chmod 000 "$T/unreadable.key"
if [ "$(id -u)" -ne 0 ]; then
	cgi GET /tasks "LMTASKS_MASTER_KEY_FILE=$T/unreadable.key"
	answer "an unreadable master key file: 500" 500
elif command -v setpriv >/dev/null && id www-data >/dev/null 2>&1; then
	chmod o+x "$T"
	CGI_WRAP=(setpriv --reuid=www-data --regid=www-data --clear-groups)
	cgi GET /tasks "LMTASKS_MASTER_KEY_FILE=$T/unreadable.key" "HTTP_AUTHORIZATION=Bearer $MASTER"
	CGI_WRAP=()
	answer "a master key file the responder's user cannot read: 500" 500
else
	skip "an unreadable master key file: 500" "root without setpriv or www-data"
fi

section "secrets: stderr of failing requests"
# Requests that fail and log, with every kind of key in the header.
for k in "$MASTER" "$MOVKEY" "$ALLKEY"; do
	cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer $k" "LMTASKS_DB=$T/no-store"
	answer "no store, key ${k:0:6}...: 503" 503
	[ -s "$CGI_ERR" ] && ok "the 503 is logged" || fail "the 503 is logged" "stderr is empty"
done
cgi GET /tasks/0 "$MK" "HTTP_AUTHORIZATION=Bearer $MASTER" "LMTASKS_DB=$T/no-store" REQUEST_METHOD=POST
answer "no store, POST: 405" 405
cgi GET "/tasks/0?$MASTER" "$MK" "HTTP_AUTHORIZATION=Bearer $MOVKEY" "LMTASKS_DB=$T/no-store"
answer "no store, a key in the query string too: 503" 503

# ==== permissions ====
section "permissions: a store shared with the web server's group"
perm_skip=""
if [ "$(id -u)" -ne 0 ]; then
	perm_skip="not root"
elif ! lmt_have setpriv; then
	perm_skip="no setpriv"
elif ! getent group www-data >/dev/null || ! id www-data >/dev/null 2>&1; then
	perm_skip="no www-data user and group"
fi
if [ -z "$perm_skip" ]; then
	chmod o+x "$T"
	setpriv --reuid=www-data --regid=www-data --clear-groups test -x "$T" ||
		perm_skip="www-data cannot reach $T (TMPDIR); set TMPDIR to a directory others can enter"
fi
if [ "$perm_skip" = "no setpriv" ]; then
	lmt_missing "permissions: init --group www-data, read as www-data" setpriv "$perm_skip"
	lmt_missing "permissions: a store without --group refused to www-data" setpriv "$perm_skip"
elif [ -n "$perm_skip" ]; then
	skip "permissions: init --group www-data, read as www-data" "$perm_skip"
	skip "permissions: a store without --group refused to www-data" "$perm_skip"
else
	G=$T/shared
	GL() { "$LMTASKS" --db "$G" "$@"; }
	assert_exit -m "init --group www-data" 0 GL init --group www-data
	run GL enqueue movies documentAddition --details '{"shared":true}'
	check "enqueue into the shared store" test "$LMT_RC" -eq 0
	modes() { stat -c '%a %G' "$G/data.mdb" "$G/lock.mdb" "$G" | tr '\n' ' '; }
	MODES=$(modes)
	assert_eq "data.mdb 640, lock.mdb 660, directory setgid, all of group www-data" \
		"640 www-data 660 www-data 2750 www-data " "$MODES"
	CGI_WRAP=(setpriv --reuid=www-data --regid=www-data --clear-groups)
	DB_SAVE=$DB
	DB=$G
	cgi GET /tasks/0
	answer "www-data reads the shared store: 200" 200
	json_assert "... with the task" "$CGI_BODY" 'd["uid"] == 0 and d["details"] == {"shared": True}'
	# More writes by root: every state, a key, a batch, enough to grow the file.
	{
		GL claim &&
		GL succeed 0 --details '{"done":1}' &&
		GL key create --indexes movies &&
		for i in $(seq 1 300); do
			printf '{"indexUid":"movies","type":"documentAddition","details":{"n":%d,"pad":"%0400d"}}\n' "$i" 0
		done | GL enqueue --batch - &&
		GL cancel 5 &&
		GL delete 0
	} >"$T/shared-writes.log" 2>&1
	check "root writes more into the shared store" test $? -eq 0
	assert_eq "after the writes: same modes and group" "$MODES" "$(modes)"
	cgi GET '/tasks?limit=2'
	answer "www-data still reads it after root's writes: 200" 200
	json_assert "... and sees the new tasks" "$CGI_BODY" 'd["total"] == 302 and d["results"][0]["type"] == "taskDeletion"'
	cgi GET /health
	answer "www-data: /health 200" 200 '{"status":"available"}'

	# A lock file made again takes the data file's mode plus group write, whatever the
	# umask.
	um=$(umask)
	umask 022
	rm -f "$G/lock.mdb"
	run GL enqueue movies documentAddition
	assert_eq "lock.mdb re-created by a write under umask 022: 660, group www-data" \
		"660 www-data" "$(stat -c '%a %G' "$G/lock.mdb")"
	cgi GET '/tasks?limit=1'
	answer "... and www-data still reads the store: 200" 200
	umask "$um"
	# A lock file the reader may not write: the CLI and the responder say the same.
	chmod 0644 "$G/lock.mdb"
	run setpriv --reuid=www-data --regid=www-data --clear-groups "$LMTASKS" --db "$G" list --limit 1
	assert_eq "lock.mdb 0644: the CLI as www-data refuses (exit 4)" 4 "$LMT_RC"
	assert_contains "... saying Permission denied" "Permission denied" "$LMT_STDERR"
	cgi GET '/tasks?limit=1'
	answer "lock.mdb 0644: the responder as www-data answers 503" 503
	assert_contains "... saying Permission denied" "Permission denied" "$(cat "$CGI_BODY")"
	chmod 0660 "$G/lock.mdb"

	N=$T/private
	run "$LMTASKS" --db "$N" init
	run "$LMTASKS" --db "$N" enqueue movies documentAddition
	DB=$N
	cgi GET /tasks/0
	answer "a store made without --group: 503 for www-data" 503
	json_assert "... with store_unavailable" "$CGI_BODY" 'd["code"] == "store_unavailable"'
	cgi GET /health
	answer "... /health 503 too" 503
	CGI_WRAP=()
	DB=$DB_SAVE
fi

# ==== hostile input ====
section "hostile input"
printf -v long '%5000s' ''
long=${long// /a}
cgi GET "/tasks/$long"
answer "a 5000-byte path: 414" 414
json_assert "... bad_request" "$CGI_BODY" 'd["code"] == "bad_request"'
cgi GET "/indexes/$long/tasks"
answer "a 5000-byte index path: 414" 414
cgi GET "/${long:0:4094}"
answer "a 4095-byte path: 404" 404
# (The long strings made by printf -v: no process.)
printf -v qs '%70000s' ''
qs="limit=1&${qs// /x}"
cgi GET "/tasks?$qs"
answer "a 70,000-byte query string: 414" 414
printf -v v '%34000s' ''
v=${v// /1,}
cgi GET "/tasks?uids=${v%,}"
answer "a 68,000-byte uids list: 414" 414
printf -v v '%20000s' ''
cgi GET "/tasks?types=${v// /a}"
answer "a 20,000-byte value: 400" 400
printf -v hdr '%2000s' ''
hdr="Bearer ${hdr// /k}"
cgi GET /tasks "$MK" "HTTP_AUTHORIZATION=$hdr"
answer "a 2000-byte Authorization header with a master key: 431" 431
cgi GET /tasks "HTTP_AUTHORIZATION=$hdr"
answer "a 2000-byte Authorization header and no key configured: ignored" 200

cgi GET /indexes/mov%00ies/tasks
answer "%00 in an index uid: 400" 400
json_assert "... invalid_index_uid" "$CGI_BODY" 'd["code"] == "invalid_index_uid"'
cgi GET /indexes/movies/tasks/0%00
answer "%00 in a uid: 400" 400
json_assert "... invalid_task_uids" "$CGI_BODY" 'd["code"] == "invalid_task_uids"'
cgi GET /tasks/%00
answer "%00 as the uid: 400" 400
cgi GET '/tasks?indexUids=mo%00vies'
answer "%00 in indexUids: 400" 400
cgi GET '/tasks?li%00mit=1'
answer "%00 in a parameter name: 400" 400
for e in % %z %4 %zz %4g 1%; do
	cgi GET "/tasks/$e"
	answer "broken escape /tasks/$e: 400" 400
	json_assert "... bad_request" "$CGI_BODY" 'd["code"] == "bad_request"'
done
cgi GET /indexes/mo%vies/tasks
answer "broken escape in an index uid: 400" 400
cgi GET '/tasks?limit=%4'
answer "broken escape in a query value: 400" 400
cgi GET '/tasks?%zz=1'
answer "broken escape in a query name: 400" 400

for u in +1 -1 0x1 1e3 18446744073709551615 123456789012345678901234567890 ' 1' '1 ' 1.0; do
	enc=${u// /%20}
	enc=${enc//+/%2B}
	cgi GET "/tasks/$enc"
	answer "uid \`$u\`: 400 invalid_task_uids" 400 "$(baduid "$u")"
done
cgi GET /tasks/+1
answer "uid +1 (unescaped in the path): 400" 400 "$(baduid +1)"
cgi GET /tasks/7
want=$(cat "$CGI_BODY")
cgi GET /tasks/007
answer "uid 007 is task 7" 200 "$want"
cgi GET /tasks/18446744073709551614
answer "uid 18446744073709551614: 404" 404 "$(notfound 18446744073709551614)"
cgi GET /indexes/movies/tasks/0x1
answer "uid 0x1 under an index: 400" 400 "$(baduid 0x1)"
for p in 'uids=+1' 'uids=-1' 'uids=0x1' 'uids=1e3' 'uids=18446744073709551615' \
	'from=123456789012345678901234567890' 'limit=1001' 'limit=-1' 'limit=007' 'canceledBy=1,,2'; do
	cgi GET "/tasks?$p"
	case $p in limit=007) answer "query $p: 200" 200 ;; *) answer "query $p: 400" 400 ;; esac
done

for p in 'limit=1&limit=2' 'statuses=enqueued&statuses=failed' 'from=1&from=1' 'reverse=true&reverse=false' \
	'indexUids=movies&indexUids=books' 'limit=1&%6cimit=2'; do
	cgi GET "/tasks?$p"
	answer "repeated parameter ($p): 400" 400
	json_assert "... bad_request" "$CGI_BODY" 'd["code"] == "bad_request"'
done
# A value given twice in one list is one filter, not two: each task once, and pages and
# totals as without the repeat (index mo and type indexUpdate have one task each; repeats
# make the union of the index's sequence the cheapest plan).
for p in 'indexUids=mo,mo' 'indexUids=mo,mo,mo&afterEnqueuedAt=2000-01-01' \
	'types=indexUpdate,indexUpdate' 'indexUids=mo,mo&reverse=true' \
	'types=indexUpdate,indexUpdate,indexUpdate&beforeEnqueuedAt=2999-01-01'; do
	cgi GET "/tasks?$p"
	answer "repeated value ($p): 200" 200
	json_assert "... each task once, total 1" "$CGI_BODY" \
		'len(d["results"]) == 1 and d["total"] == 1 and d["next"] is None'
done
cgi GET '/tasks?uids=3,3,3,7,7'
json_assert "repeated uids: each task once" "$CGI_BODY" '[t["uid"] for t in d["results"]] == [7, 3] and d["total"] == 2'
R=$T/repeat
{
	"$LMTASKS" --db "$R" init && "$LMTASKS" --db "$R" enqueue mo documentAddition &&
	for i in 1 2 3 4 5 6; do "$LMTASKS" --db "$R" enqueue movies documentAddition; done &&
	"$LMTASKS" --db "$R" cancel 0 1 2
} >"$T/repeat.log" 2>&1
run "$LMTASKS" --db "$R" delete --indexUids mo,mo
if [ "$LMT_RC" -eq 0 ]; then ok "lmtasks delete --indexUids mo,mo deletes the task"; else
	fail "lmtasks delete --indexUids mo,mo deletes the task (no false corruption report)" \
		"exit $LMT_RC: $LMT_STDERR"
fi

list300=$(seq -s, 0 299)
list256=$(seq -s, 0 255)
cgi GET "/tasks?uids=$list300"
answer "300 uids: 400" 400
cgi GET "/tasks?uids=$list256"
answer "256 uids: 200" 200
json_assert "... every task" "$CGI_BODY" 'd["total"] == 8'
cgi GET "/tasks?canceledBy=$list300"
answer "300 canceledBy values: 400" 400
cgi GET "/tasks?types=$(printf 'documentAddition,%.0s' $(seq 1 299))x"
answer "300 types: 400" 400
cgi GET "/tasks?indexUids=$(printf 'movies,%.0s' $(seq 1 299))x"
answer "300 indexUids: 400" 400
cgi GET "/tasks?statuses=$(printf 'failed,%.0s' $(seq 1 299))enqueued"
answer "300 statuses: 400 (more than 256) or 200, never 500" '200|400'
cgi GET "/tasks?$(printf 'limit=1&%.0s' $(seq 1 300))"
answer "300 repeats of one parameter: 400" 400

# Escaped bytes that are no UTF-8, in every place a message quotes a value from.
for p in 'uids=%ff' 'uids=,%ff' 'statuses=,%c3' 'types=%ef%bb' 'indexUids=,%80%80' 'limit=%fe' \
	'%ff=1' 'types=,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%c3%a9' \
	'beforeEnqueuedAt=%e2%82' 'reverse=%1b%5b2J'; do
	cgi GET "/tasks?$p"
	answer "query $p: a 400 whose body is UTF-8 JSON" 400
done
for p in '/indexes/%ff/tasks' '/tasks/%c3' '/%ff%fe' '/indexes/%e2%82%ac/tasks/1'; do
	cgi GET "$p"
	answer "path $p: an error whose body is UTF-8 JSON" '400|404'
done
cgi "$(printf 'G\001E\377T')" /tasks
answer "a binary method: 405" 405
[ "$(cgi_header Allow)" = 'GET, HEAD' ] && ok "... with Allow: GET, HEAD" || fail "... with Allow: GET, HEAD" "$(cat "$CGI_HEAD")"

# Binary garbage, NUL-free (an environment variable cannot hold a NUL), raw and escaped.
# Each answer strict UTF-8 JSON: json_get reads a file so, through the suite's one Python.
"$LMT_PYTHON" -S - "$T/garbage" <<'EOF'
import random, sys
r = random.Random(20210810)
with open(sys.argv[1], "wb") as f:
    for i in range(12):
        n = r.choice([1, 7, 40, 300, 3000])
        if i % 3 == 0:
            b = bytes(r.randrange(1, 256) for _ in range(n))
        elif i % 3 == 1:
            b = b"".join(b"%%%02x" % r.randrange(0, 256) for _ in range(n))
        else:
            names = [b"limit", b"from", b"uids", b"statuses", b"types", b"indexUids",
                     b"canceledBy", b"afterEnqueuedAt", b"reverse"]
            b = b"&".join(r.choice(names) + b"=" + bytes(r.randrange(1, 256) for _ in range(r.randrange(0, 12)))
                          for _ in range(r.randrange(1, 6)))
        f.write(b.replace(b"\n", b"\x01") + b"\n")
EOF
i=0
bad=()
while IFS= read -r g; do
	i=$((i + 1))
	cgi GET "/tasks?$g"
	st=$CGI_STATUS
	if [ "$CGI_RC" -ne 0 ] || [ "$st" = 500 ] || [ -z "$st" ] ||
		[ "${CGI_HDR[Content-Length]-}" != "$CGI_LEN" ] ||
		! json_get "$CGI_BODY" True >/dev/null 2>&1; then
		bad+=("garbage #$i: exit $CGI_RC, status $st, body $(head -c 200 "$CGI_BODY" | cat -v)")
	fi
	cgi GET "/indexes/${g:0:300}/tasks/1"
	if [ "$CGI_RC" -ne 0 ] || [ "$CGI_STATUS" = 500 ] || [ "${CGI_HDR[Content-Length]-}" != "$CGI_LEN" ]; then
		bad+=("garbage path #$i: exit $CGI_RC, status $CGI_STATUS")
	fi
done <"$T/garbage"
[ ${#bad[@]} -eq 0 ] && ok "$i binary query strings and paths: JSON answers, no 500, no crash" ||
	fail "$i binary query strings and paths: JSON answers, no 500, no crash" "${bad[@]}"

# ==== a corrupt record ====
section "a corrupt record"
C=$T/corrupt
MARK=CORRUPT-MARKER-$$-$RANDOM
{
	"$LMTASKS" --db "$C" init &&
	"$LMTASKS" --db "$C" enqueue movies documentAddition &&
	"$LMTASKS" --db "$C" enqueue movies documentAddition --details "{\"marker\":\"$MARK\"}" &&
	"$LMTASKS" --db "$C" enqueue books indexCreation
} >"$T/corrupt-setup.log" 2>&1 || fail "corrupt store setup" "$(cat "$T/corrupt-setup.log")"
# Every copy of the marker (LMDB keeps old copies of pages it rewrote), one byte each.
flipped=$("$LMT_PYTHON" -S - "$C/data.mdb" "$MARK" <<'EOF'
import sys
path, mark = sys.argv[1], sys.argv[2].encode()
b = bytearray(open(path, "rb").read())
n, i = 0, b.find(mark)
while i >= 0:
    b[i + 3] ^= 0x20
    n += 1
    i = b.find(mark, i + 1)
open(path, "r+b").write(b)
print(n)
EOF
)
check "the marker was found and flipped in data.mdb" test "${flipped:-0}" -ge 1
DB_SAVE=$DB
DB=$C
cgi GET /tasks/1 "$MK" "HTTP_AUTHORIZATION=Bearer $MASTER"
answer "the corrupt task: 500 JSON" 500
json_assert "... whose message names uid 1" "$CGI_BODY" \
	'd["code"] == "internal" and d["type"] == "internal" and "`1`" in d["message"]'
assert_eq "... and one log line" 1 "$(wc -l <"$CGI_ERR")"
assert_re "... that names uid 1" 'Task `1`' "$(cat "$CGI_ERR")"
cgi GET /indexes/movies/tasks/1
answer "the corrupt task under its index: 500" 500
cgi GET /tasks/0
answer "another task still answers 200" 200
cgi GET /tasks/2
answer "a third task still answers 200" 200
# The list walks from the newest: it meets uid 1 and fails whole, naming it (no partial
# list that hides a task).
cgi GET /tasks
answer "/tasks with a corrupt task in its walk: 500" 500
json_assert "... naming uid 1" "$CGI_BODY" '"`1`" in d["message"]'
assert_eq "... with one log line" 1 "$(wc -l <"$CGI_ERR")"
cgi GET '/tasks?uids=0,2'
answer "/tasks?uids=0,2 (the corrupt one left out): 200" 200
json_assert "... both" "$CGI_BODY" '[t["uid"] for t in d["results"]] == [2, 0]'
cgi GET '/tasks?from=0'
answer "/tasks?from=0 (below the corrupt one): 200" 200
cgi GET /indexes/books/tasks
answer "another index's list: 200" 200
DB=$DB_SAVE
assert_exit -m "lmtasks check exits 4" 4 "$LMTASKS" --db "$C" check
assert_re "... naming task 1" 'task 1\b' "$LMT_STDERR"
json_assert "... and says so on stdout" "$LMT_STDOUT" 'd["ok"] is False and d["problems"] >= 1'
assert_exit -m "lmtasks get 1 exits 4" 4 "$LMTASKS" --db "$C" get 1

# ==== secrets in stderr, over every request above ====
section "secrets"
leaks=""
for k in "${SECRETS[@]}"; do
	f=$(grep -lF -- "$k" "$T"/resp/*.err 2>/dev/null | head -n 3 | tr '\n' ' ')
	[ -n "$f" ] && leaks+="${k:0:8}... in $f; "
done
assert_eq "no key appears in the responder's stderr, over $CGI_N requests" "" "$leaks"
logged=$(cat "$T"/resp/*.err | wc -l)
assert_lt "... which did log something to look at" 0 "$logged"

echo "# $(elapsed "$START") s"
summary
