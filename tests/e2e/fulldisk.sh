#!/usr/bin/env bash
# A full store and a full disk (SPEC §6 "a store is never stuck"), on a real 4 MiB tmpfs
# mounted for the test and unmounted at its end:
#
#   - maxBytes: new tasks are refused past 40% of it (exit 4, what filled up, what to do)
#     while finishing, canceling, deleting and check keep working;
#   - the disk fills (another file takes the rest): enqueue is refused once the store
#     cannot keep its reserve, every other writer command still works from the reserve,
#     the responder keeps serving, and after `delete` new tasks are taken again;
#   - a store without a reserve on a full disk: every writer command either works or fails
#     with exit 4 and a message naming the full disk, leaving the store as it was; `check`
#     passes; once space is freed everything works again;
#   - the change log counts: enqueue/cancel/delete cycles grow the log, not the tasks, and
#     the reserve guard stops new tasks before the log fills the disk, so cancel and delete
#     keep working; a smaller feedRetention frees it.
#
# Needs root (mount); skips otherwise, except under CI=true where a skip is a failure.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/fulldisk.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# The system's Python, as httplib.sh takes it: a version manager's shim costs a few
# processes a start, and lib.sh would ask it where its Python is.
if [ -z "${LMT_PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
	LMT_PYTHON=/usr/bin/python3
fi
. "$top_srcdir/tests/lib/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE
if [ "$(id -u)" != 0 ] || ! command -v mount >/dev/null; then
	if [ "${CI:-}" = true ]; then
		echo "not ok 1 - fulldisk.sh needs root to mount a tmpfs, and CI=true does not allow a skip"
		exit 1
	fi
	lmt_skip_all "mounting a tmpfs needs root"
fi
lmt_tmpdir
M=$LMT_TMP/mnt
mkdir -p "$M"
mount -t tmpfs -o size=4m,mode=0700 lmtasks-test "$M" || { echo "not ok 1 - mount tmpfs"; exit 1; }
lmt_on_exit "umount '$M'"
export LMTASKS_DB=$M/store
L=$LMTASKS

# The whole store as a reader sees it, to compare before and after a failed write.
snapshot() {
	"$L" list --limit 1000 --reverse --statuses '*'
	"$L" list --limit 1000 --reverse --from 1000
	"$L" list --limit 1000 --reverse --from 2000
	"$L" index list
	"$L" key list
	"$L" config
}
avail() { df -k --output=avail "$M" | tail -1 | tr -d ' '; }
fill_disk() { dd if=/dev/zero of="$M/filler" bs=4k 2>/dev/null; sync; }
total() { json_get "$("$L" stats)" "d[\"$1\"]"; }

check "init on the tmpfs" "$L" init
STATS=$("$L" stats)
json_assert "stats states maxBytes: half the free disk at init (1 to 2 MiB of 4)" "$STATS" \
    '1048576 <= d["settings"]["maxBytes"] <= 2097152 and d["newTasksUntilBytes"] == d["settings"]["maxBytes"] // 100 * 40'
json_assert "stats states maxTasks: 1000000 by default" "$STATS" 'd["settings"]["maxTasks"] == 1000000'

###########################################################################################
# The size limit.
"$LMT_PYTHON" -c '
import json
for i in range(50): print(json.dumps({"indexUid":"movies","type":"documentAddition","details":{"pad":"x"*200,"i":i}}))' >"$LMT_TMP/b50.ndjson"
head -n 5 "$LMT_TMP/b50.ndjson" >"$LMT_TMP/b5.ndjson"
# batches_until_refused FILE: enqueue --batch FILE until it is refused (200 at most);
# FILL_RC the status of the last (0 when 200 went in: never refused).
batches_until_refused() {
	local n
	FILL_RC=0
	for ((n = 0; n < 200; n++)); do
		"$L" enqueue --batch "$1" >/dev/null 2>&1 || { FILL_RC=$?; return 0; }
	done
}
n=0
while "$L" enqueue --batch "$LMT_TMP/b50.ndjson" >/dev/null 2>"$LMT_TMP/err" && [ $n -lt 200 ]; do n=$((n + 1)); done
before=$(total tasks)
run "$L" enqueue --batch "$LMT_TMP/b50.ndjson"
assert_eq "past 40% of maxBytes a batch is refused: exit 4" 4 "$LMT_RC"
assert_re "the message says what filled up" 'full for new tasks.*40% of its maxBytes' "$LMT_STDERR"
assert_re "the message says what to do" 'lmtasks delete --statuses succeeded,failed,canceled.*lmtasks config maxBytes SIZE' "$LMT_STDERR"
assert_eq "the refused batch added nothing" "$before" "$(total tasks)"
# Nearer the limit five tasks at a time (a process for five, not one each), then single
# tasks until one is refused.
batches_until_refused "$LMT_TMP/b5.ndjson"
assert_eq "five at a time until refused: exit 4 (no other end)" 4 "$FILL_RC"
for i in $(seq 300); do
	run "$L" enqueue movies one
	[ "$LMT_RC" = 0 ] || break
done
assert_eq "single tasks are refused too at the limit: exit 4" 4 "$LMT_RC"
assert_re "with the same message" 'full for new tasks' "$LMT_STDERR"
json_assert "the store stays under its limit for new tasks" "$("$L" stats)" \
    'd["liveBytes"] <= d["newTasksUntilBytes"] and d["tasks"] >= 1000'
check "start still works" "$L" start 0
check "succeed still works" "$L" succeed 0 --details '{"done":1}'
check "fail still works" "$L" start 1
check "fail still works (fail)" "$L" fail 1 --code boom --message broke
check "cancel still works" "$L" cancel 2 3
check "claim with a lease still works" "$L" claim --lease 600
check "heartbeat still works" "$L" heartbeat 4 --lease 600
check "check passes" "$L" check
run "$L" config maxBytes 3MiB
assert_eq "raising maxBytes lets new tasks in again" "0 0" "$LMT_RC $("$L" enqueue movies one >/dev/null 2>&1; echo $?)"

###########################################################################################
# The disk fills: the reserve lets everything but new tasks go on.
fill_disk
assert_eq "the tmpfs is full" 0 "$(avail)"
# Free pages inside the data file count as room: new tasks go in until they run short
# (five at a time while a batch fits, then one at a time until one is refused).
batches_until_refused "$LMT_TMP/b5.ndjson"
assert_eq "on the full disk, five at a time until refused: exit 4 (no other end)" 4 "$FILL_RC"
for i in $(seq 500); do
	run "$L" enqueue movies late
	[ "$LMT_RC" = 0 ] || break
done
assert_eq "on a full disk enqueue is refused once the reserve cannot be kept: exit 4" 4 "$LMT_RC"
assert_re "the message names the full disk and the way out" \
    'disk holding .* is full: new tasks are refused.*Free space on that disk, or delete finished tasks' "$LMT_STDERR"
assert_eq "nothing on stdout" "" "$LMT_STDOUT"
check "check passes" "$L" check
check "start on the full disk" "$L" start 10
check "succeed on the full disk" "$L" succeed 10
check "fail on the full disk" "$L" start 11
check "fail on the full disk (fail)" "$L" fail 11 --code boom --message broke
check "heartbeat on the full disk" "$L" heartbeat 4
check "claim on the full disk" "$L" claim
check "reap on the full disk" "$L" reap
check "cancel of 600 tasks on the full disk" "$L" cancel $(seq 20 620)
check "key create on the full disk" "$L" key create
check "config on the full disk" "$L" config maxTasks 999999
check "check passes" "$L" check
# The responder reads and serves whatever the disk.
CGI=$(env -i REQUEST_METHOD=GET REQUEST_URI=/tasks/20 QUERY_STRING= GATEWAY_INTERFACE=CGI/1.1 \
    "$LMTASKS_FCGI" --db "$LMTASKS_DB" </dev/null 2>&1)
assert_re "the responder serves on the full disk (CGI): 200" '^Status: 200' "$CGI"
assert_re "the responder serves on the full disk (CGI): the canceled task" '"uid":20,.*"status":"canceled"' "$CGI"
check "delete on the full disk" "$L" delete --statuses canceled,succeeded,failed
check "check passes after the delete" "$L" check
assert_eq "the disk is still full" 0 "$(avail)"
check "after the delete new tasks are taken again, the disk still full" "$L" enqueue movies again
check "index delete on the full disk" "$L" index delete movies
check "check passes" "$L" check

###########################################################################################
# No room at all: the store compacted by mdb_copy -c (no free page inside, nothing
# allocated past its end), then the disk filled.  Each writer works or fails cleanly.
rm -f "$M/filler"
"$L" config maxBytes 64MiB >/dev/null
while "$L" enqueue --batch "$LMT_TMP/b50.ndjson" >/dev/null 2>&1 && [ "$(total tasks)" -lt 1500 ]; do :; done
PROC=$(json_get "$("$L" claim)" 'd["uid"]')
command -v mdb_copy >/dev/null || { skip "the store without room" "no mdb_copy (lmdb-utils)"; summary; exit; }
mkdir "$M/compact" && mdb_copy -c "$LMTASKS_DB" "$M/compact" && rm -rf "$LMTASKS_DB" && mv "$M/compact" "$LMTASKS_DB"
check "the compacted store passes check" "$L" check
fill_disk
assert_eq "the tmpfs is full again" 0 "$(avail)"
KEY=$(json_get "$("$L" key list)" 'd["results"][0]["uid"]')
"$L" list --statuses enqueued --limit 1000 >"$LMT_TMP/enqueued.json"
ENQ=$(json_get "$LMT_TMP/enqueued.json" '" ".join(str(r["uid"]) for r in d["results"])')
FIRST=${ENQ%% *}
REST=${ENQ#* }
failed_any=0
writer() {
	local name=$1 before after
	shift
	before=$(snapshot)
	run "$L" "$@"
	case $LMT_RC in
	0) ok "$name: works on the full disk without a reserve" ;;
	4)
		failed_any=1
		assert_re "$name: exit 4 names the full disk" 'disk is full|disk holding .* is full' "$LMT_STDERR"
		assert_re "$name: and what to do" 'Free space on that disk' "$LMT_STDERR"
		assert_eq "$name: nothing on stdout" "" "$LMT_STDOUT"
		after=$(snapshot)
		assert_eq "$name: the store is as it was" "$before" "$after"
		;;
	*) fail "$name: exit 0 or 4" "exit $LMT_RC" "$LMT_STDERR" ;;
	esac
	check "$name: check passes" "$L" check
}
writer "cancel of 1000 tasks" cancel $REST
assert_eq "a large cancel with no room fails (exit 4)" 1 "$failed_any"
writer "enqueue" enqueue movies more
writer "enqueue --batch" enqueue --batch "$LMT_TMP/b50.ndjson"
writer "start" start "$FIRST"
writer "claim" claim
writer "heartbeat" heartbeat 4 --lease 60
writer "succeed" succeed 4
writer "fail" fail "$PROC" --code x --message y
writer "reap" reap
writer "delete" delete --statuses succeeded,failed,canceled
writer "index delete" index delete movies
writer "key create" key create
writer "key delete" key delete "$KEY"
writer "config" config maxTasks 5000
rm -f "$M/filler"
check "space freed: the large cancel works" "$L" cancel $REST
check "space freed: delete works" "$L" delete --statuses canceled
check "space freed: enqueue works" "$L" enqueue movies back
check "check passes at the end" "$L" check

###########################################################################################
# The change log is part of the store: cycles that enqueue, cancel and delete grow the log
# (one entry per change, 100,000 kept by default), not the tasks.  The guard counts the
# log's pages as the store's, so new tasks stop while cancel and delete still have room.
rm -rf "$LMTASKS_DB" "$M/filler"
check "a new store for the log cycles" "$L" init
"$L" config maxBytes 64MiB >/dev/null
"$L" enqueue movies keeper >/dev/null	# 0, canceled once enqueue is refused
"$LMT_PYTHON" -c '
import json
for i in range(1000): print(json.dumps({"indexUid":"movies","type":"x"}))' >"$LMT_TMP/b1000.ndjson"
head -n 500 "$LMT_TMP/b1000.ndjson" >"$LMT_TMP/b500.ndjson"
# Cycles of 1000 tasks; the batch's uids read by the shell (no process in a cycle but the
# three lmtasks).
refused=0 failed=""
for ((cycle = 1; cycle <= 75; cycle++)); do
	run "$L" enqueue --batch "$LMT_TMP/b1000.ndjson"
	if [ "$LMT_RC" != 0 ]; then refused=$cycle; break; fi
	if ! [[ $LMT_STDOUT =~ \"firstUid\":([0-9]+),\"lastUid\":([0-9]+) ]]; then
		failed="enqueue in cycle $cycle printed $LMT_STDOUT"
		break
	fi
	uids=()
	for ((u = BASH_REMATCH[1]; u <= BASH_REMATCH[2]; u++)); do uids+=("$u"); done
	run "$L" cancel "${uids[@]}"
	[ "$LMT_RC" = 0 ] || { failed="cancel in cycle $cycle: $LMT_STDERR"; break; }
	run "$L" delete --statuses canceled
	[ "$LMT_RC" = 0 ] || { failed="delete in cycle $cycle: $LMT_STDERR"; break; }
done
assert_eq "no cancel or delete failed while the log grew" "" "$failed"
assert_re "enqueue was refused once the log left no room for the reserve (cycle $refused)" '^[1-9]' "$refused"
assert_re "with the full disk's message" 'disk holding .* is full: new tasks are refused' "$LMT_STDERR"
assert_re "which names the change log's setting" 'lmtasks config feedRetention' "$LMT_STDERR"
json_assert "the store holds few tasks: the log filled it" "$("$L" stats)" 'd["tasks"] < 1000'
check "cancel works where enqueue is refused" "$L" cancel 0
check "delete works where enqueue is refused" "$L" delete --statuses succeeded,failed,canceled
check "check passes" "$L" check
check "a shorter change log" "$L" config feedRetention 1000
check "frees the room: new tasks are taken again" "$L" enqueue --batch "$LMT_TMP/b500.ndjson"
check "check passes" "$L" check
summary
