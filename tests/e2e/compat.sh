#!/usr/bin/env bash
# The compat setting and batches: v0.25 answers unchanged by default; `config compat v1`
# switches a store to Meilisearch v1's task layout and /batches for the next request (CGI,
# and a running FastCGI responder behind a real nginx, no restart); Meilisearch's own error
# snapshots replayed at both levels (tests/data/meilisearch-errors.tsv); claim --batch,
# batch get/list; a store made by 0.1.0 (tests/fixtures/store-0.1.0) read as "no batch".
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/compat.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
unset LMTASKS_MASTER_KEY_FILE
T=$HTTP_TMP
S=$T/store
SNAP=$top_srcdir/tests/data/meilisearch-errors.tsv

# The demo store (httplib.sh): 0 claimed (batch 0) and succeeded, 1 started (batch 1) and
# failed, 2 canceled by 3 (batch 2 holds both), 4 enqueued (no batch).
http_demo_store compat.sh
CGI_DB=$S

# keys FILE: the object's keys, comma-separated.
keys() { json_get "$1" '",".join(d.keys())'; }
# uids FILE: the uids of a list's results, comma-separated.
uids() { json_get "$1" '",".join(str(x["uid"]) for x in d["results"]) or "-"'; }

# replay LEVEL: every snapshot case against the CGI responder.  Deviations, on purpose:
# an index uid may be 400 bytes (Meilisearch's message says 512); at v0.25 types stay
# open (types=doggo is an empty list) and /batches is no route.
replay() {
	local level=$1 route query status body want n=0
	while IFS=$'\t' read -r route query status body; do
		case $route in '#'*|'') continue ;; esac
		[ "$query" = - ] && query= || query="?$query"
		want=${body//more than 512 bytes/more than 400 bytes}
		cgi GET "$route$query"
		if [ "$level" = v0.25 ] && [[ $route == /batches* ]]; then
			assert_eq "v0.25: GET $route$query is no route (404)" "404 not_found" \
			    "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2) $(json_get "$CGI_BODY_FILE" 'd["code"]')"
			continue
		fi
		if [ "$level" = v0.25 ] && [ "$query" = "?types=doggo" ]; then
			assert_eq "v0.25: types=doggo is an empty list (types stay open)" "200 0" \
			    "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2) $(json_get "$CGI_BODY_FILE" 'd["total"]')"
			continue
		fi
		# The store's own types follow Meilisearch's (this store holds documentAddition).
		[ "$level" = v1 ] && [ "$query" = "?types=doggo" ] &&
			want=${want//\`dsrClear\`./\`dsrClear\`, \`documentAddition\`.}
		assert_eq "$level: GET $route$query: Meilisearch's snapshot" "$status $want" \
		    "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2) $CGI_BODY"
		n=$((n + 1))
	done <"$SNAP"
	echo "# $level: $n snapshot bodies compared"
}

section "v0.25, the default: nothing new shows"
cgi GET /tasks/2
assert_eq "GET /tasks/2: the v0.25 keys" \
    "uid,indexUid,status,type,canceledBy,details,duration,enqueuedAt,startedAt,finishedAt" \
    "$(keys "$CGI_BODY_FILE")"
assert_eq "GET /tasks/2: the bytes of lmtasks get 2" "$(L get 2)" "$CGI_BODY"
json_check "config prints every setting, compat v0.25 by default" "$(L config)" \
    'd["compat"] == "v0.25" and "maxTasks" in d and "maxBytes" in d'
cgi GET '/tasks?batchUids=0'
assert_eq "GET /tasks?batchUids=0: an unknown parameter at v0.25" "400 bad_request" \
    "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2) $(json_get "$CGI_BODY_FILE" 'd["code"]')"
cgi GET /batches
assert_eq "GET /batches: today's 404" "$(errbody not_found 'Route `/batches` not found.')" \
    "$CGI_BODY"
replay v0.25

section "config compat v1: the next request answers as Meilisearch v1"
check "config compat v1" L config compat v1
json_check "config says so" "$(L config)" 'd["compat"] == "v1"'
run L config compat v2
assert_eq "config compat v2: refused (exit 2)" 2 "$LMT_RC"
V1KEYS="uid,batchUid,indexUid,status,type,canceledBy,details,error,duration,enqueuedAt,startedAt,finishedAt"
for u in 0 1 2 3 4; do
	cgi GET /tasks/$u
	assert_eq "GET /tasks/$u: v1's keys in v1's order" "$V1KEYS" "$(keys "$CGI_BODY_FILE")"
	assert_eq "GET /tasks/$u: the bytes of lmtasks get $u" "$(L get $u)" "$CGI_BODY"
done
# The change feed's readers follow the setting too: a stream's event and a watch line carry
# the bytes GET /tasks/UID serves.
cgi GET '/tasks/stream?uids=0'
assert_eq "GET /tasks/stream?uids=0: the event's data is lmtasks get 0 (v1)" "$(L get 0)" \
    "$(sed -n 's/^data: //p' "$CGI_BODY_FILE")"
assert_eq "lmtasks watch --uids 0: the task is lmtasks get 0 (v1)" "$(L get 0)" \
    "$(L watch --uids 0 --until-finished --timeout 5 | sed 's/^{"seq":[0-9]*,"task"://; s/}$//')"
cgi GET /tasks/4
json_check "an enqueued task: batchUid, canceledBy and error null" "$CGI_BODY_FILE" \
    'd["batchUid"] is None and d["canceledBy"] is None and d["error"] is None'
cgi GET /tasks/1
json_check "the failed task: batch 1, its error object" "$CGI_BODY_FILE" \
    'd["batchUid"] == 1 and d["error"]["code"] == "index_already_exists" and d["canceledBy"] is None'
cgi GET /tasks/2
json_check "the canceled task: canceledBy 3, in the cancelation's batch 2" "$CGI_BODY_FILE" \
    'd["canceledBy"] == 3 and d["batchUid"] == 2'
cgi GET /tasks/3
json_check "the taskCancelation: v1's details, in batch 2" "$CGI_BODY_FILE" \
    'd["batchUid"] == 2 and d["details"] == {"matchedTasks":1,"canceledTasks":1,"originalFilter":"?uids=2"}'
cgi GET /tasks
assert_eq "GET /tasks: the bytes of lmtasks list" "$(L list)" "$CGI_BODY"
replay v1
cgi GET '/tasks?types=documentAddition'
assert_eq "types=documentAddition (a type this store holds): 200" "200 2" \
    "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2) $(json_get "$CGI_BODY_FILE" 'd["total"]')"
cgi GET '/tasks?types=indexSwap'
assert_eq "types=indexSwap (a Meilisearch type): 200, none" "200 0" \
    "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2) $(json_get "$CGI_BODY_FILE" 'd["total"]')"

section "batches"
cgi GET /batches
assert_eq "GET /batches: 200" "Status: 200 OK" "$CGI_STATUS_LINE"
json_check "the list envelope: batches 2, 1, 0" "$CGI_BODY_FILE" \
    '[b["uid"] for b in d["results"]] == [2,1,0] and d["total"] == 3 and d["limit"] == 20 and d["from"] == 2 and d["next"] is None and list(d) == ["results","total","limit","from","next"]'
json_check "a batch object: v1's keys in order" "$CGI_BODY_FILE" \
    'list(d["results"][0]) == ["uid","progress","details","stats","duration","startedAt","finishedAt","batchStrategy"] and list(d["results"][0]["stats"]) == ["totalNbTasks","status","types","indexUids"]'
json_check "batch 2: the cancelation and the task it canceled" "$CGI_BODY_FILE" \
    'd["results"][0]["stats"] == {"totalNbTasks":2,"status":{"succeeded":1,"canceled":1},"types":{"settingsUpdate":1,"taskCancelation":1},"indexUids":{"movies":1}} and d["results"][0]["details"] == {"matchedTasks":1,"canceledTasks":1,"originalFilter":"?uids=2"} and d["results"][0]["progress"] is None and d["results"][0]["duration"] == "PT0S"'
json_check "batch 2: Meilisearch's words for a cancelation's batch" "$CGI_BODY_FILE" \
    'd["results"][0]["batchStrategy"] == "created batch containing only task with id 3 of type `taskCancelation` that cannot be batched with any other task."'
json_check "batch 0: a claim, finished when its task succeeded" "$CGI_BODY_FILE" \
    'd["results"][2]["stats"]["status"] == {"succeeded":1} and d["results"][2]["batchStrategy"] == "batched up to configured batch limit of 1 tasks" and d["results"][2]["finishedAt"] is not None'
cgi GET /tasks/0
T0=$(json_get "$CGI_BODY_FILE" 'd["startedAt"] + " " + d["finishedAt"] + " " + d["duration"]')
cgi GET /batches/0
assert_eq "batch 0 starts, ends and lasts as its one task" "$T0" \
    "$(json_get "$CGI_BODY_FILE" 'd["startedAt"] + " " + d["finishedAt"] + " " + d["duration"]')"
assert_eq "GET /batches/0: the bytes of lmtasks batch get 0" "$(L batch get 0)" "$CGI_BODY"
cgi GET /batches/1
json_check "batch 1: start's batch, failed" "$CGI_BODY_FILE" \
    'd["stats"]["status"] == {"failed":1} and d["stats"]["indexUids"] == {"books":1} and d["batchStrategy"] == "unspecified"'
cgi GET /batches/99
assert_eq "GET /batches/99: batch_not_found" "Status: 404 Not Found $(errbody batch_not_found 'Batch `99` not found.')" \
    "$CGI_STATUS_LINE $CGI_BODY"
cgi GET /batches/abc
assert_eq "GET /batches/abc: invalid_batch_uids" \
    "Status: 400 Bad Request $(errbody invalid_batch_uids 'Batch uid `abc` is invalid. It should only contain numeric characters.')" \
    "$CGI_STATUS_LINE $CGI_BODY"
while read -r q want; do
	cgi GET "/batches?$q"
	assert_eq "GET /batches?$q: batches $want" "$want" "$(uids "$CGI_BODY_FILE")"
done <<'EOF'
statuses=failed 1
statuses=enqueued -
statuses=succeeded,canceled 2,0
types=taskCancelation 2
types=documentAddition,indexCreation 1,0
indexUids=books 1
uids=0,3 2,0
uids=4 -
batchUids=0,2 2,0
canceledBy=3 2
canceledBy=0 -
reverse=true 0,1,2
limit=1&from=1 1
EOF
cgi GET '/batches?limit=1'
json_check "limit=1: total 3, next 1" "$CGI_BODY_FILE" 'd["total"] == 3 and d["next"] == 1 and d["from"] == 2'
cgi GET '/batches?afterFinishedAt=2000-01-01&beforeStartedAt=2999-01-01'
assert_eq "date filters on the batches' own times" "2,1,0" "$(uids "$CGI_BODY_FILE")"
cgi GET '/batches?beforeEnqueuedAt=2000-01-01'
assert_eq "beforeEnqueuedAt=2000-01-01: none" "-" "$(uids "$CGI_BODY_FILE")"
cgi GET '/tasks?batchUids=2'
assert_eq "GET /tasks?batchUids=2: the tasks of batch 2" "3,2" "$(uids "$CGI_BODY_FILE")"
json_check "with their total" "$CGI_BODY_FILE" 'd["total"] == 2'
cgi GET '/tasks?batchUids=abc'
assert_eq "batchUids=abc: invalid_batch_uids" \
    "$(errbody invalid_batch_uids 'Invalid value in parameter `batchUids`: could not parse `abc` as a positive integer')" \
    "$CGI_BODY"
assert_eq "lmtasks batch list: the bytes of GET /batches" "$(cgi GET /batches; echo "$CGI_BODY")" \
    "$(L batch list)"
json_check "lmtasks list --batch-uids 0" "$(L list --batch-uids 0)" \
    '[t["uid"] for t in d["results"]] == [0]'

section "a key restricted to an index sees the batches that hold its tasks"
printf 'a-master-key-for-compat\n' >"$T/master.key"
MK=LMTASKS_MASTER_KEY_FILE=$T/master.key
KEY=$(L key create --indexes books | json_get - 'd["key"]')
cgi GET /batches "$MK" "HTTP_AUTHORIZATION=Bearer $KEY"
assert_eq "GET /batches with a books key: batch 1 only" "1" "$(uids "$CGI_BODY_FILE")"
cgi GET /batches/0 "$MK" "HTTP_AUTHORIZATION=Bearer $KEY"
assert_eq "GET /batches/0 with a books key: batch_not_found" \
    "$(errbody batch_not_found 'Batch `0` not found.')" "$CGI_BODY"
cgi GET /batches "$MK"
assert_eq "GET /batches without a key: 401" "Status: 401 Unauthorized" "$CGI_STATUS_LINE"
cgi GET /batches "$MK" "HTTP_AUTHORIZATION=Bearer a-master-key-for-compat"
assert_eq "GET /batches with the master key: all" "2,1,0" "$(uids "$CGI_BODY_FILE")"

section "claim --batch"
for i in 1 2 3; do L enqueue movies documentAddition >/dev/null; done	# 5 6 7
L enqueue books documentAddition >/dev/null				# 8
L enqueue movies documentAddition >/dev/null				# 9
# line_uids: the uid and batchUid of each NDJSON line of the last run.
line_uids() { printf '%s\n' "$LMT_STDOUT" | while read -r l; do json_get "$l" 'str(d["uid"]) + "/" + str(d["batchUid"]) + "/" + d["status"]'; done | paste -sd,; }
run L claim --batch 2 --index movies
assert_eq "claim --batch 2 --index movies: exit 0" 0 "$LMT_RC"
assert_eq "two tasks, one JSON a line" 2 "$(printf '%s\n' "$LMT_STDOUT" | wc -l)"
assert_eq "the two oldest of movies/documentAddition, processing, in batch 3" \
    "5/3/processing,6/3/processing" "$(line_uids)"
json_check "batch 3: two tasks processing, up to the limit" "$(L batch get 3)" \
    'd["stats"]["totalNbTasks"] == 2 and d["stats"]["status"] == {"processing":2} and d["finishedAt"] is None and d["duration"] is None and d["batchStrategy"] == "batched up to configured batch limit of 2 tasks"'
run L claim --batch 10
assert_eq "claim --batch 10: the oldest (books' 4) and its like (8), not movies' 7 and 9" \
    "4/4/processing,8/4/processing" "$(line_uids)"
json_check "batch 4: every enqueued task of books/documentAddition" "$(L batch get 4)" \
    'd["batchStrategy"] == "batched all enqueued tasks for index `books`" and d["stats"]["totalNbTasks"] == 2'
run L claim --batch 10
assert_eq "claim --batch 10 again: movies' 7 and 9" "7/5/processing,9/5/processing" "$(line_uids)"
check "succeed 5" L succeed 5
json_check "batch 3 after one of two finished: not finished" "$(L batch get 3)" \
    'd["finishedAt"] is None and d["stats"]["status"] == {"processing":1,"succeeded":1}'
check "fail 6" L fail 6 --code boom --message Boom
json_check "batch 3 after both finished: finished, counted" "$(L batch get 3)" \
    'd["finishedAt"] is not None and d["duration"] is not None and d["stats"]["status"] == {"succeeded":1,"failed":1}'
check "cancel 7 (processing)" L cancel 7
json_check "a processing task canceled stays in its batch" "$(L batch get 5)" \
    'd["stats"]["status"] == {"processing":1,"canceled":1}'
json_check "the cancelation's own batch holds only it" "$(L batch get 6)" \
    'd["stats"]["totalNbTasks"] == 1 and d["stats"]["types"] == {"taskCancelation":1}'
run L claim --batch 0
assert_eq "claim --batch 0: a usage error (exit 2)" 2 "$LMT_RC"
run L claim --batch 5 --index nosuch
assert_eq "claim --batch with nothing to take: exit 1" 1 "$LMT_RC"
L enqueue books documentAddition >/dev/null				# 11
# The lease ends by the clocked CLI's clock, moved past it (no sleep).
clock_use "$T/clock"
CL() { "$LMTASKS_CLOCKED" --db "$S" "$@"; }
run CL claim --batch 1 --index books --lease 60 --requeue
assert_eq "claim --batch 1 --lease 60 --requeue: task 11 in batch 7" "11/7/processing" "$(line_uids)"
clock_move 61
check "reap" CL reap
json_check "a requeued task leaves its batch" "$(L get 11)" 'd["status"] == "enqueued" and d["batchUid"] is None'
run L batch get 7
assert_eq "and the batch, left with no task, is deleted (batch get: exit 1)" 1 "$LMT_RC"
json_check "batch list --statuses processing: batches 5 and 4" "$(L batch list --statuses processing)" \
    '[b["uid"] for b in d["results"]] == [5,4]'
MKEY=$(L key create --indexes movies | json_get - 'd["key"]')
cgi GET /batches "$MK" "HTTP_AUTHORIZATION=Bearer $MKEY"
json_check "a movies key does not see batch 6 (the store's own task only)" "$CGI_BODY_FILE" \
    '6 not in [b["uid"] for b in d["results"]] and 5 in [b["uid"] for b in d["results"]]'
run L delete 5
json_check "delete: the taskDeletion is a batch of its own" "$LMT_STDOUT" 'd["batchUid"] == 8'
json_check "its batch holds only it, with its details" "$(L batch get 8)" \
    'd["stats"]["types"] == {"taskDeletion":1} and d["details"]["deletedTasks"] == 1 and d["batchStrategy"].startswith("created batch containing only task with id")'
json_check "the deleted task's batch stays" "$(L batch get 3)" 'd["stats"]["totalNbTasks"] == 2'
json_check "wait prints the store's layout too" "$(L wait 6 --timeout 1)" 'list(d)[1] == "batchUid" and d["batchUid"] == 3'
check "check passes with batches" L check

section "a running responder behind nginx follows the setting without a restart"
fcgi_start "$T/fcgi.sock" "$S" 2 || { fail "lmtasks-fcgi starts"; summary; exit 1; }
F_PID=$FCGI_PID
http_nginx_start compat "" "
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_pass unix:$T/fcgi.sock;
		}" || { fail "nginx starts"; http_stop "$F_PID"; summary; exit 1; }
N_PID=$HTTP_NGINX_PID
http GET /tasks/1
assert_eq "nginx: GET /tasks/1 in v1's layout" "200 $V1KEYS" "$HTTP_STATUS $(keys "$HTTP_BODY_FILE")"
TAG_V1=$(http_header ETag)
http GET /batches/1
assert_eq "nginx: GET /batches/1, the bytes of lmtasks batch get 1" "200 $(L batch get 1)" \
    "$HTTP_STATUS $HTTP_BODY"
check "config compat v0.25" L config compat v0.25
http GET /tasks/1
assert_eq "nginx, same responder: GET /tasks/1 in v0.25's layout at once" "$(L get 1)" "$HTTP_BODY"
http GET /tasks/1 -H "If-None-Match: $TAG_V1"
assert_eq "the v1 answer's ETag does not validate the v0.25 answer" "200 $(L get 1)" \
    "$HTTP_STATUS $HTTP_BODY"
http GET /batches
assert_eq "nginx, same responder: GET /batches is a 404 again" 404 "$HTTP_STATUS"
check "config compat v1" L config compat v1
http GET '/tasks?batchUids=2'
assert_eq "nginx: batchUids accepted again" "200 3,2" "$HTTP_STATUS $(uids "$HTTP_BODY_FILE")"
http_stop "$N_PID"
http_stop "$F_PID"

section "a store made by 0.1.0"
FIX=$top_srcdir/tests/fixtures/store-0.1.0
if [ -f "$FIX/data.mdb" ]; then
	mkdir "$T/old"
	cp "$FIX/data.mdb" "$T/old/"
	SUM=$(cksum <"$T/old/data.mdb")
	CGI_DB=$T/old
	cgi GET /batches
	assert_eq "0.1.0 store, read-only responder: /batches is no route" 404 \
	    "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2)"
	cgi GET /tasks/5
	assert_eq "0.1.0 store: GET /tasks/5 served" 200 "$(echo "$CGI_STATUS_LINE" | cut -d' ' -f2)"
	assert_eq "the responder changed nothing in data.mdb" "$SUM" "$(cksum <"$T/old/data.mdb")"
	check "config compat v1 on the 0.1.0 store (the writer adds the batches database)" \
	    "$LMTASKS" --db "$T/old" config compat v1
	for u in 0 1 2 3 4 5 6 8; do
		cgi GET /tasks/$u
		json_check "0.1.0 record $u reads as no batch" "$CGI_BODY_FILE" \
		    'd["batchUid"] is None and list(d)[1] == "batchUid"'
	done
	cgi GET /batches
	json_check "0.1.0 store: no batch yet" "$CGI_BODY_FILE" 'd["results"] == [] and d["total"] == 0'
	run "$LMTASKS" --db "$T/old" claim --batch 3
	json_check "claim --batch on the 0.1.0 store: batch 0" "$(echo "$LMT_STDOUT" | head -n 1)" \
	    'd["batchUid"] == 0'
	check "check passes on the 0.1.0 store with batches" "$LMTASKS" --db "$T/old" check
	# A responder that opened the 0.1.0 store before any writer did: it says to restart.
	mkdir "$T/old2"
	cp "$FIX/data.mdb" "$T/old2/"
	fcgi_start "$T/old.sock" "$T/old2" 2 || fail "lmtasks-fcgi starts on the 0.1.0 store"
	O_PID=$FCGI_PID
	http_nginx_start old "" "
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_pass unix:$T/old.sock;
		}" || fail "nginx starts for the 0.1.0 store"
	ON_PID=$HTTP_NGINX_PID
	check "config compat v1 while the responder runs" "$LMTASKS" --db "$T/old2" config compat v1
	http GET /tasks/4
	json_check "the running responder serves v1's layout, no batch" "$HTTP_BODY_FILE" \
	    'd["batchUid"] is None and list(d)[1] == "batchUid"'
	http GET /batches
	assert_eq "GET /batches: 503, restart the responder" \
	    "503 store_unavailable restart lmtasks-fcgi." \
	    "$HTTP_STATUS $(json_get "$HTTP_BODY_FILE" 'd["code"] + " " + d["message"].split(": ")[-1]')"
	http_stop "$O_PID"
	fcgi_start "$T/old.sock" "$T/old2" 2 || fail "lmtasks-fcgi restarts"
	O_PID=$FCGI_PID
	http GET /batches
	assert_eq "after a restart: GET /batches 200, none yet" "200 0" \
	    "$HTTP_STATUS $(json_get "$HTTP_BODY_FILE" 'd["total"]')"
	http_stop "$ON_PID"
	http_stop "$O_PID"
else
	fail "the 0.1.0 fixture store is there" "no $FIX/data.mdb"
fi
summary
