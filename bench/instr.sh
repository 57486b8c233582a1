#!/usr/bin/env bash
# Instructions per request (user space, callgrind) of lmtasks-fcgi --threads 1 behind nginx
# over one kept connection, and of a constant-reply libfcgi program (the floor).  Each page
# is measured asked again and again (after the first, what a cache of pages answers) and
# with a different from= every request, 1999 down (what such a cache cannot answer).
#   bench/instr.sh [WARM] [MEASURED]     (defaults 100 and 500)
# Per request: (Ir after WARM+MEASURED requests - Ir after WARM) / MEASURED, read from two
# callgrind dumps.  Exact and repeatable, so it is the number to watch on a busy machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
warm=${1:-100}
measured=${2:-500}
. "$top/bench/lib.sh"

store=$bench_work/store
bench_store "$store"
cc -O2 -o "$bench_work/const-fcgi" "$top/bench/const-fcgi.c" $(pkg-config --cflags --libs fcgi)

bench_nginx "upstream lmtasks { server unix:$bench_work/fcgi.sock; keepalive 8; }
	upstream floor { server unix:$bench_work/floor.sock; keepalive 8; }" \
	"$(bench_location / lmtasks)
	$(bench_location /floor/ floor)"
base=http://127.0.0.1:$port

# cg_start NAME CMD...: CMD under callgrind, dumps in $bench_work/NAME.cg.N; sets cg_pid.
cg_start() {
	local name=$1; shift
	valgrind --tool=callgrind --callgrind-out-file="$bench_work/$name.cg" "$@" \
		>/dev/null 2>>"$bench_work/$name.vg" &
	cg_pid=$!
	bench_pids+=($!)
}

# cg_dump NAME: makes the process dump and reset its counters; prints the dump's Ir.
cg_dump() {
	local before after
	before=$(ls "$bench_work/$1".cg.* 2>/dev/null | wc -l)
	callgrind_control -d "$cg_pid" >/dev/null
	for _ in $(seq 100); do
		after=$(ls "$bench_work/$1".cg.* 2>/dev/null | wc -l)
		[ "$after" -gt "$before" ] && break
		sleep 0.1
	done
	sleep 0.2
	awk '/^(summary|totals):/ { print $2; exit }' "$bench_work/$1.cg.$after"
}

# requests N URL [FROM]: N sequential GETs on one connection to nginx, each answered 200;
# with FROM, the i-th (from 0) asks URL&from=FROM-i.
requests() {
	local cfg=$bench_work/curl.cfg i
	: > "$cfg"
	for i in $(seq 0 $(($1 - 1))); do
		printf 'url = "%s%s"\noutput = "/dev/null"\n' "$2" "${3:+&from=$(($3 - i))}"
	done >> "$cfg"
	local codes
	codes=$(curl -s -K "$cfg" -w '%{http_code}\n' | sort -u | tr '\n' ' ')
	[ "$codes" = "200 " ] || { echo "bench: $2 answered $codes" >&2; exit 1; }
}

# measure NAME URL [FROM]: instructions per request of the process under callgrind; with
# FROM, no two requests ask the same from= (FROM, FROM-1, ...: the warm ones, then the
# measured ones).
measure() {
	requests "$warm" "$2" ${3:+"$3"}
	cg_dump "$1" >/dev/null
	requests "$measured" "$2" ${3:+"$(($3 - warm))"}
	local ir
	ir=$(cg_dump "$1")
	local dump
	dump=$(ls -t "$bench_work/$1".cg.* | head -1)
	# INSTR_SAVE=DIR keeps each measured dump there, for callgrind_annotate.
	[ -z "${INSTR_SAVE:-}" ] || cp "$dump" "$INSTR_SAVE/"
	# The library's share: what api_handle() and api_headers() cost, callees included.
	local lib
	lib=$(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$dump" 2>/dev/null |
		awk '/:api_handle |:api_headers / { gsub(/,/, "", $1); s += $1 } END { print s + 0 }')
	echo "$(( ir / measured )) $(( lib / measured ))"
}

cg_start fcgi "$fcgi" --db "$store" --threads 1 --listen "unix:$bench_work/fcgi.sock" "${bench_sock[@]}"
fcgi_cg=$cg_pid
bench_wait "$base/health"
curl -sf "$base/tasks/1000" -o "$bench_work/task.json"
cg_pid=$fcgi_cg
task=$(measure fcgi "$base/tasks/1000")
index=$(measure fcgi "$base/indexes/movies/tasks?limit=20")
status=$(measure fcgi "$base/tasks?statuses=succeeded&limit=20")
index_miss=$(measure fcgi "$base/indexes/movies/tasks?limit=20" 1999)
status_miss=$(measure fcgi "$base/tasks?statuses=succeeded&limit=20" 1999)
# The ceiling of the responder's own loop: its cheapest answer, a constant body.
health=$(measure fcgi "$base/health")
# A Prometheus scrape: every family, from the counts and the workers' counters.
metrics=$(measure fcgi "$base/metrics")

# spawn-fcgi -n execs valgrind in its own process: $! is the PID callgrind_control wants.
spawn-fcgi -n -s "$bench_work/floor.sock" -M 0666 -- "$(command -v valgrind)" --tool=callgrind \
	--callgrind-out-file="$bench_work/floor.cg" "$bench_work/const-fcgi" "$bench_work/task.json" \
	>/dev/null 2>>"$bench_work/floor.vg" &
cg_pid=$!
bench_pids+=($!)
bench_wait "$base/floor/x"
floor=$(measure floor "$base/floor/x")

printf '%-56s %10s %12s\n' request 'Ir/request' 'of it api_*'
printf '%-56s %10d %12d\n' 'GET /tasks/1000' $task \
	'GET /indexes/movies/tasks?limit=20' $index \
	'  the same, from=1999-i (each request a miss)' $index_miss \
	'GET /tasks?statuses=succeeded&limit=20' $status \
	'  the same, from=1999-i (each request a miss)' $status_miss
printf '%-56s %10d %12d\n' 'GET /health (a constant, the same loop)' $health
printf '%-56s %10d %12d\n' 'GET /metrics (a Prometheus scrape)' $metrics
printf '%-56s %10d\n' 'constant reply, libfcgi (the floor)' "${floor% *}"
echo "(callgrind, user space, (Ir after $((warm + measured)) - Ir after $warm) / $measured; lmtasks-fcgi --threads 1, one kept connection through nginx)"
