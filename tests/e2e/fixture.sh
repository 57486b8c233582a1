#!/usr/bin/env bash
# A store made by lmtasks 0.1.0 (tests/fixtures/store-0.1.0, made by
# tests/fixtures/make-0.1.0.sh) opened by this version: the CLI prints and the responder
# serves the same bytes 0.1.0 did (tests/fixtures/store-0.1.0.expected), the store reads
# with default settings, and writes (config, enqueue, delete, a finish refused by the
# lease rule) work on a copy of it.  A store made by lmtasks 0.2.0
# (tests/fixtures/store-0.2.0, made by tests/fixtures/make-0.2.0.sh): its batch records
# read as they are, and the next delete deletes the batches 0.2.0 left with no task.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/fixture.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"

set -u
unset LMTASKS_DB LMTASKS_MAPSIZE
FIX=$top_srcdir/tests/fixtures/store-0.1.0
EXP=$top_srcdir/tests/fixtures/store-0.1.0.expected
lmt_tmpdir
mkdir "$LMT_TMP/store"
cp "$FIX/data.mdb" "$LMT_TMP/store/"
export LMTASKS_DB=$LMT_TMP/store
L=$LMTASKS
KEY=$(cat "$EXP/api-key")
SUM=$(cksum <"$FIX/data.mdb")

# The same CGI request as make-0.1.0.sh made: NAME URI [AUTHORIZATION].
cgi() {
	local qs=""
	case $2 in *\?*) qs=${2#*\?} ;; esac
	env -i REQUEST_METHOD=GET REQUEST_URI="$2" QUERY_STRING="$qs" GATEWAY_INTERFACE=CGI/1.1 \
	    ${3:+HTTP_AUTHORIZATION="$3"} LMTASKS_MASTER_KEY_FILE="$EXP/master-key" \
	    "$LMTASKS_FCGI" --db "$LMTASKS_DB" </dev/null
}
same() { assert_eq "$1" "$(cat "$2")" "$3"; }
# The answer without the validator headers 0.2.0 added (ETag, Cache-Control; README
# "Caches"): every other header and the body are 0.1.0's, byte for byte.
without_validators() {
	awk 'BEGIN { head = 1 } head && /^\r?$/ { head = 0 }
		!(head && /^(ETag|Cache-Control): /) { print }' <<<"$1"
}

for u in 0 1 2 3 4 5 6 8; do
	same "get $u prints what 0.1.0 printed" "$EXP/cli-get-$u.json" "$("$L" get $u)"
done
same "list" "$EXP/cli-list.json" "$("$L" list)"
same "list --statuses canceled,failed --reverse" "$EXP/cli-list-canceled-failed.json" \
    "$("$L" list --statuses canceled,failed --reverse)"
same "list --indexUids books --limit 2" "$EXP/cli-list-books.json" "$("$L" list --indexUids books --limit 2)"
same "index list" "$EXP/cli-index-list.json" "$("$L" index list)"
# Keys gained actions after 0.1.0; a key 0.1.0 made (no actions stored) reads, as it did.
assert_eq "key list: 0.1.0's, with the key's actions: tasks.get" \
    "$(sed 's/,"indexes":/,"actions":["tasks.get"],"indexes":/' "$EXP/cli-key-list.json")" \
    "$("$L" key list)"
while read -r name uri; do
	out=$(cgi "$name" "$uri" "Bearer a-master-key-for-the-fixture-store")
	same "HTTP $uri: the bytes 0.1.0 served" "$EXP/http-$name.txt" "$(without_validators "$out")"
	case $uri:$(head -n 1 <<<"$out") in
	/health:*) ;;
	*" 200 OK"*)
		assert_match "HTTP $uri: an ETag and a Cache-Control" \
		    '^ETag: "[0-9a-f.]+".*Cache-Control: (max-age=60|no-cache|no-store)' \
		    "$(tr -d '\r' <<<"$out" | grep -E '^(ETag|Cache-Control):' | paste -sd ' ')" ;;
	esac
done <"$EXP/http-requests"
same "HTTP without a key: 401 as 0.1.0" "$EXP/http-nokey.txt" "$(without_validators "$(cgi nokey /tasks)")"
same "HTTP with the API key 0.1.0 made: its index only" "$EXP/http-apikey-tasks.txt" \
    "$(without_validators "$(cgi x /tasks "Bearer $KEY")")"
same "HTTP with the API key on another index: 403" "$EXP/http-apikey-books.txt" \
    "$(without_validators "$(cgi x /indexes/books/tasks "Bearer $KEY")")"
check "check passes on the 0.1.0 store" "$L" check

# The writer on the 0.1.0 store: the key 0.1.0 made may read, not cancel; the master may.
wcgi() {
	env -i REQUEST_METHOD=POST REQUEST_URI="/tasks/cancel?$1" QUERY_STRING="$1" \
	    GATEWAY_INTERFACE=CGI/1.1 HTTP_AUTHORIZATION="Bearer $2" \
	    LMTASKS_MASTER_KEY_FILE="$EXP/master-key" "$LMTASKS_WRITER" --db "$LMTASKS_DB" </dev/null
}
before=$("$L" list --limit 1000)
assert_match "lmtasks-writer refuses the 0.1.0 API key (read only): 403" \
    '^Status: 403 .*"code":"invalid_api_key"' "$(wcgi uids=5 "$KEY" | tr -d '\r\n')"
assert_eq "so no task changed" "$before" "$("$L" list --limit 1000)"

# Settings: none kept in a 0.1.0 store, read as the defaults.
run "$L" config
assert_eq "config on a 0.1.0 store: exit 0" 0 "$LMT_RC"
json_check "config reads maxTasks as the default 1000000" "$LMT_STDOUT" 'd["maxTasks"] == 1000000'
json_check "config reads maxBytes from the free disk" "$LMT_STDOUT" 'd["maxBytes"] >= 1048576'
json_check "stats states the settings" "$("$L" stats)" \
    'd["settings"]["maxTasks"] == 1000000 and d["tasks"] == 8 and d["nextUid"] == 9'

# Writes on the copy.
check "config maxTasks on the 0.1.0 store" "$L" config maxTasks 100
json_check "the setting is kept" "$("$L" config)" 'd["maxTasks"] == 100'
run "$L" enqueue movies documentAddition
assert_eq "enqueue on the 0.1.0 store: exit 0" 0 "$LMT_RC"
json_check "it gets the next uid, 9" "$LMT_STDOUT" 'd["uid"] == 9'
run "$L" delete 0
json_check "delete on the 0.1.0 store records a taskDeletion" "$LMT_STDOUT" \
    'd["type"] == "taskDeletion" and d["details"]["deletedTasks"] == 1 and d["uid"] == 10'
run "$L" succeed 3
assert_eq "a task 0.1.0 failed for its lease: a late succeed is refused (exit 3)" 3 "$LMT_RC"
assert_match "with the lease message" "lease expired, so it was failed with task_lease_expired" "$LMT_STDERR"
check "cancel on the 0.1.0 store" "$L" cancel 5
check "succeed on the 0.1.0 store" "$L" succeed 4
check "check passes after the writes" "$L" check
assert_eq "the committed fixture is untouched" "$SUM" "$(cksum <"$FIX/data.mdb")"

# The 0.2.0 store: batches 1 and 4 have no task left (0.2.0 never deleted a batch), batch
# 0 has one of its two.
FIX2=$top_srcdir/tests/fixtures/store-0.2.0
SUM2=$(cksum <"$FIX2/data.mdb")
mkdir "$LMT_TMP/store-0.2.0"
cp "$FIX2/data.mdb" "$LMT_TMP/store-0.2.0/"
export LMTASKS_DB=$LMT_TMP/store-0.2.0
batches() { json_get "$("$L" batch list --limit 100)" '",".join(str(b["uid"]) for b in d["results"])'; }
assert_eq "the 0.2.0 store: its seven batches read" "6,5,4,3,2,1,0" "$(batches)"
json_check "batch 0 as 0.2.0 wrote it" "$("$L" batch get 0)" \
    'd["stats"]["totalNbTasks"] == 2 and d["batchStrategy"] == "batched up to configured batch limit of 2 tasks"'
check "check passes on the 0.2.0 store" "$L" check
check "succeed moves a task of a 0.2.0 batch" "$L" succeed 3
json_check "its batch follows" "$("$L" batch get 2)" 'd["stats"]["status"] == {"succeeded":1} and d["finishedAt"] is not None'
run "$L" delete 5
assert_eq "a delete on the 0.2.0 store that matches no finished task: exit 0" 0 "$LMT_RC"
json_check "it deletes nothing" "$LMT_STDOUT" 'd["uid"] == 10 and d["details"]["deletedTasks"] == 0 and d["batchUid"] == 7'
assert_eq "the batches 0.2.0 left with no task (1, 4) are gone with it" "7,6,5,3,2,0" "$(batches)"
json_check "batch 0 keeps its stats, as Meilisearch keeps them" "$("$L" batch get 0)" \
    'd["stats"]["totalNbTasks"] == 2 and d["stats"]["status"] == {"succeeded":2}'
check "check passes after the sweep" "$L" check
run "$L" delete 1
assert_eq "deleting task 1, the last of batch 0: exit 0" 0 "$LMT_RC"
assert_eq "batch 0 goes with it" "8,7,6,5,3,2" "$(batches)"
run "$L" delete 8 9 10
assert_eq "the taskDeletion tasks 0.2.0 and this version recorded go with their batches" \
    "9,8,3,2" "$(batches)"
check "check passes at the end" "$L" check
assert_eq "the committed 0.2.0 fixture is untouched" "$SUM2" "$(cksum <"$FIX2/data.mdb")"
# Custom metadata (record versions 3 and 4) in stores 0.1.0 and 0.2.0 made: their records
# read as they are, with none; a task given some keeps it through claim and succeed.
for fix in store-0.1.0 store-0.2.0; do
	mkdir "$LMT_TMP/meta-$fix"
	cp "$top_srcdir/tests/fixtures/$fix/data.mdb" "$LMT_TMP/meta-$fix/"
	export LMTASKS_DB=$LMT_TMP/meta-$fix
	before=$("$L" list --limit 1000)
	check "$fix: compat v1" "$L" config compat v1
	old=$("$L" list --limit 1000)
	json_check "$fix: no task it wrote has customMetadata" "$old" \
	    'all("customMetadata" not in t for t in d["results"])'
	run "$L" enqueue movies documentAddition --custom-metadata 'from "the" fixture é'
	json_check "$fix: enqueue --custom-metadata prints it" "$LMT_STDOUT" \
	    'd["customMetadata"] == "from \"the\" fixture é"'
	uid=$(json_get "$LMT_STDOUT" 'd["uid"]')
	printf '%s\n' '{"indexUid":"movies","type":"documentAddition","customMetadata":"line"}' |
	    "$L" enqueue --batch - >/dev/null
	"$L" claim --index movies --batch 100 >/dev/null
	check "$fix: the new task succeeds" "$L" succeed "$uid"
	json_check "$fix: it keeps its customMetadata after finishedAt, with a batch (version 4)" \
	    "$("$L" get "$uid")" \
	    'list(d)[-2:] == ["finishedAt", "customMetadata"] and d["customMetadata"] == "from \"the\" fixture é" and d["batchUid"] is not None'
	json_check "$fix: the NDJSON line's too" "$("$L" get $((uid + 1)))" 'd["customMetadata"] == "line"'
	json_check "$fix: the tasks it wrote still have none" "$("$L" list --limit 1000 --from $((uid - 1)))" \
	    'all("customMetadata" not in t for t in d["results"])'
	check "$fix: check passes with records of versions 1 to 4" "$L" check
	check "$fix: compat v0.25" "$L" config compat v0.25
	json_check "$fix: the v0.25 layout has no customMetadata" "$("$L" get "$uid")" \
	    '"customMetadata" not in d and d["status"] == "succeeded"'
done
summary
