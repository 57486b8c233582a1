#!/usr/bin/env bash
# Webhooks: `webhook add|list|delete` and `lmtasks notify` against a real HTTP receiver on
# 127.0.0.1 (tests/lib/webhook-receiver.py): the finished tasks that match, as get prints them,
# gzip NDJSON with Meilisearch's headers and the configured ones; a 500 retried until a
# 2xx; at least once and in order across kill -9 of notify and a restart of the receiver;
# a cursor the log was pruned past; --once and its exit codes; a silent receiver that
# holds up no other; a password in a URL shown nowhere; a 0.1.0 store; the
# benchmark briefly.

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE LMTASKS_NO_INOTIFY
L=$LMTASKS
[ -x "$L" ] || { echo "webhooks.sh: no lmtasks binary at $L (set LMTASKS)" >&2; exit 99; }
# `lmtasks notify` execs the deliverer: the build tree's (make check sets LMTASKS_NOTIFY).
: "${LMTASKS_NOTIFY:=$(cd "$(dirname "$L")" && pwd)/lmtasks-notify}"
export LMTASKS_NOTIFY
[ -x "$LMTASKS_NOTIFY" ] || { echo "webhooks.sh: no lmtasks-notify at $LMTASKS_NOTIFY (set LMTASKS_NOTIFY)" >&2; exit 99; }
RX="$top_srcdir/tests/lib/webhook-receiver.py"
lmt_tmpdir
T=$LMT_TMP
export LMTASKS_DB="$T/db"
"$L" init >/dev/null 2>&1 || { echo "webhooks.sh: cannot init" >&2; exit 99; }

enq() { json_get "$("$L" enqueue "$@" 2>/dev/null)" 'd["uid"]'; }
# finish UID [succeed|fail]: starts and finishes a task.
finish() {
	"$L" start "$1" >/dev/null
	if [ "${2:-succeed}" = fail ]; then
		"$L" fail "$1" --code c --message m >/dev/null
	else
		"$L" succeed "$1" >/dev/null
	fi
}
# start_rx NAME [receiver options]: a receiver logging to $T/NAME.log; sets RX_PID, RX_PORT.
start_rx() {
	local name=$1
	shift
	rm -f "$T/$name.port"
	"$LMT_PYTHON" "$RX" "$T/$name.port" "$T/$name.log" "$@" 2>>"$T/$name.err" &
	RX_PID=$!
	lmt_bg_track $RX_PID
	wait_for 30 test -s "$T/$name.port" || { echo "receiver $name did not start" >&2; exit 99; }
	RX_PORT=$(cat "$T/$name.port")
}
# posts LOG EXPR: EXPR over the list p of logged POSTs (dicts), ok (those answered 200) and
# delivered (their uids, in order); printed raw when a string, else as json.dumps prints it.
# The log's lines go, as one JSON list, to the suite's one Python (json_get): a Python
# start for each of these checks cost more than the rest of the suite's checks.
posts() {
	local lines=() l src=[
	[ -e "$1" ] && mapfile -t lines <"$1"
	for l in "${lines[@]}"; do src+=$l,; done
	src=${src%,}]
	json_get "$src" "(lambda v: v if isinstance(v, str) else json.dumps(v))((lambda p: (lambda ok: (lambda delivered: ($2))([u for x in ok for u in x['uids']]))([x for x in p if x['status'] == 200]))(d))"
}
# assert_lacks NAME NEEDLE HAYSTACK: NEEDLE is nowhere in HAYSTACK.
assert_lacks() {
	case $3 in
	*"$2"*) fail "$1" "expected not to contain: $2" "got: ${3:0:600}" ;;
	*) ok "$1" ;;
	esac
}
hook() { json_get "$("$L" webhook list)" "[w for w in d[\"results\"] if w[\"id\"] == $1][0]$2"; }

# --- add, list, delete, and what they refuse
run "$L" webhook add http://127.0.0.1:9/x --statuses enqueued
assert_eq "a webhook for unfinished tasks is refused (exit 2)" 2 "$LMT_RC"
assert_contains "  ... saying it gets finished tasks only" "finished tasks only" "$LMT_STDERR"
run "$L" webhook add ftp://127.0.0.1/x
assert_eq "a URL that is not http(s) is refused (exit 2)" 2 "$LMT_RC"
# lmtasks checks URLs itself (it links no libcurl): what it refuses, what it takes.
bad=""
for u in file:///etc/passwd javascript:alert httpx://h http:/h http:h //h/x http:// https:///x \
	http://:80/x http://u@/x http://h:0/ http://h:65536/ http://h:8x/ 'http://h/a b' \
	$'http://h/x\r\nX-Injected: 1' $'http://h/\tx' $'http://h/\x7f' $'http://h/\xff' \
	'http://h<x>/' 'http://[::1/x' "http://h/$(printf '%02049d' 0)" ''; do
	"$L" webhook add "$u" >/dev/null 2>&1
	[ $? = 2 ] || bad+="$(printf '%q' "$u") "
done
assert_eq "refused (exit 2): other schemes, no // or host, a bad port, spaces, CR/LF, control bytes, not UTF-8, over 2048 bytes" "" "$bad"
run "$L" webhook add 'http://h/a b'
assert_contains "  ... saying what a URL must be" "http:// or https:// URL with a host" "$LMT_STDERR"
good=""
"$L" --db "$T/urls" init >/dev/null 2>&1	# its own store: the ids that the checks below expect stay
for u in http://h HTTPS://H.example:443/p?q=1#f http://u:p@127.0.0.1:9/x 'http://[::1]:9/x' \
	"http://h/$(printf '%02039d' 0)" 'https://bücher.example/ä'; do
	"$L" --db "$T/urls" webhook add "$u" >/dev/null 2>&1 || good+="$(printf '%q' "$u") "
done
assert_eq "taken: http and https in any case, userinfo, ports, IPv6, a long path, UTF-8" "" "$good"
run "$L" webhook add http://127.0.0.1:9/x --header 'Content-Type: text/plain'
assert_eq "a header the deliverer sets itself is refused (exit 2)" 2 "$LMT_RC"
run "$L" webhook add http://127.0.0.1:9/x --header 'X-A: 1' --header 'x-a: 2'
assert_eq "a header given twice is refused (exit 2)" 2 "$LMT_RC"
hs=()
for i in $(seq 1 65); do hs+=(--header "X-H$i: v"); done
run "$L" webhook add http://127.0.0.1:9/x "${hs[@]}"
assert_eq "more than 64 headers are refused (exit 2)" 2 "$LMT_RC"
run "$L" webhook add http://127.0.0.1:9/x --limit 3
assert_eq "paging options are refused (exit 2)" 2 "$LMT_RC"
assert_eq "nothing refused was stored" '[]' "$(json_get "$("$L" webhook list)" 'd["results"]')"

OLD=$(enq movies documentAddition)
finish "$OLD"
start_rx rx1
URL="http://127.0.0.1:$RX_PORT/hook"
run "$L" webhook add "$URL" --header 'Authorization: Bearer s3cret-token' \
    --header 'X-Tag: t1' --indexUids movies
assert_eq "webhook add exits 0" 0 "$LMT_RC"
json_check "it prints the webhook with its id, filters and cursor at the log's end" "$LMT_STDOUT" \
    'd["id"] == 1 and d["url"] == "'"$URL"'" and d["filters"] == "indexUids=movies" and d["cursor"] == 3 and d["pending"] == 0'
json_check "the Authorization value is hidden, other headers shown" "$LMT_STDOUT" \
    'd["headers"] == {"Authorization": "Bearer XXX...", "X-Tag": "t1"}'
ID=$(json_get "$LMT_STDOUT" 'd["id"]')

# --- delivery of the finished tasks that match, only
A=$(enq movies documentAddition)
B=$(enq movies documentAddition)
C=$(enq books documentAddition)
D=$(enq movies documentAddition)
E=$(enq movies documentAddition)
finish "$A"
finish "$B" fail
finish "$C"
"$L" start "$D" >/dev/null
"$L" cancel "$E" >/dev/null
CANCEL=$(json_get "$("$L" list --types taskCancelation --limit 1)" 'd["results"][0]["uid"]')
json_check "webhook list: the log has grown past the cursor" "$("$L" webhook list)" \
    'd["results"][0]["pending"] > 0'
run "$L" notify --once
assert_eq "notify --once exits 0 when everything pending was delivered" 0 "$LMT_RC"
assert_eq "the finished tasks of index movies, in the order they finished, once" \
    "[$A, $B, $E]" "$(posts "$T/rx1.log" 'delivered')"
assert_eq "one POST for them all" 1 "$(posts "$T/rx1.log" 'len(p)')"
assert_eq "the old task finished before the webhook was added is not sent" false \
    "$(posts "$T/rx1.log" "$OLD in delivered")"
assert_eq "the processing task, the other index and the taskCancelation are not sent" \
    '[false, false, false]' "$(posts "$T/rx1.log" "[$D in delivered, $C in delivered, $CANCEL in delivered]")"
assert_eq "each line is the task's bytes as get prints them" "$("$L" get "$B")" \
    "$(posts "$T/rx1.log" 'p[0]["tasks"][1]')"
assert_eq "gzip NDJSON with Meilisearch's Content-Type and Content-Encoding" '[]' \
    "$(posts "$T/rx1.log" 'p[0]["problems"]')"
assert_eq "the configured headers are sent" '["Bearer s3cret-token", "t1"]' \
    "$(posts "$T/rx1.log" '[p[0]["headers"].get("authorization"), p[0]["headers"].get("x-tag")]')"
END=$(json_get "$("$L" watch --since 0 --timeout 0.05 2>/dev/null | tail -n 1)" 'd["seq"]')
json_check "webhook list: cursor at the log's end, 3 delivered, no error" "$("$L" webhook list)" \
    'd["results"][0]["cursor"] == '"$END"' and d["results"][0]["pending"] == 0 and d["results"][0]["delivered"] == 3 and d["results"][0]["deliveredAt"] and d["results"][0]["lastError"] is None'
run "$L" notify --once
assert_eq "a second --once with nothing new exits 0 ..." 0 "$LMT_RC"
assert_eq "  ... and POSTs nothing" 1 "$(posts "$T/rx1.log" 'len(p)')"

# --- a 500 is retried until a 2xx; --once exits 5 and keeps the cursor
echo 1 >"$T/fail"
kill "$RX_PID"; wait "$RX_PID" 2>/dev/null
start_rx rx1 --port "$RX_PORT" --fail-file "$T/fail"
F=$(enq movies documentAddition)
finish "$F"
CUR=$(hook "$ID" '["cursor"]')
run "$L" notify --once
assert_eq "notify --once exits 5 when a receiver answers 500" 5 "$LMT_RC"
assert_contains "  ... and says so" "HTTP status 500" "$LMT_STDERR"
json_check "webhook list: the cursor stayed, the error is shown" "$("$L" webhook list)" \
    'd["results"][0]["cursor"] == '"$CUR"' and "500" in d["results"][0]["lastError"] and d["results"][0]["failingSince"]'
echo 3 >"$T/fail"
"$L" notify >"$T/n1.out" 2>"$T/n1.err" &
N=$!
lmt_bg_track $N
# lmtasks execs lmtasks-notify in place: the PID the shell signals is the deliverer's.
check "lmtasks notify becomes lmtasks-notify, in the same process" \
	wait_for 30 sh -c "[ \"\$(readlink /proc/$N/exe)\" = \"\$(readlink -f '$LMTASKS_NOTIFY')\" ]"
check "the daemon delivers once the receiver takes it" wait_for 30 \
    sh -c "grep -q '\"status\": 200, \"uids\": \\[$F\\]' '$T/rx1.log'"
assert_eq "three 500s then a 200, the same task each time" \
    "[[500, [$F]], [500, [$F]], [500, [$F]], [200, [$F]]]" \
    "$(posts "$T/rx1.log" '[[x["status"], x["uids"]] for x in p if '"$F"' in x["uids"]][-4:]')"
wait_for 30 grep -q "delivered after 3 failed attempts" "$T/n1.err"
assert_eq "the waits between attempts double from 0.1 s" "0.1 0.2 0.4" \
    "$(grep -o 'sent again in [0-9.]* s' "$T/n1.err" | head -3 | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $4 }')"
assert_contains "the log says it was delivered after the failed attempts" \
    "delivered after 3 failed attempts" "$(cat "$T/n1.err")"
wait_for 30 sh -c "\"$L\" webhook list | grep -q '\"lastError\":null'"
json_check "after the 2xx the error is cleared and the cursor moved" "$("$L" webhook list)" \
    'd["results"][0]["lastError"] is None and d["results"][0]["cursor"] > '"$CUR"

# --- live: woken by inotify, a finish reaches the receiver
# No wait here measures speed: each waits for a state (a POST logged, the daemon asleep),
# 30 s being a hang guard that holds on a machine at a fifth of its speed.
wait_for 30 lmt_asleep "$N"
assert_eq "the daemon sleeps on an inotify watch" 1 "$(lmt_inotify "$N")"
G=$(enq movies documentAddition)
"$L" start "$G" >/dev/null
"$L" succeed "$G" >/dev/null
check "a finish is delivered (inotify)" wait_for 30 sh -c "grep -q '\"uids\": \\[$G\\]' '$T/rx1.log'"
wait_for 30 sh -c "\"$L\" webhook list | grep -q '\"pending\":0'"
# lmtasks compact under the running daemon: a finish after it, in the new file, is
# delivered too (the daemon reads the file the store has now).
wait_for 30 lmt_asleep "$N"
run "$L" compact
assert_eq "compact under the running daemon: exit 0" 0 "$LMT_RC"
H=$(enq movies documentAddition)
"$L" start "$H" >/dev/null
"$L" succeed "$H" >/dev/null
check "a finish after a compaction is delivered" wait_for 30 sh -c "grep -q '\"uids\": \\[$H\\]' '$T/rx1.log'"
wait_for 30 sh -c "\"$L\" webhook list | grep -q '\"pending\":0'"
CUR=$(hook "$ID" '["cursor"]')
X=$(enq books documentAddition)
"$L" start "$X" >/dev/null
# A touch of the data file (IN_ATTRIB) wakes the daemon once more: it has then read both
# changes, and sleeps again.
wait_for 30 lmt_asleep "$N"
r=$(lmt_reads "$N")
touch "$LMTASKS_DB/data.mdb"
wait_for 30 lmt_looked "$N" "$r"
assert_eq "changes that match nothing cost no write each: the stored cursor waits" "$CUR" \
    "$(hook "$ID" '["cursor"]')"
END=$(json_get "$("$L" watch --since 0 --timeout 0.05 2>/dev/null | tail -n 1)" 'd["seq"]')
kill "$N"
wait "$N"
assert_eq "notify exits 0 on SIGTERM" 0 "$?"
assert_eq "  ... and keeps, as it exits, the cursor past those changes" "$END" "$(hook "$ID" '["cursor"]')"

# --- at least once, in order, across kill -9 of notify and a restart of the receiver
kill "$RX_PID"; wait "$RX_PID" 2>/dev/null
: >"$T/rx1.log"
# 30 tasks: more than the 3 POSTs of 7 the receiver takes below, in 5 batches.
for i in $(seq 1 30); do printf '{"indexUid":"movies","type":"documentAddition"}\n'; done >"$T/batch"
"$L" enqueue --batch "$T/batch" >/dev/null
FIRST=$(json_get "$("$L" list --statuses enqueued --reverse --limit 1)" 'd["results"][0]["uid"]')
for i in $(seq 1 30); do "$L" claim >/dev/null && "$L" succeed $((FIRST + i - 1)) >/dev/null; done
# The receiver is down: notify retries (connection refused) and moves nothing.
"$L" notify --batch-size 7 >"$T/n2.out" 2>"$T/n2.err" &
N=$!
lmt_bg_track $N
wait_for 30 grep -q "Connection refused\|Couldn't connect\|Failed to connect" "$T/n2.err"
assert_contains "with the receiver down notify says why and retries" "sent again in" "$(cat "$T/n2.err")"
# It takes three POSTs and answers 500 to the rest: notify is part way, whatever the
# speed, when it is killed (no race between the kill and the deliveries).
start_rx rx1 --port "$RX_PORT" --delay 0.05 --fail-after 3
wait_for 30 sh -c "[ \$(grep -c '\"status\": 500' '$T/rx1.log') -ge 1 ]"
kill -9 "$N"; wait "$N" 2>/dev/null
check "notify was killed (-9) part way: some but not all delivered" \
    test "$(posts "$T/rx1.log" 'len(set(delivered))')" -lt 30
kill "$RX_PID"; wait "$RX_PID" 2>/dev/null
start_rx rx1 --port "$RX_PORT" --delay 0.02
"$L" notify --batch-size 7 >"$T/n3.out" 2>"$T/n3.err" &
N=$!
lmt_bg_track $N
# First the last task's 2xx at the receiver (a grep a poll), then the cursor stored (an
# lmtasks a poll, costly under the sanitizers).
wait_for 30 grep -q "\"status\": 200, \"uids\": \\[[^]]*\\b$((FIRST + 29))\\]" "$T/rx1.log"
wait_for 30 sh -c "\"$L\" webhook list | grep -q '\"pending\":0'"
kill "$N"; wait "$N" 2>/dev/null
assert_eq "every one of the 30 finished tasks was delivered" 30 \
    "$(posts "$T/rx1.log" "len(set(delivered) & set(range($FIRST, $FIRST + 30)))")"
assert_eq "in order: the first deliveries of each task are in the order they finished" true \
    "$(posts "$T/rx1.log" 'json.dumps([u for i, u in enumerate(delivered) if u not in delivered[:i]] == sorted(set(delivered)))')"
assert_eq "each POST holds at most 7 tasks, in order" true \
    "$(posts "$T/rx1.log" 'json.dumps(all(len(x["uids"]) <= 7 and x["uids"] == sorted(x["uids"]) for x in p))')"
assert_eq "a kill -9 resends at most the one batch in flight" true \
    "$(posts "$T/rx1.log" 'json.dumps(len(delivered) - len(set(delivered)) <= 7)')"

# --- a webhook whose cursor the log was pruned past
start_rx rx2
"$L" config feedRetention 4 >/dev/null
ID2=$(json_get "$("$L" webhook add "http://127.0.0.1:$RX_PORT/two" --statuses succeeded)" 'd["id"]')
for i in 1 2 3 4 5; do
	u=$(enq movies documentAddition)
	finish "$u"
done
assert_eq "webhook list shows the log pruned past its cursor" true "$(hook "$ID2" '["pruned"]')"
run "$L" notify --once
assert_eq "notify --once goes on past the gap (exit 0)" 0 "$LMT_RC"
assert_contains "  ... and says clearly what was lost" "pruned past its cursor" "$LMT_STDERR"
json_check "webhook list: the missed changes counted, the cursor at the log's end" \
    "$("$L" webhook list)" '[w for w in d["results"] if w["id"] == '"$ID2"'][0]["missedChanges"] > 0 and [w for w in d["results"] if w["id"] == '"$ID2"'][0]["missedAt"] and not [w for w in d["results"] if w["id"] == '"$ID2"'][0]["pruned"] and [w for w in d["results"] if w["id"] == '"$ID2"'][0]["pending"] == 0'
assert_eq "the kept changes were delivered: the last finished task" "$u" \
    "$(posts "$T/rx2.log" 'delivered[-1]')"
"$L" config feedRetention 100000 >/dev/null

# --- delete ends deliveries; usage
run "$L" webhook delete "$ID2"
assert_eq "webhook delete exits 0" 0 "$LMT_RC"
run "$L" webhook delete "$ID2"
assert_eq "deleting it again exits 1" 1 "$LMT_RC"
n_before=$(posts "$T/rx2.log" 'len(p)')
u=$(enq movies documentAddition)
finish "$u"
"$L" notify --once >/dev/null 2>&1
assert_eq "a deleted webhook gets nothing more" "$n_before" "$(posts "$T/rx2.log" 'len(p)')"
DEAD=$(json_get "$("$L" webhook add http://127.0.0.1:9/dead)" 'd["id"]')
u=$(enq movies documentAddition)
finish "$u"
run "$L" notify --once
assert_eq "a receiver that cannot be reached: --once exits 5" 5 "$LMT_RC"
assert_eq "  ... and the other webhook got its task all the same" true \
    "$(posts "$T/rx1.log" "json.dumps($u in delivered)")"
"$L" webhook delete "$DEAD" >/dev/null
run "$L" notify --batch-size 0
assert_eq "notify --batch-size 0 is a usage error (exit 2)" 2 "$LMT_RC"

# --- the polling fallback
LMTASKS_NO_INOTIFY=1 "$L" notify --interval 0.1 >/dev/null 2>&1 &
N=$!
lmt_bg_track $N
wait_for 30 lmt_asleep "$N"
u=$(enq movies documentAddition)
finish "$u"
check "without inotify notify polls and delivers" wait_for 30 \
    sh -c "grep -q '\"uids\": \\[$u\\]' '$T/rx1.log'"
kill "$N"; wait "$N" 2>/dev/null

# --- a store made by 0.1.0
FX="$top_srcdir/tests/fixtures/store-0.1.0"
if [ -f "$FX/data.mdb" ]; then
	mkdir -p "$T/old" && cp "$FX/data.mdb" "$T/old/"
	run "$L" --db "$T/old" webhook list
	assert_eq "webhook list reads a 0.1.0 store as having none" '{"results":[]}' "$LMT_STDOUT"
	run "$L" --db "$T/old" webhook add "http://127.0.0.1:$RX_PORT/old"
	assert_eq "webhook add works on a 0.1.0 store" 0 "$LMT_RC"
	run "$L" --db "$T/old" check
	assert_eq "  ... which still checks clean" 0 "$LMT_RC"
else
	fail "the 0.1.0 fixture store exists" "$FX/data.mdb missing"
fi

# --- a compat v1 store: the tasks in v1's layout, as GET /tasks/UID serves them there
V1="$T/v1"
if "$L" --db "$V1" init >/dev/null 2>&1 && "$L" --db "$V1" config compat v1 >/dev/null 2>&1; then
	"$L" --db "$V1" webhook add "http://127.0.0.1:$RX_PORT/v1" >/dev/null
	v=$(json_get "$("$L" --db "$V1" enqueue movies documentAddition)" 'd["uid"]')
	"$L" --db "$V1" start "$v" >/dev/null && "$L" --db "$V1" succeed "$v" >/dev/null
	run "$L" --db "$V1" notify --once
	assert_eq "compat v1: notify --once exits 0" 0 "$LMT_RC"
	line=$(posts "$T/rx2.log" '[t for x in p for t in x["tasks"]][-1]')
	json_check "compat v1: the task is sent in v1's layout (batchUid, error always)" "$line" \
	    '"batchUid" in d and "error" in d and d["uid"] == '"$v"
	assert_eq "compat v1: the line is the task as get prints it there" "$("$L" --db "$V1" get "$v")" "$line"
else
	fail "a compat v1 store" "lmtasks config compat v1 failed"
fi

# --- a receiver that never answers holds up no other: each webhook is delivered on its own
# The silent receiver reads the first POST and never answers: notify's request to it stays
# open until its 30 s timeout.  The good one, added after it (0.2.0 went through the
# webhooks in id order, one POST at a time), must get every task while that request is
# still open: the silent one logs when the connection ends, the good one each POST, and
# the order of the two says it, whatever the machine's speed.
IND="$T/indep"
"$L" --db "$IND" init >/dev/null 2>&1
start_rx silent --silent 1
SIL_PID=$RX_PID
"$L" --db "$IND" webhook add "http://127.0.0.1:$RX_PORT/silent" >/dev/null
start_rx good
"$L" --db "$IND" webhook add "http://127.0.0.1:$RX_PORT/good" >/dev/null
ienq() { json_get "$("$L" --db "$IND" enqueue "$@" 2>/dev/null)" 'd["uid"]'; }
ifinish() { "$L" --db "$IND" start "$1" >/dev/null && "$L" --db "$IND" succeed "$1" >/dev/null; }
I1=$(ienq movies documentAddition)
ifinish "$I1"
"$L" --db "$IND" notify >"$T/n4.out" 2>"$T/n4.err" &
N=$!
lmt_bg_track $N
check "the silent receiver holds notify's first POST open" \
	wait_for 30 sh -c "grep -q '\"status\": null, \"uids\": \\[$I1\\]' '$T/silent.log'"
check "the good receiver gets the task meanwhile" \
	wait_for 30 sh -c "grep -q '\"status\": 200, \"uids\": \\[$I1\\]' '$T/good.log'"
I2=$(ienq movies documentAddition)
I3=$(ienq movies documentAddition)
ifinish "$I2"
ifinish "$I3"
check "  ... and the tasks that finish later too" \
	wait_for 30 sh -c "grep -q '\"uids\": \\[[^]]*$I3\\]' '$T/good.log'"
assert_eq "the good receiver had all three while the silent one's request was still open" true \
	"$("$LMT_PYTHON" -S -c '
import json, sys
sil = [json.loads(l) for l in open(sys.argv[1])]
good = [json.loads(l) for l in open(sys.argv[2])]
closed = [x["t"] for x in sil if x.get("closed")]
got = [x["t"] for x in good if x["status"] == 200]
uids = sorted(u for x in good if x["status"] == 200 for u in x["uids"])
print(json.dumps(uids == [int(a) for a in sys.argv[3:]] and (not closed or min(closed) > max(got))))' \
	"$T/silent.log" "$T/good.log" "$I1" "$I2" "$I3")"
assert_eq "  ... which is still the first and only POST it got" 1 "$(posts "$T/silent.log" 'len(p)')"
wait_for 30 sh -c "\"$L\" --db \"$IND\" webhook list | grep -q '\"pending\":0'"
json_check "webhook list: the good one caught up, the silent one's cursor waits" \
	"$("$L" --db "$IND" webhook list)" \
	'd["results"][1]["pending"] == 0 and d["results"][1]["delivered"] == 3 and d["results"][0]["pending"] > 0 and d["results"][0]["delivered"] == 0'
kill "$N"
wait "$N"
assert_eq "notify exits 0 on SIGTERM with a POST still under way" 0 "$?"
check "  ... and that connection ends with it" \
	wait_for 30 sh -c "grep -q '\"closed\": true' '$T/silent.log'"
json_check "  ... the silent one's cursor not moved: its task is sent again next time" \
	"$("$L" --db "$IND" webhook list)" 'd["results"][0]["delivered"] == 0 and d["results"][0]["pending"] > 0'
kill "$SIL_PID"; wait "$SIL_PID" 2>/dev/null

# --- a password in a webhook's URL is never shown: add, list, lastError, notify's log
PW="$T/pw"
"$L" --db "$PW" init >/dev/null 2>&1
start_rx auth
SECRET='pa55-w0rd'
run "$L" --db "$PW" webhook add "http://hook-user:$SECRET@127.0.0.1:$RX_PORT/auth"
assert_eq "webhook add with a password in the URL exits 0" 0 "$LMT_RC"
assert_lacks "  ... and does not print the password" "$SECRET" "$LMT_STDOUT"
json_check "  ... but the URL with the password masked" "$LMT_STDOUT" \
	'd["url"] == "http://hook-user:***@127.0.0.1:'"$RX_PORT"'/auth"'
"$L" --db "$PW" webhook add "http://hook-user:$SECRET@127.0.0.1:9/dead" >/dev/null
"$L" --db "$PW" webhook add "http://u%40x:p%40ss-$SECRET@127.0.0.1:9/enc" >/dev/null
p=$(json_get "$("$L" --db "$PW" enqueue movies documentAddition)" 'd["uid"]')
"$L" --db "$PW" start "$p" >/dev/null && "$L" --db "$PW" succeed "$p" >/dev/null
run "$L" --db "$PW" notify --once
assert_eq "notify --once: the dead receivers fail (exit 5)" 5 "$LMT_RC"
assert_lacks "notify's log does not show the password" "$SECRET" "$LMT_STDERR"
assert_contains "  ... but the URL with it masked" "POST http://hook-user:***@127.0.0.1:9/dead" "$LMT_STDERR"
assert_contains "  ... a percent-encoded '@' in the user and the password too" \
	"POST http://u%40x:***@127.0.0.1:9/enc" "$LMT_STDERR"
run "$L" --db "$PW" webhook list
assert_lacks "webhook list shows the password nowhere (url, lastError)" "$SECRET" "$LMT_STDOUT"
json_check "  ... the URLs and the last error masked" "$LMT_STDOUT" \
	'd["results"][0]["url"] == "http://hook-user:***@127.0.0.1:'"$RX_PORT"'/auth" and d["results"][1]["lastError"].startswith("POST http://hook-user:***@127.0.0.1:9/dead: ") and d["results"][2]["url"] == "http://u%40x:***@127.0.0.1:9/enc"'
assert_eq "the receiver still gets the password, as HTTP Basic authentication" \
	"Basic $(printf 'hook-user:%s' "$SECRET" | base64)" "$(posts "$T/auth.log" 'p[0]["headers"].get("authorization")')"
check "(the store keeps the URL as given: the checks above could see it)" grep -aq -- "$SECRET" "$PW/data.mdb"

# --- only lmtasks-notify links libcurl and zlib: not the web-facing programs, not the CLI
# (ldd for a dynamic link, the symbols for a static one.)
if command -v ldd >/dev/null && command -v nm >/dev/null; then
	for b in "$LMTASKS_FCGI" ${LMTASKS_WRITER:+"$LMTASKS_WRITER"} "$L"; do
		assert_eq "$(basename "$b") links neither libcurl nor zlib" "" \
		    "$(ldd "$b" 2>/dev/null | grep -E 'libcurl|libz\.'; nm "$b" 2>/dev/null | grep -E ' (curl_|deflate|inflate)')"
	done
	assert_ne "  ... (lmtasks-notify does: the check can see them)" "" \
	    "$(ldd "$LMTASKS_NOTIFY" 2>/dev/null | grep -E 'libcurl'; nm "$LMTASKS_NOTIFY" 2>/dev/null | grep -E ' curl_easy_perform')"
fi

# --- the benchmark, briefly
run env LMTASKS="$L" WEBHOOK_TASKS=300 WEBHOOK_PER_COMMIT=10 "$top_srcdir/bench/webhooks.sh"
assert_eq "bench/webhooks.sh (300 finishes, one POST in ten failing) passes" 0 "$LMT_RC"
assert_contains "  ... none lost" "lost 0," "$LMT_STDOUT"

summary
