#!/usr/bin/env bash
# lmtasks work: the task's JSON on the command's stdin (the bytes get prints), its uid,
# index and type in the environment, exit 0 succeeds (JSON stdout as details, other
# stdout not), another exit or a signal fails with work_command_failed and stderr's last
# lines, an empty queue with --exit-when-empty, --concurrency K at once, --batch N claimed
# and recorded together, heartbeats keeping a lease past its length (the clock seam),
# SIGTERM / SIGINT finishing or releasing the running tasks, kill -9 of a worker and
# another worker ending every task exactly once.

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE LMTASKS_NO_INOTIFY LMTASKS_TEST_CLOCK
L=$LMTASKS
[ -x "$L" ] || { echo "work.sh: no lmtasks binary at $L (set LMTASKS)" >&2; exit 99; }
lmt_tmpdir
T=$LMT_TMP
export LMTASKS_DB="$T/db"
"$L" init >/dev/null 2>&1 || { echo "work.sh: cannot init" >&2; exit 99; }

section() { echo "# --- $*"; }
enq() { json_get "$("$L" enqueue "$@" 2>/dev/null)" 'd["uid"]'; }
status() { json_get "$("$L" get "$1")" 'd["status"]'; }
count() { json_get "$("$L" stats)" "d[\"statuses\"][\"$1\"]"; }
# tag_of UID: the ETag GET /tasks/UID has (the responder as CGI): the record's checksum,
# which every write of the task changes, a heartbeat's too (a heartbeat is no change in
# the change log: nothing a reader sees changed).
tag_of() {
	env -i GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REQUEST_URI="/tasks/$1" \
	    "$LMTASKS_FCGI" --db "$LMTASKS_DB" </dev/null 2>/dev/null |
	    tr -d '\r' | sed -n 's/^ETag: //p'
}

# The job: what it is asked for in details.act.
cat >"$T/job.sh" <<'EOF'
#!/usr/bin/env bash
in=$(cat)
dir=$(dirname "$0")
printf '%s\n' "$in" >"$dir/in.$LMTASKS_TASK_UID"
"$LMTASKS_BIN" get "$LMTASKS_TASK_UID" >"$dir/get.$LMTASKS_TASK_UID"
printf '%s %s %s\n' "$LMTASKS_TASK_UID" "$LMTASKS_TASK_INDEX" "$LMTASKS_TASK_TYPE" \
    >"$dir/env.$LMTASKS_TASK_UID"
read -r _ _ _ _ pgrp _ </proc/$$/stat
printf '%s %s\n' "$LMTASKS_DB" "$([ "$pgrp" = $$ ] && echo own-group || echo shared-group)" \
    >"$dir/more.$LMTASKS_TASK_UID"
case $in in
*'"act":"json"'*) echo '{"answer":42,"by":"job"}' ;;
*'"act":"text"'*) echo 'all done' ;;
*'"act":"fail"'*)
	for i in $(seq 1 15); do echo "line $i" >&2; done
	exit 3 ;;
*'"act":"kill"'*) echo 'about to die' >&2; kill -9 $$ ;;
*'"act":"big"'*) printf '{"a":"%s"}\n' "$(head -c 1100000 /dev/zero | tr '\0' x)" ;;
*'"act":"wide"'*)
	for c in a b c; do head -c 1500 /dev/zero | tr '\0' "$c" >&2; echo >&2; done
	exit 4 ;;
esac
exit 0
EOF
chmod +x "$T/job.sh"
export LMTASKS_BIN="$L"

section "outcomes: stdin, environment, exit statuses, details, stderr"
J=$(enq movies documentAddition --details '{"act":"json"}')
X=$(enq movies documentAddition --details '{"act":"text"}')
F=$(enq books settingsUpdate --details '{"act":"fail"}')
K=$(enq books documentAddition --details '{"act":"kill"}')
G=$(enq books documentAddition --details '{"act":"big"}')
W=$(enq books documentAddition --details '{"act":"wide"}')
run env -u LMTASKS_DB "$L" --db "$T/db" work --exit-when-empty -- "$T/job.sh"
assert_eq "work --exit-when-empty: exit 0 once the queue is empty" 0 "$LMT_RC"
assert_eq "it says what it did" '{"succeeded":3,"failed":3,"released":0,"lost":0}' "$LMT_STDOUT"
assert_eq "stdout not taken as details is logged once, with the reason" \
    "1 1" "$(grep -c "task $X: its stdout is not taken as details: ." <<<"$LMT_STDERR") $(grep -c "task $G: its stdout is not taken as details: over 1 MiB" <<<"$LMT_STDERR")"
assert_eq "the command has the store (--db) as LMTASKS_DB, and a process group of its own" \
    "$T/db own-group" "$(<"$T/more.$J")"
json_check "a JSON object over 1 MiB on stdout: succeeded, details untouched" "$("$L" get "$G")" \
    'd["status"] == "succeeded" and d["details"] == {"act":"big"}'
json_check "stderr is quoted from its last 2 KiB, whole lines only" "$("$L" get "$W")" \
    'd["error"]["message"] == "The command exited with status 4: " + "c" * 1500'

assert_eq "stdin is the task's JSON, the bytes get printed while it ran" \
    "$(<"$T/get.$J")" "$(<"$T/in.$J")"
json_check "... a processing task" "$T/in.$F" 'd["status"] == "processing" and d["uid"] == '"$F"
assert_eq "the environment has the task's uid, index and type" "$F books settingsUpdate" \
    "$(<"$T/env.$F")"
json_check "exit 0 with a JSON object on stdout: succeeded, stdout merged into details" \
    "$("$L" get "$J")" 'd["status"] == "succeeded" and d["details"] == {"act":"json","answer":42,"by":"job"}'
json_check "exit 0 with other stdout: succeeded, details untouched" "$("$L" get "$X")" \
    'd["status"] == "succeeded" and d["details"] == {"act":"text"}'
json_check "exit 3: failed with work_command_failed, the status and stderr's last 10 lines" \
    "$("$L" get "$F")" 'd["status"] == "failed" and d["error"]["code"] == "work_command_failed" and d["error"]["type"] == "internal" and d["error"]["message"] == "The command exited with status 3: " + "\n".join("line %d" % i for i in range(6, 16))'
json_check "killed by a signal: failed, the signal named, stderr quoted" "$("$L" get "$K")" \
    'd["status"] == "failed" and d["error"]["message"] == "The command was killed by signal 9 (Killed): about to die"'

D=$(enq fds x)
"$L" work --exit-when-empty --index fds -- "$LMT_PYTHON" -S -c 'import os, sys
sys.stderr.write(" ".join(sorted(os.listdir("/proc/self/fd"), key=int)))
sys.exit(1)' 9>/dev/null >/dev/null 2>&1
json_check "the command inherits no descriptor but its three pipes (the store's, the caller's stay)" \
    "$("$L" get "$D")" 'd["error"]["message"] == "The command exited with status 1: 0 1 2 3"'

run "$L" work --exit-when-empty -- "$T/job.sh"
assert_eq "an empty queue with --exit-when-empty: exit 0 at once, nothing done" \
    "0 {\"succeeded\":0,\"failed\":0,\"released\":0,\"lost\":0}" "$LMT_RC $LMT_STDOUT"
assert_exit -m "no command: exit 2" 2 "$L" work --exit-when-empty
assert_exit -m "a command that does not exist: exit 127, before any claim" 127 \
    "$L" work -- "$T/no-such-job"
printf 'not a program\n' >"$T/noexec" && chmod +x "$T/noexec"
E=$(enq noexec x)
run "$L" work --index noexec -- "$T/noexec"
assert_eq "a command that cannot be run: exit 126, its task back in the queue" "126 enqueued" \
    "$LMT_RC $(status "$E")"
E2=$(enq noexec x)
run "$L" work --index noexec --concurrency 2 -- "$T/noexec"
assert_eq "two such tasks at once: exit 126, one stop (the second is not started), both back" \
    "126 1 enqueued enqueued" \
    "$LMT_RC $(grep -c "could not be started" <<<"$LMT_STDERR") $(status "$E") $(status "$E2")"
"$L" cancel "$E" "$E2" >/dev/null
assert_exit -m "--concurrency 0: exit 2" 2 "$L" work --concurrency 0 -- true
assert_exit -m "--lease 0.5 (under a second): exit 2" 2 "$L" work --lease 0.5 -- true
run bash -c 'ulimit -n 64 && exec "$0" work --concurrency 100 -- true' "$L"
assert_eq "--concurrency 100 under ulimit -n 64: exit 2, nothing claimed" 2 "$LMT_RC"
assert_contains "... saying how many open files it wants and the limit" \
    "--concurrency 100 wants about 432 open files, and the limit is 64" "$LMT_STDERR"

section "started with SIGCHLD ignored (kept across exec): the commands' statuses are read"
IG=$(enq ignchld x)
IG2=$(enq ignchld x --details '{"act":"fail"}')
run "$LMT_PYTHON" -S -c 'import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])' "$L" work --index ignchld --exit-when-empty -- "$T/job.sh"
assert_eq "exit 0, one succeeded, one failed" \
    '0 {"succeeded":1,"failed":1,"released":0,"lost":0}' "$LMT_RC $LMT_STDOUT"
json_check "... the failure's status read" "$("$L" get "$IG2")" \
    'd["error"]["message"].startswith("The command exited with status 3:")'

section "--index and --type"
B1=$(enq books documentAddition)
M1=$(enq movies documentAddition)
run "$L" work --exit-when-empty --index movies -- true
assert_eq "--index movies: only that index's task" "succeeded enqueued" "$(status "$M1") $(status "$B1")"
run "$L" work --exit-when-empty --type settingsUpdate -- true
assert_eq "--type settingsUpdate: nothing of another type" "enqueued" "$(status "$B1")"
"$L" work --exit-when-empty -- true >/dev/null 2>&1

section "an idle worker sleeps on the store's watch and wakes for a new task"
"$L" work --index idle -- true >"$T/idle.out" 2>&1 &
WP=$!
lmt_bg_track "$WP"
assert_soon "the idle worker sleeps in poll" 30 lmt_asleep "$WP"
assert_eq "... holding an inotify watch on the store" 1 "$(lmt_inotify "$WP")"
I=$(enq idle x)
assert_soon "a task enqueued later is done" 30 eval '[ "$(status "$I")" = succeeded ]'
kill -TERM "$WP"
lmt_wait_pid 30 "$WP" >/dev/null

section "--concurrency K runs K commands at once, never more"
cat >"$T/meet.sh" <<'EOF'
#!/usr/bin/env bash
# Three tasks meet: each waits (30 s at most) until the three of its group have started.
d=$(dirname "$0")/meet.$(( (LMTASKS_TASK_UID - $(<"$(dirname "$0")/base")) / 3 ))
mkdir -p "$d" "$(dirname "$0")/active"
touch "$d/$LMTASKS_TASK_UID" "$(dirname "$0")/active/$LMTASKS_TASK_UID"
ls "$(dirname "$0")/active" | wc -l >>"$(dirname "$0")/widths"
for _ in $(seq 1 600); do
	[ "$(ls "$d" | wc -l)" -ge 3 ] && break
	sleep 0.05
done
ok=$([ "$(ls "$d" | wc -l)" -ge 3 ] && echo 0 || echo 1)
rm "$(dirname "$0")/active/$LMTASKS_TASK_UID"
exit "$ok"
EOF
chmod +x "$T/meet.sh"
enq ix x >"$T/base"
for _ in 1 2 3 4 5; do enq ix x >/dev/null; done
run "$L" work --exit-when-empty --concurrency 3 -- "$T/meet.sh"
assert_eq "6 tasks that meet three by three all succeed with --concurrency 3 (so 3 ran at once)" \
    '{"succeeded":6,"failed":0,"released":0,"lost":0}' "$LMT_STDOUT"
# The widths seen are a lower bound of the real ones (a command may look before the others
# of its group have touched their files): only "never more" is asserted on them.
width=$(sort -n "$T/widths" | tail -1)
assert_eq "never more than 3 at once" yes "$([ "$width" -le 3 ] && echo yes || echo "no: $width")"

section "--batch N: claimed in one batch, results recorded together"
if ! lmt_have mdb_stat; then
	lmt_missing "the results of a batch in one commit" mdb_stat "mdb_stat (lmdb-utils) counts the commits"
else
	txn() { mdb_stat -e "$T/db" | awk '/Last transaction ID/ { print $4 }'; }
	for _ in 1 2 3 4 5 6; do enq movies x >/dev/null; done
	before=$(txn)
	run "$L" work --exit-when-empty --batch 6 -- true
	assert_eq "six tasks, --batch 6, one at a time: all succeeded" \
	    '{"succeeded":6,"failed":0,"released":0,"lost":0}' "$LMT_STDOUT"
	# The claim; then the results, together: five with the next claim as the last task
	# starts and the last one after (3), or all six at once when the last command ended
	# before the worker's turn came (2, on a busy machine).  One commit per task would be 7.
	commits=$(( $(txn) - before ))
	assert_eq "two or three commits: the claim, then the results together (not one a task)" \
	    yes "$([ "$commits" -ge 2 ] && [ "$commits" -le 3 ] && echo yes || echo "no: $commits")"
	b=$(json_get "$("$L" batch list --limit 1)" 'd["results"][0]["uid"]')
	json_check "the six tasks share one batch" "$("$L" batch get "$b")" \
	    'd["stats"]["totalNbTasks"] == 6 and d["stats"]["status"] == {"succeeded":6}'
fi

section "a commit that fails (a full disk, the fault seam) is tried again"
if [ -x "${LMTASKS_FAULTS:-}" ]; then
	F1=$(enq faulty x)
	F2=$(enq faulty x)
	run env LMTASKS_FAULT=enospc:2 "$LMTASKS_FAULTS" work --index faulty --batch 2 --exit-when-empty -- true
	assert_eq "the results' commit fails once, then goes through: exit 0, both succeeded" \
	    '0 {"succeeded":2,"failed":0,"released":0,"lost":0} succeeded succeeded' \
	    "$LMT_RC $LMT_STDOUT $(status "$F1") $(status "$F2")"
	assert_match "... and the worker said so" 'work: writing the store: .*trying again' "$LMT_STDERR"
else
	skip "a failed commit is tried again" "no fault build (LMTASKS_FAULTS)"
fi

section "heartbeats keep the lease past its length (the clock seam)"
clock_use "$T/clock"
C=$LMTASKS_CLOCKED
H=$(enq slow x)
cat >"$T/hold.sh" <<'EOF'
#!/usr/bin/env bash
d=$(dirname "$0")
touch "$d/held.$LMTASKS_TASK_UID"
for _ in $(seq 1 600); do [ -e "$d/go" ] && exit 0; sleep 0.05; done
exit 1
EOF
chmod +x "$T/hold.sh"
"$C" work --index slow --lease 60 -- "$T/hold.sh" >"$T/hb.out" 2>"$T/hb.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the command runs" 30 test -e "$T/held.$H"
N=$(enq other x)
"$C" claim --index other --lease 60 >/dev/null	# the same lease, no heartbeat
renewed=0
for step in 1 2 3 4; do
	s0=$(tag_of "$H")
	[ -n "$s0" ] || fail "GET /tasks/$H has an ETag"
	clock_move 30
	wait_for 30 eval '[ "$(tag_of "$H")" != "$s0" ]' && renewed=$(( renewed + 1 ))
done
assert_eq "4 moves of 30 s: 4 heartbeats, each a new record (its ETag)" 4 "$renewed"
assert_eq "120 s after the claims, 60 s leases: the task without heartbeats failed (any" \
    "failed" "$(status "$N")"
run "$C" reap
assert_eq "... write reaps it), the worker's task is still processing, nothing to reap" \
    "processing {\"reaped\":0}" "$(status "$H") $LMT_STDOUT"
touch "$T/go"
assert_soon "the command exits 0: the task succeeds" 30 eval '[ "$(status "$H")" = succeeded ]'
kill -TERM "$WP"
lmt_wait_pid 30 "$WP"
assert_eq "SIGTERM with nothing running: exit 0" 0 "$?"
rm -f "$T/go"
unset LMTASKS_TEST_CLOCK

section "SIGTERM and SIGINT: a command that finishes succeeds, the others go back"
cat >"$T/stop.sh" <<'EOF'
#!/usr/bin/env bash
d=$(dirname "$0")
case $(cat) in *'"trap":true'*) trap 'echo "{\"stopped\":true}"; exit 0' TERM ;; esac
touch "$d/stop.$LMTASKS_TASK_UID"
sleep 30 &
wait $!
exit 0
EOF
chmod +x "$T/stop.sh"
S1=$(enq stop x --details '{"trap":false}')
S2=$(enq stop x)
S3=$(enq stop x)
"$L" work --index stop --batch 3 -- "$T/stop.sh" >"$T/stop.out" 2>"$T/stop.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the first command runs" 30 test -e "$T/stop.$S1"
kill -TERM "$WP"
lmt_wait_pid 30 "$WP"
assert_eq "SIGTERM: exit 0" 0 "$?"
assert_eq "the command ended by SIGTERM and the two waiting tasks: released" \
    '{"succeeded":0,"failed":0,"released":3,"lost":0}' "$(<"$T/stop.out")"
assert_eq "... all three enqueued again" "enqueued enqueued enqueued" \
    "$(status "$S1") $(status "$S2") $(status "$S3")"
"$L" work --exit-when-empty --index stop -- true >/dev/null 2>&1
T1=$(enq stop x --details '{"trap":true}')
"$L" work --index stop -- "$T/stop.sh" >"$T/stop.out" 2>"$T/stop.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the command that traps SIGTERM runs" 30 test -e "$T/stop.$T1"
kill -INT "$WP"
lmt_wait_pid 30 "$WP"
assert_eq "SIGINT: exit 0" 0 "$?"
json_check "the command that exits 0 on SIGTERM: its task succeeded with its details" \
    "$("$L" get "$T1")" 'd["status"] == "succeeded" and d["details"] == {"trap":True,"stopped":True}'

cat >"$T/deaf.sh" <<'EOF'
#!/usr/bin/env bash
trap '' TERM
touch "$(dirname "$0")/deaf.$LMTASKS_TASK_UID"
sleep 30
EOF
chmod +x "$T/deaf.sh"
D1=$(enq deaf x)
"$L" work --index deaf -- "$T/deaf.sh" >"$T/deaf.out" 2>"$T/deaf.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the command that ignores SIGTERM runs" 30 test -e "$T/deaf.$D1"
kill -TERM "$WP"
assert_soon "... and goes on after the first SIGTERM" 30 grep -q stopping "$T/deaf.err"
assert_eq "... its task still processing" processing "$(status "$D1")"
kill -TERM "$WP"
lmt_wait_pid 30 "$WP"
assert_eq "a second SIGTERM kills the command: exit 0, its task released" \
    '0 {"succeeded":0,"failed":0,"released":1,"lost":0} enqueued' "$? $(<"$T/deaf.out") $(status "$D1")"
"$L" cancel "$D1" >/dev/null

section "a command that writes stderr without pause: bounded, and the worker stays responsive"
LO=$(enq loud x)
run "$L" work --index loud --exit-when-empty -- bash -c 'yes abc | head -c 20000000 >&2; exit 1'
json_check "20 MB on stderr then exit 1: failed, the message quotes its last 10 lines" \
    "$("$L" get "$LO")" 'd["status"] == "failed" and d["error"]["message"] == "The command exited with status 1: " + "\n".join(["abc"] * 10)'
LY=$(enq loud x)
"$L" work --index loud -- bash -c 'touch "$0/loud.$LMTASKS_TASK_UID"; exec yes >&2' "$T" \
    >"$T/loud.out" 2>"$T/loud.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the command that never stops writing runs" 30 test -e "$T/loud.$LY"
kill -TERM "$WP"
lmt_wait_pid 30 "$WP"
assert_eq "SIGTERM is heard: exit 0, its task released" \
    '0 {"succeeded":0,"failed":0,"released":1,"lost":0} enqueued' "$? $(<"$T/loud.out") $(status "$LY")"
"$L" cancel "$LY" >/dev/null

section "kill -9 of a worker: every task ends exactly once"
clock_use "$T/clock9"
cat >"$T/once.sh" <<'EOF'
#!/usr/bin/env bash
d=$(dirname "$0")
echo "$LMTASKS_TASK_UID" >>"$d/ran"
if [ -e "$d/block" ]; then
	echo $$ >"$d/pid.$LMTASKS_TASK_UID"
	sleep 30 &
	wait $!
fi
exit 0
EOF
chmod +x "$T/once.sh"
: >"$T/ran"
touch "$T/block"
first=$(enq once x)
for _ in $(seq 2 20); do enq once x >/dev/null; done
"$C" work --index once --lease 10 --concurrency 2 --batch 4 -- "$T/once.sh" >/dev/null 2>&1 &
WP=$!
lmt_bg_track "$WP"
assert_soon "the first worker runs two commands" 30 eval '[ "$(ls "$T" | grep -c "^pid\.")" -ge 2 ]'
kill -9 "$WP"
lmt_wait_pid 30 "$WP" >/dev/null
for p in "$T"/pid.*; do kill -9 -- "-$(<"$p")" 2>/dev/null; done
rm "$T/block"
assert_eq "its four claimed tasks are held: processing" 4 "$(count processing)"
clock_move 11
run "$C" work --index once --lease 10 --concurrency 4 --exit-when-empty -- "$T/once.sh"
assert_eq "after the leases ended, a second worker does all 20" \
    '{"succeeded":20,"failed":0,"released":0,"lost":0}' "$LMT_STDOUT"
json_check "each of the 20 succeeded, none left" "$("$L" list --indexUids once --limit 100)" \
    'd["total"] == 20 and all(t["status"] == "succeeded" for t in d["results"])'
assert_eq "the commands killed with the worker ran again: 22 runs" 22 "$(wc -l <"$T/ran" | tr -d ' ')"
assert_eq "a check of the store finds nothing wrong" 0 "$("$L" check >/dev/null 2>&1; echo $?)"

section "a running task cancelled: the worker drops it and, left with nothing, exits"
clock_use "$T/clockc"
rm -f "$T/go"
CX=$(json_get "$("$C" enqueue gone x 2>/dev/null)" 'd["uid"]')
"$C" work --index gone --lease 60 --exit-when-empty -- "$T/hold.sh" >"$T/gone.out" \
    2>"$T/gone.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the command runs" 30 test -e "$T/held.$CX"
"$C" cancel "$CX" >/dev/null
clock_move 30
lmt_wait_pid 30 "$WP"
assert_eq "its heartbeat refused: the command killed, the worker exits 0, the task lost" \
    '0 {"succeeded":0,"failed":0,"released":0,"lost":1} canceled' \
    "$? $(<"$T/gone.out") $(status "$CX")"
assert_contains "... saying its heartbeat was refused, the task no longer processing" \
    "heartbeat was refused (transition not allowed from the task's status): the task is no longer processing (cancelled" \
    "$(<"$T/gone.err")"

section "an idle worker takes a task whose lease ended (another worker died)"
DX=$(json_get "$("$C" enqueue dead x 2>/dev/null)" 'd["uid"]')
"$C" claim --index dead --lease 60 --requeue >/dev/null
"$C" work --index dead --lease 60 -- true >"$T/dead.out" 2>"$T/dead.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the worker is idle: nothing enqueued" 30 lmt_asleep "$WP"
assert_eq "... the task held by the dead claim" processing "$(status "$DX")"
clock_move 61
assert_soon "the lease ended: the idle worker requeues, claims and runs it, no write needed" \
    30 eval '[ "$(status "$DX")" = succeeded ]'
kill -TERM "$WP"
lmt_wait_pid 30 "$WP" >/dev/null
unset LMTASKS_TEST_CLOCK

section "a task whose record cannot be read is dropped; the others are recorded"
if ! lmt_have mdb_load; then
	lmt_missing "a bad record dropped by the worker" mdb_load "mdb_load (lmdb-utils) writes the bad record"
else
	CDB=$T/cdb
	"$L" --db "$CDB" init >/dev/null 2>&1
	CA=$(json_get "$("$L" --db "$CDB" enqueue bad x)" 'd["uid"]')
	CB=$(json_get "$("$L" --db "$CDB" enqueue bad x)" 'd["uid"]')
	# The first task's command overwrites the second's record with bytes no task decodes.
	cat >"$T/corrupt.sh" <<'EOF2'
#!/usr/bin/env bash
[ "$LMTASKS_TASK_UID" = "$(<"$(dirname "$0")/victim")" ] && exit 0
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n %016x\n 67617262616765\nDATA=END\n' \
    "$(<"$(dirname "$0")/victim")" | mdb_load -s tasks "$LMTASKS_DB"
EOF2
	chmod +x "$T/corrupt.sh"
	echo "$CB" >"$T/victim"
	run "$L" --db "$CDB" work --index bad --batch 2 --exit-when-empty -- "$T/corrupt.sh"
	assert_eq "the commit of both results fails; each alone: one succeeded, the bad one lost, exit 0" \
	    '0 {"succeeded":1,"failed":0,"released":0,"lost":1} succeeded' \
	    "$LMT_RC $LMT_STDOUT $(json_get "$("$L" --db "$CDB" get "$CA")" 'd["status"]')"
	assert_contains "... saying which task was dropped and why" \
	    "task $CB: its change could not be written" "$LMT_STDERR"
fi

section "a data file copied over the store under the worker ends it (exit 4)"
RDB=$T/rdb
"$L" --db "$RDB" init >/dev/null 2>&1
cp "$RDB/data.mdb" "$T/copy.mdb"
R=$(json_get "$("$L" --db "$RDB" enqueue repl x)" 'd["uid"]')
rm -f "$T/go"
"$L" --db "$RDB" work -- "$T/hold.sh" >"$T/repl.out" 2>"$T/repl.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the command runs" 30 test -e "$T/held.$R"
cp "$T/copy.mdb" "$RDB/data.mdb"
touch "$T/go"
lmt_wait_pid 30 "$WP"
assert_eq "the worker's commit is refused: exit 4, no summary" "4 " "$? $(<"$T/repl.out")"
assert_contains "... saying that the data file was replaced" "was replaced" "$(<"$T/repl.err")"
rm -f "$T/go"

section "under memcheck: no error, no leak (valgrind has no pidfd: the SIGCHLD path)"
VG_CLI=${LMTASKS_MEMCHECK:-$L}
if ! lmt_have valgrind; then
	lmt_missing "work under memcheck" valgrind "no valgrind here"
elif grep -qaE '__asan_init|__tsan_init|__msan_init' "$VG_CLI"; then
	skip "work under memcheck" "a sanitizer build; valgrind needs a plain one"
else
	for act in json text fail kill; do enq vg x --details "{\"act\":\"$act\"}" >/dev/null; done
	run valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    --show-leak-kinds=definite -q "$VG_CLI" work --index vg --concurrency 2 --batch 3 \
	    --exit-when-empty -- "$T/job.sh"
	assert_eq "work under memcheck: exit 0, every outcome recorded" \
	    '0 {"succeeded":2,"failed":2,"released":0,"lost":0}' "$LMT_RC $LMT_STDOUT"
	assert_eq "... and memcheck said nothing" "" \
	    "$(printf '%s\n' "$LMT_STDERR" | grep -E '^==[0-9]+==' | head -5)"
fi

summary
