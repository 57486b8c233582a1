#!/usr/bin/env bash
# Parallel writers against the damage check, on a loaded machine: ROUNDS (default 20)
# rounds of WRITERS (8) shell writers doing ENQUEUES (200) `lmtasks enqueue` each, beside
# two busy loops, while wrk asks a FastCGI responder (through a real nginx) for a page of
# tasks.  Every enqueue and the responder's own once-a-second check read the store's
# size and meta page while other processes commit: a check that races a healthy writer
# says "damaged" (exit 4, HTTP 503).  Prints per round the enqueues that failed, the tasks
# stored, and the responder's 503s; fails when any enqueue failed, any task is missing
# or any answer was a 503.  Bounded: wrk runs for the rounds' duration at most 600 s,
# each enqueue under `timeout 60`; the processes it starts are stopped by PID.
#
#   ROUNDS=20 WRITERS=8 ENQUEUES=200 bench/race.sh        (BUILD: the build directory)
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$top_srcdir/build}
LMTASKS=$BUILD/lmtasks LMTASKS_FCGI=$BUILD/lmtasks-fcgi
export LMTASKS LMTASKS_FCGI top_srcdir
. "$top_srcdir/tests/lib/httplib.sh"
ROUNDS=${ROUNDS:-20} WRITERS=${WRITERS:-8} ENQUEUES=${ENQUEUES:-200}
S=$HTTP_TMP/store
L init >/dev/null 2>&1 || { echo "race.sh: cannot init" >&2; exit 1; }
L enqueue movies documentAddition >/dev/null
fcgi_start "$HTTP_TMP/fcgi.sock" "$S" 1 || exit 1
http_nginx_start race "upstream lm { server unix:$HTTP_TMP/fcgi.sock; keepalive 16; }" \
	"location / { include fastcgi_params; fastcgi_pass lm; fastcgi_keep_conn on; }" || exit 1
command -v wrk >/dev/null || { echo "race.sh: no wrk (apt-get install wrk)" >&2; exit 1; }

hogs=()
for _ in 1 2; do
	timeout 3600 sh -c 'while :; do :; done' &
	hogs+=($!)
done
stop_hogs() { kill "${hogs[@]}" 2>/dev/null; wait "${hogs[@]}" 2>/dev/null; }

# wrk for as long as the rounds take (stopped then).  The responder answers 503 for
# damage only while its once-a-second check finds it, and logs each such finding.
timeout 600 wrk -t1 -c8 -d600s "$HTTP_BASE/tasks?limit=20" >"$HTTP_TMP/wrk.out" 2>&1 &
wrk_pid=$!
before=$(grep -c "damaged" "$FCGI_LOG" 2>/dev/null)

bad=0 want=1
printf '%-6s %-10s %-8s %-8s\n' round failed stored damaged
for ((r = 1; r <= ROUNDS; r++)); do
	pids=()
	for ((w = 0; w < WRITERS; w++)); do
		(
			for ((i = 0; i < ENQUEUES; i++)); do
				timeout 60 "$LMTASKS" --db "$S" enqueue "w$w" documentAddition \
					>/dev/null 2>>"$HTTP_TMP/err.$r.$w" || echo x >>"$HTTP_TMP/fail.$r"
			done
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
	want=$((want + WRITERS * ENQUEUES))
	failed=$(cat "$HTTP_TMP/fail.$r" 2>/dev/null | wc -l)
	stored=$(L list --limit 1 2>/dev/null | json_get - 'd["total"]')
	d503=$(($(grep -c "damaged" "$FCGI_LOG" 2>/dev/null) - before))
	printf '%-6s %-10s %-8s %-8s\n' "$r" "$failed" "$stored/$want" "$d503"
	if [ "$failed" != 0 ]; then
		bad=1
		cat "$HTTP_TMP"/err.$r.* | sort | uniq -c | head -n 5
	fi
	[ "$stored" = "$want" ] || bad=1
	[ "$d503" = 0 ] || bad=1
done
kill "$wrk_pid" 2>/dev/null
wait "$wrk_pid" 2>/dev/null
stop_hogs
code=$(curl -s -o /dev/null -w '%{http_code}' "$HTTP_BASE/tasks?limit=1")
echo "responder: $(grep -c "damaged" "$FCGI_LOG") damage lines in its log; now answers $code"
[ "$code" = 200 ] || bad=1
[ "$bad" = 0 ] && echo "race.sh: no failed enqueue, no task missing, no 503" ||
	echo "race.sh: FAILED"
exit "$bad"
