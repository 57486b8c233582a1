#!/usr/bin/env bash
# A soak of lmtasks-fcgi behind nginx, loopback only, bounded in time:
#   bench/soak.sh [SECONDS]        (default 60; tests/e2e/hostile.sh runs it for 20)
# For SECONDS at once: good requests through nginx (4 kept-alive clients), clients that send
# a byte every 0.3 s, clients that stall half-way, crafted FastCGI records at the socket,
# writers killed with SIGKILL in mid-transaction, event streams that read fast, read nothing,
# resume from the log's start or break the protocol, and a 2,000-task commit every 10 s.
# Connections besides: clients sending 2000 requests ahead behind a 64 KiB record, 200 idle
# kept connections, a raw good client timed, and a responder without --db whose store
# requests name (wrong ones among them); the responder's memory and descriptors are printed
# ten times over the run.  Beside it, `lmtasks notify` delivers to a webhook receiver that
# never answers and to a good one (its section below).  Then it checks that the responder
# never died, that its memory (RssAnon) and descriptors did not grow past the warm-up's and
# level off (the second half's peaks no higher than the first half's), and that every good
# request got a whole answer.  A full soak is 600 s.  Prints one line per check; exits 1 on
# a failure.
# SOAK_PACE=S: each good client waits S seconds between its requests, each pipeliner 250 S
# between its runs, the writers that are killed and the webhooks' tasks come every 25 S and
# 50 S, the protocol-breaking streams every 50 S (default 0: flat out, a writer every 0.2 s, a webhook's task every 0.2 s, as a
# benchmark wants; tests/e2e/hostile.sh paces them: what it checks needs the mix, not the
# machine's whole CPU).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
build=${BUILD:-$top/build}
LMTASKS=${LMTASKS:-$build/lmtasks}
LMTASKS_FCGI=${LMTASKS_FCGI:-$build/lmtasks-fcgi}
export LMTASKS LMTASKS_FCGI top_srcdir=$top
unset LMT_TMP	# a directory of its own, also when a suite runs it
. "$top/tests/lib/httplib.sh"

T=$HTTP_TMP
S=$T/store
SOCK=$T/soak.sock
F() { "$LMT_PYTHON" "$top/tests/lib/fcgi.py" "$@"; }
http_demo_store soak.sh
for i in $(seq 1 200); do echo '{"indexUid":"movies","type":"documentAddition"}'; done |
	L enqueue --batch >/dev/null
fcgi_start "$SOCK" "$S" 2 || exit 1
PID=$FCGI_PID
http_nginx_start soak "
	upstream lmtasks {
		server unix:$SOCK;
		keepalive 8;
	}" "
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_pass lmtasks;
			fastcgi_keep_conn on;
		}" || exit 1

# The responder's own memory: RssAnon, not VmRSS, which also counts the pages of the store
# it has read through its map, and the store grows with the commits.
rss() { awk '/^RssAnon/ { print $2 }' "/proc/$PID/status"; }
vmrss() { awk '/^VmRSS/ { print $2 }' "/proc/$PID/status"; }
# memof PID: sets RSS_ANON and VM_RSS (KiB) and FDS (descriptors) of PID, read by the shell:
# the sampling loops ask every second, and a process each time would be most of their cost.
memof() {
	local k v _ f
	RSS_ANON=0 VM_RSS=0
	while read -r k v _; do
		case $k in RssAnon:) RSS_ANON=$v ;; VmRSS:) VM_RSS=$v ;; esac
	done <"/proc/$1/status"
	f=("/proc/$1/fd/"*)
	[ -L "${f[0]}" ] || f=()
	FDS=${#f[@]}
}
fds() { ls "/proc/$PID/fd" | wc -l; }
end=$(( EPOCHSECONDS + secs ))
# (The shell's clock, not date(1): every loop below asks it each round.)
running() { [ "$EPOCHSECONDS" -lt "$end" ]; }
left() { echo $(( end - EPOCHSECONDS )); }

# Good requests: 4 threads, each with a kept-alive connection, until the time is up.
pace=${SOAK_PACE:-0}
writer_every=0.2 hook_every=0.2 extra_every=0
if [ "$pace" != 0 ]; then
	extra_every=$(awk -v p="$pace" 'BEGIN { print 50 * p }')
	writer_every=$(awk -v p="$pace" 'BEGIN { print 25 * p }')
	hook_every=$(awk -v p="$pace" 'BEGIN { print 50 * p }')
fi
"$LMT_PYTHON" - "$HTTP_BASE" "$secs" "$pace" >"$T/good.out" 2>&1 <<'EOF' &
import http.client, json, sys, threading, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
end = time.monotonic() + float(sys.argv[2])
pace = float(sys.argv[3])
paths = ["/tasks/%d", "/tasks?limit=5", "/health", "/indexes/movies/tasks?limit=3", "/tasks/%d"]
lock = threading.Lock()
n = {"sent": 0, "ok": 0, "bad": 0, "unanswered": 0}
def client(k):
    c, i = None, k
    while time.monotonic() < end:
        p = paths[i % len(paths)]
        p = p % (i % 150) if "%d" in p else p
        i += 1
        with lock: n["sent"] += 1
        try:
            if c is None:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("GET", p)
            r = c.getresponse()
            body = r.read()
            good = r.status in (200, 404) and len(body) == int(r.getheader("Content-Length", -1))
            json.loads(body)
            with lock: n["ok" if good else "bad"] += 1
            if not good: print("bad:", p, r.status, body[:200], flush=True)
            if pace: time.sleep(pace)
        except Exception as e:
            with lock: n["unanswered"] += 1
            print("unanswered:", p, repr(e), flush=True)
            c = None
ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("sent=%(sent)d ok=%(ok)d bad=%(bad)d unanswered=%(unanswered)d" % n)
EOF
good_pid=$!
lmt_bg_track "$good_pid"

# The hostile ones, each in its own loop until the time is up.
hostile_loop() {
	while running; do "$@" >/dev/null 2>&1; done
}
# paced_loop PAUSE CMD...: the same with a pause between runs, for a client that the
# responder ends at once (flat out, it would only measure Python's start).
paced_loop() {
	local pause=$1
	shift
	while running; do "$@" >/dev/null 2>&1; lmt_sleep "$pause"; done
}
pids=()
hostile_loop F slow "$SOCK" 0.3 /tasks & pids+=($!)
hostile_loop F slow "$SOCK" 0.3 /health & pids+=($!)
hostile_loop F stall "$SOCK" 8 & pids+=($!)
hostile_loop F stall "$SOCK" 8 & pids+=($!)
# (The looping clients below run in one Python each, fcgi.py repeat: a Python start per
# request would cost more than the request, and the soak's CPU would go to starting them.)
F repeat "$(left)" 0.2 crafted "$SOCK" overflow -- crafted "$SOCK" huge -- \
	crafted "$SOCK" past_end -- crafted "$SOCK" version -- crafted "$SOCK" many \
	>/dev/null 2>&1 & pids+=($!)
# Writers: enqueues, some killed with SIGKILL mid-way.
(n=0; while running; do
	"$LMTASKS" --db "$S" enqueue movies documentAddition --details '{"n":1}' >/dev/null 2>&1 &
	w=$!
	lmt_sleep "0.0$((RANDOM % 10))"
	kill -KILL "$w" 2>/dev/null
	wait "$w" 2>/dev/null
	n=$((n + 1))
	lmt_sleep "$writer_every"
done; echo "$n" >"$T/writers.n") & pids+=($!)
# Connections: clients that send 2000 requests ahead on one connection behind a 64 KiB
# record, 200 idle kept connections (held until the responder's 120 s idle limit closes
# them, then opened again), and a raw good client whose answers are timed; a second
# responder, without --db, that requests name the store of, and wrong ones among them.
hold_loop() {
	local left
	while running; do
		left=$((end - $EPOCHSECONDS))
		"$LMT_PYTHON" "$top/tests/lib/fcgi.py" hold "$SOCK" 200 $((left < 130 ? left : 130)) \
			>/dev/null 2>&1
	done
}
# Each of their pages starts elsewhere: walked and rendered, not the page cache's copy.
pipe_loop() { F repeat "$(left)" "$(awk -v p="$pace" 'BEGIN { print 250 * p }')" pipeline "$SOCK" 2000 "/tasks?limit=50&from=%d" big; }
pipe_loop >"$T/conns.pipe1" 2>&1 & pids+=($!)
pipe_loop >"$T/conns.pipe2" 2>&1 & pids+=($!)
hold_loop & pids+=($!)
F repeat "$(left)" 0.05 get "$SOCK" "/tasks?limit=20" >"$T/conns.good" 2>&1 &
pids+=($!)
env -u LMTASKS_DB "$LMTASKS_FCGI" --listen "unix:$T/pin.sock" --threads 1 </dev/null \
	>"$T/pin.log" 2>&1 &
PIN=$!
lmt_on_exit "http_stop $PIN"
wait_for 30 http_sock_ready "$T/pin.sock"
F repeat "$(left)" 0.05 db "$T/pin.sock" /tasks/0 "$T/no-store" >"$T/pin.wrong" 2>&1 &
pids+=($!)
F repeat "$(left)" 0.05 db "$T/pin.sock" /tasks/0 "$S" >"$T/pin.right" 2>&1 &
pids+=($!)
# The responder's memory and descriptors, ten times over the run.
(step=$((secs / 10 > 1 ? secs / 10 : 1)); while running; do
	sleep "$step"
	echo "$(($EPOCHSECONDS - end + secs)) $(rss) $(fds)"
done) >"$T/conns.samples" 2>/dev/null & pids+=($!)
# Streams (tests/lib/fcgistream.py at the socket): 4 that read as fast as they can, 50 that
# read nothing (held past the 30 s write deadline in a long soak), 2 resumed from the
# log's start, one that sends a request's end twice; and a 2,000-task commit every 10 s.
hold=$(( secs < 80 ? secs / 2 : 40 ))
hostile_loop env GUARD=20 "$LMT_PYTHON" "$top/tests/lib/fcgistream.py" read "$SOCK" 4 \
    /tasks/stream 999999999 & pids+=($!)
hostile_loop timeout "$hold" "$LMT_PYTHON" "$top/tests/lib/fcgistream.py" hold "$SOCK" 50 \
    "/tasks/stream?indexUids=movies" "$T/hold.ready" & pids+=($!)
hostile_loop env GUARD=20 "$LMT_PYTHON" "$top/tests/lib/fcgistream.py" read "$SOCK" 2 \
    /tasks/stream 20000 0 & pids+=($!)
paced_loop "$extra_every" env GUARD=5 "$LMT_PYTHON" "$top/tests/lib/fcgistream.py" extra "$SOCK" \
    /tasks/stream & pids+=($!)
for i in $(seq 1 2000); do echo '{"indexUid":"movies","type":"documentAddition"}'; done \
    >"$T/batch.ndjson"
(while running; do L enqueue --batch "$T/batch.ndjson" >/dev/null 2>&1; sleep 10; done) &
pids+=($!)
for p in "${pids[@]}"; do lmt_bg_track "$p"; done

# ---- Webhooks: a receiver that never answers beside a good one, for the whole soak ----
# `lmtasks notify` delivers the tasks of index hooks (one enqueued and canceled every
# 0.2 s, or as SOAK_PACE says) to a receiver that reads each POST and never answers, added first, and to a good
# one.  Checked at the end: the good one got every task while the silent one answered
# nothing (its requests only ever time out, after 30 s each), and notify's memory and
# descriptors did not grow past the warm-up's.
export LMTASKS_NOTIFY=${LMTASKS_NOTIFY:-$build/lmtasks-notify}
WH_PIDS=()
wh_rx() {	# NAME [receiver options]
	"$LMT_PYTHON" "$top/tests/lib/webhook-receiver.py" "$T/wh-$1.port" "$T/wh-$1.log" \
	    "${@:2}" 2>>"$T/wh-$1.err" &
	lmt_bg_track $!
	WH_PIDS+=($!)
	wait_for 30 test -s "$T/wh-$1.port"
}
wh_rx silent --silent 1
wh_rx good
L webhook add "http://127.0.0.1:$(cat "$T/wh-silent.port")/silent" --indexUids hooks >/dev/null
L webhook add "http://127.0.0.1:$(cat "$T/wh-good.port")/good" --indexUids hooks >/dev/null
"$LMTASKS" --db "$S" notify >"$T/wh-notify.out" 2>"$T/wh-notify.err" &	# (not L: $! is notify)
WH_NOTIFY=$!
lmt_bg_track "$WH_NOTIFY"
: >"$T/wh-finished"
(while running; do
	# (The uid read by the shell, not by a sed and a subshell each round.)
	u=
	L enqueue hooks documentAddition >"$T/wh-enq" 2>/dev/null &&
		read -r line <"$T/wh-enq" && [[ $line =~ ^\{\"uid\":([0-9]+), ]] && u=${BASH_REMATCH[1]}
	[ -n "$u" ] && L cancel "$u" >/dev/null 2>&1 && echo "$u" >>"$T/wh-finished"
	lmt_sleep "$hook_every"
done) & WH_LOOP=$!
lmt_bg_track "$WH_LOOP"
(sleep $(( secs < 20 ? 3 : 5 ))
	r0=$(awk '/^VmRSS/ { print $2 }' "/proc/$WH_NOTIFY/status") f0=$(ls "/proc/$WH_NOTIFY/fd" | wc -l)
	a0=$(awk '/^RssAnon/ { print $2 }' "/proc/$WH_NOTIFY/status")
	rmax=$r0 fmax=$f0
	while running && [ -d "/proc/$WH_NOTIFY" ]; do
		sleep 1
		memof "$WH_NOTIFY"
		r=$VM_RSS f=$FDS
		[ "$r" -gt "$rmax" ] && rmax=$r
		[ "$f" -gt "$fmax" ] && fmax=$f
	done
	echo "$r0 $f0 $rmax $fmax $a0" >"$T/wh-mem") & WH_SAMPLER=$!
lmt_bg_track "$WH_SAMPLER"
# ---- (end of the webhooks' start; their checks come after the soak's) ----

sleep $(( secs < 20 ? 3 : 5 ))
rss0=$(rss) fd0=$(fds) rssmax=0 fdmax=0
# The samples of each tenth of the run (its peak RSS and descriptors), to see them level off.
tenth=$(( (end - $EPOCHSECONDS) / 10 )) series=() early_rss=0 late_rss=0 early_fd=0 late_fd=0
[ "$tenth" -ge 1 ] || tenth=1
t_start=$EPOCHSECONDS prss=0 pfd=0
while running; do
	sleep 1
	http_alive "$PID" || break
	memof "$PID"
	r=$RSS_ANON f=$FDS
	[ "$r" -gt "$rssmax" ] && rssmax=$r
	[ "$f" -gt "$fdmax" ] && fdmax=$f
	[ "$r" -gt "$prss" ] && prss=$r
	[ "$f" -gt "$pfd" ] && pfd=$f
	el=$(( $EPOCHSECONDS - t_start ))
	if [ $(( el % tenth )) -eq 0 ] || ! running; then
		series+=("${prss}/${pfd}")
		if [ "${#series[@]}" -le 5 ]; then
			[ "$prss" -gt "$early_rss" ] && early_rss=$prss
			[ "$pfd" -gt "$early_fd" ] && early_fd=$pfd
		else
			[ "$prss" -gt "$late_rss" ] && late_rss=$prss
			[ "$pfd" -gt "$late_fd" ] && late_fd=$pfd
		fi
		prss=0 pfd=0
	fi
done
wait "$good_pid" "${pids[@]}" 2>/dev/null
# The hostile connections close at their deadline; then nothing is left over.
sleep 6
if http_alive "$PID"; then
	ok "the responder ran through ${secs} s of it (pid $PID)"
	rss1=$(rss) fd1=$(fds)
else
	fail "the responder ran through ${secs} s of it" "$(tail -5 "$FCGI_LOG")"
	rss1=0 fd1=0
fi
# Memory: what the warm-up reached plus 4 MiB of allocator slack, at the end; descriptors:
# no more than after the warm-up (the hostile connections it had open then are gone now).
# Under AddressSanitizer (LMTASKS_SANITIZED, set by scripts/test.sh) freed memory waits in
# its quarantine, up to 256 MiB, before it is reused: the slack is that much larger there,
# and LeakSanitizer judges leaks when the responder exits.
slack=4096
[ -n "${LMTASKS_SANITIZED:-}" ] && slack=$(( 256 * 1024 + 4096 ))
if [ "$rss1" -gt 0 ] && [ "$rss1" -le $(( rss0 + slack )) ]; then
	ok "RssAnon: ${rss0} KiB after the warm-up, ${rss1} KiB at the end (peak ${rssmax} KiB; slack ${slack} KiB; VmRSS $(vmrss) KiB)"
else
	fail "RssAnon grew: ${rss0} KiB after the warm-up, ${rss1} KiB at the end (peak ${rssmax} KiB)"
fi
echo "# peak RssAnon KiB/descriptors per tenth of the run: ${series[*]}"
# Levelling off: the second half's peaks are no higher than the first half's (RSS with the
# slack above; descriptors with room for the clients' churn, 16).
if [ "$late_rss" -le $(( early_rss + slack )) ] && [ "$late_fd" -le $(( early_fd + 16 )) ]; then
	ok "memory and descriptors level off: first half's peaks ${early_rss} KiB/${early_fd}, second half's ${late_rss} KiB/${late_fd}"
else
	fail "memory and descriptors level off" "first half's peaks ${early_rss} KiB/${early_fd}, second half's ${late_rss} KiB/${late_fd}"
fi
if [ "$fd1" -gt 0 ] && [ "$fd1" -le "$fd0" ]; then
	ok "descriptors: ${fd0} after the warm-up, ${fd1} at the end (peak ${fdmax})"
else
	fail "descriptors grew: ${fd0} after the warm-up, ${fd1} at the end (peak ${fdmax})"
fi
res=$(tail -n 1 "$T/good.out")
if [[ $res =~ ^sent=([0-9]+)\ ok=([0-9]+)\ bad=0\ unanswered=0$ ]] &&
	[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[2]}" -gt 0 ]; then
	ok "every good request answered: $res"
else
	fail "every good request answered" "$res" "$(head -5 "$T/good.out")"
fi
# ---- Webhooks: the checks ----
wait "$WH_LOOP" "$WH_SAMPLER" 2>/dev/null
wh_all() {
	"$LMT_PYTHON" -S -c '
import json, sys
want = set(int(l) for l in open(sys.argv[1]) if l.strip())
got = set(u for l in open(sys.argv[2]) for x in [json.loads(l)] if x["status"] == 200 for u in x["uids"])
sys.exit(0 if want and want <= got else 1)' "$T/wh-finished" "$T/wh-good.log"
}
wh_n=$(wc -l <"$T/wh-finished")
if wait_for 30 wh_all; then
	ok "webhooks: the good receiver got all $wh_n tasks; the silent one got $(grep -c '"status": null, "uids": \[[0-9]' "$T/wh-silent.log") POSTs and answered none ($(grep -c '"closed": true' "$T/wh-silent.log") timed out)"
else
	fail "webhooks: the good receiver got all $wh_n tasks" "$(tail -3 "$T/wh-notify.err")"
fi
# Long enough, the silent one's first POST has ended at its 30 s timeout and was retried.
if [ "$secs" -ge 45 ]; then
	if grep -q 'Operation timed out after 3[0-9]\{4\} milliseconds' "$T/wh-notify.err" &&
	    [ "$(grep -c '"status": null, "uids": \[[0-9]' "$T/wh-silent.log")" -ge 2 ]; then
		ok "webhooks: the silent one's POSTs end at notify's 30 s timeout and are retried"
	else
		fail "webhooks: the silent one's POSTs end at notify's 30 s timeout" "$(tail -3 "$T/wh-notify.err")"
	fi
fi
read -r wr0 wf0 wrmax wfmax wa0 <"$T/wh-mem" 2>/dev/null
if http_alive "$WH_NOTIFY"; then
	wr1=$(awk '/^VmRSS/ { print $2 }' "/proc/$WH_NOTIFY/status") wf1=$(ls "/proc/$WH_NOTIFY/fd" | wc -l)
	wa1=$(awk '/^RssAnon/ { print $2 }' "/proc/$WH_NOTIFY/status")
	# Its own memory is RssAnon: VmRSS also counts the store's pages, mapped as it grows
	# (the stream section's commits grow it by megabytes in a long soak).
	if [ -n "${wa0:-}" ] && [ "$wa1" -le $(( wa0 + slack )) ] && [ "$wf1" -le "$wf0" ]; then
		ok "webhooks: notify's own memory (RssAnon) ${wa0} KiB after the warm-up, ${wa1} KiB at the end (VmRSS ${wr0} and ${wr1} KiB, peak ${wrmax} KiB: the rest is the store's pages); descriptors ${wf0}, ${wf1} (peak ${wfmax})"
	else
		fail "webhooks: notify's memory or descriptors grew" "RssAnon ${wa0:-?} -> ${wa1} KiB, VmRSS ${wr0:-?} -> ${wr1} KiB (peak ${wrmax:-?}), descriptors ${wf0:-?} -> ${wf1} (peak ${wfmax:-?})"
	fi
	kill "$WH_NOTIFY"
	wait "$WH_NOTIFY"
	wh_rc=$?
	[ "$wh_rc" = 0 ] && ok "webhooks: notify exits 0 on SIGTERM" ||
		fail "webhooks: notify exits 0 on SIGTERM" "exit $wh_rc" "$(tail -3 "$T/wh-notify.err")"
else
	fail "webhooks: notify ran through the soak" "$(tail -3 "$T/wh-notify.err")"
fi
for p in "${WH_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
# ---- (end of the webhooks' checks) ----
# Connections: the pipeliners all answered, the raw good client too (its slowest answer
# printed: speed is shown, not asserted), the store named by requests never pinned wrong.
piped=$(cat "$T/conns.pipe1" "$T/conns.pipe2")
if [ -n "$piped" ] && ! grep -qv '^answered 2000 ' <<<"$piped"; then
	ok "pipeliners: $(wc -l <<<"$piped") runs of 2000 requests sent ahead, every one answered"
else
	fail "pipeliners: every request sent ahead answered" "$(grep -v '^answered 2000 ' <<<"$piped" | head -3)"
fi
good=$(awk '$1 == 200 { n++; if ($2 > max) max = $2 } $1 != 200 { bad++ }
	END { printf "%d %d %.3f", n, bad, max }' "$T/conns.good")
read -r gn gbad gmax <<<"$good"
[ "$gn" -gt 0 ] && [ "$gbad" = 0 ] &&
	ok "a raw good client beside them: $gn requests, every one 200 (slowest ${gmax} s)" ||
	fail "a raw good client beside them: every request 200" "$gn 200, $gbad not"
right=$(sort "$T/pin.right" | cut -d' ' -f1 | uniq -c | tr -s ' ' | tr '\n' ';')
wrong=$(sort "$T/pin.wrong" | cut -d' ' -f1 | uniq -c | tr -s ' ' | tr '\n' ';')
[[ $right =~ ^\ [0-9]+\ 200\;$ ]] && [[ $wrong =~ ^\ [0-9]+\ 503\;$ ]] &&
	ok "a responder without --db: requests naming the store all 200 ($right), a wrong one all 503 ($wrong)" ||
	fail "a responder without --db: the store requests name, never a wrong one" "right: $right" "wrong: $wrong"
http_alive "$PIN" && ok "the responder without --db lives" || fail "the responder without --db lives"
while read -r t r f; do
	echo "# responder at ${t} s: RSS ${r} KiB, ${f} descriptors"
done <"$T/conns.samples"
echo "# writers started (many killed mid-way): $(cat "$T/writers.n" 2>/dev/null)"
echo "# crafted or slow connections closed: $(grep -c 'closed a FastCGI connection' "$FCGI_LOG")"
run "$LMTASKS" --db "$S" check
[ "$LMT_RC" = 0 ] && ok "lmtasks check: the store is whole after the killed writers" ||
	fail "lmtasks check after the killed writers" "$LMT_STDOUT" "$LMT_STDERR"
L enqueue movies documentAddition >/dev/null && ok "a writer still writes" || fail "a writer still writes"
summary
