#!/usr/bin/env bash
# lmtasks compact and POST /tasks/compact (README "Compaction") through a real nginx:
#
#   (a) a store whose deleted tasks left data.mdb large: `lmtasks compact` prints
#       Meilisearch's preSize/postSize (and the bytes), the file shrinks to postBytes, and
#       every task reads as before; `lmtasks check` passes
#   (b) under load: 4 clients ask nginx for finished tasks and /health without a pause
#       (at most 40,000 requests) while a writer enqueues 150 tasks one command at a time
#       and the store is compacted twice, answers coming before, between and after:
#       every answer is 200 and byte for byte what it was, none is lost, every enqueue
#       lands (uids contiguous, none missing), and a task enqueued after a compaction is
#       served at once; the responder logs that it follows the new file and lets go of
#       the old one (no deleted data.mdb left open)
#   (c) lmtasks-writer: POST /tasks/compact needs tasks.compact (403 without, 200 with),
#       another method is 405 with Allow: POST; the writer (which had the store open
#       before a CLI compaction) follows the new file idle, and writes its next
#       cancelation into it
#   (d) a /tasks/stream open before a compaction shows the tasks enqueued after it;
#       `lmtasks wait` and `lmtasks watch`, begun before one, end when the task finishes
#       in the new file; an idle `lmtasks work` begun before one runs a task enqueued
#       after it
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi LMTASKS_WRITER=build/lmtasks-writer \
#       bash tests/e2e/compact.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
: "${LMTASKS_WRITER:=${top_builddir:-.}/lmtasks-writer}"
case $LMTASKS_WRITER in /*) ;; *) LMTASKS_WRITER=$(pwd)/$LMTASKS_WRITER ;; esac
http_need_nginx
lmt_have curl || lmt_missing_all curl "no curl"

T=$HTTP_TMP
S=$T/store
MASTER=compact-suite-master-key-0123456789
printf '%s\n' "$MASTER" >"$T/master.key"
chmod 600 "$T/master.key"

section "(a) lmtasks compact on a store whose deleted tasks left it large"
L init >/dev/null || exit 99
pad=$(printf '%0600d' 0)
for ((i = 0; i < 4000; i++)); do
	printf '{"indexUid":"movies","type":"documentAddition","details":{"pad":"%s","n":%d}}\n' "$pad" "$i"
done >"$T/batch.ndjson"
L enqueue --batch "$T/batch.ndjson" >/dev/null || exit 99
# 40 of them finished, the rest canceled then deleted: free pages the file keeps.
L claim --index movies --batch 40 >/dev/null || exit 99
for ((i = 0; i < 40; i++)); do L succeed $i >/dev/null; done
L cancel $(seq 40 3999) >/dev/null || exit 99
L delete --statuses canceled >/dev/null || exit 99
keep=$(L list --limit 1000)
chmod 0640 "$S/data.mdb"
pre=$(stat -c %s "$S/data.mdb")
run L compact
assert_eq "compact: exit 0" 0 "$LMT_RC"
post=$(stat -c %s "$S/data.mdb")
json_check "it prints preSize and postSize as Meilisearch does, and the bytes" "$LMT_STDOUT" \
    "d['status'] == 'succeeded' and d['preBytes'] == $pre and d['postBytes'] == $post and set(d) == {'preSize','postSize','status','preBytes','postBytes'}"
json_check "the sizes in Meilisearch's words (exact, in KiB here)" "$LMT_STDOUT" \
    "d['preSize'] == '%g KiB' % ($pre / 1024) or d['preSize'].endswith('MiB')"
assert_eq "data.mdb shrank to less than a third" 1 "$((post * 3 < pre))"
assert_eq "it keeps its mode and group" "640 $(id -gn)" "$(stat -c '%a %G' "$S/data.mdb")"
assert_eq "no copy is left beside it" "" "$(ls "$S" | grep -v -e '^data.mdb$' -e '^lock.mdb$')"
assert_eq "every task reads as before" "$keep" "$(L list --limit 1000)"
check "check passes on the compacted store" L check
run L compact extra
assert_eq "compact takes no argument: exit 2" 2 "$LMT_RC"

section "(b) compaction under load through nginx, a writer at the same time"
# Space to free again.
L enqueue --batch "$T/batch.ndjson" >/dev/null || exit 99
first=$(L list --limit 1 | json_get - 'd["results"][0]["uid"]')
L cancel $(seq $((first - 3999)) "$first") >/dev/null || exit 99
L delete --statuses canceled >/dev/null || exit 99
# Keep-alive comments on streams every 400 ms: section (d) counts them to let time pass.
export LMTASKS_STREAM_KEEPALIVE_MS=400
fcgi_start "$T/fcgi.sock" "$S" 2 --master-key-file "$T/master.key" || exit 99
R_PID=$FCGI_PID
R_LOG=$FCGI_LOG
LOC=$(sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" "$top_srcdir/nginx/lmtasks-location.conf")
WCONF=$(sed -e "s|unix:/run/lmtasks/writer.sock|unix:$T/writer.sock|" \
	-e "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" "$top_srcdir/nginx/lmtasks-writer.conf")
"$LMTASKS_WRITER" --db "$S" --listen "unix:$T/writer.sock" --master-key-file "$T/master.key" \
	</dev/null >>"$T/writer.log" 2>&1 &
W_PID=$!
lmt_on_exit "http_stop $W_PID"
for ((i = 0; i < 600; i++)); do http_sock_ready "$T/writer.sock" && break; lmt_sleep 0.05; done
SCONF=$(sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/fcgi.sock|" "$top_srcdir/nginx/lmtasks-stream.conf")
http_nginx_start compact "" "$LOC
$WCONF
$SCONF" || exit 99
# The expected answers: the 40 finished tasks as `lmtasks get` prints them (the bytes
# GET /tasks/UID serves), and /health.
for ((i = 0; i < 40; i++)); do L get $i >"$T/want.$i"; done

# load CLIENTS MAX: each client asks, over one kept connection, a random finished task or
# /health until $T/stop appears (MAX requests at most), and writes one line per answer:
# ok, or what was wrong; then, in $T/sent, the number of requests it made.
load() {
	"$LMT_PYTHON" - "$HTTP_BASE" "$T" "$1" "$2" "$MASTER" <<'EOF'
import http.client, os, random, sys, threading, urllib.parse
base, tmp, clients, most, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
u = urllib.parse.urlsplit(base)
want = {"/tasks/%d" % i: open("%s/want.%d" % (tmp, i), "rb").read().rstrip(b"\n") for i in range(40)}
want["/health"] = b'{"status":"available"}'
paths = sorted(want)
out = open(tmp + "/answers", "w", buffering=1)
sent = open(tmp + "/sent", "w", buffering=1)
lock = threading.Lock()
def client(n):
    rnd = random.Random(n)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    k = 0
    while k < most and not os.path.exists(tmp + "/stop"):
        p = rnd.choice(paths)
        k += 1
        try:
            c.request("GET", p, headers={"Authorization": "Bearer " + key})
            r = c.getresponse()
            body = r.read()
            line = "ok" if r.status == 200 and body == want[p] else "bad %s %d %r" % (p, r.status, body[:300])
        except Exception as e:
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            line = "bad %s %r" % (p, e)
        with lock:
            out.write(line + "\n")
    with lock:
        sent.write("%d\n" % k)
ts = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
EOF
}
answers() { wc -l <"$T/answers" 2>/dev/null || echo 0; }
has_answers() { [ "$(answers)" -ge "$1" ]; }
# more N: waits until N more answers came than now (30 s at most: a hang guard).
more() {
	local at
	at=$(answers)
	wait_for 30 has_answers $((at + $1)) || fail "$1 more answers within 30 s" "$(answers) answers"
}

: >"$T/answers"
load 4 10000 &
LOAD=$!
# A writer: 150 enqueues, one command (one transaction, one process) each.
( for ((i = 0; i < 150; i++)); do L enqueue series documentAddition >>"$T/enqueued" || echo "enqueue $i failed" >>"$T/enqueue-errors"; done ) &
WRITER=$!
more 100
pre=$(stat -c %s "$S/data.mdb")
run L compact
assert_eq "compact under load: exit 0" 0 "$LMT_RC"
json_check "... it shrank the file" "$LMT_STDOUT" "d['postBytes'] < d['preBytes'] == $pre"
# A commit on the new file: the responder's next snapshot of the old one is refused,
# and it follows the new file before it answers.
new=$(L enqueue movies documentAddition --custom-metadata after-compaction | json_get - 'd["uid"]')
http GET "/tasks/$new" -H "Authorization: Bearer $MASTER"
assert_eq "the task enqueued after the compaction is served at once" "200 $new" \
    "$HTTP_STATUS $(json_get "$HTTP_BODY" 'd["uid"]')"
more 300
run L compact
assert_eq "a second compaction under load: exit 0" 0 "$LMT_RC"
more 300
wait "$WRITER"
more 100
touch "$T/stop"
wait "$LOAD"
n_answers=$(answers)
assert_eq "every request was answered (none lost)" "$(($(paste -sd+ "$T/sent")))" "$n_answers"
assert_eq "answers came before, between and after the compactions (the load ran until told to stop, short of its 40,000)" \
    1 "$((n_answers >= 800 && n_answers < 40000))"
assert_eq "every answer was 200 and the bytes of before" "" "$(grep -v '^ok$' "$T/answers" | head -n 3)"
assert_eq "every enqueue of the writer went through" "" "$(cat "$T/enqueue-errors" 2>/dev/null)"
uids=$(json_get "$(paste -sd, "$T/enqueued" | sed 's/^/[/; s/$/]/')" '" ".join(str(t["uid"]) for t in d)')
assert_eq "150 tasks enqueued" 150 "$(wc -w <<<"$uids")"
stored=$(L list --indexUids series --limit 1000 | json_get - '" ".join(str(t["uid"]) for t in reversed(d["results"]))')
assert_eq "each is in the store (none lost to the old file)" "$uids" "$stored"
check "check passes after the compactions under load" L check
assert_soon "the responder logged that it follows the new data file" 30 \
	grep -q "has a new data file that holds its state (lmtasks compact): reading it" "$R_LOG"
# Its once-a-second check, or its next snapshot, lets go of the old file.
assert_soon "the responder holds no deleted data.mdb open" 30 \
	sh -c "! ls -l /proc/$R_PID/fd 2>/dev/null | grep -q 'data.mdb (deleted)'"
http GET "/tasks/$new" -H "Authorization: Bearer $MASTER"
assert_eq "and serves the store still" 200 "$HTTP_STATUS"

section "(c) POST /tasks/compact through lmtasks-writer"
READ_KEY=$(L key create --actions 'tasks.get' | json_get - 'd["key"]')
COMPACT_KEY=$(L key create --actions 'tasks.compact' | json_get - 'd["key"]')
http POST /tasks/compact -H "Authorization: Bearer $READ_KEY"
assert_eq "a key without tasks.compact: 403" 403 "$HTTP_STATUS"
http GET /tasks/compact -H "Authorization: Bearer $MASTER"
assert_eq "GET /tasks/compact goes to the responder, as any GET: its 400 invalid_task_uids" \
    "400 invalid_task_uids" "$HTTP_STATUS $(json_get "$HTTP_BODY" 'd["code"]')"
# A list's validator names the store's file: after a compaction, followed by the
# responder without a commit (its once-a-second check), a client's tag of before gets
# the same list again with 200, not 304.
http GET "/tasks?limit=2" -H "Authorization: Bearer $MASTER"
tag=$(http_header ETag) list=$HTTP_BODY
follows=$(grep -c "has a new data file" "$R_LOG")
run L compact
wait_for 30 sh -c "[ \$(grep -c 'has a new data file' '$R_LOG') -gt $follows ]"
http GET "/tasks?limit=2" -H "Authorization: Bearer $MASTER" -H "If-None-Match: $tag"
assert_eq "after a compaction, If-None-Match with the tag of before: 200 and the same list" \
    "200 $list" "$HTTP_STATUS $HTTP_BODY"
assert_ne "... under another ETag" "$tag" "$(http_header ETag)"
# Free pages again, then compact over HTTP.
L enqueue --batch "$T/batch.ndjson" >/dev/null || exit 99
first=$(L list --limit 1 | json_get - 'd["results"][0]["uid"]')
L cancel $(seq $((first - 3999)) "$first") >/dev/null
L delete --statuses canceled >/dev/null
pre=$(stat -c %s "$S/data.mdb")
http POST /tasks/compact -H "Authorization: Bearer $COMPACT_KEY"
assert_eq "a key with tasks.compact: 200" 200 "$HTTP_STATUS"
json_check "Meilisearch's summary" "$HTTP_BODY" \
    "d['status'] == 'succeeded' and d['preBytes'] == $pre and d['postBytes'] < $pre and isinstance(d['preSize'], str)"
assert_eq "data.mdb is postBytes long" "$(json_get "$HTTP_BODY" 'd["postBytes"]')" "$(stat -c %s "$S/data.mdb")"
http POST "/tasks/compact?x=1" -H "Authorization: Bearer $MASTER"
assert_eq "a parameter: 400" 400 "$HTTP_STATUS"
# The writer had the store open before this CLI compaction: its next write follows.
L enqueue books documentAddition >/dev/null
run L compact
assert_soon "the idle writer follows the new file without a request (its once-a-second check)" 30 \
	sh -c "ls -l /proc/$W_PID/fd | grep -q data.mdb && ! ls -l /proc/$W_PID/fd | grep -q 'data.mdb (deleted)'"
last=$(L list --limit 1 | json_get - 'd["results"][0]["uid"]')
http POST "/tasks/cancel?uids=$last" -H "Authorization: Bearer $MASTER"
assert_eq "the writer cancels after a CLI compaction: 200" 200 "$HTTP_STATUS"
assert_eq "into the new file: the CLI sees it" canceled "$(L get "$last" | json_get - 'd["status"]')"

section "(d) /tasks/stream, lmtasks wait and lmtasks watch across a compaction"
# A stream of the series tasks, open before the compaction: the events of two tasks
# enqueued after it arrive (the second after the responder followed the new file).
curl -sN --max-time 120 -o "$T/stream.out" -H "Authorization: Bearer $MASTER" \
	"$HTTP_BASE/tasks/stream?indexUids=streamed" &
SPID=$!
lmt_bg_track $SPID
assert_soon "the stream is open" 30 grep -q '^: ' "$T/stream.out"
run L compact
assert_eq "compact under an open stream: exit 0" 0 "$LMT_RC"
a=$(L enqueue streamed documentAddition | json_get - 'd["uid"]')
assert_soon "the stream shows a task enqueued after the compaction" 30 \
	grep -q "\"uid\":$a," "$T/stream.out"
assert_soon "the responder follows the new file" 30 \
	sh -c "! ls -l /proc/$R_PID/fd 2>/dev/null | grep -q 'data.mdb (deleted)'"
b=$(L enqueue streamed documentAddition | json_get - 'd["uid"]')
assert_soon "and the next one, once it reads the new file" 30 grep -q "\"uid\":$b," "$T/stream.out"
# Two keep-alives later (its short re-checks after the last file event long over), a
# commit still wakes it: it watches the file now at the path, not the one renamed over.
kept=$(grep -c '^: keep-alive' "$T/stream.out")
wait_for 30 sh -c "[ \$(grep -c '^: keep-alive' '$T/stream.out') -ge $((kept + 2)) ]"
c=$(L enqueue streamed documentAddition | json_get - 'd["uid"]')
assert_soon "a task enqueued a while after the compaction arrives too" 30 \
	grep -q "\"uid\":$c," "$T/stream.out"
kill "$SPID" 2>/dev/null
uid=$(L enqueue movies documentAddition | json_get - 'd["uid"]')
"$LMTASKS" --db "$S" wait "$uid" --timeout 30 >"$T/wait.out" 2>"$T/wait.err" &
WAIT=$!
"$LMTASKS" --db "$S" watch --uids "$uid" --until-finished --timeout 30 >"$T/watch.out" 2>"$T/watch.err" &
WATCH=$!
# Both have looked once (the task is not finished) before the compaction.
wait_for 30 lmt_asleep "$WAIT"
wait_for 30 lmt_asleep "$WATCH"
run L compact
assert_eq "compact while they wait: exit 0" 0 "$LMT_RC"
L start "$uid" >/dev/null && L succeed "$uid" >/dev/null
wait "$WAIT"
assert_eq "wait, begun before the compaction, ends when the task finishes in the new file" \
    "0 succeeded" "$? $(json_get "$(cat "$T/wait.out")" 'd["status"]')"
wait "$WATCH"
assert_eq "watch too: it prints the task's last change" "0 succeeded" \
    "$? $(tail -n 1 "$T/watch.out" | json_get - 'd["task"]["status"]')"
# An idle `lmtasks work`, started before a compaction: a task enqueued after it (in the
# new file) is claimed and run, the worker reading the file the store has now.
"$LMTASKS" --db "$S" work --index worked --concurrency 1 -- true >"$T/work.out" 2>"$T/work.err" &
WORK=$!
lmt_bg_track $WORK
wait_for 30 lmt_asleep "$WORK"
run L compact
assert_eq "compact under an idle lmtasks work: exit 0" 0 "$LMT_RC"
w=$(L enqueue worked documentAddition | json_get - 'd["uid"]')
assert_soon "lmtasks work, started before the compaction, runs a task enqueued after it" 30 \
	sh -c "'$LMTASKS' --db '$S' get $w | grep -q '\"status\":\"succeeded\"'"
kill "$WORK" 2>/dev/null
lmt_wait_pid 30 "$WORK" >/dev/null
check "check passes at the end" L check

summary
