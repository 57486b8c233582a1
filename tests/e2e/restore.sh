#!/usr/bin/env bash
# Backups and restores under a running responder (README "Backups"), through a real nginx:
#
#   (a) lmtasks backup DIR: a copy that opens, in a new or empty directory only
#   (b) lmtasks restore DIR while lmtasks-fcgi serves: HTTP and the CLI show exactly the
#       backup's tasks at once, no kept page or validator of before answers (no 304 for
#       changed content), totals agree with the rows, the next enqueue keeps every
#       restored task and takes a uid never given before
#   (c) a data.mdb copied over the store while the responder has it open: refused (503,
#       exit 4, writes too, the file left as it is) until every process is stopped
#   (d) a data.mdb moved over it (another file than the one open): a copy of the store's
#       current state is followed (as a compacted copy is, tests/e2e/compact.sh), one
#       of before is answered 503 after a second, and so is another store's file with more
#       transactions than the lock file counts
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/restore.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_nginx
command -v curl >/dev/null || lmt_skip_all "no curl"

T=$HTTP_TMP
S=$T/store
http_demo_store restore.sh

# One thread: every request meets the same worker's page cache and count memo.
fcgi_start "$T/r.sock" "$S" 1 || exit 99
R_PID=$FCGI_PID
R_LOG=$FCGI_LOG
http_nginx_start restore "" "location /r/ { fastcgi_split_path_info ^(/r)(/.*)\$; include fastcgi_params; fastcgi_param PATH_INFO \$fastcgi_path_info; fastcgi_keep_conn on; fastcgi_pass unix:$T/r.sock; }" || exit 99

# uids JSON: the uids of a list's results, comma-separated.
uids() { json_get "$1" '",".join(str(t["uid"]) for t in d["results"])'; }

# asked3 URI: asks URI three times (a page is kept from its second ask), leaves the last.
asked3() { http GET "/r$1"; http GET "/r$1"; http GET "/r$1"; }

# same NAME URI: the responder answers URI three times as CGI (which keeps nothing) does.
same() {
	local name=$1 uri=$2 i
	cgi GET "$uri" LMTASKS_DB="$S"
	for i in 1 2 3; do
		http GET "/r$uri"
		if [ "$HTTP_STATUS $HTTP_BODY" != "$CGI_CODE $CGI_BODY" ]; then
			fail "$name" "ask $i of $uri" "CGI: $CGI_CODE ${CGI_BODY:0:300}" \
				"FastCGI: $HTTP_STATUS ${HTTP_BODY:0:300}"
			return
		fi
	done
	ok "$name"
}

# answers STATUS PATH: PATH answers STATUS now.  The responder looks at its store's file
# once a second (later on a busy machine): what it finds there is awaited, never slept for.
answers() {
	http GET "$2"
	[ "$HTTP_STATUS" = "$1" ]
}

section "(a) lmtasks backup"
run "$LMTASKS" --help
assert_match "lmtasks --help lists backup and restore" '  backup DIR .*  restore DIR ' "$(tr '\n' ' ' <<<"$LMT_STDOUT")"
run "$LMTASKS" --db "$S" backup "$T/b1"
assert_eq "backup: exit 0" 0 "$LMT_RC"
json_check "... it reports the copy's 5 tasks and next uid 5" "$LMT_STDOUT" \
	"d == {'backup': '$T/b1', 'tasks': 5, 'nextUid': 5}"
run "$LMTASKS" --db "$T/b1" list
assert_eq "the copy is a store the CLI reads: its 5 tasks" "4,3,2,1,0" "$(uids "$LMT_STDOUT")"
run "$LMTASKS" --db "$S" backup "$T/b1"
assert_eq "backup into a directory that is not empty: exit 4" 4 "$LMT_RC"
assert_contains "... saying so" "$T/b1 is not empty" "$LMT_STDERR"
mkdir "$T/empty"
run "$LMTASKS" --db "$S" backup "$T/empty"
assert_eq "backup into an empty directory: exit 0" 0 "$LMT_RC"
run "$LMTASKS" --db "$S" restore "$S"
assert_eq "restore of the store onto itself: exit 2" 2 "$LMT_RC"
"$LMTASKS" --db "$T/new" init >/dev/null 2>&1
run "$LMTASKS" --db "$T/new" restore "$T/b1"
assert_eq "restore into a new store (init, then restore): exit 0" 0 "$LMT_RC"
run "$LMTASKS" --db "$T/new" list
assert_eq "... it holds the backup's tasks" "4,3,2,1,0" "$(uids "$LMT_STDOUT")"
run "$LMTASKS" --db "$T/new" get 1
json_check "... as they were" "$LMT_STDOUT" "d['status'] == 'failed' and d['indexUid'] == 'books'"
run "$LMTASKS" --db "$S" restore "$T/nothing"
assert_eq "restore from a directory with no store: exit 4" 4 "$LMT_RC"
assert_contains "... naming it, nothing changed" "no lmtasks store in $T/nothing" "$LMT_STDERR"

section "(b) writes after the backup, then lmtasks restore under the responder"
L enqueue movies documentAddition >/dev/null # 5
L enqueue books documentAddition >/dev/null  # 6
L start 4 >/dev/null
L succeed 4 >/dev/null
asked3 '/tasks?limit=3'
assert_eq "before the restore: the page of 7 tasks" "6,5,4" "$(uids "$HTTP_BODY")"
BEFORE_PAGE=$HTTP_BODY
BEFORE_TAG=$(http_header ETag)
asked3 '/indexes/books/tasks?limit=1'
asked3 '/tasks?statuses=enqueued'
assert_eq "before: enqueued are 6 and 5" "6,5" "$(uids "$HTTP_BODY")"

# A restore that fails (the fault seam: its commit fails as on a full disk) changes nothing.
FAULTS=${LMTASKS_FAULTS:-${top_builddir:-$top_srcdir/build}/tests/lmtasks-faults}
if [ -x "$FAULTS" ]; then
	sum=$(md5sum <"$S/data.mdb")
	LMTASKS_FAULT=enospc:1 run "$FAULTS" --db "$S" restore "$T/b1"
	assert_eq "a restore whose commit fails (ENOSPC): exit 4" 4 "$LMT_RC"
	assert_eq "... the data file unchanged" "$sum" "$(md5sum <"$S/data.mdb")"
	run "$LMTASKS" --db "$S" list
	assert_eq "... the tasks of before" "6,5,4,3,2,1,0" "$(uids "$LMT_STDOUT")"
else
	skip "a restore whose commit fails" "no $FAULTS"
fi

run "$LMTASKS" --db "$S" restore "$T/b1"
assert_eq "restore while the responder runs: exit 0" 0 "$LMT_RC"
json_check "... it reports 5 tasks, 3 changed (5 and 6 gone, 4 back to enqueued), next uid 7" \
	"$LMT_STDOUT" "d['tasks'] == 5 and d['changedTasks'] == 3 and d['nextUid'] == 7"

http GET '/r/tasks?limit=3'
assert_eq "HTTP at once: the backup's page (4, 3, 2)" "4,3,2" "$(uids "$HTTP_BODY")"
assert_ne "... not the page kept before the restore" "$BEFORE_PAGE" "$HTTP_BODY"
AFTER_TAG=$(http_header ETag)
assert_ne "... under another ETag" "$BEFORE_TAG" "$AFTER_TAG"
http GET '/r/tasks?limit=3' -H "If-None-Match: $BEFORE_TAG"
assert_eq "If-None-Match with the tag of before: 200, not 304" 200 "$HTTP_STATUS"
same "every page as CGI answers it: /tasks" '/tasks'
same "... /tasks?limit=3" '/tasks?limit=3'
same "... an index's page" '/indexes/books/tasks?limit=1'
same "... enqueued (4 is enqueued again, 5 and 6 are gone)" '/tasks?statuses=enqueued'
json_check "... whose total is its rows' number" "$HTTP_BODY" \
	"[t['uid'] for t in d['results']] == [4] and d['total'] == 1"
http GET '/r/tasks?limit=1&from=1'
json_check "a page not asked before: uid 1, total 5" "$HTTP_BODY" \
	"[t['uid'] for t in d['results']] == [1] and d['total'] == 5 and d['next'] == 0"
http GET '/r/tasks/6'
assert_eq "/tasks/6 (enqueued after the backup): 404" 404 "$HTTP_STATUS"
run "$LMTASKS" --db "$S" list
assert_eq "the CLI lists the backup's tasks" "4,3,2,1,0" "$(uids "$LMT_STDOUT")"
check "lmtasks check: ok" "$LMTASKS" --db "$S" check

run "$LMTASKS" --db "$S" enqueue movies documentAddition
json_check "the next enqueue takes uid 7: 5 and 6 are never given again" "$LMT_STDOUT" "d['uid'] == 7"
run "$LMTASKS" --db "$S" list
assert_eq "... and every restored task stays" "7,4,3,2,1,0" "$(uids "$LMT_STDOUT")"
same "the responder serves the write after the restore" '/tasks'
run "$LMTASKS" --db "$S" restore "$T/b1"
run "$LMTASKS" --db "$S" list
assert_eq "restored again: the backup's tasks" "4,3,2,1,0" "$(uids "$LMT_STDOUT")"
same "... served at once" '/tasks?limit=3'
http_alive "$R_PID" && ok "the responder served it all without a restart" ||
	fail "the responder served it all without a restart" "$(tail -3 "$R_LOG")"

section "(c) a data.mdb copied over the store under the running responder"
cp "$S/data.mdb" "$T/copy.mdb" # a copy of this moment (no writer runs)
L enqueue movies documentAddition >/dev/null # 8
asked3 '/tasks?limit=3'
assert_eq "before the copy: 8 first" "8,4,3" "$(uids "$HTTP_BODY")"
cp "$T/copy.mdb" "$S/data.mdb"
sum=$(md5sum <"$S/data.mdb")
http GET '/r/tasks?limit=3'
assert_eq "the next request: 503, no page of either file" 503 "$HTTP_STATUS"
# cp writes the file in place: the responder's once-a-second check may see it half written
# (503, "damaged") before it sees it whole and replaced; from then on the answer names the
# way out.
names_restore() {
	http GET '/r/tasks?limit=3'
	[ "$HTTP_STATUS" = 503 ] && [ "$(json_get "$HTTP_BODY" "bool(d['code'] == 'store_unavailable' and \
	    'was replaced while it was open' in d['message'] and 'lmtasks restore' in d['message'])")" = true ]
}
assert_soon "... store_unavailable, naming lmtasks restore" 30 names_restore
run "$LMTASKS" --db "$S" list
assert_eq "lmtasks list: exit 4" 4 "$LMT_RC"
assert_contains "... its data file was replaced, lmtasks restore named" \
	"its data file was replaced while the store was open" "$LMT_STDERR"
assert_contains "... and how to use the copy" "first stop every process that has the store open" \
	"$LMT_STDERR"
run "$LMTASKS" --db "$S" enqueue movies documentAddition
assert_eq "lmtasks enqueue: exit 4" 4 "$LMT_RC"
run "$LMTASKS" --db "$S" restore "$T/b1"
assert_eq "lmtasks restore on it: exit 4 too" 4 "$LMT_RC"
assert_eq "... the file is left as it was copied" "$sum" "$(md5sum <"$S/data.mdb")"
# The requests above found the file replaced; the responder's own look (once a second) is
# what logs it: awaited, then /health asked.
assert_soon "the responder's check finds it: its log says so" 30 \
	grep -q "the store at $S was replaced while open" "$R_LOG"
http GET '/r/health'
assert_eq "... and /health answers 503" 503 "$HTTP_STATUS"
http_stop "$R_PID"
run "$LMTASKS" --db "$S" list
assert_eq "every process stopped: the copied file is the store" "4,3,2,1,0" "$(uids "$LMT_STDOUT")"
check "... lmtasks check: ok" "$LMTASKS" --db "$S" check

section "(d) a data.mdb moved over the store under the running responder"
fcgi_start "$T/r.sock" "$S" 1 || exit 99
R_PID=$FCGI_PID
R_LOG=$FCGI_LOG
http GET '/r/tasks?limit=3'
assert_eq "a responder started on it serves it" "4,3,2" "$(uids "$HTTP_BODY")"
# A copy of the store as it is (its transactions reach the lock file's count, as the
# compacted copy `lmtasks compact` swaps in does) is the store: followed, not refused.
cp "$S/data.mdb" "$T/moved.mdb"
mv "$T/moved.mdb" "$S/data.mdb"
assert_soon "a copy of the current state moved over it is followed: the responder logs it" 30 \
	grep -q "has a new data file that holds its state (lmtasks compact): reading it" "$R_LOG"
http GET '/r/tasks?limit=3'
assert_eq "... and serves it" "200 4,3,2" "$HTTP_STATUS $(uids "$HTTP_BODY")"
# A copy of before (a commit since): refused.
cp "$S/data.mdb" "$T/moved.mdb"
"$LMTASKS" --db "$S" enqueue movies documentAddition >/dev/null
mv "$T/moved.mdb" "$S/data.mdb"
assert_soon "a copy of before moved over it, after its check: 503 (it would serve the file it has open, no longer the store's)" \
	30 answers 503 '/r/tasks?limit=3'
json_check "... naming the other file" "$HTTP_BODY" \
	"'$S/data.mdb is another file than the one this process has open' in d['message']"
http_stop "$R_PID"
# Another store's file with more transactions than the lock counts (as a backup newer
# than the store would be): not its compacted copy, refused too.
fcgi_start "$T/r.sock" "$S" 1 || exit 99
R_PID=$FCGI_PID
R_LOG=$FCGI_LOG
http GET '/r/tasks?limit=3'
assert_eq "a responder started again serves the store" 200 "$HTTP_STATUS"
txnid() { mdb_stat -e "$1" | sed -n 's/.*Last transaction ID: //p'; }
"$LMTASKS" --db "$T/foreign" init >/dev/null
for _ in $(seq 1 $(($(txnid "$S") + 2))); do
	[ "$(txnid "$T/foreign")" -gt "$(txnid "$S")" ] && break
	"$LMTASKS" --db "$T/foreign" enqueue other documentAddition >/dev/null
done
assert_eq "another store holds more transactions than this one" 1 \
	"$(($(txnid "$T/foreign") > $(txnid "$S")))"
log_at=$(wc -l <"$R_LOG")
mv "$T/foreign/data.mdb" "$S/data.mdb"
assert_soon "another store's file with more transactions moved over it, after its check: 503, not followed" \
	30 answers 503 '/r/tasks?limit=3'
json_check "... naming the other file" "$HTTP_BODY" \
	"'$S/data.mdb is another file than the one this process has open' in d['message']"
tail -n +$((log_at + 1)) "$R_LOG" | grep -q "has a new data file that holds its state" &&
	fail "... the responder did not follow it" "$(tail -3 "$R_LOG")" ||
	ok "... the responder did not follow it"
http_stop "$R_PID"

summary
