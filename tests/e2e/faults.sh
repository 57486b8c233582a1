#!/usr/bin/env bash
# The store's fault seam: tests/lmtasks-faults is the CLI built with it
# (-DLMTASKS_FAULT_INJECTION), where LMTASKS_FAULT=enospc:N or eio:N makes the Nth commit
# of the process fail with that error.  For every writer command: exit 4, a message that
# names the trouble and says nothing was written, no output on stdout, the store exactly
# as before, `lmtasks check` passing, and the same command working once the fault is gone.
# The release binary ignores LMTASKS_FAULT.
#
#   LMTASKS=build/lmtasks LMTASKS_FAULTS=build/tests/lmtasks-faults bash tests/e2e/faults.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE LMTASKS_FAULT
: "${LMTASKS_FAULTS:=${top_builddir:-$top_srcdir/build}/tests/lmtasks-faults}"
[ -x "$LMTASKS_FAULTS" ] || { echo "faults.sh: no fault-seam build at $LMTASKS_FAULTS" >&2; exit 99; }
lmt_tmpdir
export LMTASKS_DB=$LMT_TMP/store
L=$LMTASKS
F=$LMTASKS_FAULTS

"$L" init 2>/dev/null
for i in 1 2 3 4 5 6; do "$L" enqueue movies documentAddition >/dev/null; done
"$L" start 1 >/dev/null
"$L" start 2 --lease 600 >/dev/null
"$L" start 3 >/dev/null
"$L" succeed 3 >/dev/null
KEY=$(json_get "$("$L" key create --description faults)" 'd["key"]')

# Everything a reader can see, to compare before and after a failed write.
snapshot() {
	"$L" list --limit 1000 --reverse
	"$L" index list
	"$L" key list
	"$L" stats | sed 's/"usedBytes":[0-9]*,//; s/"mapSize":[0-9]*//'
}

# faulty NAME ERRNO-NAME PATTERN CMD...: the fault build with the first commit failing.
faulty() {
	local name=$1 kind=$2 pattern=$3
	shift 3
	local before after
	before=$(snapshot)
	run env LMTASKS_FAULT="$kind:1" "$F" "$@"
	assert_eq "$name ($kind): exit 4" 4 "$LMT_RC"
	assert_match "$name ($kind): the message says what failed" "$pattern" "$LMT_STDERR"
	assert_match "$name ($kind): it says nothing was written" \
	    'nothing was|nothing (was )?(enqueued|changed|canceled|deleted|written)|no key was|^lmtasks: reaping' \
	    "$LMT_STDERR"
	assert_eq "$name ($kind): nothing on stdout" "" "$LMT_STDOUT"
	after=$(snapshot)
	assert_eq "$name ($kind): the store is as it was" "$before" "$after"
	check "$name ($kind): check passes after" "$L" check
}

# writer NAME CMD...: fails cleanly with ENOSPC and EIO, then works without the fault.
writer() {
	local name=$1
	shift
	faulty "$name" enospc 'the disk is full' "$@"
	faulty "$name" eio 'Input/output error|I/O error' "$@"
	check "$name: works once the fault is gone" "$F" "$@"
}

writer "enqueue" enqueue books indexCreation --details '{"a":1}'
printf '%s\n' '{"indexUid":"b1","type":"x"}' '{"indexUid":"b2","type":"y"}' >"$LMT_TMP/batch.ndjson"
writer "enqueue --batch" enqueue --batch "$LMT_TMP/batch.ndjson"
writer "start" start 4
writer "heartbeat" heartbeat 2 --lease 600
writer "succeed" succeed 4 --details '{"done":true}'
writer "fail" fail 1 --code boom --message broke
writer "claim" claim --index movies
writer "cancel" cancel 5
writer "delete" delete --statuses succeeded
writer "index delete" index delete books
writer "key create" key create --indexes movies
writer "key delete" key delete "$KEY"
writer "config" config maxTasks 5000

# reap commits only when a lease has expired: give it one.  The fault build has no clock
# seam, so the clocked CLI claims with its clock an hour back: the 60 s lease it records
# has ended by the real clock (no sleep).
clock_use "$LMT_TMP/clock"
clock_move -3600
"$L" enqueue movies x >/dev/null
"$LMTASKS_CLOCKED" claim --index movies --type x --lease 60 >/dev/null
writer "reap" reap

# An expired lease ends in the command's own commit; when that commit fails, the lease
# ends all the same, in a commit of its own, and nothing of the command is written.
"$L" enqueue movies z >/dev/null
"$LMTASKS_CLOCKED" claim --index movies --type z --lease 60 >/dev/null
run env LMTASKS_FAULT=enospc:1 "$F" enqueue movies late
assert_eq "the commit of a command that also ends a lease can fail: exit 4" 4 "$LMT_RC"
assert_eq "the expired lease ended in a commit of its own" '"failed"' \
    "$(json_get "$("$L" list --types z)" 'json.dumps(d["results"][0]["status"])')"
assert_eq "the enqueue itself was not written" 0 "$(json_get "$("$L" list --types late)" 'd["total"]')"
check "check passes after" "$L" check

run env LMTASKS_FAULT=enospc:1 "$L" enqueue movies released
assert_eq "the release binary has no seam: LMTASKS_FAULT is ignored" 0 "$LMT_RC"
summary
