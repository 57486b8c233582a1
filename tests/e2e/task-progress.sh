#!/usr/bin/env bash
# A worker's progress, end to end: `lmtasks heartbeat UID --progress DONE/TOTAL --step NAME`
# and its refusals (nothing changed), a command of `lmtasks work` reporting with the plain
# `lmtasks heartbeat "$LMTASKS_TASK_UID" --progress ...` (its own claim, from
# LMTASKS_TASK_STARTED_AT), the progress on GET /tasks/UID through a real nginx at both
# compat levels (details.progress), on GET /batches/UID at v1 (the batch's progress), on
# GET /tasks/stream and `lmtasks watch`, and gone once the task succeeded.  (progress.sh
# is about the CLI's own long operations.)
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/task-progress.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries task-progress.sh
T=$HTTP_TMP
S=$T/store
L init >/dev/null 2>&1 || { echo "task-progress.sh: cannot init" >&2; exit 99; }
CGI_DB=$S
enq() { json_get "$(L enqueue "$@" 2>/dev/null)" 'd["uid"]'; }
progress_of() { json_get "$1" 'json.dumps(d["details"].get("progress"), separators=(",", ":"))'; }

section "heartbeat --progress: what it takes and what it refuses"
A=$(enq movies documentAddition --details '{"receivedDocuments":4}')
run L heartbeat "$A" --progress 1/4
assert_eq "an enqueued task takes no progress (exit 3)" 3 "$LMT_RC"
assert_match "... and says why" 'only a processing task takes heartbeats' "$LMT_STDERR"
STARTED=$(json_get "$(L claim --lease 60)" 'd["startedAt"]')
run L heartbeat "$A" --progress 1/4 --step indexing
assert_eq "heartbeat --progress 1/4 --step indexing: exit 0" 0 "$LMT_RC"
assert_eq "it prints the task with its progress in details, beside what was there" \
    '{"receivedDocuments":4,"progress":{"steps":[{"currentStep":"indexing","finished":1,"total":4}],"percentage":25.0}}' \
    "$(json_get "$LMT_STDOUT" 'json.dumps(d["details"], separators=(",", ":"))')"
run L heartbeat "$A" --progress 40.5%
assert_eq "a percentage with one decimal is 405 of 1000; the step stays" \
    '{"steps":[{"currentStep":"indexing","finished":405,"total":1000}],"percentage":40.5}' \
    "$(progress_of "$LMT_STDOUT")"
BEFORE=$(L get "$A")
for bad in "--progress 5/4" "--progress 1/0" "--progress 101%" "--progress 4" "--progress -1/4" \
    "--progress 1/4294967296" "--progress 4294967296/4294967296" \
    "--step x" "--progress 1/4 --step $(printf 'a%.0s' $(seq 256))" \
    "--progress 1/4 --step $(printf '\xff')"; do
	# shellcheck disable=SC2086 # the words are the options
	run L heartbeat "$A" $bad
	assert_eq "heartbeat ${bad:0:40}: refused as usage (exit 2)" 2 "$LMT_RC"
done
assert_match "the message says what is wrong" 'done is past the total' \
    "$(L heartbeat "$A" --progress 5/4 2>&1)"
assert_eq "the refusals changed nothing" "$BEFORE" "$(L get "$A")"
run L heartbeat "$A" --progress 2/4 --started-at 2001-01-01T00:00:00.000000Z
assert_eq "another claim's heartbeat (--started-at) is refused (exit 3)" 3 "$LMT_RC"
run L heartbeat "$A" --progress 2/4 --started-at "$STARTED"
assert_eq "its own claim's is taken" 0 "$LMT_RC"
run L succeed "$A"
assert_eq "succeed: the progress is gone, the details stay" '{"receivedDocuments":4}' \
    "$(json_get "$LMT_STDOUT" 'json.dumps(d["details"], separators=(",", ":"))')"

section "lmtasks work: a command reports its progress"
# The job: reports, says so, then waits for the test's word on a FIFO (its wait is the
# test's to end; the worker is stopped by PID at exit whatever happens).
cat >"$T/job.sh" <<'EOF'
#!/usr/bin/env bash
dir=$(dirname "$0")
case $(cat) in
*'"act":"report"'*)
	"$LMTASKS_BIN" heartbeat "$LMTASKS_TASK_UID" --progress 1/4 --step indexing >/dev/null
	echo $? >"$dir/report.$LMTASKS_TASK_UID"
	# The same from a claim that is not this command's: refused.
	LMTASKS_TASK_STARTED_AT=2001-01-01T00:00:00.000000Z \
	    "$LMTASKS_BIN" heartbeat "$LMTASKS_TASK_UID" --progress 3/4 2>/dev/null
	echo $? >"$dir/other.$LMTASKS_TASK_UID"
	read -r _ <"$dir/go"
	;;
esac
exit 0
EOF
chmod +x "$T/job.sh"
mkfifo "$T/go"
export LMTASKS_BIN=$LMTASKS

if [ -x "$HTTP_NGINX" ] && [ -f /etc/nginx/fastcgi_params ] && command -v curl >/dev/null; then
	fcgi_start "$T/fcgi.sock" "$S" 2 || { fail "lmtasks-fcgi starts"; summary; exit 1; }
	http_nginx_start progress "upstream lm { server unix:$T/fcgi.sock; keepalive 8; }" \
	    "location / { include fastcgi_params; fastcgi_pass lm; fastcgi_keep_conn on; }" ||
	    { fail "nginx starts"; summary; exit 1; }
	R=$(enq books documentAddition --details '{"act":"report"}')
	Q=$(enq books documentAddition --details '{"act":"quick"}')
	# The stream and the watch, open before the work starts; curl's 120 s and the 30 s
	# waits are hang guards (each step waits for a state, never for time).
	curl -sN --max-time 120 -o "$T/stream.out" "$HTTP_BASE/tasks/stream?uids=$R" &
	CP=$!
	lmt_bg_track $CP
	wait_for 30 grep -q '"status":"enqueued"' "$T/stream.out"
	L watch --uids "$R" --until-finished --timeout 120 >"$T/watch.out" 2>"$T/watch.err" &
	WP=$!
	lmt_bg_track $WP
	wait_for 30 grep -q '"status":"enqueued"' "$T/watch.out"
	# One batch of both, one at a time: R runs, Q waits in the batch.
	L work --index books --batch 2 --concurrency 1 --exit-when-empty -- "$T/job.sh" \
	    >"$T/work.out" 2>"$T/work.err" &
	KP=$!
	lmt_bg_track $KP
	wait_for 30 test -s "$T/other.$R"
	assert_eq "from the command, heartbeat \"\$LMTASKS_TASK_UID\" --progress 1/4: exit 0" 0 \
	    "$(cat "$T/report.$R")"
	assert_eq "... and with another claim's LMTASKS_TASK_STARTED_AT: refused (exit 3)" 3 \
	    "$(cat "$T/other.$R")"
	WANT='{"steps":[{"currentStep":"indexing","finished":1,"total":4}],"percentage":25.0}'

	http GET "/tasks/$R"
	assert_eq "v0.25 through nginx: GET /tasks/$R has details.progress" "200 $WANT" \
	    "$HTTP_STATUS $(progress_of "$HTTP_BODY")"
	assert_eq "... details beside it as given" '{"act":"report"}' \
	    "$(json_get "$HTTP_BODY" 'json.dumps({k: v for k, v in d["details"].items() if k != "progress"}, separators=(",", ":"))')"
	http GET "/indexes/books/tasks?statuses=processing"
	assert_eq "... and in a list (the batch's other task, waiting, has none)" "$Q:null $R:$WANT" \
	    "$(json_get "$HTTP_BODY" '" ".join("%s:%s" % (x["uid"], json.dumps(x["details"].get("progress"), separators=(",", ":"))) for x in d["results"])')"
	assert_soon "the stream shows the report as an event" 30 grep -q '"progress":' "$T/stream.out"
	assert_soon "lmtasks watch prints it" 30 grep -q '"progress":' "$T/watch.out"
	assert_eq "... the same bytes as GET /tasks/$R" "data: $(L get "$R")" \
	    "$(grep '"progress":' "$T/stream.out" | tail -n 1)"

	check "config compat v1" L config compat v1
	http GET "/tasks/$R"
	assert_eq "v1 through nginx: GET /tasks/$R has details.progress" "200 $WANT" \
	    "$HTTP_STATUS $(progress_of "$HTTP_BODY")"
	BATCH=$(json_get "$HTTP_BODY" 'd["batchUid"]')
	http GET "/batches/$BATCH"
	assert_eq "v1: GET /batches/$BATCH: the batch's progress, its step and its task's" \
	    '200 {"steps":[{"currentStep":"processing tasks","finished":0,"total":2},{"currentStep":"indexing","finished":1,"total":4}],"percentage":12.5}' \
	    "$HTTP_STATUS $(json_get "$HTTP_BODY" 'json.dumps(d["progress"], separators=(",", ":"))')"
	http GET "/batches?statuses=processing"
	assert_eq "... and in the list of batches" "$BATCH 12.5" \
	    "$(json_get "$HTTP_BODY" '"%s %s" % (d["results"][0]["uid"], d["results"][0]["progress"]["percentage"])')"

	echo go >"$T/go"
	lmt_wait_pid 60 $KP
	assert_eq "the worker ends with the queue empty (exit 0)" 0 $?
	assert_eq "... both tasks succeeded" '{"succeeded":2,"failed":0,"released":0,"lost":0}' \
	    "$(cat "$T/work.out")"
	lmt_wait_pid 30 $CP
	assert_eq "the stream ends by itself once the task finished" 0 $?
	assert_eq "its last event: succeeded, no progress" "succeeded null" \
	    "$(sed -n 's/^data: //p' "$T/stream.out" | tail -n 1 | json_get - '"%s %s" % (d["status"], json.dumps(d["details"].get("progress")))')"
	lmt_wait_pid 30 $WP
	assert_eq "the watch ends too (--until-finished)" 0 $?
	# (The claim's line may come alone or folded into the report's: SPEC §6.)
	assert_eq "its lines: enqueued, processing with progress, succeeded without" \
	    "enqueued:null processing:25.0 succeeded:null" \
	    "$(while read -r l; do json_get "$l" '"%s:%s" % (d["task"]["status"], (d["task"]["details"].get("progress") or {}).get("percentage", "null"))'; done <"$T/watch.out" | grep -vx 'processing:null' | tr '\n' ' ' | sed 's/ $//')"

	http GET "/tasks/$R"
	assert_eq "v1: after succeed GET /tasks/$R has no progress" "200 null" \
	    "$HTTP_STATUS $(progress_of "$HTTP_BODY")"
	http GET "/batches/$BATCH"
	assert_eq "v1: the finished batch's progress is null" "200 null" \
	    "$HTTP_STATUS $(json_get "$HTTP_BODY" 'json.dumps(d["progress"])')"
	check "config compat v0.25" L config compat v0.25
	http GET "/tasks/$R"
	assert_eq "v0.25: after succeed GET /tasks/$R is as it was enqueued, finished" \
	    '200 succeeded {"act":"report"}' \
	    "$HTTP_STATUS $(json_get "$HTTP_BODY" '"%s %s" % (d["status"], json.dumps(d["details"], separators=(",", ":")))')"
else
	skip "progress through nginx" "no nginx or curl"
fi

summary
