#!/usr/bin/env bash
# Black-box tests of the lmtasks CLI (SPEC §1, §3, §5): drives the real binary named by
# $LMTASKS against throw-away stores.  One line per check; ends with "N passed, M failed".
#
#   LMTASKS=/path/to/lmtasks bash tests/e2e/cli.sh
#
# LMT_KEEP_TMP=1 keeps the stores for a post-mortem.

# The system's Python, as httplib.sh takes it: a version manager's shim costs a few
# processes a start, and lib.sh would ask it where its Python is.
if [ -z "${LMT_PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
	LMT_PYTHON=/usr/bin/python3
fi
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE
L=$LMTASKS
[ -x "$L" ] || { echo "cli.sh: no lmtasks binary at $L (set LMTASKS)" >&2; exit 99; }
L=$(cd "$(dirname "$L")" && pwd)/$(basename "$L")
LMTASKS=$L
lmt_tmpdir
T=$LMT_TMP
START=$(now)

TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$'
TASK_KEYS='["uid","indexUid","status","type","details","duration","enqueuedAt","startedAt","finishedAt"]'
CANCELED_KEYS='["uid","indexUid","status","type","canceledBy","details","duration","enqueuedAt","startedAt","finishedAt"]'
FAILED_KEYS='["uid","indexUid","status","type","details","error","duration","enqueuedAt","startedAt","finishedAt"]'

section() { echo "# --- $* (at $(elapsed "$START") s)"; }

# newdb NAME: a fresh store at $T/NAME, made the default for what follows.
newdb() {
	export LMTASKS_DB="$T/$1"
	"$L" init 2>/dev/null || { echo "cli.sh: cannot init $LMTASKS_DB" >&2; exit 99; }
}

# get UID: the task as lmtasks prints it (empty on failure).
get() { "$L" get "$1" 2>/dev/null; }

# stat_field EXPR: a value from `lmtasks stats`.
stat_field() { json_get "$("$L" stats 2>/dev/null)" "$1"; }

# enq INDEX TYPE [ARGS...]: enqueues and prints the new uid.
enq() { json_get "$("$L" enqueue "$@")" 'd["uid"]'; }

# refused NAME UID CMD...: CMD exits 3 with a message and task UID stays byte-for-byte the same.
refused() {
	local name=$1 uid=$2 before after
	shift 2
	before=$(get "$uid")
	assert_exit -m "$name: refused with exit 3" 3 "$@"
	# (A line of stderr that starts "lmtasks: " and says something: matched by the shell.)
	if [ -z "$LMT_STDOUT" ] && [[ $LMT_STDERR =~ (^|$'\n')lmtasks:\ [^$'\n'] ]]; then
		ok "$name: says why on stderr, nothing on stdout"
	else
		fail "$name: says why on stderr, nothing on stdout" "stdout: $LMT_STDOUT" "stderr: $LMT_STDERR"
	fi
	after=$(get "$uid")
	if [ -n "$before" ] && [ "$before" == "$after" ]; then
		ok "$name: task $uid unchanged"
	else
		fail "$name: task $uid unchanged" "before: $before" "after:  $after"
	fi
}

###########################################################################################
section "init and locating the store"

D1=$T/one
assert_exit -m "init creates a store" 0 "$L" --db "$D1" init
if [ -f "$D1/data.mdb" ] && [ -f "$D1/lock.mdb" ]; then ok "init made data.mdb and lock.mdb"
else fail "init made data.mdb and lock.mdb" "$(ls -la "$D1" 2>&1)"; fi
"$L" --db "$D1" enqueue first documentAddition >/dev/null 2>&1
assert_exit -m "init again is fine (idempotent)" 0 "$L" --db "$D1" init
run "$L" --db "$D1" get 0
assert_eq "init again keeps the tasks" first "$(json_get "$LMT_STDOUT" 'd["indexUid"]' 2>&1)"
assert_eq "init again keeps the next uid" 1 "$("$L" --db "$D1" enqueue first clearAll | json_get - 'd["uid"]' 2>&1)"

D2=$T/two
assert_exit -m "init with LMTASKS_DB" 0 env LMTASKS_DB="$D2" "$L" init
[ -f "$D2/data.mdb" ] && ok "LMTASKS_DB names the store init creates" || fail "LMTASKS_DB names the store init creates"
LMTASKS_DB=$D2 "$L" enqueue second documentAddition >/dev/null 2>&1
run env LMTASKS_DB="$D2" "$L" get 0
assert_eq "LMTASKS_DB selects the store" second "$(json_get "$LMT_STDOUT" 'd["indexUid"]' 2>&1)"
run env LMTASKS_DB="$D2" "$L" --db "$D1" get 0
assert_eq "--db wins over LMTASKS_DB" first "$(json_get "$LMT_STDOUT" 'd["indexUid"]' 2>&1)"
run env LMTASKS_DB="$D2" "$L" --db "$D1" list
assert_eq "--db wins over LMTASKS_DB for list too" 2 "$(json_get "$LMT_STDOUT" 'd["total"]' 2>&1)"

mkdir -p "$T/emptydir"
: >"$T/regular-file"
for what in "missing:$T/does/not/exist" "empty-dir:$T/emptydir" "regular-file:$T/regular-file"; do
	label=${what%%:*} p=${what#*:}
	for cmd in "get 0" "enqueue movies documentAddition" "list" "stats" "check" "claim"; do
		# shellcheck disable=SC2086
		assert_exit -m "$label store: $cmd exits 4" 4 "$L" --db "$p" $cmd
		case $cmd in get*|enqueue*)
			assert_re "$label store: $cmd says to run init" \
			    '^lmtasks: .*(`lmtasks.* init`|lmtasks init)' "$LMT_STDERR"
			assert_contains "$label store: $cmd names the path" "$p" "$LMT_STDERR" ;;
		esac
	done
	run env LMTASKS_DB="$p" "$L" get 0
	assert_eq "$label store via LMTASKS_DB: exit 4" 4 "$LMT_RC"
done
[ ! -e "$T/does/not/exist" ] && ok "a command other than init creates no store" \
	|| fail "a command other than init creates no store" "$(ls -laR "$T/does" 2>&1)"
[ -z "$(ls -A "$T/emptydir")" ] && ok "no store appears in an empty directory by accident" \
	|| fail "no store appears in an empty directory by accident" "$(ls -la "$T/emptydir")"
assert_exit -m "init over a regular file fails with a store error" 4 "$L" --db "$T/regular-file" init

# init --mode: the data file's mode, the lock file's (plus group write with group read),
# the directory's (enter where the files may be read), whatever the umask.
for m in 0600:600:600:700 0640:640:660:750 0644:644:664:755 0660:660:660:750; do
	IFS=: read -r mode dm lm dirm <<<"$m"
	(umask 077; "$L" --db "$T/mode$mode" init --mode "$mode" >/dev/null 2>&1)
	assert_eq "init --mode $mode (umask 077): data.mdb $dm, lock.mdb $lm, directory $dirm" \
		"$dm $lm $dirm" "$(stat -c %a "$T/mode$mode/data.mdb" "$T/mode$mode/lock.mdb" "$T/mode$mode" | tr '\n' ' ' | sed 's/ $//')"
done
assert_eq "init without --mode: data.mdb 600" 600 "$(stat -c %a "$D1/data.mdb")"
for bad in 0400 888 abc 01777 ""; do
	assert_exit -m "init --mode '$bad' is refused (exit 2)" 2 "$L" --db "$T/badmode" init --mode "$bad"
done
[ ! -e "$T/badmode" ] && ok "a refused --mode creates nothing" || fail "a refused --mode creates nothing"
# A lock file made again by a write takes the data file's mode plus group write, whatever
# the umask (lmtasks(1)).
rm -f "$T/mode0644/lock.mdb"
(umask 022; "$L" --db "$T/mode0644" enqueue movies documentAddition >/dev/null 2>&1)
assert_eq "lock.mdb re-created by a write (umask 022): 664 (data.mdb 644 plus group write)" 664 \
	"$(stat -c %a "$T/mode0644/lock.mdb")"
rm -f "$T/mode0600/lock.mdb"
(umask 022; "$L" --db "$T/mode0600" list >/dev/null 2>&1)
assert_eq "lock.mdb re-created by a read of a 600 store: 600" 600 "$(stat -c %a "$T/mode0600/lock.mdb")"

# LMTASKS_MAPSIZE: digits alone, 65536 to 1 TiB; anything else refused before anything
# is made.
for bad in abc -5 1e9 " 65536" 65536x 65535 0 1099511627777 99999999999999999999999; do
	assert_exit -m "LMTASKS_MAPSIZE='$bad': init refuses (exit 2)" 2 \
		env LMTASKS_MAPSIZE="$bad" "$L" --db "$T/map" init
	assert_contains "... naming LMTASKS_MAPSIZE" LMTASKS_MAPSIZE "$LMT_STDERR"
	[ ! -e "$T/map" ] && ok "... and creates nothing" || fail "... and creates nothing" "$(ls -la "$T/map")"
done
assert_exit -m "LMTASKS_MAPSIZE=131072: init" 0 env LMTASKS_MAPSIZE=131072 "$L" --db "$T/map" init
assert_eq "... gives a 131072-byte map" 131072 "$(json_get "$("$L" --db "$T/map" stats)" 'd["mapSize"]' 2>&1)"
assert_exit -m "a bad LMTASKS_MAPSIZE does not stop other commands on a made store" 0 \
	env LMTASKS_MAPSIZE=abc "$L" --db "$T/map" list

###########################################################################################
section "enqueue and get"

newdb main
run "$L" enqueue movies documentAddition
assert_eq "enqueue exits 0" 0 "$LMT_RC"
E0=$LMT_STDOUT
json_assert "enqueue prints uid, indexUid, status, type, enqueuedAt in order" "$E0" \
    'keys(d) == ["uid","indexUid","status","type","enqueuedAt"]'
json_assert "first uid is 0, enqueued, movies/documentAddition" "$E0" \
    'd["uid"] == 0 and d["indexUid"] == "movies" and d["status"] == "enqueued" and d["type"] == "documentAddition"'
json_assert "enqueuedAt is RFC 3339 with 6 digits and Z" "$E0" "re.match(r'$TS_RE', d['enqueuedAt'])"
assert_eq "enqueue prints exactly one line" 1 "$(printf '%s\n' "$E0" | wc -l)"

run "$L" enqueue movies settingsUpdate --details '{"rankingRules":["typo","words"],"n":1.5,"s":"é\"x"}'
json_assert "enqueue --details JSON: uid 1" "$LMT_STDOUT" 'd["uid"] == 1'
run "$L" get 1
json_assert "get shows the details given" "$LMT_STDOUT" \
    'd["details"] == {"rankingRules":["typo","words"],"n":1.5,"s":"é\"x"}'
json_assert "details keep their key order" "$LMT_STDOUT" 'keys(d["details"]) == ["rankingRules","n","s"]'

printf '{\n  "receivedDocuments": 10,\n  "indexedDocuments": null\n}\n' >"$T/details.json"
run "$L" enqueue books documentAddition --details "@$T/details.json"
json_assert "enqueue --details @FILE: uid 2" "$LMT_STDOUT" 'd["uid"] == 2 and d["indexUid"] == "books"'
json_assert "--details @FILE stored" "$(get 2)" 'd["details"] == {"receivedDocuments":10,"indexedDocuments":None}'

run "$L" enqueue books documentDeletion --details - <<<'{"deletedDocuments":3}'
json_assert "enqueue --details - reads stdin: uid 3" "$LMT_STDOUT" 'd["uid"] == 3 and d["type"] == "documentDeletion"'
json_assert "--details - stored" "$(get 3)" 'd["details"] == {"deletedDocuments":3}'

G0=$(get 0)
json_assert "get: keys in SPEC §1 order for an enqueued task" "$G0" "keys(d) == $TASK_KEYS"
json_assert "get: details {} when none given, duration/startedAt/finishedAt null" "$G0" \
    'd["details"] == {} and d["duration"] is None and d["startedAt"] is None and d["finishedAt"] is None'
json_assert "get agrees with what enqueue printed" "$G0" \
    "all(d[k] == v for k, v in json.loads('''$E0''').items())"
assert_eq "get prints exactly one line of compact JSON" 1 "$(printf '%s\n' "$G0" | wc -l)"
assert_re "get output has no spaces after separators" '^\{"uid":0,"indexUid":"movies","status":"enqueued",' "$G0"

###########################################################################################
section "transitions"

newdb trans
S=$(enq movies settingsUpdate --details '{"a":1,"b":{"x":1},"keep":"me"}')
F=$(enq movies indexCreation)
F2=$(enq movies indexDeletion)
CE=$(enq books documentAddition)
CP=$(enq books documentAddition)
P=$(enq books clearAll)
Q=$(enq books clearAll)
assert_eq "uids are allocated 0,1,2,..." "0 1 2 3 4 5 6" "$S $F $F2 $CE $CP $P $Q"

run "$L" start "$S"
json_assert "start: processing, startedAt set, finishedAt and duration null" "$LMT_STDOUT" \
    "d['uid'] == $S and d['status'] == 'processing' and re.match(r'$TS_RE', d['startedAt']) and d['finishedAt'] is None and d['duration'] is None"
assert_eq "start prints what get shows" "$LMT_STDOUT" "$(get "$S")"

run "$L" succeed "$S" --details '{"b":2,"c":[3]}'
assert_eq "succeed exits 0" 0 "$LMT_RC"
SUCC=$(get "$S")
assert_eq "succeed prints what get shows" "$LMT_STDOUT" "$SUCC"
json_assert "succeed: status succeeded" "$SUCC" 'd["status"] == "succeeded"'
json_assert "succeed --details merges key by key (kept, replaced, added, in order)" "$SUCC" \
    'd["details"] == {"a":1,"b":2,"keep":"me","c":[3]} and keys(d["details"]) == ["a","b","keep","c"]'
json_assert "succeeded: keys in SPEC §1 order" "$SUCC" "keys(d) == $TASK_KEYS"
json_assert "succeeded: timestamps well-formed, enqueuedAt <= startedAt <= finishedAt" "$SUCC" \
    "all(re.match(r'$TS_RE', d[k]) for k in ('enqueuedAt','startedAt','finishedAt')) and d['enqueuedAt'] <= d['startedAt'] <= d['finishedAt']"
json_assert "succeeded: duration is ISO 8601 (PT…S)" "$SUCC" \
    "re.match(r'^PT[0-9]+(\.[0-9]{3}|\.[0-9]{6})?S$', d['duration'])"

# succeed without --details leaves the details alone
"$L" start "$P" >/dev/null 2>&1
run "$L" succeed "$P"
json_assert "succeed without --details keeps details {}" "$LMT_STDOUT" 'd["status"] == "succeeded" and d["details"] == {}'
P=$(enq books clearAll)   # a new processing task for the refusals below
"$L" start "$P" >/dev/null 2>&1

"$L" start "$F" >/dev/null 2>&1
run "$L" fail "$F" --code index_creation_failed --message 'Index `movies` could not be created.'
assert_eq "fail exits 0" 0 "$LMT_RC"
FAILED=$(get "$F")
assert_eq "fail prints what get shows" "$LMT_STDOUT" "$FAILED"
json_assert "failed: keys in SPEC §1 order (error right after details)" "$FAILED" "keys(d) == $FAILED_KEYS"
json_assert "fail: error object, type defaults to internal, link from the code" "$FAILED" \
    'd["status"] == "failed" and d["error"] == {"message":"Index `movies` could not be created.","code":"index_creation_failed","type":"internal","link":"https://docs.meilisearch.com/errors#index_creation_failed"} and keys(d["error"]) == ["message","code","type","link"]'
json_assert "failed: finishedAt and duration set" "$FAILED" \
    "re.match(r'$TS_RE', d['finishedAt']) and d['duration'].startswith('P')"

"$L" start "$F2" >/dev/null 2>&1
run "$L" fail "$F2" --code bad_thing --message 'bad' --type invalid_request
json_assert "fail --type invalid_request" "$LMT_STDOUT" 'd["error"]["type"] == "invalid_request" and d["error"]["code"] == "bad_thing"'

NEXT=$(stat_field 'd["nextUid"]')
run "$L" cancel "$CE"
assert_eq "cancel of an enqueued task exits 0" 0 "$LMT_RC"
CANCEL_TASK=$LMT_STDOUT
json_assert "cancel prints the taskCancelation task, with the next uid" "$CANCEL_TASK" \
    "d['uid'] == $NEXT and d['type'] == 'taskCancelation' and d['indexUid'] is None and d['status'] == 'succeeded'"
json_assert "taskCancelation details: matchedTasks, canceledTasks, originalFilter" "$CANCEL_TASK" \
    'keys(d["details"]) == ["matchedTasks","canceledTasks","originalFilter"] and d["details"]["matchedTasks"] == 1 and d["details"]["canceledTasks"] == 1 and isinstance(d["details"]["originalFilter"], str)'
json_assert "taskCancelation: keys in order, all timestamps set" "$CANCEL_TASK" \
    "keys(d) == $TASK_KEYS and all(re.match(r'$TS_RE', d[k]) for k in ('enqueuedAt','startedAt','finishedAt'))"
assert_eq "get of the taskCancelation task matches what cancel printed" "$CANCEL_TASK" "$(get "$NEXT")"
CANCELED=$(get "$CE")
json_assert "canceled enqueued task: status canceled, canceledBy the cancelation uid" "$CANCELED" \
    "d['status'] == 'canceled' and d['canceledBy'] == $NEXT"
json_assert "canceled: keys in SPEC §1 order (canceledBy right after type)" "$CANCELED" "keys(d) == $CANCELED_KEYS"
json_assert "canceled: finishedAt set" "$CANCELED" "re.match(r'$TS_RE', d['finishedAt'])"

"$L" start "$CP" >/dev/null 2>&1
run "$L" cancel "$CP"
CP_BY=$(json_get "$LMT_STDOUT" 'd["uid"]' 2>&1)
json_assert "cancel of a processing task: canceled, canceledBy the new task" "$(get "$CP")" \
    "d['status'] == 'canceled' and d['canceledBy'] == $CP_BY and keys(d) == $CANCELED_KEYS and d['startedAt'] is not None"
assert_eq "each cancel records its own taskCancelation" $((NEXT + 1)) "$CP_BY"

# several at once, one already finished
M1=$(enq books documentAddition)
run "$L" cancel "$M1" "$S"
assert_eq "cancel of an enqueued and a finished task exits 0" 0 "$LMT_RC"
json_assert "matchedTasks 2, canceledTasks 1" "$LMT_STDOUT" \
    'd["details"]["matchedTasks"] == 2 and d["details"]["canceledTasks"] == 1'
assert_eq "the finished task given to cancel is untouched" "$SUCC" "$(get "$S")"

# refusals
CAN=$CE
for u in "$P:processing" "$S:succeeded" "$F:failed" "$CAN:canceled"; do
	refused "start of a ${u#*:} task" "${u%%:*}" "$L" start "${u%%:*}"
done
for u in "$Q:enqueued" "$S:succeeded" "$F:failed" "$CAN:canceled"; do
	refused "succeed of a ${u#*:} task" "${u%%:*}" "$L" succeed "${u%%:*}" --details '{"z":1}'
	refused "fail of a ${u#*:} task" "${u%%:*}" "$L" fail "${u%%:*}" --code x --message y
done
for u in "$S:succeeded" "$F:failed" "$CAN:canceled"; do
	NEXT=$(stat_field 'd["nextUid"]')
	refused "cancel of a ${u#*:} task" "${u%%:*}" "$L" cancel "${u%%:*}"
	assert_eq "refused cancel of a ${u#*:} task records no taskCancelation" "$NEXT" "$(stat_field 'd["nextUid"]')"
done
NEXT=$(stat_field 'd["nextUid"]')
QB=$(get "$Q")
assert_exit -m "cancel of an unknown uid among known ones: exit 1" 1 "$L" cancel "$Q" 999999
assert_eq "cancel with an unknown uid changes nothing (whole or nothing)" "$QB" "$(get "$Q")"
assert_eq "cancel with an unknown uid records no taskCancelation" "$NEXT" "$(stat_field 'd["nextUid"]')"

###########################################################################################
section "claim"

newdb claim
assert_exit -m "claim on an empty store: exit 1" 1 "$L" claim
assert_eq "claim with nothing to take prints nothing on stdout" "" "$LMT_STDOUT"
enq a documentAddition >/dev/null   # 0
enq b settingsUpdate >/dev/null     # 1
enq a settingsUpdate >/dev/null     # 2
enq b documentAddition >/dev/null   # 3
enq a documentAddition >/dev/null   # 4
run "$L" claim --index b
json_assert "claim --index b takes b's oldest (1)" "$LMT_STDOUT" 'd["uid"] == 1 and d["status"] == "processing" and d["startedAt"] is not None'
assert_eq "claim prints what get then shows" "$LMT_STDOUT" "$(get 1)"
run "$L" claim --type documentAddition
json_assert "claim --type documentAddition takes the oldest of that type (0)" "$LMT_STDOUT" 'd["uid"] == 0'
run "$L" claim --index a --type settingsUpdate
json_assert "claim --index a --type settingsUpdate (2)" "$LMT_STDOUT" 'd["uid"] == 2'
assert_exit -m "claim --index with no match: exit 1" 1 "$L" claim --index zzz
assert_exit -m "claim --type with no match: exit 1" 1 "$L" claim --index b --type settingsUpdate
run "$L" claim
json_assert "claim takes the oldest enqueued task (3)" "$LMT_STDOUT" 'd["uid"] == 3'
run "$L" claim
json_assert "claim then takes 4" "$LMT_STDOUT" 'd["uid"] == 4'
assert_exit -m "claim when all are taken: exit 1" 1 "$L" claim
assert_exit -m "claim --index with a bad index uid: exit 2" 2 "$L" claim --index 'no/slash'
assert_exit -m "claim --type with a bad type: exit 2" 2 "$L" claim --type 'Bad'
assert_exit -m "claim --wait abc: exit 2" 2 "$L" claim --wait abc
assert_exit -m "claim --wait -1: exit 2" 2 "$L" claim --wait -1
assert_exit -m "claim with an argument: exit 2" 2 "$L" claim 5

# A claimer with --wait looks, finds nothing and sleeps (lmt_asleep); only then comes the
# enqueue.  No sleep orders the steps, so the checks hold however slow the machine is.
# The 30 s bounds are hang guards, not speed checks: a waiter wakes within 250 ms of a
# commit even if its inotify event is lost (the watch's WATCH_LOST_MS), and 30 s holds on a
# machine running at a fifth of its speed.
"$L" claim --wait 600 >"$T/cw.out" 2>"$T/cw.err" &
CPID=$!
lmt_bg_track $CPID
if wait_for 30 lmt_asleep $CPID; then
	ok "claim --wait with nothing to take waits for an enqueue"
else
	fail "claim --wait with nothing to take waits for an enqueue" "$(cat "$T/cw.err")"
fi
"$L" enqueue late documentAddition >"$T/late.out" 2>&1
lmt_wait_pid 30 $CPID
assert_eq "claim --wait gets a task enqueued while it waits" 0 "$?"
json_assert "claim --wait took the late task (uid 5)" "$(cat "$T/cw.out")" 'd["uid"] == 5 and d["indexUid"] == "late"'

"$L" claim --index late --wait 600 >"$T/cw.out" 2>"$T/cw.err" &
CPID=$!
lmt_bg_track $CPID
wait_for 30 lmt_asleep $CPID
r=$(lmt_reads $CPID)
"$L" enqueue other documentAddition >/dev/null 2>&1
# Woken by that commit, it has looked and sleeps again.
if wait_for 30 lmt_looked $CPID "$r"; then
	ok "claim --index late --wait: another index's task does not end the wait"
else
	fail "claim --index late --wait: another index's task does not end the wait" "$(cat "$T/cw.out" "$T/cw.err")"
fi
"$L" enqueue late documentAddition >/dev/null 2>&1
lmt_wait_pid 30 $CPID
json_assert "claim --index late --wait skips another index's task and takes the matching one" "$(cat "$T/cw.out")" \
    'd["indexUid"] == "late" and d["uid"] == 7'

t0=$(now)
assert_exit -m "claim --index late --wait 0.3 with nothing to take: exit 1" 1 "$L" claim --index late --wait 0.3
t=$(elapsed "$t0")
assert_lt "claim --wait 0.3 waited about 0.3 s (took $t s)" 0.25 "$t"
# When the wait runs out, by the clock of the clocked program: --wait 60, the clock moved.
clock_use "$T/claim-clock"
"$LMTASKS_CLOCKED" claim --index late --wait 60 >"$T/cw.out" 2>"$T/cw.err" &
CPID=$!
lmt_bg_track $CPID
wait_for 30 lmt_asleep $CPID
clock_move 30
r=$(lmt_reads $CPID)
# It reads the clock file at each look: a read since the move, then asleep again.
if wait_for 30 lmt_looked $CPID "$r"; then
	ok "claim --wait 60 still waits once the clock moved 30 s"
else
	fail "claim --wait 60 still waits once the clock moved 30 s" "$(cat "$T/cw.err")"
fi
clock_move 31
lmt_wait_pid 30 $CPID
assert_eq "claim --wait 60 gives up once the clock moved 61 s: exit 1" 1 "$?"
assert_eq "... and takes nothing" "" "$(cat "$T/cw.out")"

###########################################################################################
section "wait"

# As for claim --wait: each step waits for the waiter's state, never for time.
newdb wait
W=$(enq movies documentAddition)
"$L" wait "$W" >"$T/wait.out" 2>"$T/wait.err" &
WPID=$!
lmt_bg_track $WPID
# Asleep, it has read the task once (its inotify watch is made before that read).
if wait_for 30 lmt_asleep $WPID; then
	ok "wait blocks while the task is enqueued"
else
	fail "wait blocks while the task is enqueued" "$(cat "$T/wait.err")"
fi
"$L" start "$W" >/dev/null 2>&1
# A touch of the data file (IN_ATTRIB) after the start wakes it once more: it then reads
# the processing task, and must sleep again.
r=$(lmt_reads $WPID)
touch "$LMTASKS_DB/data.mdb"
if wait_for 30 lmt_looked $WPID "$r"; then
	ok "wait blocks while the task is processing"
else
	fail "wait blocks while the task is processing" "$(cat "$T/wait.out" "$T/wait.err")"
fi
"$L" succeed "$W" --details '{"done":true}' >/dev/null 2>&1
lmt_wait_pid 30 $WPID
assert_eq "wait exits 0 once the task succeeds" 0 "$?"
assert_eq "wait prints the finished task" "$(get "$W")" "$(cat "$T/wait.out")"

# The wake-up after a commit is a race; try it a few more times, waiters without
# --timeout: three changes made at once (they may fall between the waiter's first read
# and its sleep), three once it sleeps.
bad=""
for i in 1 2 3 4 5 6; do
	u=$(enq movies documentAddition)
	[ $((i % 2)) = 0 ] && "$L" start "$u" >/dev/null 2>&1
	"$L" wait "$u" >/dev/null 2>"$T/waitr.err" &
	WPID=$!
	lmt_bg_track $WPID
	[ $i -gt 3 ] && wait_for 30 lmt_asleep $WPID
	if [ $((i % 2)) = 0 ]; then "$L" succeed "$u" >/dev/null 2>&1
	elif [ $((i % 3)) = 0 ]; then "$L" cancel "$u" >/dev/null 2>&1
	else "$L" start "$u" >/dev/null 2>&1; "$L" fail "$u" --code x --message y >/dev/null 2>&1; fi
	lmt_wait_pid 30 $WPID
	wrc=$?
	[ $wrc = 0 ] || bad+=" #$i: exit $wrc $(cat "$T/waitr.err")"
done
assert_eq "wait (no --timeout) woke and exited 0 after the finish in 6 of 6 trials" "" "$bad"

# Inotify, or the fallback that polls, chosen on purpose by LMTASKS_NO_INOTIFY=1: with
# inotify the waiter must hold a watch, with the fallback none, and either way every
# waiter wakes.  How soon is bench/wake.sh's to measure; here it is only printed.
# wake_runs ENV...: sets WAKE_MEDIAN (seconds; "none" when a waiter failed), WAKES (each
# run's latency) and WATCHES (each waiter's count of inotify descriptors).
wake_runs() {
	local i u wp t0 t1 lat=() ok=1
	WATCHES=""
	for i in 1 2 3 4 5 6 7; do
		u=$(enq movies documentAddition)
		# --timeout 60: a hang guard (the exit is then 124), as 30 s elsewhere.
		env "$@" "$L" wait "$u" --timeout 60 >/dev/null 2>&1 &
		wp=$!
		lmt_bg_track "$wp"
		# Until the waiter has read the task once and sleeps (its inotify watch is made
		# before that read); then the change.
		wait_for 30 lmt_asleep "$wp"
		WATCHES+="$(lmt_inotify "$wp")"
		"$L" start "$u" >/dev/null 2>&1
		"$L" succeed "$u" >/dev/null 2>&1
		t0=$(now)
		wait "$wp" || ok=0
		t1=$(now)
		lat+=("$(elapsed "$t0" "$t1")")
	done
	WAKES="${lat[*]}"
	WAKE_MEDIAN=none
	[ "$ok" = 1 ] && WAKE_MEDIAN=$(printf '%s\n' "${lat[@]}" | sort -g | sed -n 4p)
}
wake_runs LMTASKS_NO_INOTIFY=
assert_eq "wait (inotify): every waiter holds an inotify watch" 1111111 "$WATCHES"
# How soon is printed, not asserted: a busy machine may take any time (bench/wake.sh
# measures it).
assert_ne "wait (inotify): all 7 waiters woke and exited 0 (median $WAKE_MEDIAN s; $WAKES)" \
	none "$WAKE_MEDIAN"
wake_runs LMTASKS_NO_INOTIFY=1
assert_eq "wait (LMTASKS_NO_INOTIFY=1): no waiter holds an inotify watch" 0000000 "$WATCHES"
assert_ne "wait (the polling fallback): all 7 waiters woke and exited 0 ($WAKES)" none "$WAKE_MEDIAN"

W2=$(enq movies documentAddition)
"$L" wait "$W2" --timeout 600 >"$T/wait2.out" 2>&1 &
WPID=$!
lmt_bg_track $WPID
wait_for 30 lmt_asleep $WPID
"$L" cancel "$W2" >/dev/null 2>&1
lmt_wait_pid 30 $WPID
assert_eq "wait exits 0 when another process cancels the task" 0 "$?"
json_assert "wait printed the canceled task" "$(cat "$T/wait2.out")" 'd["status"] == "canceled"'

run "$L" wait "$W"
assert_eq "wait on a finished task: exit 0 at once" "0" "$LMT_RC"
assert_exit -m "wait --timeout 0 on a finished task: exit 0 (it reads before it waits)" 0 \
	"$L" wait "$W" --timeout 0
W3=$(enq movies documentAddition)
t0=$(now)
assert_exit -m "wait --timeout 0.5 on an unfinished task: exit 124" 124 "$L" wait "$W3" --timeout 0.5
t=$(elapsed "$t0")
assert_lt "wait --timeout 0.5 waited (took $t s)" 0.4 "$t"
assert_re "wait timeout says so on stderr" '^lmtasks: ' "$LMT_STDERR"
# When the timeout runs out, by the clock of the clocked program.
clock_use "$T/wait-clock"
"$LMTASKS_CLOCKED" wait "$W3" --timeout 60 >/dev/null 2>"$T/wait3.err" &
WPID=$!
lmt_bg_track $WPID
wait_for 30 lmt_asleep $WPID
clock_move 30
r=$(lmt_reads $WPID)
if wait_for 30 lmt_looked $WPID "$r"; then
	ok "wait --timeout 60 still waits once the clock moved 30 s"
else
	fail "wait --timeout 60 still waits once the clock moved 30 s" "$(cat "$T/wait3.err")"
fi
clock_move 31
lmt_wait_pid 30 $WPID
assert_eq "wait --timeout 60 ends once the clock moved 61 s: exit 124" 124 "$?"
assert_re "... and says so on stderr" '^lmtasks: ' "$(cat "$T/wait3.err")"
assert_exit -m "wait --timeout 0 on an unfinished task: exit 124" 124 "$L" wait "$W3" --timeout 0
assert_exit -m "wait on an unknown uid: exit 1" 1 "$L" wait 4242 --timeout 5
assert_exit -m "wait --timeout abc: exit 2" 2 "$L" wait "$W3" --timeout abc

###########################################################################################
section "list"

newdb list
"$LMT_PYTHON" -c '
import json
for i in range(53):
    print(json.dumps({"indexUid": "idx%d" % (i % 3), "type": "documentAddition", "details": {"i": i}}))
' >"$T/list.ndjson"
"$L" enqueue --batch "$T/list.ndjson" >/dev/null
run "$L" list
json_assert "list: envelope keys results, total, limit, from, next" "$LMT_STDOUT" \
    'keys(d) == ["results","total","limit","from","next"]'
json_assert "list: newest first, 20 by default, total 53, from 52, next 32" "$LMT_STDOUT" \
    '[t["uid"] for t in d["results"]] == list(range(52, 32, -1)) and d["total"] == 53 and d["limit"] == 20 and d["from"] == 52 and d["next"] == 32'
json_assert "list: each result is the full task in SPEC §1 order" "$LMT_STDOUT" \
    "all(keys(t) == $TASK_KEYS for t in d['results']) and d['results'][0]['details'] == {'i': 52}"
assert_eq "list: results are what get prints" "$(get 52)" "$(json_get "$LMT_STDOUT" 'json.dumps(d["results"][0], separators=(",",":"), ensure_ascii=False)')"
run "$L" list --reverse
json_assert "list --reverse: oldest first, from 0, next 20" "$LMT_STDOUT" \
    '[t["uid"] for t in d["results"]] == list(range(0, 20)) and d["from"] == 0 and d["next"] == 20 and d["total"] == 53'
run "$L" list --limit 5 --from 10
json_assert "list --limit 5 --from 10: 10..6, next 5" "$LMT_STDOUT" \
    '[t["uid"] for t in d["results"]] == [10,9,8,7,6] and d["limit"] == 5 and d["from"] == 10 and d["next"] == 5 and d["total"] == 53'
run "$L" list --limit 5 --from 10 --reverse
json_assert "list --reverse --limit 5 --from 10: 10..14, next 15" "$LMT_STDOUT" \
    '[t["uid"] for t in d["results"]] == [10,11,12,13,14] and d["next"] == 15'
run "$L" list --limit 3 --from 2
json_assert "list last page: next null" "$LMT_STDOUT" '[t["uid"] for t in d["results"]] == [2,1,0] and d["next"] is None'
run "$L" list --limit 3 --from 1000
json_assert "list --from past the newest starts at the newest" "$LMT_STDOUT" '[t["uid"] for t in d["results"]] == [52,51,50]'
run "$L" list --limit 1000
json_assert "list --limit 1000 returns everything, next null" "$LMT_STDOUT" 'len(d["results"]) == 53 and d["next"] is None'
run "$L" list --limit 0
json_assert "list --limit 0: no results, total still 53" "$LMT_STDOUT" 'd["results"] == [] and d["total"] == 53 and d["limit"] == 0'
assert_exit -m "list --limit 1001: exit 2" 2 "$L" list --limit 1001
assert_exit -m "list --limit -1: exit 2" 2 "$L" list --limit -1
assert_exit -m "list --from abc: exit 2" 2 "$L" list --from abc
assert_exit -m "list --reverse=maybe: exit 2" 2 "$L" list --reverse=maybe
assert_exit -m "list with an argument: exit 2" 2 "$L" list 3

# Walks every page by `next` and prints "ok" when every uid came exactly once, in order.
page_walk() {
	"$LMT_PYTHON" - "$L" "$@" <<'EOF'
import json, subprocess, sys
lm, limit, reverse, n = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
seen, frm, pages = [], None, 0
while True:
    cmd = [lm, "list", "--limit", limit] + (["--reverse"] if reverse else []) + \
          (["--from", str(frm)] if frm is not None else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("exit %d: %s" % (p.returncode, p.stderr))
    d = json.loads(p.stdout)
    if d["total"] != n:
        sys.exit("total %r on page %d" % (d["total"], pages))
    seen += [t["uid"] for t in d["results"]]
    pages += 1
    if d["next"] is None:
        break
    if pages > n + 2:
        sys.exit("too many pages")
    frm = d["next"]
want = list(range(n)) if reverse else list(range(n - 1, -1, -1))
print("ok" if seen == want else "seen %s" % seen)
EOF
}
assert_eq "paging by next, newest first, limit 7: every task exactly once" ok "$(page_walk 7 0 53 2>&1)"
assert_eq "paging by next, oldest first, limit 7: every task exactly once" ok "$(page_walk 7 1 53 2>&1)"
assert_eq "paging by next, limit 1: every task exactly once" ok "$(page_walk 1 0 53 2>&1)"
assert_eq "paging by next, limit 53 (one exact page)" ok "$(page_walk 53 1 53 2>&1)"

###########################################################################################
section "stats"

newdb stats
enq a documentAddition >/dev/null
enq a documentAddition >/dev/null
enq b settingsUpdate >/dev/null
enq c settingsUpdate >/dev/null
enq c settingsUpdate >/dev/null
"$L" start 0 >/dev/null && "$L" succeed 0 >/dev/null
"$L" start 1 >/dev/null && "$L" fail 1 --code x --message y >/dev/null
"$L" start 2 >/dev/null
"$L" cancel 3 >/dev/null
run "$L" stats
assert_eq "stats exits 0" 0 "$LMT_RC"
STATS=$LMT_STDOUT
json_assert "stats has tasks, nextUid, statuses, indexes, pageSize, usedBytes, mapSize" "$STATS" \
    'set(["tasks","nextUid","statuses","indexes","pageSize","usedBytes","mapSize"]) <= set(keys(d))'
json_assert "stats: tasks 6 (with the taskCancelation), nextUid 6" "$STATS" 'd["tasks"] == 6 and d["nextUid"] == 6'
json_assert "stats: counts by status" "$STATS" \
    'd["statuses"] == {"enqueued":1,"processing":1,"succeeded":2,"failed":1,"canceled":1}'
json_assert "stats: 3 indexes" "$STATS" 'd["indexes"] == 3'
json_assert "stats: sizes make sense" "$STATS" \
    'd["pageSize"] >= 512 and 0 < d["usedBytes"] <= d["mapSize"]'
assert_exit -m "stats with an argument: exit 2" 2 "$L" stats extra
run "$L" check
assert_eq "check on a healthy store: exit 0" 0 "$LMT_RC"
json_assert "check reports ok, the number of tasks and no problems" "$LMT_STDOUT" \
    'd["ok"] is True and d["tasks"] == 6 and d["problems"] == 0'

###########################################################################################
section "parallel writers"

newdb par
# 4 writers of 50 enqueues each, then 3 claimers: every enqueue and claim is its own
# process, so the writers' transactions interleave from the first ones on.
enq_worker() {
	local w=$1 i
	for ((i = 0; i < 50; i++)); do
		lmt_guard 20 "$L" enqueue "p$w" documentAddition --details "{\"w\":$w,\"i\":$i}" || echo "exit $? at $i" >&2
	done >"$T/enq.$w" 2>"$T/enq.$w.err"
}
t0=$(now)
pids=()
for w in 1 2 3 4; do
	enq_worker $w &
	pids+=($!)
	lmt_bg_track $!
done
wait "${pids[@]}"
echo "# 4 x 50 enqueues took $(elapsed "$t0") s"
assert_eq "parallel enqueues: no errors" "" "$(cat "$T"/enq.*.err)"
assert_eq "parallel enqueues: uids are exactly 0..199, each once" ok "$("$LMT_PYTHON" - "$T" <<'EOF'
import glob, json, sys
uids = []
for f in glob.glob(sys.argv[1] + "/enq.[0-9]"):
    uids += [json.loads(l)["uid"] for l in open(f) if l.strip()]
print("ok" if sorted(uids) == list(range(200)) else "got %d uids, %d distinct, min %s max %s"
      % (len(uids), len(set(uids)), min(uids, default=None), max(uids, default=None)))
EOF
)"
"$L" list --limit 1000 --reverse >"$T/par-list.json"
json_assert "parallel enqueues: each worker's 50 tasks stored once, in its own order" "$T/par-list.json" \
    'd["total"] == 200 and all([t["details"]["i"] for t in d["results"] if t["details"]["w"] == w] == list(range(50)) for w in (1,2,3,4)) and all(t["indexUid"] == "p%d" % t["details"]["w"] for t in d["results"])'
check "check after parallel enqueues" "$L" check

claim_worker() {
	local k=$1 rc n=0
	while [ $n -lt 300 ]; do
		lmt_guard 20 "$L" claim >>"$T/claim.$k" 2>>"$T/claim.$k.err"
		rc=$?
		[ $rc -ne 0 ] && break
		n=$((n + 1))
	done
	echo $rc >"$T/claim.$k.rc"
}
t0=$(now)
pids=()
for k in 1 2 3; do
	claim_worker $k &
	pids+=($!)
	lmt_bg_track $!
done
wait "${pids[@]}"
echo "# 3 parallel claimers took $(elapsed "$t0") s"
assert_eq "parallel claimers all stop with exit 1 (nothing left)" "1 1 1" "$(cat "$T"/claim.1.rc "$T"/claim.2.rc "$T"/claim.3.rc | tr '\n' ' ' | sed 's/ $//')"
assert_eq "parallel claims: every task claimed exactly once" ok "$("$LMT_PYTHON" - "$T" <<'EOF'
import glob, json, sys, collections
uids = []
for f in glob.glob(sys.argv[1] + "/claim.[0-9]"):
    for l in open(f):
        if l.strip():
            t = json.loads(l)
            assert t["status"] == "processing"
            uids.append(t["uid"])
c = collections.Counter(uids)
dups = [u for u, n in c.items() if n > 1]
missing = sorted(set(range(200)) - set(uids))
print("ok" if not dups and not missing and len(uids) == 200 else
      "%d claims, duplicates %s, missing %s" % (len(uids), dups[:10], missing[:10]))
EOF
)"
json_assert "after the claims: 200 processing, none enqueued" "$("$L" stats)" \
    'd["statuses"]["processing"] == 200 and d["statuses"]["enqueued"] == 0'
json_assert "each claimer got some of the work" "$(printf '[%s,%s,%s]' "$(wc -l <"$T/claim.1")" "$(wc -l <"$T/claim.2")" "$(wc -l <"$T/claim.3")")" \
    'sum(d) == 200 and min(d) > 0'
check "check after parallel claims" "$L" check

###########################################################################################
section "enqueue --batch"

newdb batch
enq seed documentAddition >/dev/null
enq seed documentAddition >/dev/null
"$LMT_PYTHON" - "$T/b20k.ndjson" <<'EOF'
import json, sys
types = ["documentAddition", "settingsUpdate", "indexCreation", "myOwnType2"]
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        o = {"indexUid": "idx-%d_x" % (i % 11), "type": types[i % 4]}
        if i % 5 != 0:
            o["details"] = {"line": i + 1, "s": "v\u00e9%d" % i}
        elif i % 10 == 0:
            o["details"] = None
        f.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
EOF
t0=$(now)
run "$L" enqueue --batch "$T/b20k.ndjson"
echo "# 20,000-line batch took $(elapsed "$t0") s"
assert_eq "20,000-line batch: prints enqueued, firstUid, lastUid" '{"enqueued":20000,"firstUid":2,"lastUid":20001}' "$LMT_STDOUT"
json_assert "batch: stats count 20,002 tasks, next uid 20002" "$("$L" stats)" 'd["tasks"] == 20002 and d["nextUid"] == 20002 and d["statuses"]["enqueued"] == 20002'
json_assert "batch: first line stored as task 2" "$(get 2)" \
    'd["indexUid"] == "idx-0_x" and d["type"] == "documentAddition" and d["details"] == {}'
json_assert "batch: last line stored as task 20001" "$(get 20001)" \
    'd["indexUid"] == "idx-1_x" and d["type"] == "myOwnType2" and d["details"] == {"line":20000,"s":"vé19999"}'
json_assert "batch: details null means {}" "$(get 12)" 'd["details"] == {}'
check "check after the 20,000-line batch" "$L" check

printf '{"indexUid":"s","type":"documentAddition"}\n\n{"indexUid":"s","type":"clearAll","details":{"k":1}}\n' >"$T/small.ndjson"
run "$L" enqueue --batch - <"$T/small.ndjson"
assert_eq "batch from stdin (-), blank line skipped" '{"enqueued":2,"firstUid":20002,"lastUid":20003}' "$LMT_STDOUT"
run "$L" enqueue --batch <"$T/small.ndjson"
assert_eq "batch with no FILE reads stdin" '{"enqueued":2,"firstUid":20004,"lastUid":20005}' "$LMT_STDOUT"
NEXT=20006
BASE_STATS=$("$L" stats | json_get - '[d["tasks"], d["nextUid"], d["statuses"]]')

# break_at FILE LINE TEXT: FILE with line LINE replaced by TEXT.
break_at() {
	awk -v n="$2" -v t="$3" 'NR == n { print t; next } { print }' "$T/b20k.ndjson" >"$1"
}
variants=(
	'invalid JSON|{"indexUid":"a","type":"documentAddition",'
	'missing type|{"indexUid":"a"}'
	'missing indexUid|{"type":"documentAddition"}'
	'bad indexUid|{"indexUid":"bad index!","type":"documentAddition"}'
	'indexUid not a string|{"indexUid":7,"type":"documentAddition"}'
	'bad type|{"indexUid":"a","type":"Document-Addition"}'
	'details not an object|{"indexUid":"a","type":"documentAddition","details":[1,2]}'
	'unknown key|{"indexUid":"a","type":"documentAddition","status":"succeeded"}'
	'not an object|["a","documentAddition"]'
	'trailing garbage|{"indexUid":"a","type":"documentAddition"} x'
)
for v in "${variants[@]}"; do
	label=${v%%|*} line=${v#*|}
	break_at "$T/broken.ndjson" 10000 "$line"
	assert_exit -m "batch with $label at line 10000: exit 2" 2 "$L" enqueue --batch "$T/broken.ndjson"
	assert_re "batch with $label: the message names line 10000" '^lmtasks: .*line 10000([^0-9]|$)' "$LMT_STDERR"
	assert_eq "batch with $label: nothing stored" "$BASE_STATS" \
	    "$("$L" stats | json_get - '[d["tasks"], d["nextUid"], d["statuses"]]')"
done
break_at "$T/broken.ndjson" 1 '{"indexUid":"a"'
assert_exit -m "batch broken at line 1: exit 2" 2 "$L" enqueue --batch "$T/broken.ndjson"
assert_re "batch broken at line 1: names line 1" 'line 1([^0-9]|$)' "$LMT_STDERR"
break_at "$T/broken.ndjson" 20000 '{"indexUid":"a","type":"documentAddition","details":"x"}'
assert_exit -m "batch broken at the last line: exit 2" 2 "$L" enqueue --batch "$T/broken.ndjson"
assert_re "batch broken at the last line: names line 20000" 'line 20000([^0-9]|$)' "$LMT_STDERR"
assert_exit -m "batch from stdin with a bad line: exit 2" 2 "$L" enqueue --batch - <<<'{"indexUid":"a","type":"x"}
{"indexUid":"a","type":"x","details":1}'
assert_re "batch from stdin: names line 2" 'line 2([^0-9]|$)' "$LMT_STDERR"
assert_eq "after the rejected batches: stats unchanged" "$BASE_STATS" \
    "$("$L" stats | json_get - '[d["tasks"], d["nextUid"], d["statuses"]]')"
assert_eq "after the rejected batches: the next enqueue gets uid $NEXT" "$NEXT" "$(enq after documentAddition)"
# NaN / Infinity are not JSON: stored, they would make `get` and the HTTP API print invalid JSON.
for v in 'NaN in details|{"x":NaN}' 'Infinity in details|{"x":[Infinity]}' "single-quoted key in details|{'x':1}"; do
	label=${v%%|*}
	break_at "$T/broken.ndjson" 10000 "{\"indexUid\":\"a\",\"type\":\"documentAddition\",\"details\":${v#*|}}"
	before=$("$L" stats | json_get - '[d["tasks"], d["nextUid"]]')
	assert_exit -m "batch with $label (not JSON) at line 10000: exit 2" 2 "$L" enqueue --batch "$T/broken.ndjson"
	assert_re "batch with $label: the message names line 10000" '^lmtasks: .*line 10000([^0-9]|$)' "$LMT_STDERR"
	assert_eq "batch with $label: nothing stored" "$before" "$("$L" stats | json_get - '[d["tasks"], d["nextUid"]]')"
done
assert_exit -m "batch of a missing file: exit 2" 2 "$L" enqueue --batch "$T/no-such-file.ndjson"
assert_exit -m "batch with --details: exit 2" 2 "$L" enqueue --batch "$T/small.ndjson" --details '{}'
run "$L" enqueue --batch - </dev/null
assert_eq "empty batch: exit 0" 0 "$LMT_RC"
json_assert "empty batch: enqueued 0" "${LMT_STDOUT:-null}" 'd["enqueued"] == 0'
check "check after the rejected batches" "$L" check

###########################################################################################
section "SIGKILL during a 300,000-line batch"

"$LMT_PYTHON" - "$T/b300k.ndjson" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(300000):
        f.write('{"indexUid":"k%d","type":"documentAddition","details":{"n":%d}}\n' % (i % 5, i))
EOF

# store_open PID DIR: PID has DIR/data.mdb open (it has parsed its input and is writing).
store_open() {
	local f
	# (-ef: the same file, by device and inode; a test, where readlink was a process.)
	for f in /proc/"$1"/fd/*; do
		[ "$f" -ef "$2/data.mdb" ] && return 0
	done
	return 1
}

midtx=0 landed=""
attempt=0
for base in 0.02 0.25 0.6 0.1 0.4 0.05; do
	attempt=$((attempt + 1))
	D=$(cd "$T" && pwd -P)/kill$attempt
	export LMTASKS_DB=$D
	"$L" init 2>/dev/null
	for i in 0 1 2; do "$L" enqueue seed documentAddition >/dev/null; done
	delay=$(awk -v b="$base" -v r="$RANDOM" 'BEGIN { printf "%.3f", b + (r % 100) / 1000 }')
	"$L" enqueue --batch "$T/b300k.ndjson" >"$D.out" 2>"$D.err" &
	pid=$!
	lmt_bg_track $pid
	if ! wait_for 30 store_open $pid "$D"; then
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
		fail "kill attempt $attempt: the writer opened the store" "$(cat "$D.err")"
		continue
	fi
	sleep "$delay"
	inside=0
	kill -0 $pid 2>/dev/null && [ ! -s "$D.out" ] && store_open $pid "$D" && inside=1
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	rc=$?
	[ $rc -eq 137 ] && [ $inside = 1 ] && midtx=$((midtx + 1))

	run "$L" stats
	n=$(json_get "${LMT_STDOUT:-null}" 'd["tasks"]' 2>&1)
	nu=$(json_get "${LMT_STDOUT:-null}" 'd["nextUid"]' 2>&1)
	landed+=" ${delay}s:$([ $rc -eq 137 ] && echo killed || echo finished)/$([ "$n" = 3 ] && echo none || echo all)"
	case $n in
	3 | 300003) ok "kill -9 after $delay s (exit $rc, inside=$inside): all or none stored ($n tasks)" ;;
	*) fail "kill -9 after $delay s (exit $rc, inside=$inside): all or none stored" "tasks: $n" "$LMT_STDOUT $LMT_STDERR" ;;
	esac
	assert_eq "kill -9 after $delay s: next uid matches the tasks stored" "$n" "$nu"
	LMT_CMD_TIMEOUT=30 check "kill -9 after $delay s: check passes" "$L" check
	LMT_CMD_TIMEOUT=20 run "$L" enqueue after documentAddition
	assert_eq "kill -9 after $delay s: the next writer is not blocked and gets uid $n" \
	    "$n" "$(json_get "${LMT_STDOUT:-null}" 'd["uid"]' 2>&1)"
	if [ "$n" = 300003 ]; then
		json_assert "kill -9 after $delay s: the last batch line is there" "$(get 300002)" \
		    'd["details"] == {"n":299999} and d["indexUid"] == "k4"'
	fi
	rm -rf "$D"
	# Three tries, more if none of them has landed inside the transaction yet.
	[ $attempt -ge 3 ] && [ $midtx -gt 0 ] && break
done
echo "# kills:$landed"
if [ $midtx -gt 0 ]; then
	ok "at least one kill landed while the writer was inside its transaction ($midtx of $attempt)"
else
	fail "at least one kill landed while the writer was inside its transaction" "$landed"
fi
rm -f "$T/b300k.ndjson"

###########################################################################################
section "bad input"

newdb bad
enq good documentAddition >/dev/null
GOOD0=$(get 0)
assert_exit -m "enqueue into an index uid with a space: exit 2" 2 "$L" enqueue 'bad index' documentAddition
assert_re "bad index uid: the message says what is allowed" '^lmtasks: .*index' "$LMT_STDERR"
assert_exit -m "enqueue into an index uid with a slash: exit 2" 2 "$L" enqueue 'a/b' documentAddition
assert_exit -m "enqueue into an index uid with a dot: exit 2" 2 "$L" enqueue 'a.b' documentAddition
assert_exit -m "enqueue into an empty index uid: exit 2" 2 "$L" enqueue '' documentAddition
assert_exit -m "enqueue into a 401-byte index uid: exit 2" 2 "$L" enqueue "$(printf 'a%.0s' {1..401})" documentAddition
assert_exit -m "enqueue into a non-ASCII index uid: exit 2" 2 "$L" enqueue 'filmé' documentAddition
assert_exit -m "enqueue with type DocumentAddition (not camelCase): exit 2" 2 "$L" enqueue movies DocumentAddition
assert_re "bad type: the message says what is allowed" '^lmtasks: .*type' "$LMT_STDERR"
assert_exit -m "enqueue with type 1abc: exit 2" 2 "$L" enqueue movies 1abc
assert_exit -m "enqueue with type doc-add: exit 2" 2 "$L" enqueue movies doc-add
assert_exit -m "enqueue with an empty type: exit 2" 2 "$L" enqueue movies ''
assert_exit -m "enqueue with a 65-letter type: exit 2" 2 "$L" enqueue movies "$(printf 'a%.0s' {1..65})"
assert_exit -m "enqueue --details '[1]': exit 2" 2 "$L" enqueue movies documentAddition --details '[1]'
assert_re "details not an object: the message says a JSON object is wanted" '^lmtasks: .*JSON object' "$LMT_STDERR"
assert_exit -m "enqueue --details '{\"a\":': exit 2" 2 "$L" enqueue movies documentAddition --details '{"a":'
assert_re "malformed details: the message says a JSON object is wanted" '^lmtasks: .*JSON' "$LMT_STDERR"
for dj in '"text"' '42' 'null' 'true' '{"a":1' '{a:1}' '{"a":1} {"b":2}' '{"a":1}x' '' '{"a":1,}' \
    '{"a":01}' '{"a":"\x"}'; do
	assert_exit -m "enqueue --details $(printf '%q' "$dj"): exit 2" 2 "$L" enqueue movies documentAddition --details "$dj"
done
assert_exit -m "enqueue --details @missing-file: exit 2" 2 "$L" enqueue movies documentAddition --details "@$T/nope.json"
assert_exit -m "enqueue --details - with an array on stdin: exit 2" 2 "$L" enqueue movies documentAddition --details - <<<'[1]'
assert_exit -m "enqueue with no TYPE: exit 2" 2 "$L" enqueue movies
assert_exit -m "enqueue with an extra argument: exit 2" 2 "$L" enqueue movies documentAddition extra
assert_exit -m "enqueue with --details and no value: exit 2" 2 "$L" enqueue movies documentAddition --details
assert_eq "no bad enqueue stored anything" 1 "$(stat_field 'd["nextUid"]')"
# Not JSON either, though a lenient parser takes them: NaN and Infinity would come back out of
# `get` (and the HTTP API) as invalid JSON.
for dj in "{'a':1}" '{"a":NaN}' '{"a":Infinity}' '{"a":[-Infinity]}'; do
	NEXT=$(stat_field 'd["nextUid"]')
	assert_exit -m "enqueue --details $(printf '%q' "$dj"): exit 2" 2 "$L" enqueue movies documentAddition --details "$dj"
	if [ "$LMT_RC" = 0 ]; then
		u=$(json_get "$LMT_STDOUT" 'd["uid"]')
		run "$L" get "$u"
		json_assert "get of the task enqueued with $(printf '%q' "$dj") prints valid JSON" \
		    "$(printf '%s' "$LMT_STDOUT" | "$LMT_PYTHON" -c 'import json,sys; json.loads(sys.stdin.read(), parse_constant=lambda c: 1/0); print("true")' 2>/dev/null || echo false)" 'd'
		"$L" cancel "$u" >/dev/null 2>&1
	else
		assert_eq "enqueue --details $(printf '%q' "$dj"): nothing stored" "$NEXT" "$(stat_field 'd["nextUid"]')"
	fi
done
assert_exit -m "enqueue of a 400-byte index uid is fine" 0 "$L" enqueue "$(printf 'a%.0s' {1..400})" documentAddition
assert_exit -m "enqueue of a 64-letter type is fine" 0 "$L" enqueue movies "$(printf 'a%.0s' {1..64})"
assert_exit -m "enqueue of index uid A-Z_a-z0-9- is fine" 0 "$L" enqueue 'Ab_9-z' documentAddition

for c in get start succeed cancel; do
	assert_exit -m "$c of an unknown uid: exit 1" 1 "$L" $c 999999
	assert_re "$c of an unknown uid: message on stderr" '^lmtasks: .*999999' "$LMT_STDERR"
done
assert_exit -m "fail of an unknown uid: exit 1" 1 "$L" fail 999999 --code x --message y
for u in abc -1 18446744073709551616 99999999999999999999999 1.5 0x10 ' 1' '1 ' '' '+1' 1e3; do
	assert_exit -m "get $(printf '%q' "$u"): exit 2" 2 "$L" get "$u"
done
assert_re "bad uid: the message names it" '^lmtasks: .*1e3' "$LMT_STDERR"
for c in start succeed cancel wait; do
	assert_exit -m "$c abc: exit 2" 2 "$L" $c abc
	assert_exit -m "$c -1: exit 2" 2 "$L" $c -1
	assert_exit -m "$c 18446744073709551616: exit 2" 2 "$L" $c 18446744073709551616
done
assert_exit -m "fail abc: exit 2" 2 "$L" fail abc --code x --message y
assert_exit -m "get with no uid: exit 2" 2 "$L" get
assert_exit -m "get with two uids: exit 2" 2 "$L" get 0 0
assert_exit -m "start with no uid: exit 2" 2 "$L" start
assert_exit -m "cancel with no uid: exit 2" 2 "$L" cancel
"$L" start 0 >/dev/null 2>&1
P0=$(get 0)
assert_exit -m "fail without --code: exit 2" 2 "$L" fail 0 --message y
assert_exit -m "fail without --message: exit 2" 2 "$L" fail 0 --code x
assert_exit -m "fail --type bogus: exit 2" 2 "$L" fail 0 --code x --message y --type bogus
assert_exit -m "fail --code with a space: exit 2" 2 "$L" fail 0 --code 'a b' --message y
assert_exit -m "succeed --details not an object: exit 2" 2 "$L" succeed 0 --details '[1]'
assert_exit -m "succeed --details malformed: exit 2" 2 "$L" succeed 0 --details '{"a"'
assert_eq "usage errors leave the processing task unchanged" "$P0" "$(get 0)"
assert_exit -m "unknown command: exit 2" 2 "$L" frobnicate
assert_re "unknown command: the message names it" '^lmtasks: .*frobnicate' "$LMT_STDERR"
assert_exit -m "no command: exit 2" 2 "$L"
assert_exit -m "unknown global option: exit 2" 2 "$L" --bogus get 0
assert_exit -m "--db without a value: exit 2" 2 "$L" --db
for c in get start claim succeed fail cancel list wait stats check init enqueue; do
	assert_exit -m "$c --bogus: exit 2" 2 "$L" $c --bogus
done
assert_re "unknown option: message on stderr" '^lmtasks: ' "$LMT_STDERR"
assert_eq "the store is still healthy after all that" 0 "$("$L" check >/dev/null 2>&1; echo $?)"

# --help and --version, on the program and each command
run "$L" --help
assert_eq "--help exits 0" 0 "$LMT_RC"
assert_re "--help prints a usage on stdout" '^usage: lmtasks' "$LMT_STDOUT"
HELP=$LMT_STDOUT
run "$L" --version
assert_eq "--version exits 0" 0 "$LMT_RC"
assert_re "--version prints the version" '^lmtasks [0-9]+\.[0-9]+' "$LMT_STDOUT"
VERSION=$LMT_STDOUT
run "$L" -h
assert_eq "-h is --help" "$HELP" "$LMT_STDOUT"
COMMANDS=$(printf '%s\n' "$HELP" | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' | sort -u)
for c in init enqueue start claim succeed fail cancel get list wait stats check; do
	printf '%s\n' "$COMMANDS" | grep -qx "$c" || fail "--help lists $c"
done
for c in $COMMANDS; do
	run "$L" $c --help
	if [ "$LMT_RC" = 0 ] && printf '%s' "$LMT_STDOUT" | grep -q "$c"; then ok "$c --help: exit 0 and its usage"
	else fail "$c --help: exit 0 and its usage" "exit $LMT_RC" "$LMT_STDOUT$LMT_STDERR"; fi
	run "$L" $c --version
	if [ "$LMT_RC" = 0 ] && [ "$LMT_STDOUT" = "$VERSION" ]; then ok "$c --version: exit 0 and the version"
	else fail "$c --version: exit 0 and the version" "exit $LMT_RC" "$LMT_STDOUT$LMT_STDERR"; fi
done
run "$L" --db "$T/nowhere" get --help
assert_eq "get --help works without a store" 0 "$LMT_RC"

###########################################################################################
section "details: what JSON is refused"

newdb details
NEXT=$(stat_field 'd["nextUid"]')
# refused_details NAME WHY_ERE: the details file $T/d.json is refused (exit 2), the message
# matches WHY_ERE, and nothing is stored.
refused_details() {
	assert_exit -m "details $1: exit 2" 2 "$L" enqueue movies documentAddition --details "@$T/d.json"
	assert_re "... saying $2" "^lmtasks: .*$2" "$LMT_STDERR"
	assert_eq "... nothing stored" "$NEXT" "$(stat_field 'd["nextUid"]')"
}
printf '{"a":"x\001y"}' >"$T/d.json"
refused_details "with a raw control character (U+0001) in a string" "control character"
printf '{"a":"x\ty"}' >"$T/d.json"
refused_details "with a raw tab in a string" "control character"
for esc in '\u12G4' '\u12' '\u' '\uZZZZ'; do
	printf '{"a":"%s"}' "$esc" >"$T/d.json"
	refused_details "with the escape $esc" 'malformed \\u escape'
done
"$LMT_PYTHON" -S -c 'import sys; n = int(sys.argv[1]); sys.stdout.write("{\"a\":" * n + "1" + "}" * n)' 65 >"$T/d.json"
refused_details "nested 65 objects deep" "deeper than 64"
"$LMT_PYTHON" -S -c 'import sys; n = int(sys.argv[1]); sys.stdout.write("{\"a\":" + "[" * (n - 1) + "]" * (n - 1) + "}")' 65 >"$T/d.json"
refused_details "nested 65 deep with arrays" "deeper than 64"
"$LMT_PYTHON" -S -c 'import sys; n = int(sys.argv[1]); sys.stdout.write("{\"a\":" * n + "1" + "}" * n)' 64 >"$T/d.json"
assert_exit -m "details nested 64 objects deep are fine" 0 "$L" enqueue movies documentAddition --details "@$T/d.json"
deep=$(json_get "$LMT_STDOUT" 'd["uid"]')
"$L" start "$deep" >/dev/null 2>&1
assert_exit -m "... and merge with a finish's details" 0 "$L" succeed "$deep" --details '{"b":1}'
json_assert "... keeping both" "$(get "$deep")" 'd["details"]["b"] == 1 and "a" in d["details"]'
NEXT=$(stat_field 'd["nextUid"]')
"$LMT_PYTHON" -S -c 'import sys; sys.stdout.write("{\"a\":\"" + "x" * (16 * 1024 * 1024 - 8 + 1) + "\"}")' >"$T/d.json"
assert_eq "the file is 16 MiB and one byte" $((16 * 1024 * 1024 + 1)) "$(stat -c %s "$T/d.json")"
refused_details "of 16 MiB and one byte" "larger than 16 MiB"
rm -f "$T/d.json"

###########################################################################################
section "list: kebab-case filter flags"

newdb kebab
for i in 1 2 3; do enq movies documentAddition >/dev/null; enq books indexCreation >/dev/null; done
"$L" start 0 >/dev/null 2>&1 && "$L" succeed 0 >/dev/null 2>&1
"$L" cancel 3 >/dev/null 2>&1
for pair in "--indexUids movies:--index-uids movies" "--statuses succeeded:--statuses succeeded" \
	"--types indexCreation:--types indexCreation" "--canceledBy 6:--canceled-by 6" \
	"--afterEnqueuedAt 2000-01-01:--after-enqueued-at 2000-01-01" \
	"--beforeEnqueuedAt 2000-01-01:--before-enqueued-at 2000-01-01" \
	"--afterFinishedAt 2000-01-01:--after-finished-at 2000-01-01" \
	"--beforeStartedAt 2999-01-01:--before-started-at 2999-01-01"; do
	camel=${pair%%:*} kebab=${pair#*:}
	# shellcheck disable=SC2086
	a=$("$L" list $camel 2>&1) b=$("$L" list $kebab 2>&1)
	assert_eq "list $kebab gives what list $camel gives" "$a" "$b"
done
assert_eq "... and --index-uids movies filters (3 movies tasks)" 3 \
	"$(json_get "$("$L" list --index-uids movies)" 'd["total"]' 2>&1)"
assert_eq "... --canceled-by 6 finds the canceled task" '[3]' \
	"$(json_get "$("$L" list --canceled-by 6)" '[t["uid"] for t in d["results"]]' 2>&1)"
assert_exit -m "list --index-uidz (no such flag): exit 2" 2 "$L" list --index-uidz movies

###########################################################################################
section "check on a store with live leases"

newdb leases
for i in 1 2 3 4; do enq movies documentAddition >/dev/null; done
"$L" claim --lease 60 >/dev/null 2>&1
"$L" claim --lease 120 --requeue >/dev/null 2>&1
"$L" start 2 --lease 30 >/dev/null 2>&1
"$L" heartbeat 0 --lease 90 >/dev/null 2>&1
assert_eq "three tasks processing under a lease" 3 "$(stat_field 'd["statuses"]["processing"]')"
assert_exit -m "check on a store with live leases: exit 0" 0 "$L" check
"$L" succeed 1 >/dev/null 2>&1
assert_exit -m "check after one of them finished: exit 0" 0 "$L" check

###########################################################################################
section "a store of another format: exit 4"

newdb format
enq movies documentAddition >/dev/null
if lmt_have mdb_dump && lmt_have mdb_load; then
	# The meta database's schema entry (6 bytes "schema") set to a version this build does
	# not know, with LMDB's own tools.
	mdb_dump -s meta "$LMTASKS_DB" >"$T/meta.dump"
	grep -q '^ 736368656d61$' "$T/meta.dump" && ok "the dump holds the schema entry" ||
		fail "the dump holds the schema entry" "$(cat "$T/meta.dump")"
	sed '/^ 736368656d61$/{n;s/^ 01000000$/ 02000000/}' "$T/meta.dump" | mdb_load -s meta "$LMTASKS_DB"
	for cmd in "get 0" "list" "enqueue movies documentAddition" "check" "stats"; do
		# shellcheck disable=SC2086
		assert_exit -m "schema 2: $cmd exits 4" 4 "$L" $cmd
	done
	assert_contains "... saying another version wrote it" "another version of lmtasks" "$LMT_STDERR"
	run env -i REQUEST_METHOD=GET REQUEST_URI=/tasks/0 GATEWAY_INTERFACE=CGI/1.1 \
		LMTASKS_DB="$LMTASKS_DB" "$LMTASKS_FCGI"
	assert_re "... and the responder answers 503" '^Status: 503' "$LMT_STDOUT"
else
	lmt_missing "a store of another format" mdb_dump "no mdb_dump or mdb_load (lmdb-utils)"
fi

###########################################################################################
section "check finds a corrupted record"

newdb corrupt
MARK="CORRUPTME$(printf '%04x%04x%04x' $RANDOM $RANDOM $RANDOM)"
enq c documentAddition --details '{"n":0}' >/dev/null
enq c documentAddition --details "{\"marker\":\"$MARK\"}" >/dev/null
enq c documentAddition --details '{"n":2}' >/dev/null
check "check before the corruption" "$L" check
FLIPS=$("$LMT_PYTHON" - "$LMTASKS_DB/data.mdb" "$MARK" <<'EOF'
import sys
path, mark = sys.argv[1], sys.argv[2].encode()
with open(path, "r+b") as f:
    data = f.read()
    n, i = 0, data.find(mark)
    while i >= 0:
        f.seek(i + 2)
        f.write(bytes(b ^ 0x01 for b in mark[2:8]))
        n += 1
        i = data.find(mark, i + 1)
print(n)
EOF
)
assert_re "the test found the record's bytes in data.mdb ($FLIPS copies)" '^[1-9]' "$FLIPS"
run "$L" check
assert_eq "check of a corrupted store: exit 4" 4 "$LMT_RC"
assert_re "check names task 1" '(task|uid)[^0-9]*1([^0-9]|$)' "$LMT_STDERR"
json_assert "check says not ok, with problems" "${LMT_STDOUT:-null}" 'd["ok"] is False and d["problems"] >= 1'
run "$L" get 1
assert_eq "get of the corrupted task: exit 4" 4 "$LMT_RC"
assert_re "get of the corrupted task: a clear message naming it" '^lmtasks: .*1.*corrupt' "$LMT_STDERR"
assert_eq "get of the corrupted task prints nothing on stdout" "" "$LMT_STDOUT"
json_assert "get of another task still works (0)" "$(get 0)" 'd["uid"] == 0 and d["details"] == {"n":0}'
json_assert "get of another task still works (2)" "$(get 2)" 'd["uid"] == 2 and d["details"] == {"n":2}'
run "$L" list
assert_eq "list over the corrupted record: exit 4, no crash" 4 "$LMT_RC"
assert_re "list names the corrupted task" '1.*corrupt|corrupt.*1' "$LMT_STDERR"
run "$L" start 1
assert_eq "start of the corrupted task: exit 4, no crash" 4 "$LMT_RC"
run "$L" cancel 1
assert_eq "cancel of the corrupted task: exit 4, no crash" 4 "$LMT_RC"
json_assert "a new task can still be enqueued and read" "$(get "$(enq c documentAddition)")" 'd["uid"] == 3'

###########################################################################################
section "start-up: no libcurl in lmtasks; notify is lmtasks-notify, exec'd"
# Only the webhook deliverer needs libcurl (and its dozens of libraries): lmtasks maps
# none of them, and `lmtasks notify` becomes lmtasks-notify.
if lmt_have ldd && lmt_have nm; then
	assert_eq "lmtasks links no libcurl or zlib (ldd), and holds no curl symbol (nm)" "" \
		"$(ldd "$L" 2>/dev/null | grep -E 'libcurl|libz\.'; nm "$L" 2>/dev/null | grep -iE ' (curl_|deflate)')"
else
	skip "lmtasks links no libcurl" "no ldd or nm here"
fi
newdb startup
run "$L" notify --help
assert_eq "notify --help is printed by lmtasks, from the table, without lmtasks-notify (exit 0)" \
	"0 yes" "$LMT_RC $(grep -q 'notify \[--once\] \[--interval SECONDS\] \[--batch-size N\]' <<<"$LMT_STDOUT" && echo yes)"
run env LMTASKS_NOTIFY="$T/no-such-program" "$L" notify --once
assert_eq "notify without lmtasks-notify: exit 127, nothing on stdout" "127 " "$LMT_RC $LMT_STDOUT"
assert_re "  ... and a message naming the program and what to do" \
	"^lmtasks: notify: cannot run $T/no-such-program: No such file or directory; .*LMTASKS_NOTIFY" "$LMT_STDERR"
printf 'not a program\n' >"$T/not-executable"
run env LMTASKS_NOTIFY="$T/not-executable" "$L" notify --once
assert_eq "notify with an lmtasks-notify that cannot run: exit 126" 126 "$LMT_RC"
run env LMTASKS_NOTIFY="$T/no-such-program" "$L" notify --bogus
assert_eq "notify's options are checked by lmtasks before the exec (exit 2)" 2 "$LMT_RC"
if [ -x "${LMTASKS_NOTIFY:-}" ]; then
	# The same arguments go over, as given: --db (both spellings) and LMTASKS_DB.
	run env -u LMTASKS_DB "$L" --db "$T/startup" notify --once
	assert_eq "notify --once through lmtasks-notify with --db PATH (exit 0)" "0 " "$LMT_RC $LMT_STDERR"
	run env -u LMTASKS_DB "$L" --db="$T/nowhere" notify --once
	assert_re "  ... --db=PATH reaches lmtasks-notify (exit 4 naming the store)" "^4 .*$T/nowhere" \
		"$LMT_RC $LMT_STDERR"
	run env LMTASKS_DB="$T/nowhere" "$L" notify --once
	assert_re "  ... and so does LMTASKS_DB" "^4 .*$T/nowhere" "$LMT_RC $LMT_STDERR"
	run "$L" notify --batch-size 0
	assert_re "  ... and lmtasks-notify checks the values (exit 2)" "^2 .*--batch-size" \
		"$LMT_RC $LMT_STDERR"
	run "$LMTASKS_NOTIFY" --version
	assert_eq "lmtasks-notify --version" "lmtasks-notify $(sed -n 's/^lmtasks //p' <<<"$("$L" --version)")" \
		"$LMT_STDOUT"
else
	skip "notify through lmtasks-notify" "LMTASKS_NOTIFY is not set (make check sets it)"
fi

###########################################################################################
echo "# runtime $(elapsed "$START") s"
summary
