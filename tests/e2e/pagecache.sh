#!/usr/bin/env bash
# The responder's page cache (lmtasks-fcgi --page-cache, README "Speed") through a real
# nginx: a list page asked again before the next write is the kept copy, and every answer
# is, byte for byte, what CGI (which keeps nothing) answers for the same store and request
# — after writes, with keys that see different indexes, a layout switch, HEAD, and a cache
# too small to keep much.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/pagecache.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_nginx
command -v curl >/dev/null || lmt_skip_all "no curl"

T=$HTTP_TMP
S=$T/store
http_demo_store pagecache.sh
MASTER=pagecache-suite-master-key-0123456789
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"
BOOKS_KEY=$(L key create --indexes books | json_get - 'd["key"]')
[ -n "$BOOKS_KEY" ] || { echo "pagecache.sh: no key made" >&2; exit 99; }

# One thread, so that every request meets the same worker's cache; a second responder
# keeps nothing (--page-cache 0), a third keeps 4 KiB.
fcgi_start "$T/c.sock" "$S" 1 --master-key-file "$T/master.key" || exit 99
C_LOG=$FCGI_LOG
fcgi_start "$T/n.sock" "$S" 1 --master-key-file "$T/master.key" --page-cache 0 || exit 99
fcgi_start "$T/s.sock" "$S" 1 --master-key-file "$T/master.key" --page-cache 4K || exit 99
loc() { printf 'location /%s/ { fastcgi_split_path_info ^(/%s)(/.*)$; include fastcgi_params; fastcgi_param PATH_INFO $fastcgi_path_info; fastcgi_keep_conn on; fastcgi_pass unix:%s; }\n' "$1" "$1" "$2"; }
http_nginx_start pagecache "" "$(loc c "$T/c.sock") $(loc n "$T/n.sock") $(loc s "$T/s.sock")" || exit 99

# same NAME URI [KEY]: each responder answers URI as CGI does (status and body); those that
# keep pages three times (a page is kept on its second ask, the third is the copy).
same() {
	local name=$1 uri=$2 key=${3:-$MASTER} r want
	cgi GET "$uri" LMTASKS_DB="$S" LMTASKS_MASTER_KEY_FILE="$T/master.key" \
		HTTP_AUTHORIZATION="Bearer $key"
	want="$CGI_CODE $CGI_BODY"
	for r in c c c n s s s; do
		http GET "/$r$uri" -H "Authorization: Bearer $key"
		if [ "$HTTP_STATUS $HTTP_BODY" != "$want" ]; then
			fail "$name" "responder $r, $uri" "expected: ${want:0:300}" "got: ${HTTP_STATUS} ${HTTP_BODY:0:300}"
			return
		fi
	done
	ok "$name"
}

section "pages asked again, between writes"
same "a page, asked three times from each responder" '/tasks?limit=3'
same "an index's page" '/indexes/movies/tasks?limit=2'
same "a filtered page" '/tasks?statuses=succeeded,failed&limit=5'
same "another limit is another page" '/tasks?limit=2'
before=$(curl -s -H "Authorization: Bearer $MASTER" "$HTTP_BASE/c/tasks?limit=3")
L enqueue movies documentAddition >/dev/null
same "after an enqueue: the new task on the page" '/tasks?limit=3'
assert_contains "the new task (5) is first" '{"results":[{"uid":5,' \
	"$(curl -s -H "Authorization: Bearer $MASTER" "$HTTP_BASE/c/tasks?limit=3")"
assert_ne "and the page is not the one kept before the write" "$before" \
	"$(curl -s -H "Authorization: Bearer $MASTER" "$HTTP_BASE/c/tasks?limit=3")"
L claim --index movies >/dev/null
L succeed 5 >/dev/null
same "after claim and succeed: its new status" '/indexes/movies/tasks?limit=2'
same "and on a status page" '/tasks?statuses=succeeded'

section "keys: each sees its own page"
same "the books key's page of /tasks" '/tasks?limit=10' "$BOOKS_KEY"
same "the master key's page of /tasks" '/tasks?limit=10'
same "the books key again, after the master's" '/tasks?limit=10' "$BOOKS_KEY"
http GET '/c/tasks?limit=10' -H "Authorization: Bearer $BOOKS_KEY"
assert_eq "the books key sees no movies task" "" "$(grep -o '"indexUid":"movies"' <<<"$HTTP_BODY")"
http GET '/c/tasks?limit=10' -H "Authorization: Bearer wrong-key"
assert_eq "a wrong key after the page was kept: 403" 403 "$HTTP_STATUS"
books_uid=$(L key list | json_get - '[k["uid"] for k in d["results"] if k.get("indexes") == ["books"]][0]')
L key delete "$books_uid" >/dev/null
http GET '/c/tasks?limit=10' -H "Authorization: Bearer $BOOKS_KEY"
assert_eq "a deleted key's page is never served again: 403" 403 "$HTTP_STATUS"

section "the layout, HEAD, a small cache"
L config compat v1 >/dev/null
same "after config compat v1: the v1 layout" '/tasks?limit=3'
http GET '/c/tasks?limit=3' -H "Authorization: Bearer $MASTER"
assert_contains "with batchUid" '"batchUid":' "$HTTP_BODY"
http HEAD '/c/tasks?limit=4' -H "Authorization: Bearer $MASTER"
assert_eq "HEAD of a page: 200 without a body" "200 ''" "$HTTP_STATUS '$HTTP_BODY'"
same "then its GET: the whole page" '/tasks?limit=4'
for from in 5 4 3 2 1 0 5 4 3 2 1 0; do
	http GET "/s/tasks?limit=1&from=$from" -H "Authorization: Bearer $MASTER"
	echo "$HTTP_STATUS $HTTP_BODY"
done >"$T/small.out"
for from in 5 4 3 2 1 0 5 4 3 2 1 0; do
	cgi GET "/tasks?limit=1&from=$from" LMTASKS_DB="$S" LMTASKS_MASTER_KEY_FILE="$T/master.key" \
		HTTP_AUTHORIZATION="Bearer $MASTER"
	echo "$CGI_CODE $CGI_BODY"
done >"$T/small.want"
assert_eq "a 4 KiB cache, twelve pages asked round: CGI's answers" "$(cat "$T/small.want")" \
	"$(cat "$T/small.out")"
same "a page over a quarter of 4 KiB (answered, not kept)" '/tasks?limit=20'
assert_match "the log names the cache" 'with 1 threads, 524288 bytes of list pages each' \
	"$(cat "$C_LOG")"

section "--page-cache"
assert_exit 2 "$LMTASKS_FCGI" --page-cache 1x
assert_contains "its message" "--page-cache wants a size in bytes" "$LMT_STDERR"
assert_exit 2 "$LMTASKS_FCGI" --page-cache 2G
assert_exit 2 "$LMTASKS_FCGI" --page-cache -1
assert_match "--help names it" '--page-cache SIZE' "$("$LMTASKS_FCGI" --help)"

summary
