#!/usr/bin/env bash
# Retries through the real binaries and a real nginx: enqueue --max-attempts/--backoff
# (and NDJSON's maxAttempts/backoff) checked, the store's maxAttempts/retryBackoff applied
# at enqueue, a failed attempt back in the queue (details.attempts, maxAttempts, lastError,
# notBefore, served by lmtasks-fcgi as lmtasks prints them, at compat v0.25 and v1) and not
# claimable before its backoff, an expired lease counted as an attempt, the last attempt's
# failure final, fail --final, lmtasks retry by uid and by filter, lmtasks work with a
# command that fails once, and a plain task answered byte for byte as before.  The clock
# is the clocked programs' (tests/*-clocked), moved past each backoff and lease: no sleep.

. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/httplib.sh"

set -u
unset LMTASKS_TEST_CLOCK
[ -x "$LMTASKS_CLOCKED" ] || { echo "retry.sh: no clocked lmtasks at $LMTASKS_CLOCKED" >&2; exit 99; }
T=$HTTP_TMP
S=$T/db
clock_use "$T/clock"
L() { "$LMTASKS_CLOCKED" --db "$S" "$@"; }
uid_of() { json_get "$1" 'd["uid"]'; }
L init >/dev/null 2>&1 || { echo "retry.sh: cannot init" >&2; exit 99; }

section "enqueue: the policy's options and NDJSON fields are checked"
assert_exit -m "--max-attempts 0: a usage error" 2 L enqueue movies documentAddition --max-attempts 0
assert_exit -m "--max-attempts 1001: a usage error" 2 L enqueue movies documentAddition --max-attempts 1001
assert_contains "... saying the range" "from 1 to 1000" "$LMT_STDERR"
assert_exit -m "--backoff 5w: a usage error" 2 L enqueue movies documentAddition --max-attempts 2 --backoff 5w
assert_exit -m "--backoff 25h: past a day" 2 L enqueue movies documentAddition --max-attempts 2 --backoff 25h
assert_exit -m "--batch with --max-attempts: its lines carry it" 2 L enqueue --batch --max-attempts 2
assert_eq "nothing was enqueued" 0 "$(json_get "$(L stats)" 'd["tasks"]')"
printf '%s\n' '{"indexUid":"movies","type":"documentAddition","maxAttempts":3,"backoff":"1.5m"}' \
    '{"indexUid":"movies","type":"documentAddition","maxAttempts":2,"backoff":20}' \
    '{"indexUid":"movies","type":"documentAddition"}' >"$T/ok.ndjson"
check "enqueue --batch with maxAttempts and backoff" L enqueue --batch "$T/ok.ndjson"
json_check "NDJSON maxAttempts: shown with its attempts" "$(L get 0)" \
    'd["details"] == {"attempts":0,"maxAttempts":3}'
json_check "a plain line stays a plain task" "$(L get 2)" 'd["details"] == {}'
printf '%s\n' '{"indexUid":"movies","type":"documentAddition"}' \
    '{"indexUid":"movies","type":"documentAddition","maxAttempts":0}' >"$T/bad.ndjson"
assert_exit -m "NDJSON maxAttempts 0: the batch is refused" 2 L enqueue --batch "$T/bad.ndjson"
assert_contains "... naming the line" "line 2: maxAttempts" "$LMT_STDERR"
printf '%s\n' '{"indexUid":"movies","type":"documentAddition","maxAttempts":2,"backoff":"soon"}' >"$T/bad.ndjson"
assert_exit -m "NDJSON backoff \"soon\": refused" 2 L enqueue --batch "$T/bad.ndjson"
assert_eq "nothing of either was enqueued" 3 "$(json_get "$(L stats)" 'd["tasks"]')"

section "the store's policy, applied at enqueue to tasks that give none"
json_check "config: no policy by default, a 10 s first backoff" "$(L config)" \
    'd["maxAttempts"] == 0 and d["retryBackoff"] == "10s"'
assert_exit -m "config maxAttempts 1001: refused" 2 L config maxAttempts 1001
assert_exit -m "config retryBackoff 0: refused" 2 L config retryBackoff 0
check "config maxAttempts 4" L config maxAttempts 4
json_check "config retryBackoff 2m, printed as a duration" "$(L config retryBackoff 2m)" \
    'd["retryBackoff"] == "2m" and d["maxAttempts"] == 4'
D=$(uid_of "$(L enqueue movies documentAddition)")
json_check "a task enqueued with none gets the store's" "$(L get "$D")" \
    'd["details"] == {"attempts":0,"maxAttempts":4}'
O=$(uid_of "$(L enqueue movies documentAddition --max-attempts 2)")
json_check "one of its own keeps it" "$(L get "$O")" 'd["details"]["maxAttempts"] == 2'
check "config maxAttempts 0" L config maxAttempts 0
json_check "a task enqueued before keeps the policy it was given" "$(L get "$D")" \
    'd["details"]["maxAttempts"] == 4'
check "config retryBackoff 10s" L config retryBackoff 10s

section "a plain task is as it was"
P=$(uid_of "$(L enqueue movies documentAddition --details '{"n":1}')")
check "claim it" L start "$P"
run L fail "$P" --code boom --message 'it broke'
assert_eq "fail: exit 0, nothing said" "0 " "$LMT_RC $LMT_STDERR"
json_check "failed at once, details untouched, no attempt counted" "$LMT_STDOUT" \
    'd["status"] == "failed" and d["details"] == {"n":1} and keys(d) == ["uid","indexUid","status","type","details","error","duration","enqueuedAt","startedAt","finishedAt"]'

section "a failed attempt goes back to the queue after its backoff"
R=$(uid_of "$(L enqueue movies documentAddition --details '{"n":2}' --max-attempts 3 --backoff 100s)")
# The tasks before it leave the queue: claim takes the oldest.
L cancel 0 1 2 "$D" "$O" >/dev/null
run L claim --lease 60 --requeue
json_check "claim: attempt 1 of 3" "$LMT_STDOUT" \
    "d['uid'] == $R and d['details'] == {'n':2,'attempts':1,'maxAttempts':3}"
run L fail "$R" --code index_busy --message 'The index is busy.'
assert_eq "fail with attempts left: exit 0" 0 "$LMT_RC"
assert_match "... saying it goes back, and when" \
    "task $R: attempt 1 of 3 failed; it goes back to the queue and is tried again from 20" "$LMT_STDERR"
json_check "enqueued, with notBefore, attempts and the error as lastError" "$LMT_STDOUT" \
    'd["status"] == "enqueued" and d["startedAt"] is None and list(d["details"]) == ["n","notBefore","attempts","maxAttempts","lastError"] and d["details"]["lastError"] == {"message":"The index is busy.","code":"index_busy","type":"internal","link":"https://docs.meilisearch.com/errors#index_busy"} and "error" not in d'
BACK=$LMT_STDOUT
assert_exit -m "claim: nothing before its backoff ends (exit 1)" 1 L claim
# 70 s: 10 s short of the earliest its jitter allows, however long the steps take.
clock_move 70
assert_exit -m "claim: nothing 70 s later either (100 s, -20%)" 1 L claim

section "what lmtasks-fcgi serves through nginx, at v0.25 then at v1"
fcgi_start "$T/fcgi.sock" "$S" 2 || { fail "lmtasks-fcgi starts"; summary; exit 1; }
F_PID=$FCGI_PID
http_nginx_start retry "" "
		location / {
			include fastcgi_params;
			fastcgi_pass unix:$T/fcgi.sock;
		}" || { fail "nginx starts"; summary; exit 1; }
http GET "/tasks/$R"
assert_eq "v0.25: GET /tasks/$R is what lmtasks printed" "200 $BACK" "$HTTP_STATUS $HTTP_BODY"
http GET "/indexes/movies/tasks?statuses=enqueued"
json_check "v0.25: listed as enqueued, details with it" "$HTTP_BODY_FILE" \
    "[t['details'].get('attempts') for t in d['results'] if t['uid'] == $R] == [1]"
http GET "/tasks/$P"
assert_eq "v0.25: a plain failed task, byte for byte as lmtasks get" "$(L get "$P")" "$HTTP_BODY"
check "config compat v1" L config compat v1
http GET "/tasks/$R"
assert_eq "v1: GET /tasks/$R is what lmtasks get prints" "200 $(L get "$R")" "$HTTP_STATUS $HTTP_BODY"
json_check "v1: status enqueued, batchUid and error null, the same details" "$HTTP_BODY_FILE" \
    'd["status"] == "enqueued" and d["batchUid"] is None and d["error"] is None and list(d["details"]) == ["n","notBefore","attempts","maxAttempts","lastError"]'

clock_move 50.1
run L claim --lease 60 --requeue
json_check "120.1 s later (100 s, +20%): claimed, attempt 2, notBefore gone" "$LMT_STDOUT" \
    "d['uid'] == $R and d['details']['attempts'] == 2 and 'notBefore' not in d['details'] and d['details']['lastError']['code'] == 'index_busy'"
http GET "/tasks/$R"
json_check "v1: processing, in a batch, the last attempt's error in details" "$HTTP_BODY_FILE" \
    'd["status"] == "processing" and isinstance(d["batchUid"], int) and d["error"] is None and d["details"]["lastError"]["code"] == "index_busy"'

section "an expired lease counts as a failed attempt"
clock_move 61
check "reap" L reap
json_check "back in the queue, task_lease_expired its last error" "$(L get "$R")" \
    'd["status"] == "enqueued" and d["details"]["attempts"] == 2 and d["details"]["lastError"]["code"] == "task_lease_expired" and d["batchUid"] is None'
http GET "/tasks/$R"
json_check "v1 through nginx: the same, notBefore 160 to 240 s after the reap (a second after the lease's end)" "$HTTP_BODY_FILE" \
    'd["details"]["lastError"]["code"] == "task_lease_expired" and 160 <= (__import__("datetime").datetime.fromisoformat(d["details"]["notBefore"].replace("Z", "+00:00")) - __import__("datetime").datetime.fromisoformat(re.search(r"expired at (\S+) without", d["details"]["lastError"]["message"]).group(1).replace("Z", "+00:00"))).total_seconds() <= 242'
assert_exit -m "not claimable before its (doubled) backoff" 1 L claim
clock_move 240.1
run L claim --lease 60 --requeue
json_check "attempt 3 of 3" "$LMT_STDOUT" "d['uid'] == $R and d['details']['attempts'] == 3"
run L fail "$R" --code index_busy --message 'Still busy.'
assert_eq "the last attempt's failure: exit 0, nothing said" "0 " "$LMT_RC $LMT_STDERR"
json_check "failed for good with its own error, no lastError beside it" "$LMT_STDOUT" \
    'd["status"] == "failed" and d["error"]["message"] == "Still busy." and d["details"] == {"n":2,"attempts":3,"maxAttempts":3} and isinstance(d["batchUid"], int)'
http GET "/tasks/$R"
assert_eq "v1 through nginx: as lmtasks printed it" "$LMT_STDOUT" "$HTTP_BODY"
check "config compat v0.25" L config compat v0.25
http GET "/tasks/$R"
json_check "v0.25 through nginx: error after details, attempts in details" "$HTTP_BODY_FILE" \
    'keys(d)[4:6] == ["details","error"] and d["details"]["attempts"] == 3'

E=$(uid_of "$(L enqueue movies documentAddition --max-attempts 2)")
L start "$E" >/dev/null
X=$(uid_of "$(L enqueue books x --max-attempts 1)")
L start "$X" --lease 1 >/dev/null
clock_move 2
check "reap" L reap
json_check "a last attempt's expired lease: failed, task_lease_expired, saying so" "$(L get "$X")" \
    'd["status"] == "failed" and d["error"]["code"] == "task_lease_expired" and "on its last attempt (1 of 1)" in d["error"]["message"]'

section "fail --final, and lmtasks retry"
run L fail "$E" --code nope --message 'no point trying again' --final
json_check "fail --final with attempts left: failed at once" "$LMT_STDOUT" \
    'd["status"] == "failed" and d["details"]["attempts"] == 1'
S1=$(uid_of "$(L enqueue movies documentAddition)")
L start "$S1" >/dev/null && L succeed "$S1" >/dev/null
BEFORE=$(L get "$S1")
run L retry "$S1"
assert_eq "retry of a succeeded task: exit 3" 3 "$LMT_RC"
assert_contains "... saying why, for that task" "task $S1 is succeeded: only a failed task can be retried; it was left as it is" "$LMT_STDERR"
assert_eq "... and changing nothing" "$BEFORE" "$(L get "$S1")"
run L retry 999999
assert_eq "retry of no such task: exit 1" "1 lmtasks: task 999999 not found" "$LMT_RC $LMT_STDERR"
run L retry "$E" "$S1" "$P" 999999 "$E"
assert_eq "retry of two failed tasks (one named twice), a succeeded one and a missing one: exit 0, as cancel" \
    0 "$LMT_RC"
assert_eq "... the two retried printed once each, one a line" "$E $P" \
    "$(printf '%s\n' "$LMT_STDOUT" | while read -r l; do json_get "$l" 'd["uid"]'; done | xargs)"
assert_contains "... the succeeded one said" "task $S1 is succeeded: only a failed task can be retried" "$LMT_STDERR"
assert_contains "... the missing one said" "task 999999 not found" "$LMT_STDERR"
assert_eq "... and the one named twice not refused the second time" "" \
    "$(printf '%s\n' "$LMT_STDERR" | grep "task $E ")"
json_check "a task failed with --final is back with the attempts it had left" "$(L get "$E")" \
    'd["status"] == "enqueued" and d["details"]["maxAttempts"] == 2 and d["details"]["lastError"]["code"] == "nope" and "notBefore" not in d["details"]'
json_check "a plain task counts the attempt it had: 1 of 2" "$(L get "$P")" \
    'd["status"] == "enqueued" and d["details"]["attempts"] == 1 and d["details"]["maxAttempts"] == 2'
run L retry "$R"
json_check "a task with no attempt left gets one more, claimable at once" "$LMT_STDOUT" \
    'd["status"] == "enqueued" and d["details"]["attempts"] == 3 and d["details"]["maxAttempts"] == 4'
run L claim --index movies
json_check "claim takes it at once (the oldest: $E, $P, $R)" "$LMT_STDOUT" "d['uid'] in ($E, $P, $R)"
assert_exit -m "retry with no task named: a usage error" 2 L retry
assert_exit -m "retry UID and filters: a usage error" 2 L retry 1 --index movies
assert_exit -m "retry --statuses: a usage error (failed tasks only)" 2 L retry --statuses succeeded
F1=$(uid_of "$(L enqueue films x)") F2=$(uid_of "$(L enqueue shows x)")
L start "$F1" >/dev/null && L fail "$F1" --code a --message b >/dev/null
L start "$F2" >/dev/null && L fail "$F2" --code a --message b >/dev/null
run L retry --index films
assert_eq "retry --index films: the failed task of films alone" "0 $F1" \
    "$LMT_RC $(json_get "$LMT_STDOUT" 'd["uid"]')"
assert_eq "shows' stays failed" failed "$(json_get "$(L get "$F2")" 'd["status"]')"
run L retry --index films
assert_eq "again: nothing matches, exit 0, said" "0 lmtasks: no failed task matches; nothing was changed" \
    "$LMT_RC $LMT_STDERR"
G1=$(uid_of "$(L enqueue films x)") G2=$(uid_of "$(L enqueue films x)")
L start "$G1" >/dev/null && L fail "$G1" --code a --message b >/dev/null
L start "$G2" >/dev/null && L fail "$G2" --code a --message b >/dev/null
run L retry --all
ALL=$(printf '%s\n' "$LMT_STDOUT" | while read -r l; do json_get "$l" 'd["uid"]'; done | xargs)
assert_eq "retry --all: exit 0" 0 "$LMT_RC"
assert_eq "... every failed task printed, oldest first" "$(printf '%s\n' $ALL | sort -n | xargs)" "$ALL"
assert_contains "... $F2, $G1 and $G2 among them" "$F2 $G1 $G2" "$ALL"
assert_eq "no failed task is left" 0 "$(json_get "$(L stats)" 'd["statuses"]["failed"]')"
check "check passes after the retries" L check

section "lmtasks work: a command that fails once"
L cancel $(L list --statuses enqueued,processing --limit 1000 | json_get - '" ".join(str(t["uid"]) for t in d["results"])') >/dev/null
cat >"$T/job.sh" <<'EOF'
#!/usr/bin/env bash
# Fails the first time it runs a task (a marker file per uid), succeeds after.
m=$(dirname "$0")/ran.$LMTASKS_TASK_UID
if [ -e "$m" ] && [ "${ALWAYS_FAIL:-}" != "$LMTASKS_TASK_UID" ]; then echo '{"done":true}'; exit 0; fi
touch "$m"
echo "failing $LMTASKS_TASK_UID" >&2
exit 3
EOF
chmod +x "$T/job.sh"
# Backoffs of 100 s: the first run must be over before they end, however slow the machine.
W1=$(uid_of "$(L enqueue jobs run --max-attempts 2 --backoff 100s)")
W2=$(uid_of "$(L enqueue jobs run --max-attempts 2 --backoff 100s)")
W3=$(uid_of "$(L enqueue jobs run)")
export ALWAYS_FAIL=$W2
run L work --index jobs --exit-when-empty -- "$T/job.sh"
assert_eq "work: the two with a policy put back, the plain one failed" \
    '{"succeeded":0,"failed":1,"released":0,"lost":0,"retried":2}' "$LMT_STDOUT"
assert_match "... each logged with its next try" "task $W1: attempt 1 of 2 failed; it is tried again from" "$LMT_STDERR"
json_check "task $W1 waits, its stderr in lastError" "$(L get "$W1")" \
    'd["status"] == "enqueued" and d["details"]["lastError"]["code"] == "work_command_failed" and "failing" in d["details"]["lastError"]["message"]'
clock_move 120.1
run L work --index jobs --exit-when-empty -- "$T/job.sh"
assert_eq "after the backoff: one succeeds, the other's last attempt fails" \
    '{"succeeded":1,"failed":1,"released":0,"lost":0}' "$LMT_STDOUT"
json_check "task $W1: succeeded on attempt 2, its first failure kept" "$(L get "$W1")" \
    'd["status"] == "succeeded" and d["details"]["done"] and d["details"]["attempts"] == 2 and d["details"]["lastError"]["code"] == "work_command_failed"'
json_check "task $W2: failed for good on attempt 2" "$(L get "$W2")" \
    'd["status"] == "failed" and d["details"]["attempts"] == 2 and "lastError" not in d["details"]'
unset ALWAYS_FAIL

http_stop "$HTTP_NGINX_PID"
http_stop "$F_PID"
summary
