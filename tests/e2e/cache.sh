#!/usr/bin/env bash
# Validators and caches (README "Caches"): ETag, If-None-Match and 304, Cache-Control, and
# nginx's fastcgi_cache configured by nginx/lmtasks-cache.conf in a real nginx on
# 127.0.0.1.  The point above all: no cache ever serves a task that is not finished yet
# in an old state.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/cache.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
[ -x "$HTTP_NGINX" ] || lmt_skip_all "no nginx (apt-get install nginx)"
command -v curl >/dev/null || lmt_skip_all "no curl"
[ -f /etc/nginx/fastcgi_params ] || lmt_skip_all "no /etc/nginx/fastcgi_params"

T=$HTTP_TMP
S=$T/store
http_demo_store cache.sh
CGI_DB=$S

# uid_of JSON: the uid an enqueue printed.
uid_of() { sed -n 's/^{"uid":\([0-9]*\),.*/\1/p' <<<"$1"; }
# status_of: the status in the last HTTP body.
status_of() { sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' <<<"$HTTP_BODY" | head -1; }

section "the responder's own headers (CGI)"
cgi GET /tasks/0
assert_eq "a finished task: Cache-Control max-age=60" "max-age=60" "$(cgi_header Cache-Control)"
tag0=$(cgi_header ETag)
assert_match "a finished task has a quoted ETag" '^"[0-9a-f]+\.[0-9a-f]+"$' "$tag0"
body0=$CGI_BODY
cgi GET /tasks/0
assert_eq "the same task, the same ETag" "$tag0" "$(cgi_header ETag)"
cgi GET /indexes/movies/tasks/0
assert_eq "under its index, the same ETag" "$tag0" "$(cgi_header ETag)"
cgi GET /tasks/0 HTTP_IF_NONE_MATCH="$tag0"
assert_eq "If-None-Match with its ETag: 304" "Status: 304 Not Modified" "$CGI_STATUS_LINE"
assert_eq "a 304 has no body" "" "$CGI_BODY"
assert_eq "a 304 has no Content-Length" "" "$(cgi_header Content-Length)"
assert_eq "a 304 repeats the ETag" "$tag0" "$(cgi_header ETag)"
assert_eq "a 304 repeats Cache-Control" "max-age=60" "$(cgi_header Cache-Control)"
cgi GET /tasks/0 HTTP_IF_NONE_MATCH="\"x\", W/$tag0"
assert_eq "a weak tag in a list matches (RFC 9110 weak comparison)" "Status: 304 Not Modified" "$CGI_STATUS_LINE"
cgi GET /tasks/0 HTTP_IF_NONE_MATCH='*'
assert_eq "If-None-Match: * on an existing task: 304" "Status: 304 Not Modified" "$CGI_STATUS_LINE"
cgi GET /tasks/0 HTTP_IF_NONE_MATCH='"0.0"'
assert_eq "another ETag: 200 with the body" "200 $body0" "$CGI_CODE $CGI_BODY"
cgi HEAD /tasks/0 HTTP_IF_NONE_MATCH="$tag0"
assert_eq "HEAD with the ETag: 304" "Status: 304 Not Modified" "$CGI_STATUS_LINE"
cgi HEAD /tasks/0
assert_eq "HEAD: 200, the ETag of GET, no body" "200 $tag0 ''" "$CGI_CODE $(cgi_header ETag) '$CGI_BODY'"
cgi GET /tasks/999999 HTTP_IF_NONE_MATCH='*'
assert_eq "a missing task: 404 even with If-None-Match: *" 404 "$CGI_CODE"
assert_eq "an error: Cache-Control no-store, no ETag" "no-store ''" "$(cgi_header Cache-Control) '$(cgi_header ETag)'"
cgi GET /health
assert_eq "/health: no-store, no ETag" "200 no-store ''" "$CGI_CODE $(cgi_header Cache-Control) '$(cgi_header ETag)'"
cgi GET '/tasks?limit=2'
ptag=$(cgi_header ETag)
assert_eq "a list: Cache-Control no-cache" "no-cache" "$(cgi_header Cache-Control)"
assert_match "a list has an ETag" '^"[0-9a-f]+\.[0-9a-f]+"$' "$ptag"
cgi GET '/tasks?limit=2' HTTP_IF_NONE_MATCH="$ptag"
assert_eq "a list's ETag, unchanged store: 304" "Status: 304 Not Modified" "$CGI_STATUS_LINE"
cgi GET '/tasks?limit=3' HTTP_IF_NONE_MATCH="$ptag"
assert_eq "parameters are checked before the tag: a bad one is 400" 400 \
	"$(cgi GET '/tasks?limit=x' HTTP_IF_NONE_MATCH="$ptag"; echo "$CGI_CODE")"

u=$(uid_of "$(L enqueue movies documentAddition)")
cgi GET "/tasks/$u"
assert_eq "an enqueued task: Cache-Control no-cache" "no-cache" "$(cgi_header Cache-Control)"
utag=$(cgi_header ETag)
cgi GET '/tasks?limit=2' HTTP_IF_NONE_MATCH="$ptag"
assert_eq "after a write, the list's old ETag gets a 200" 200 "$CGI_CODE"
L start "$u" >/dev/null
cgi GET "/tasks/$u" HTTP_IF_NONE_MATCH="$utag"
assert_eq "the task started: its old ETag gets a 200, processing" "200 processing" \
	"$CGI_CODE $(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' <<<"$CGI_BODY")"
L succeed "$u" >/dev/null
cgi GET "/tasks/$u" HTTP_IF_NONE_MATCH="$(cgi_header ETag)"
assert_eq "the task finished: its processing ETag gets a 200, succeeded, max-age" \
	"200 succeeded max-age=60" \
	"$CGI_CODE $(sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' <<<"$CGI_BODY") $(cgi_header Cache-Control)"

section "nginx with nginx/lmtasks-cache.conf"
sed "s|/var/cache/nginx/lmtasks|$T/cache|" "$top_srcdir/nginx/lmtasks-cache-zone.conf" >"$T/zone.conf"
fcgi_start "$T/fcgi.sock" "$S" 2 || exit 99
http_nginx_start cache "upstream lmtasks { server unix:$T/fcgi.sock; keepalive 8; }
	include $T/zone.conf;" "
		location / {
			include fastcgi_params;
			fastcgi_pass lmtasks;
			fastcgi_keep_conn on;
			include $top_srcdir/nginx/lmtasks-cache.conf;
			add_header X-Cache \$upstream_cache_status always;
		}
		location /plain/ {
			fastcgi_split_path_info ^(/plain)(/.*)\$;
			include fastcgi_params;
			fastcgi_param PATH_INFO \$fastcgi_path_info;
			fastcgi_pass lmtasks;
			fastcgi_keep_conn on;
		}" || exit 99

http GET /tasks/0
assert_eq "a finished task through the cache: 200, the responder's bytes" "200 $body0" "$HTTP_STATUS $HTTP_BODY"
http GET /tasks/0
assert_eq "asked again: a cache HIT, the same bytes" "HIT $body0" "$(http_header X-Cache) $HTTP_BODY"
http GET /tasks/0 -H "If-None-Match: $tag0"
assert_eq "If-None-Match on the cached task: 304, no body" "304 ''" "$HTTP_STATUS '$HTTP_BODY'"
http HEAD /indexes/movies/tasks/0
hl=$(http_header Content-Length)
assert_eq "HEAD first: 200 and no body, the GET's length" "200 ${#body0}" "$HTTP_STATUS $hl"
http HEAD /indexes/movies/tasks/0
assert_eq "HEAD again: from the cache" "HIT" "$(http_header X-Cache)"
http GET /indexes/movies/tasks/0
assert_eq "GET after a cached HEAD: the whole body, never the HEAD's empty one" "200 $body0" "$HTTP_STATUS $HTTP_BODY"
http HEAD /tasks/0 -H "If-None-Match: $tag0"
assert_eq "HEAD with If-None-Match on a cached task: 304" 304 "$HTTP_STATUS"
http GET /tasks/0 -H "Authorization: Bearer whatever-key-16bytes"
assert_eq "a request with a key bypasses the cache" "BYPASS" "$(http_header X-Cache)"

# The rule the cache must keep: enqueue -> GET -> start/succeed -> GET shows the new state.
u=$(uid_of "$(L enqueue books documentAddition)")
states=()
for step in enqueued start processing succeed succeeded; do
	case $step in
	start | succeed) L "$step" "$u" >/dev/null; continue ;;
	esac
	for path in "/tasks/$u" "/indexes/books/tasks/$u" "/tasks?uids=$u" "/indexes/books/tasks?limit=1"; do
		http GET "$path"
		http GET "$path"	# twice: a second read is where a cache would answer
		states+=("$path:$(status_of)")
	done
done
assert_eq "every read through the cache shows the task's state of that moment" \
	"/tasks/$u:enqueued /indexes/books/tasks/$u:enqueued /tasks?uids=$u:enqueued /indexes/books/tasks?limit=1:enqueued /tasks/$u:processing /indexes/books/tasks/$u:processing /tasks?uids=$u:processing /indexes/books/tasks?limit=1:processing /tasks/$u:succeeded /indexes/books/tasks/$u:succeeded /tasks?uids=$u:succeeded /indexes/books/tasks?limit=1:succeeded" \
	"${states[*]}"
http GET "/tasks/$u"
assert_eq "the finished task is now served from the cache" "HIT succeeded" "$(http_header X-Cache) $(status_of)"

v=$(uid_of "$(L enqueue books documentAddition)")
http GET "/tasks/$v"
http GET "/tasks/$v"
assert_eq "an enqueued task is never a cache HIT" "MISS enqueued" "$(http_header X-Cache) $(status_of)"
http GET "/tasks?limit=1"
http GET "/tasks?limit=1"
assert_eq "a list is never a cache HIT" "MISS" "$(http_header X-Cache)"
ltag=$(http_header ETag)
http GET "/plain/tasks?limit=1" -H "If-None-Match: $ltag"
assert_eq "a list's ETag through nginx without the cache: the responder's 304" "304 ''" \
	"$HTTP_STATUS '$HTTP_BODY'"
http GET "/tasks?limit=1" -H "If-None-Match: $ltag"
assert_eq "through the cache location nginx keeps If-None-Match to itself: a list comes whole" \
	"200 $ltag" "$HTTP_STATUS $(http_header ETag)"
L cancel "$v" >/dev/null
http GET "/tasks/$v"
assert_eq "canceled: the new state at once" "canceled" "$(status_of)"
http GET "/plain/tasks?limit=1" -H "If-None-Match: $ltag"
assert_eq "after a write the list's old ETag gets a 200" 200 "$HTTP_STATUS"
http GET /tasks/999999
http GET /tasks/999999
assert_eq "a 404 is never a cache HIT" "404 MISS" "$HTTP_STATUS $(http_header X-Cache)"

# What the 60 s are for: a deleted finished task may still come from the cache.
L delete 0 >/dev/null
http GET /tasks/0
assert_eq "deleted, task 0 is still a HIT within its max-age (README: at most 60 s)" "HIT 200" \
	"$(http_header X-Cache) $HTTP_STATUS"
cgi GET /tasks/0
assert_eq "while the responder itself says 404 at once" 404 "$CGI_CODE"

summary
