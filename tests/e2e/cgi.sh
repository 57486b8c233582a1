#!/usr/bin/env bash
# lmtasks-fcgi as a CGI program (SPEC §2, §4): every route, method and error body, run
# the way a web server runs a CGI script: REQUEST_METHOD / REQUEST_URI / QUERY_STRING /
# SCRIPT_NAME / PATH_INFO in the environment, standard input no socket (/dev/null).
# Every answer must have the exact status line, Content-Type: application/json and a
# Content-Length equal to the body's size.  One line per check; ends with
# "N passed, M failed"; exits non-zero on a failure.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/cgi.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries cgi.sh
T=$HTTP_TMP
S=$T/store
START=$(now)

# ---- the store: every status, two indexes, and the store's own task ----
#   0 movies documentAddition  succeeded (details amended)
#   1 books  indexCreation     failed
#   2 movies settingsUpdate    canceled by 3
#   3 null   taskCancelation   succeeded
#   4 books  documentAddition  enqueued
#   5 movies indexUpdate       processing
http_demo_store cgi.sh
{
	L enqueue movies indexUpdate --details '{"primaryKey":"id"}' &&
	L start 5
} >"$T/setup.log" 2>&1 || { echo "cgi.sh: cannot build the store:" >&2; cat "$T/setup.log" >&2; exit 99; }
CGI_DB=$S


# The checks below run for each of the suite's many answers: what they read, they read in
# the shell (a process each, a dozen an answer, cost more than the responder's run).
# bytes_of FILE: REPLY is FILE's contents, exactly, REPLY_LEN its length in bytes.  A NUL
# byte, which a shell variable cannot hold, ends REPLY there (read finds its delimiter):
# then the length is wc's, the file's own, so that no check of length or bytes passes.
bytes_of() {
	local LC_ALL=C
	REPLY=
	if IFS= read -r -d '' REPLY <"$1"; then
		REPLY_LEN=$(wc -c <"$1")
	else
		REPLY_LEN=${#REPLY}
	fi
}
# headers_of FILE: HDR[name] (lower case) is the first value of each header of the CGI
# answer in FILE, as cgi_header gives it; HDR_CRLF is 1 when every line ends with CR LF
# and an empty CR LF line ends them.
declare -A HDR
headers_of() {
	local line last="" all_cr=1 name v
	HDR=()
	while IFS= read -r line || [ -n "$line" ]; do
		[[ $line == *$'\r' ]] || all_cr=0
		last=$line
		line=${line//$'\r'/}
		[[ $line == *:* ]] || continue
		name=${line%%:*}
		name=${name,,}
		[ -n "${HDR[$name]+set}" ] && continue
		v=${line#*:}
		HDR[$name]=${v#"${v%%[!$' \t']*}"}
	done <"$1"
	HDR_CRLF=0
	[ "$all_cr" = 1 ] && [ "$last" = $'\r' ] && HDR_CRLF=1
}

# answer NAME "CODE REASON" [BODY]: checks the last cgi answer in one line: exit status 0,
# the status line, Content-Type, Content-Length = the body's size, headers ended by CR LF,
# and the body: exactly BODY when given, else any JSON value.
answer() {
	local name=$1 want=$2 why=() len ctype
	[ "$CGI_RC" -eq 0 ] || why+=("exit status $CGI_RC; stderr: $CGI_STDERR")
	[ "$CGI_STATUS_LINE" = "Status: $want" ] ||
		why+=("status line: expected 'Status: $want', got '$CGI_STATUS_LINE'")
	headers_of "$CGI_HEADERS"
	ctype=${HDR[content-type]:-}
	[ "$ctype" = application/json ] || why+=("Content-Type: '$ctype'")
	bytes_of "$CGI_BODY_FILE"
	len=$REPLY_LEN
	[ "${HDR[content-length]:-}" = "$len" ] ||
		why+=("Content-Length: '${HDR[content-length]:-}' for a body of $len bytes")
	# Every header line ends with CR LF, and an empty CR LF line ends them.
	if [ "$HDR_CRLF" != 1 ]; then
		why+=("headers not CR LF terminated: $(cat -A "$CGI_HEADERS" | head -c 300)")
	fi
	if [ $# -ge 3 ]; then
		[ "$CGI_BODY" == "$3" ] && [ "$len" -eq "${#3}" ] ||
			why+=("body expected: ${3:0:400}" "body got:      ${CGI_BODY:0:400}")
	elif ! http_json_ok "$CGI_BODY_FILE"; then
		why+=("body is not JSON: ${CGI_BODY:0:400}")
	fi
	if [ ${#why[@]} -eq 0 ]; then
		ok "$name"
	else
		fail "$name" "${why[@]}"
	fi
}

# same_as_get NAME UID: the last answer is 200 and its body is `lmtasks get UID` byte for
# byte, without get's trailing newline.
same_as_get() {
	local get
	L get "$2" >"$T/get.out" 2>/dev/null
	bytes_of "$T/get.out"
	get=$REPLY
	bytes_of "$CGI_BODY_FILE"
	if [ "${get: -1}" != $'\n' ]; then
		fail "$1" "lmtasks get $2 does not end with a newline"
	elif [ "${get%$'\n'}" == "$REPLY" ]; then
		answer "$1" "200 OK" "${get%$'\n'}"
	else
		fail "$1" "status: $CGI_STATUS_LINE" "get:  ${get:0:400}" "cgi:  ${CGI_BODY:0:400}"
	fi
}

# same_as_list NAME ARGS...: the last answer is 200 and its body is `lmtasks list ARGS`.
same_as_list() {
	local name=$1
	shift
	local list
	L list "$@" >"$T/list.out" 2>/dev/null
	bytes_of "$T/list.out"
	list=${REPLY%?}	# (without its last byte, as head -c -1)
	bytes_of "$CGI_BODY_FILE"
	if [ "$list" == "$REPLY" ]; then
		answer "$name" "200 OK" "$list"
	else
		fail "$name" "status: $CGI_STATUS_LINE" "list: ${list:0:300}" "cgi:  ${CGI_BODY:0:300}"
	fi
}

# page NAME EXPR: the last answer is a 200 list envelope and EXPR (Python, d = the body,
# u = the results' uids) holds.
page() {
	if [ "$CGI_STATUS_LINE" != "Status: 200 OK" ]; then
		fail "$1" "status line: $CGI_STATUS_LINE" "body: ${CGI_BODY:0:300}"
		return
	fi
	json_check "$1" "$CGI_BODY_FILE" "(lambda u: keys(d) == ['results','total','limit','from','next'] and ($2))([t['uid'] for t in d['results']])"
}

section "tasks, in every status, byte for byte as lmtasks get prints them"
for uid in 0 1 2 3 4 5; do
	cgi GET "/tasks/$uid"
	same_as_get "GET /tasks/$uid ($(json_get "$CGI_BODY_FILE" 'd["status"]' 2>/dev/null)) = lmtasks get $uid" "$uid"
done
cgi GET /indexes/movies/tasks/0
same_as_get "GET /indexes/movies/tasks/0 = lmtasks get 0" 0
cgi GET /indexes/books/tasks/1
same_as_get "GET /indexes/books/tasks/1 (failed, with error) = lmtasks get 1" 1
cgi GET /tasks/5
json_check "task keys in order, null finishedAt/duration while processing" "$CGI_BODY_FILE" \
	'keys(d) == ["uid","indexUid","status","type","details","duration","enqueuedAt","startedAt","finishedAt"] and d["duration"] is None and d["finishedAt"] is None'

section "lists: envelope, limit, from, reverse, next"
cgi GET /tasks
same_as_list "GET /tasks = lmtasks list"
page "GET /tasks: newest first, total 6, limit 20, from 5, next null" \
	'u == [5,4,3,2,1,0] and d["total"] == 6 and d["limit"] == 20 and d["from"] == 5 and d["next"] is None'
cgi GET '/tasks?limit=2'
same_as_list "GET /tasks?limit=2 = lmtasks list --limit 2" --limit 2
page "GET /tasks?limit=2: [5,4], from 5, next 3" \
	'u == [5,4] and d["total"] == 6 and d["limit"] == 2 and d["from"] == 5 and d["next"] == 3'
cgi GET '/tasks?limit=2&from=3'
page "GET /tasks?limit=2&from=3: [3,2], next 1" \
	'u == [3,2] and d["total"] == 6 and d["from"] == 3 and d["next"] == 1'
cgi GET '/tasks?limit=2&from=1'
page "GET /tasks?limit=2&from=1: last page [1,0], next null" \
	'u == [1,0] and d["from"] == 1 and d["next"] is None'
cgi GET '/tasks?reverse=true&limit=4'
same_as_list "GET /tasks?reverse=true&limit=4 = lmtasks list --reverse --limit 4" --reverse --limit 4
page "GET /tasks?reverse=true&limit=4: oldest first [0..3], next 4" \
	'u == [0,1,2,3] and d["from"] == 0 and d["next"] == 4 and d["total"] == 6'
cgi GET '/tasks?reverse=true&from=4'
page "GET /tasks?reverse=true&from=4: [4,5], next null" 'u == [4,5] and d["next"] is None'
cgi GET '/tasks?reverse=false&limit=1'
page "GET /tasks?reverse=false&limit=1: [5], next 4" 'u == [5] and d["next"] == 4'
cgi GET '/tasks?from=100&limit=3'
page "GET /tasks?from=100: starts at the newest below it" 'u == [5,4,3] and d["next"] == 2'
cgi GET '/tasks?limit=0'
answer "GET /tasks?limit=0: exact envelope" "200 OK" '{"results":[],"total":6,"limit":0,"from":null,"next":5}'
cgi GET '/tasks?limit=1000'
page "GET /tasks?limit=1000 (the maximum)" 'u == [5,4,3,2,1,0] and d["limit"] == 1000'
cgi GET /indexes/movies/tasks
page "GET /indexes/movies/tasks: only movies [5,2,0], total 3" \
	'u == [5,2,0] and d["total"] == 3 and all(t["indexUid"] == "movies" for t in d["results"])'
cgi GET '/indexes/books/tasks?limit=1'
page "GET /indexes/books/tasks?limit=1: [4], total 2, next 1" \
	'u == [4] and d["total"] == 2 and d["next"] == 1'
cgi GET '/indexes/books/tasks?reverse=true'
page "GET /indexes/books/tasks?reverse=true: [1,4]" 'u == [1,4] and d["next"] is None'

section "health"
cgi GET /health
answer "GET /health" "200 OK" '{"status":"available"}'

section "not found"
cgi GET /tasks/99
answer "GET /tasks/99: task_not_found" "404 Not Found" "$(errbody task_not_found 'Task `99` not found.')"
cgi GET /tasks/18446744073709551614
answer "GET /tasks/18446744073709551614 (largest uid): task_not_found" "404 Not Found" \
	"$(errbody task_not_found 'Task `18446744073709551614` not found.')"
cgi GET /indexes/books/tasks/0
answer "GET /indexes/books/tasks/0 (a movies task): task_not_found" "404 Not Found" \
	"$(errbody task_not_found 'Task `0` not found.')"
cgi GET /indexes/books/tasks/3
answer "GET /indexes/books/tasks/3 (the store's own task): task_not_found" "404 Not Found" \
	"$(errbody task_not_found 'Task `3` not found.')"
cgi GET /indexes/nope/tasks
answer "GET /indexes/nope/tasks: index_not_found" "404 Not Found" \
	"$(errbody index_not_found 'Index `nope` not found.')"
cgi GET /indexes/nope/tasks/0
answer "GET /indexes/nope/tasks/0: index_not_found" "404 Not Found" \
	"$(errbody index_not_found 'Index `nope` not found.')"
for p in /nope /tasks/1/extra / /indexes/movies /indexes /tasks// /health/x; do
	cgi GET "$p"
	answer "GET $p: 404 JSON" "404 Not Found" "$(errbody not_found "Route \`$p\` not found.")"
done

section "bad uids and index uids"
for u in abc -1 1.0 0x1 99999999999999999999 18446744073709551615; do
	cgi GET "/tasks/$u"
	answer "GET /tasks/$u: invalid_task_uids" "400 Bad Request" \
		"$(errbody invalid_task_uids "Task uid \`$u\` is invalid. It should only contain numeric characters.")"
done
cgi GET /indexes/movies/tasks/abc
answer "GET /indexes/movies/tasks/abc: invalid_task_uids" "400 Bad Request" \
	"$(errbody invalid_task_uids 'Task uid `abc` is invalid. It should only contain numeric characters.')"
IDX_MSG='is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes.'
cgi GET /indexes/bad%20name/tasks
answer "GET /indexes/bad%20name/tasks: invalid_index_uid" "400 Bad Request" \
	"$(errbody invalid_index_uid "\`bad name\` $IDX_MSG")"
cgi GET /indexes/a.b/tasks/0
answer "GET /indexes/a.b/tasks/0: invalid_index_uid" "400 Bad Request" \
	"$(errbody invalid_index_uid "\`a.b\` $IDX_MSG")"
long=$(printf 'a%.0s' {1..401})
cgi GET "/indexes/$long/tasks"
json_check "GET /indexes/<401 bytes>/tasks: 400 invalid_index_uid" "$CGI_BODY_FILE" \
	'd["code"] == "invalid_index_uid" and d["type"] == "invalid_request" and keys(d) == ["message","code","type","link"]'
long=$(printf 'a%.0s' {1..400})
cgi GET "/indexes/$long/tasks"
answer "GET /indexes/<400 bytes>/tasks: a valid uid, index_not_found" "404 Not Found" \
	"$(errbody index_not_found "Index \`$long\` not found.")"

section "hostile bytes are quoted safely: the error bodies stay valid JSON"
for p in /tasks/%ff%fe /tasks/%00 /tasks/%01 '/tasks/a%5Cb' '/indexes/a%22b/tasks' \
    "/indexes/$(printf '%%ff%.0s' {1..300})/tasks" '/tasks?%ff=1' '/tasks?a%22b=1' \
    '/tasks?limit=%ff' '/tasks?from=%221' "/tasks?limit=$(printf '9%.0s' {1..2000})"; do
	cgi GET "$p"
	answer "GET ${p:0:60}: 400 with a JSON body" "400 Bad Request"
done
cgi GET "/tasks/$(printf 'a%.0s' {1..5000})"
json_check "GET /tasks/<5000 bytes>: 414 JSON" "$CGI_BODY_FILE" \
	'keys(d) == ["message","code","type","link"]'
answer "GET /tasks/<5000 bytes>: status line and headers" "414 URI Too Long"

section "query parameters"
cgi GET '/tasks?limit=abc'
answer "limit=abc: invalid_task_limit" "400 Bad Request" \
	"$(errbody invalid_task_limit 'Invalid value in parameter `limit`: could not parse `abc` as a positive integer')"
cgi GET '/tasks?limit=-1'
answer "limit=-1: invalid_task_limit" "400 Bad Request" \
	"$(errbody invalid_task_limit 'Invalid value in parameter `limit`: could not parse `-1` as a positive integer')"
cgi GET '/tasks?limit=1001'
answer "limit=1001: invalid_task_limit" "400 Bad Request" \
	"$(errbody invalid_task_limit 'Invalid value in parameter `limit`: `1001` is above the maximum of 1000.')"
# The same after a longer value: what is quoted is the value itself, nothing left behind.
cgi GET '/tasks?from=123456789&limit=1001'
answer "from=123456789&limit=1001: the message quotes \`1001\` and nothing else" "400 Bad Request" \
	"$(errbody invalid_task_limit 'Invalid value in parameter `limit`: `1001` is above the maximum of 1000.')"
cgi GET '/tasks?limit='
answer "limit= (empty): invalid_task_limit" "400 Bad Request" \
	"$(errbody invalid_task_limit 'Invalid value in parameter `limit`: could not parse `` as a positive integer')"
cgi GET '/tasks?from=x'
answer "from=x: invalid_task_from" "400 Bad Request" \
	"$(errbody invalid_task_from 'Invalid value in parameter `from`: could not parse `x` as a positive integer')"
cgi GET '/tasks?from=-1'
answer "from=-1: invalid_task_from" "400 Bad Request" \
	"$(errbody invalid_task_from 'Invalid value in parameter `from`: could not parse `-1` as a positive integer')"
for v in 1 TRUE yes; do
	cgi GET "/tasks?reverse=$v"
	answer "reverse=$v: invalid_task_reverse" "400 Bad Request" \
		"$(errbody invalid_task_reverse "Invalid value in parameter \`reverse\`: could not parse \`$v\` as a boolean, expected either \`true\` or \`false\`")"
done
for q in 'x=1' 'foo' 'limit=1&colour=red'; do
	cgi GET "/tasks?$q"
	n=${q##*&}
	n=${n%%=*}
	json_check "?$q: 400 bad_request naming \`$n\`" "$CGI_BODY_FILE" \
		"d['code'] == 'bad_request' and d['type'] == 'invalid_request' and keys(d) == ['message','code','type','link'] and d['link'] == 'https://docs.meilisearch.com/errors#bad_request' and d['message'].startswith('Unknown parameter \`$n\`: expected one of \`limit\`, \`from\`') and '\`reverse\`' in d['message']"
done
answer "unknown parameter: status line and headers" "400 Bad Request"
cgi GET '/tasks?limit=1&limit=2'
answer "limit twice: bad_request" "400 Bad Request" \
	"$(errbody bad_request 'Parameter `limit` is given more than once.')"
cgi GET '/tasks?from=1&reverse=true&from=1'
answer "from twice: bad_request" "400 Bad Request" \
	"$(errbody bad_request 'Parameter `from` is given more than once.')"
cgi GET '/indexes/nope/tasks?limit=x'
answer "parameters are checked before the index: invalid_task_limit" "400 Bad Request" \
	"$(errbody invalid_task_limit 'Invalid value in parameter `limit`: could not parse `x` as a positive integer')"
cgi GET '/tasks?%6Cimit=1&from=%35'
page "percent-encoded parameter name and value (%6Cimit=1&from=%35)" 'u == [5] and d["limit"] == 1'
cgi GET '/tasks?&limit=1&'
page "empty parameters (stray &) are ignored" 'u == [5]'

section "methods"
for m in POST PUT DELETE PATCH; do
	cgi "$m" /tasks
	answer "$m /tasks: 405" "405 Method Not Allowed" \
		"$(errbody method_not_allowed "Method \`$m\` is not allowed here: the tasks API answers GET and HEAD.")"
	assert_eq "$m /tasks: Allow: GET, HEAD" "GET, HEAD" "${HDR[allow]:-}"	# (answer read them)
done
for p in /tasks/1 /indexes/movies/tasks /indexes/movies/tasks/0 /health; do
	cgi POST "$p"
	headers_of "$CGI_HEADERS"
	if [ "$CGI_CODE" = 405 ] && [ "${HDR[allow]:-}" = "GET, HEAD" ]; then
		answer "POST $p: 405 with Allow: GET, HEAD" "405 Method Not Allowed"
	else
		fail "POST $p: 405 with Allow: GET, HEAD" "status: $CGI_STATUS_LINE" "Allow: ${HDR[allow]:-}"
	fi
done
cgi GET /tasks
headers_of "$CGI_HEADERS"
assert_eq "GET /tasks: no Allow header" "" "${HDR[allow]:-}"
for p in /tasks/1 /tasks '/tasks?limit=2' /indexes/movies/tasks /health /tasks/99 /tasks/abc /indexes/nope/tasks /nope; do
	cgi GET "$p"
	bytes_of "$CGI_HEADERS"
	gh=$REPLY
	cgi HEAD "$p"
	bytes_of "$CGI_HEADERS"
	if [ "$gh" == "$REPLY" ] && [ ! -s "$CGI_BODY_FILE" ] && [ "$CGI_RC" -eq 0 ]; then
		ok "HEAD $p: the same headers as GET, no body"
	else
		fail "HEAD $p: the same headers as GET, no body" "GET:  ${gh//[$'\r\n']/ }" \
			"HEAD: $(tr '\r\n' '  ' <"$CGI_HEADERS")" "body: $(head -c 200 "$CGI_BODY_FILE")"
	fi
done

section "paths: percent-decoding, trailing slash, mounting"
cgi GET /tasks/%31
same_as_get "GET /tasks/%31 = task 1" 1
cgi GET /indexes/mov%69es/tasks/%30
same_as_get "GET /indexes/mov%69es/tasks/%30 = task 0" 0
cgi GET /%74asks
same_as_list "GET /%74asks = /tasks"
cgi GET /tasks/%zz
answer "GET /tasks/%zz: 400 bad_request" "400 Bad Request" \
	"$(errbody bad_request 'The request path has a malformed percent-escape in `%zz`.')"
cgi GET /tasks/
same_as_list "GET /tasks/ (one trailing slash) = /tasks"
cgi GET /tasks/1/
same_as_get "GET /tasks/1/ = task 1" 1
cgi GET '/indexes/movies/tasks/?limit=1'
page "GET /indexes/movies/tasks/?limit=1" 'u == [5] and d["total"] == 3'
cgi GET /health/
answer "GET /health/" "200 OK" '{"status":"available"}'
cgi GET /api/tasks/1 SCRIPT_NAME=/api PATH_INFO=/tasks/1
same_as_get "prefix: SCRIPT_NAME=/api PATH_INFO=/tasks/1 REQUEST_URI=/api/tasks/1" 1
cgi GET '/api/tasks?limit=1&reverse=true' SCRIPT_NAME=/api PATH_INFO=/tasks
page "prefix: /api/tasks?limit=1&reverse=true" 'u == [0] and d["next"] == 1'
cgi GET /api/tasks/%32 SCRIPT_NAME=/api PATH_INFO=/tasks/2
same_as_get "prefix: /api/tasks/%32 (PATH_INFO decoded) = task 2" 2
cgi GET /api/indexes/movies/tasks/5/ SCRIPT_NAME=/api PATH_INFO=/indexes/movies/tasks/5/
same_as_get "prefix: /api/indexes/movies/tasks/5/" 5
cgi GET /api/nope SCRIPT_NAME=/api PATH_INFO=/nope
answer "prefix: /api/nope: 404 names the path under the prefix" "404 Not Found" \
	"$(errbody not_found 'Route `/nope` not found.')"
cgi GET /cgi-bin/lmtasks.cgi/tasks/%31 SCRIPT_NAME=/cgi-bin/lmtasks.cgi PATH_INFO=/tasks/1
same_as_get "Apache CGI: SCRIPT_NAME=/cgi-bin/lmtasks.cgi PATH_INFO=/tasks/1" 1
cgi GET /tasks/1 REQUEST_URI= SCRIPT_NAME=/cgi-bin/lmtasks.cgi PATH_INFO=/tasks/1
same_as_get "no REQUEST_URI: PATH_INFO=/tasks/1 alone" 1
cgi GET /x REQUEST_URI= SCRIPT_NAME=/cgi-bin/lmtasks.cgi PATH_INFO=/indexes/books/tasks QUERY_STRING=limit=1
page "no REQUEST_URI: PATH_INFO=/indexes/books/tasks QUERY_STRING=limit=1" 'u == [4]'

section "keys: the master key file from the server's environment, Authorization as HTTP_AUTHORIZATION"
MK=$T/master.key
printf '%s\n' "cgi-suite-master-key-0123456789abcdef" >"$MK"
chmod 600 "$MK"
MASTER="Bearer cgi-suite-master-key-0123456789abcdef"
BOOKS_KEY=$(L key create --indexes books 2>/dev/null | sed -n 's/^{"key":"\([^"]*\)".*/\1/p')
MISSING_AUTH=$(errbody missing_authorization_header 'The Authorization header is missing. It must use the bearer authorization method.' auth)
INVALID_KEY=$(errbody invalid_api_key 'The provided API key is invalid.' auth)
K=(LMTASKS_MASTER_KEY_FILE="$MK")
cgi GET /tasks/0 "${K[@]}"
answer "master key set, no Authorization: 401 missing_authorization_header" "401 Unauthorized" "$MISSING_AUTH"
cgi GET /tasks/0 "${K[@]}" HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz"
answer "Authorization: Basic ...: 401 missing_authorization_header" "401 Unauthorized" "$MISSING_AUTH"
cgi GET /tasks/0 "${K[@]}" HTTP_AUTHORIZATION="Bearer not-the-key"
answer "a wrong key: 403 invalid_api_key" "403 Forbidden" "$INVALID_KEY"
cgi GET /tasks/0 "${K[@]}" HTTP_AUTHORIZATION="$MASTER"
same_as_get "the master key: GET /tasks/0 = lmtasks get 0" 0
CGI_ARGS=(--master-key-file "$MK")
cgi GET /tasks "${K[@]}"
answer "--master-key-file: no Authorization: 401" "401 Unauthorized" "$MISSING_AUTH"
cgi GET /tasks HTTP_AUTHORIZATION="$MASTER"
same_as_list "--master-key-file and the master key: GET /tasks = lmtasks list"
CGI_ARGS=()
cgi HEAD /tasks/0 "${K[@]}"
if [ "$CGI_CODE" = 401 ] && [ ! -s "$CGI_BODY_FILE" ]; then
	ok "HEAD without a key: 401, no body"
else
	fail "HEAD without a key: 401, no body" "$CGI_STATUS_LINE" "body: $CGI_BODY"
fi
if [ -n "$BOOKS_KEY" ]; then
	B=(HTTP_AUTHORIZATION="Bearer $BOOKS_KEY")
	cgi GET /tasks "${K[@]}" "${B[@]}"
	page "a key for books: GET /tasks lists only books' tasks [4,1]" \
		'u == [4,1] and d["total"] == 2 and all(t["indexUid"] == "books" for t in d["results"])'
	cgi GET /tasks/0 "${K[@]}" "${B[@]}"
	answer "a key for books: GET /tasks/0 (movies): 404 task_not_found" "404 Not Found" \
		"$(errbody task_not_found 'Task `0` not found.')"
	cgi GET /tasks/1 "${K[@]}" "${B[@]}"
	same_as_get "a key for books: GET /tasks/1 (books) = lmtasks get 1" 1
	cgi GET /indexes/movies/tasks "${K[@]}" "${B[@]}"
	answer "a key for books: GET /indexes/movies/tasks: 403 invalid_api_key" "403 Forbidden" "$INVALID_KEY"
	cgi GET /indexes/books/tasks/4 "${K[@]}" "${B[@]}"
	same_as_get "a key for books: GET /indexes/books/tasks/4" 4
	L key delete "$BOOKS_KEY" >/dev/null 2>&1
	cgi GET /indexes/books/tasks/4 "${K[@]}" "${B[@]}"
	answer "a deleted key: 403 invalid_api_key" "403 Forbidden" "$INVALID_KEY"
else
	fail "lmtasks key create --indexes books prints a key"
fi

section "the store: from the environment, or missing"
CGI_DB=
cgi GET /tasks/0 LMTASKS_DB="$S"
same_as_get "LMTASKS_DB in the environment (SetEnv / fastcgi_param) names the store" 0
CGI_DB=$T/missing
for p in /health /tasks /tasks/0 /indexes/movies/tasks; do
	cgi GET "$p"
	if [ "$CGI_CODE" = 503 ]; then
		answer "missing store: GET $p: 503" "503 Service Unavailable"
	else
		fail "missing store: GET $p: 503" "got: $CGI_STATUS_LINE ${CGI_BODY:0:300}"
	fi
done
cgi GET /health
json_check "missing store: the 503 body is an error object naming the store" "$CGI_BODY_FILE" \
	"keys(d) == ['message','code','type','link'] and d['type'] == 'internal' and '$T/missing' in d['message'] and d['link'].endswith('#' + d['code'])"
assert_eq "missing store: one log line on stderr" 1 "$(printf '%s\n' "$CGI_STDERR" | grep -c .)"
assert_contains "missing store: the log line names the request (GET /health)" "GET /health" "$CGI_STDERR"
[ ! -e "$T/missing" ] && ok "missing store: the reader created nothing" ||
	fail "missing store: the reader created nothing" "$(ls -la "$T/missing")"
cgi GET '/tasks?limit=x'
answer "missing store: a bad parameter is still a 400" "400 Bad Request" \
	"$(errbody invalid_task_limit 'Invalid value in parameter `limit`: could not parse `x` as a positive integer')"
CGI_DB=$S
cgi GET /tasks/0
assert_eq "a good request logs nothing" "" "$CGI_STDERR"

echo "# cgi.sh took $(elapsed "$START") s"
summary
