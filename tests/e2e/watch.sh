#!/usr/bin/env bash
# lmtasks watch and the change log from the CLI: NDJSON lines {"seq":N,"task":...} with the
# task's bytes as `get` prints them, filters as for list, --since resumes, --uids prints
# the current state first and --until-finished ends, a pruned resume is refused (exit 1),
# `config feedRetention`, inotify and the polling fallback, a 0.1.0 store.

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE LMTASKS_NO_INOTIFY
L=$LMTASKS
[ -x "$L" ] || { echo "watch.sh: no lmtasks binary at $L (set LMTASKS)" >&2; exit 99; }
lmt_tmpdir
T=$LMT_TMP
export LMTASKS_DB="$T/db"
"$L" init >/dev/null 2>&1 || { echo "watch.sh: cannot init" >&2; exit 99; }

enq() { json_get "$("$L" enqueue "$@" 2>/dev/null)" 'd["uid"]'; }

# lines FILE: the number of lines in FILE.
lines() { wc -l <"$1" | tr -d ' '; }

A=$(enq movies documentAddition)
B=$(enq books documentAddition)
"$L" start "$A" >/dev/null

# --- the log so far, from the start
run "$L" watch --since 0 --timeout 0.2
assert_eq "watch --since 0 ends at its timeout with 124" 124 "$LMT_RC"
printf '%s\n' "$LMT_STDOUT" >"$T/all.ndjson"
assert_eq "one line per task (its two changes read together show it once)" 2 "$(lines "$T/all.ndjson")"
json_check "lines are {seq, task} in sequence order" "$(sed -n 1p "$T/all.ndjson")" \
    'keys(d) == ["seq","task"] and d["seq"] == 2 and d["task"]["uid"] == '"$B"
json_check "the task's latest change is its sequence" "$(sed -n 2p "$T/all.ndjson")" \
    'd["seq"] == 3 and d["task"]["uid"] == '"$A"' and d["task"]["status"] == "processing"'
assert_eq "the task's bytes are exactly those of get" "$("$L" get "$A")" \
    "$(sed -n 2p "$T/all.ndjson" | sed 's/^{"seq":3,"task"://; s/}$//')"

run "$L" watch --since 2 --timeout 0.1
assert_eq "--since 2: only what followed sequence 2" 3 "$(json_get "$LMT_STDOUT" 'd["seq"]')"

# --- live changes, woken by inotify
# Each step waits for the watch's state, never for time (the 30 s bounds are hang guards:
# a watch wakes within 250 ms of a commit even if its inotify event is lost, and 30 s
# holds on a machine running at a fifth of its speed).  How soon it wakes is
# bench/wake.sh's to report.
"$L" watch --indexUids movies --timeout 600 >"$T/live.ndjson" 2>"$T/live.err" &
W=$!
lmt_bg_track $W
# Asleep, it has read the log once (its inotify watch is made before that read).
wait_for 30 lmt_asleep $W
assert_eq "the watch sleeps on an inotify watch" 1 "$(lmt_inotify $W)"
"$L" succeed "$A" >/dev/null
C=$(enq books documentAddition)
"$L" start "$C" >/dev/null
wait_for 30 grep -q '"status":"succeeded"' "$T/live.ndjson"
# A touch of the data file (IN_ATTRIB) wakes it once more: it has then read every change.
r=$(lmt_reads $W)
touch "$LMTASKS_DB/data.mdb"
wait_for 30 lmt_looked $W "$r"
kill $W 2>/dev/null
wait $W 2>/dev/null
assert_eq "filters apply to each change: only index movies" 1 "$(lines "$T/live.ndjson")"
json_check "the live line is the succeeded task at its sequence" "$T/live.ndjson" \
    'd["seq"] == 4 and d["task"]["status"] == "succeeded" and d["task"]["indexUid"] == "movies"'
# Its timeout, by the clock of the clocked program: --timeout 60, the clock moved 61 s.
clock_use "$T/clock"
"$LMTASKS_CLOCKED" watch --indexUids movies --timeout 60 >"$T/clocked.ndjson" 2>&1 &
W=$!
lmt_bg_track $W
wait_for 30 lmt_asleep $W
clock_move 61
lmt_wait_pid 30 $W
assert_eq "a plain watch ends at its timeout" 124 $?
assert_eq "... having printed nothing but its message" "lmtasks: the watch timed out" "$(cat "$T/clocked.ndjson")"

# --- --uids: current state first, then --until-finished
run "$L" watch --uids "$B,$A" --timeout 0.1
printf '%s\n' "$LMT_STDOUT" >"$T/state.ndjson"
assert_eq "--uids prints each listed task's current state" 2 "$(lines "$T/state.ndjson")"
assert_eq "current state: each id the task's latest change (2 for B, 4 for A), in that order" "2 4" \
    "$(while read -r l; do json_get "$l" 'd["seq"]'; done <"$T/state.ndjson" | tr '\n' ' ' | sed 's/ $//')"

LMTASKS_NO_INOTIFY=1 "$L" watch --uids "$B,$C" --until-finished --timeout 600 \
    >"$T/until.ndjson" 2>"$T/until.err" &
W=$!
lmt_bg_track $W
wait_for 30 lmt_asleep $W
"$L" start "$B" >/dev/null
"$L" succeed "$B" >/dev/null
# Once it printed B's end, asleep again (it sleeps after it prints): it did not stop.
wait_for 30 grep -q '"uid":'"$B"',.*"status":"succeeded"' "$T/until.ndjson"
wait_for 30 lmt_asleep $W
run kill -0 $W
assert_eq "--until-finished still waits while one listed task is unfinished" 0 "$LMT_RC"
"$L" fail "$C" --code boom --message broke >/dev/null
lmt_wait_pid 30 $W
assert_eq "--until-finished ends with 0 once all listed tasks finished (polling fallback)" 0 $?
json_check "its last line is the failed task" "$(tail -n 1 "$T/until.ndjson")" \
    'd["task"]["uid"] == '"$C"' and d["task"]["status"] == "failed"'
assert_eq "nothing on stderr" "" "$(cat "$T/until.err")"

run "$L" watch --uids "$A" --until-finished --timeout 0
assert_eq "--until-finished on finished tasks prints them and ends at once" 0 "$LMT_RC"
json_check "... with the task" "$LMT_STDOUT" 'd["task"]["status"] == "succeeded"'

# --- usage
assert_exit -m "--until-finished without --uids is a usage error" 2 "$L" watch --until-finished
assert_exit -m "a bad filter is a usage error" 2 "$L" watch --statuses nope
assert_exit -m "a bad --since is a usage error" 2 "$L" watch --since x
assert_exit -m "paging (--limit) is a usage error" 2 "$L" watch --limit 3
"$L" delete "$A" >/dev/null
assert_exit -m "a listed task that no longer exists (deleted): exit 1" 1 "$L" watch --uids "$A" --timeout 0.1
assert_contains "... naming it" "task $A not found" "$LMT_STDERR"
run "$L" watch --since 4 --timeout 0.1 --uids "$A"
assert_eq "a deleted task's change is in the log but nothing is printed for it" "124:" "$LMT_RC:$LMT_STDOUT"
N=$("$L" stats | json_get - 'd["nextUid"]')
"$L" watch --uids "$N" --until-finished --timeout 600 >"$T/future.ndjson" 2>&1 &
W=$!
lmt_bg_track $W
wait_for 30 lmt_asleep $W
D=$(enq movies documentAddition)
"$L" start "$D" >/dev/null && "$L" succeed "$D" >/dev/null
lmt_wait_pid 30 $W
assert_eq "--uids of a task not yet enqueued waits for it and ends when it finishes" 0 $?
json_check "... printing it" "$(tail -n 1 "$T/future.ndjson")" \
    'd["task"]["uid"] == '"$N"' and d["task"]["status"] == "succeeded"'

# --- retention
run "$L" config
json_check "config prints feedRetention, 100000 by default" "$LMT_STDOUT" 'd["feedRetention"] == 100000'
run "$L" config feedRetention 7d
json_check "feedRetention takes an age, printed as a string" "$LMT_STDOUT" 'd["feedRetention"] == "7d"'
assert_exit -m "feedRetention 0 is refused" 2 "$L" config feedRetention 0
assert_exit -m "feedRetention 5w is refused" 2 "$L" config feedRetention 5w
run "$L" config feedRetention 3
json_check "feedRetention 3" "$LMT_STDOUT" 'd["feedRetention"] == 3'
for i in 1 2 3 4; do enq movies documentAddition >/dev/null; done
run "$L" watch --since 1 --timeout 0.1
assert_eq "resuming from a pruned sequence: exit 1" 1 "$LMT_RC"
assert_contains "... saying so" "no longer holds the changes after sequence 1" "$LMT_STDERR"
assert_eq "... and printing nothing" "" "$LMT_STDOUT"
assert_exit -m "resuming from 0 after pruning: exit 1" 1 "$L" watch --since 0 --timeout 0.1
check "check passes on a store with a change log" "$L" check

# --- a store made by 0.1.0: read as it is, its log made at its first write
FX="$top_srcdir/tests/fixtures/store-0.1.0"
if [ -f "$FX/data.mdb" ]; then
	cp -r "$FX" "$T/old"
	chmod -R u+w "$T/old"
	export LMTASKS_DB="$T/old"
	chmod a-w "$T/old/data.mdb"
	run "$L" watch --since 0 --timeout 0.1
	assert_eq "a 0.1.0 store (data file read-only) watches as an empty log" "124:" "$LMT_RC:$LMT_STDOUT"
	chmod u+w "$T/old/data.mdb"
	"$L" watch --timeout 600 --statuses enqueued >"$T/old.ndjson" 2>/dev/null &
	W=$!
	lmt_bg_track $W
	wait_for 30 lmt_asleep $W
	E=$(enq old documentAddition)
	wait_for 30 grep -q '"uid":'"$E"',' "$T/old.ndjson"
	json_check "a watch started before the store had a log sees its first write, sequence 1" \
	    "$(head -n 1 "$T/old.ndjson")" 'd["seq"] == 1 and d["task"]["uid"] == '"$E"
	kill $W 2>/dev/null
	wait $W 2>/dev/null
	check "check passes on the upgraded 0.1.0 store" "$L" check
else
	fail "the 0.1.0 fixture store exists" "$FX/data.mdb missing"
fi

summary
