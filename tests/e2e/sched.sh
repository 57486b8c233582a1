#!/usr/bin/env bash
# Delayed and prioritised tasks: enqueue --priority, --delay and --not-before (and an NDJSON
# line's priority, delay, notBefore), refused when bad with nothing changed; claim takes the
# highest priority, then the oldest, under every filter, and claim --batch keeps to one
# priority; a delayed task is enqueued but not claimable before its time, and claim --wait
# and lmtasks work wake when it comes (the clock seam moves the time: no sleep); details
# show priority and notBefore through a real nginx at both compat levels; a worker sees
# the schedule's databases another process makes after it started; the store made by
# 0.2.0 (tests/fixtures/store-0.2.0) claims as it did, its tasks of the default priority
# and due, with no database added by plain writes, then takes a delayed and a
# prioritised task.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/sched.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
unset LMTASKS_MASTER_KEY_FILE LMTASKS_TEST_CLOCK
T=$HTTP_TMP
export LMTASKS_DB=$T/db
L=$LMTASKS
"$L" init >/dev/null 2>&1 || { echo "sched.sh: cannot init" >&2; exit 99; }

section() { echo "# --- $*"; }
enq() { json_get "$("$L" enqueue "$@")" 'd["uid"]'; }
# claimed [ARGS...]: the uid claim takes (claim ARGS), or "none" (exit 1).
claimed() {
	local out
	out=$("$L" claim "$@" 2>/dev/null) || { echo none; return; }
	json_get "$out" 'd["uid"]'
}
total() { json_get "$("$L" stats)" 'd["tasks"]'; }

section "bad values are refused with their reason, and nothing is enqueued"
for args in "--priority 1000001" "--priority -1000001" "--priority 1.5" "--priority ''" \
    "--delay -5" "--delay 1y" "--delay 3651d" "--delay 5m5s" "--not-before tomorrow" \
    "--not-before 1969-12-31" "--delay 5 --not-before 2030-01-01"; do
	eval "run \"\$L\" enqueue movies documentAddition $args"
	assert_eq "enqueue $args: a usage error (exit 2)" 2 "$LMT_RC"
done
assert_match "the message says the range" "from -1000000 to 1000000" \
    "$("$L" enqueue m x --priority 2000000 2>&1)"
assert_match "... and the durations" "like 90 \(seconds\), 30s, 5m, 2h or 1d" \
    "$("$L" enqueue m x --delay soon 2>&1)"
run "$L" enqueue --batch - --priority 3 </dev/null
assert_eq "enqueue --batch --priority: a usage error (its lines carry it)" 2 "$LMT_RC"
printf '%s\n' '{"indexUid":"m","type":"x","priority":3}' '{"indexUid":"m","type":"x","delay":"soon"}' >"$T/bad.ndjson"
run "$L" enqueue --batch "$T/bad.ndjson"
assert_eq "a batch with a bad delay on line 2: exit 2" 2 "$LMT_RC"
assert_match "... naming the line and the key" "line 2: delay must be" "$LMT_STDERR"
assert_eq "nothing was enqueued" 0 "$(total)"

section "claim: the highest priority first, then the oldest, under every filter"
enq movies documentAddition >/dev/null				# 0
enq movies documentAddition --priority 5 >/dev/null		# 1
enq books documentAddition --priority 5 >/dev/null		# 2
enq movies settingsUpdate --priority 10 >/dev/null		# 3
enq movies documentAddition --priority -3 >/dev/null		# 4
enq books indexCreation >/dev/null				# 5
assert_eq "claim --type documentAddition: 1 (priority 5, older than 2)" 1 \
    "$(claimed --type documentAddition)"
assert_eq "claim --index books: 2 (priority 5 before 5's 0)" 2 "$(claimed --index books)"
assert_eq "claim --index movies --type documentAddition: 0 (0 before -3)" 0 \
    "$(claimed --index movies --type documentAddition)"
assert_eq "claim: 3 (priority 10)" 3 "$(claimed)"
assert_eq "claim: 5 (priority 0)" 5 "$(claimed)"
assert_eq "claim: 4 (priority -3, last)" 4 "$(claimed)"
assert_eq "claim: nothing left" none "$(claimed)"

section "claim --batch keeps to one priority (and one index and type)"
printf '%s\n' \
    '{"indexUid":"movies","type":"documentAddition","priority":2}' \
    '{"indexUid":"movies","type":"documentAddition"}' \
    '{"indexUid":"movies","type":"documentAddition", "priority": 2}' \
    '{"indexUid":"movies","type":"documentAddition","priority":2,"details":{"n":1}}' \
    '{"indexUid":"movies","type":"documentAddition","priority":0}' |
    "$L" enqueue --batch - >/dev/null					# 6 to 10
run "$L" claim --batch 10
assert_eq "claim --batch 10: the three of priority 2" "6 8 9" \
    "$(json_get "[$(paste -sd, <<<"$LMT_STDOUT")]" '" ".join(str(t["uid"]) for t in d)')"
run "$L" claim --batch 10
assert_eq "the next claim --batch 10: the two of priority 0" "7 10" \
    "$(json_get "[$(paste -sd, <<<"$LMT_STDOUT")]" '" ".join(str(t["uid"]) for t in d)')"
check "check passes" "$L" check

section "a delayed task: enqueued, not claimable before its time (the clock seam)"
clock_use "$T/clock"
C=$LMTASKS_CLOCKED
D=$(json_get "$("$C" enqueue movies documentAddition --delay 1h)" 'd["uid"]')
json_check "it is enqueued, its notBefore in details an hour after enqueuedAt" "$("$C" get "$D")" \
    'd["status"] == "enqueued" and d["details"]["notBefore"][:16] > d["enqueuedAt"][:16]'
NB=$(json_get "$("$C" get "$D")" 'd["details"]["notBefore"]')
ENQ=$(json_get "$("$C" get "$D")" 'd["enqueuedAt"]')
assert_eq "notBefore is enqueuedAt + 3600 s (to the second)" 3600 \
    "$(python3 -c 'import sys,datetime as t; f=lambda s: t.datetime.fromisoformat(s.replace("Z","+00:00")).timestamp(); print(round(f(sys.argv[1]) - f(sys.argv[2])))' "$NB" "$ENQ")"
run "$C" claim
assert_eq "claim: nothing to take (exit 1)" 1 "$LMT_RC"
"$C" claim --wait 7200 >"$T/wait.out" 2>"$T/wait.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "claim --wait looks once and sleeps" 30 lmt_asleep "$WP"
r=$(lmt_reads "$WP")
clock_move 3540
run "$C" claim --index books
assert_eq "a minute before its time, still nothing to claim" 1 "$LMT_RC"
# The claim's commit woke it: once it has looked again and sleeps, it has chosen to wait.
wait_for 30 lmt_looked "$WP" "$r"
assert_eq "... and the waiting claim still waits" 0 "$(lmt_ended "$WP" && echo 1 || echo 0)"
clock_move 61
lmt_wait_pid 30 "$WP"
assert_eq "once its time comes, claim --wait takes it (exit 0)" 0 "$?"
assert_eq "... the delayed task" "$D" "$(json_get "$T/wait.out" 'd["uid"]')"
AT=$(python3 -c 'import datetime as t, sys; print((t.datetime.now(t.timezone.utc) + t.timedelta(seconds=float(sys.argv[1]) + 7200)).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$(( $(cat "$T/clock") / 1000000 ))")
N=$(json_get "$("$C" enqueue books indexCreation --not-before "$AT" --priority 7)" 'd["uid"]')
json_check "--not-before TIME is its notBefore, with its priority" "$("$C" get "$N")" \
    "d[\"details\"] == {\"priority\": 7, \"notBefore\": \"${AT%Z}.000000Z\"}"
run "$C" claim
assert_eq "not claimable before then" 1 "$LMT_RC"
clock_move 7201
assert_eq "claimable after" "$N" "$(json_get "$("$C" claim)" 'd["uid"]')"
# start UID names the task: it starts now, before its time (the way to run one early).
E=$(json_get "$("$C" enqueue movies documentAddition --delay 1d)" 'd["uid"]')
run "$C" start "$E"
json_check "start UID on a task delayed a day: processing now, notBefore gone" "$LMT_STDOUT" \
    'd["status"] == "processing" and d["startedAt"] is not None and "notBefore" not in d["details"]'
clock_move 86401
run "$C" claim
assert_eq "... and it does not come due again a day later: nothing to claim" 1 "$LMT_RC"
check "check: no task left behind in the delayed database" "$C" check

section "lmtasks work wakes when the first delayed task comes due"
cat >"$T/job.sh" <<'EOF'
#!/usr/bin/env bash
cat >/dev/null
echo "$LMTASKS_TASK_UID" >>"$(dirname "$0")/ran"
EOF
chmod +x "$T/job.sh"
: >"$T/ran"
W1=$(json_get "$("$C" enqueue jobs x --delay 30m)" 'd["uid"]')
W2=$(json_get "$("$C" enqueue jobs x --delay 2h --priority 3)" 'd["uid"]')
"$C" work --index jobs -- "$T/job.sh" >"$T/work.out" 2>"$T/work.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the worker looks and sleeps" 30 lmt_asleep "$WP"
assert_eq "nothing ran before their time" "" "$(cat "$T/ran")"
clock_move 1801
assert_soon "30 min later the first one ran and succeeded" 30 \
    eval '[ "$(json_get "$("$C" get "$W1")" "d[\"status\"]")" = succeeded ]'
assert_eq "... the second not yet" "enqueued" "$(json_get "$("$C" get "$W2")" 'd["status"]')"
clock_move 5400
assert_soon "2 h later the second ran too" 30 \
    eval '[ "$(json_get "$("$C" get "$W2")" "d[\"status\"]")" = succeeded ]'
kill -TERM "$WP"
lmt_wait_pid 30 "$WP" >/dev/null
assert_eq "each ran once, in their time's order" "$W1 $W2" "$(paste -sd' ' "$T/ran")"
check "check passes" "$L" check

section "a worker started on a store with no schedule sees one another process makes"
export LMTASKS_DB=$T/plain
"$L" init >/dev/null 2>&1
: >"$T/ran"
"$C" work -- "$T/job.sh" >"$T/work2.out" 2>"$T/work2.err" &
WP=$!
lmt_bg_track "$WP"
assert_soon "the worker looks and sleeps" 30 lmt_asleep "$WP"
P0=$(json_get "$("$C" enqueue jobs x)" 'd["uid"]')
assert_soon "a plain task runs" 30 eval '[ "$(cat "$T/ran")" = "$P0" ]'
if lmt_have mdb_stat; then
	assert_eq "the store still has no delayed or ranked database" "no" \
	    "$(mdb_stat -s delayed "$T/plain" >/dev/null 2>&1 && echo yes || echo no)"
fi
reads=$(lmt_reads "$WP")
# In one transaction, so that the worker finds them together.
B=$(printf '%s\n' '{"indexUid":"jobs","type":"x","delay":"1h"}' \
    '{"indexUid":"jobs","type":"x","priority":-5}' '{"indexUid":"jobs","type":"x","priority":5}' |
    "$C" enqueue --batch -)
P1=$(json_get "$B" 'd["firstUid"]')
P2=$((P1 + 1))
P3=$((P1 + 2))
assert_soon "the prioritised tasks run, the higher first" 30 \
    eval '[ "$(paste -sd" " "$T/ran")" = "$P0 $P3 $P2" ]'
assert_soon "the worker looked again and sleeps" 30 lmt_looked "$WP" "$reads"
assert_eq "the delayed task, in databases made after the worker opened the store, waits" \
    enqueued "$(json_get "$("$C" get "$P1")" 'd["status"]')"
clock_move 3601
assert_soon "... and runs when its time comes" 30 \
    eval '[ "$(paste -sd" " "$T/ran")" = "$P0 $P3 $P2 $P1" ]'
kill -TERM "$WP"
lmt_wait_pid 30 "$WP" >/dev/null
check "check passes" "$L" check
export LMTASKS_DB=$T/db

section "details through nginx at both compat levels, and the claim order seen there"
R=$(mktemp -d "$T/r.XXXX")
export LMTASKS_DB=$R/db
"$L" init >/dev/null 2>&1
for p in 0 -1 8 0 8 3; do enq idx work --priority "$p" >/dev/null; done	# 0 to 5
DL=$(enq idx work --delay 1d --priority 2)					# 6
for _ in 1 2 3 4 5 6; do "$L" claim >/dev/null; done
fcgi_start "$T/fcgi.sock" "$R/db" 2 || { fail "lmtasks-fcgi starts"; summary; exit 1; }
F_PID=$FCGI_PID
http_nginx_start sched "" "
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_pass unix:$T/fcgi.sock;
		}" || { fail "nginx starts"; http_stop "$F_PID"; summary; exit 1; }
N_PID=$HTTP_NGINX_PID
for level in v0.25 v1; do
	check "config compat $level" "$L" config compat "$level"
	http GET "/tasks/$DL"
	json_check "$level: the delayed task is enqueued, priority and notBefore in details" \
	    "$HTTP_BODY_FILE" 'd["status"] == "enqueued" and list(d["details"]) == ["priority", "notBefore"] and d["details"]["priority"] == 2'
	assert_eq "$level: the same bytes as lmtasks get" "$("$L" get "$DL")" "$HTTP_BODY"
	http GET /tasks/2
	json_check "$level: a claimed task shows its priority, no notBefore" "$HTTP_BODY_FILE" \
	    'd["status"] == "processing" and d["details"] == {"priority": 8}'
	http GET /tasks/0
	json_check "$level: a task of the default priority shows neither" "$HTTP_BODY_FILE" \
	    'd["details"] == {}'
	http GET "/tasks?statuses=processing&limit=20"
	json_check "$level: by startedAt, the claims went 2, 4 (8), 5 (3), 0, 3 (0), 1 (-1)" \
	    "$HTTP_BODY_FILE" '[t["uid"] for t in sorted(d["results"], key=lambda t: t["startedAt"])] == [2, 4, 5, 0, 3, 1]'
done
http_stop "$N_PID"
http_stop "$F_PID"
export LMTASKS_DB=$T/db

section "the store made by 0.2.0: the old order, then a delayed and a prioritised task"
FIX=$top_srcdir/tests/fixtures/store-0.2.0
SUM=$(cksum <"$FIX/data.mdb")
mkdir "$T/old"
cp "$FIX/data.mdb" "$T/old/"
O() { "$LMTASKS_CLOCKED" --db "$T/old" "$@"; }
if lmt_have mdb_stat; then
	assert_eq "0.2.0 made no delayed or ranked database" "no no" \
	    "$(mdb_stat -s delayed "$T/old" >/dev/null 2>&1 && echo yes || echo no) $(mdb_stat -s ranked "$T/old" >/dev/null 2>&1 && echo yes || echo no)"
fi
json_check "its tasks read as the default priority, not delayed" "$(O list --limit 100)" \
    'd["total"] == len(d["results"]) > 0 and all("priority" not in t["details"] and "notBefore" not in t["details"] for t in d["results"])'
check "check passes on it" O check
P1=$(json_get "$(O enqueue books clearAll)" 'd["uid"]')
P2=$(json_get "$(O enqueue movies documentAddition)" 'd["uid"]')
assert_eq "claim takes the oldest, 0.2.0's task 5, then the new ones in order" "5 $P1 $P2" \
    "$(for _ in 1 2 3; do json_get "$(O claim)" 'd["uid"]'; done | paste -sd' ')"
if lmt_have mdb_stat; then
	assert_eq "plain writes add no database to it" "no" \
	    "$(mdb_stat -s ranked "$T/old" >/dev/null 2>&1 && echo yes || echo no)"
fi
Q1=$(json_get "$(O enqueue books clearAll --delay 10m --priority 9)" 'd["uid"]')
Q2=$(json_get "$(O enqueue movies documentAddition)" 'd["uid"]')
Q3=$(json_get "$(O enqueue books clearAll --priority 4)" 'd["uid"]')
assert_eq "the prioritised task first, then the plain one; the delayed one waits" "$Q3 $Q2 none" \
    "$(for _ in 1 2 3; do out=$(O claim 2>/dev/null) && json_get "$out" 'd["uid"]' || echo none; done | paste -sd' ')"
clock_move 601
assert_eq "its time come, the delayed task is claimed" "$Q1" "$(json_get "$(O claim)" 'd["uid"]')"
if lmt_have mdb_stat; then
	assert_eq "the first delayed task made the delayed and ranked databases" "yes yes" \
	    "$(mdb_stat -s delayed "$T/old" >/dev/null 2>&1 && echo yes || echo no) $(mdb_stat -s ranked "$T/old" >/dev/null 2>&1 && echo yes || echo no)"
fi
check "check passes after" O check
assert_eq "the committed fixture is untouched" "$SUM" "$(cksum <"$FIX/data.mdb")"
summary
