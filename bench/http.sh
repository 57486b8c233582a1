#!/usr/bin/env bash
# Throughput of lmtasks-fcgi behind nginx, next to nginx serving the same bytes as a static
# file and a minimal constant-reply FastCGI program, measured in one run and interleaved.
#   bench/http.sh [SECONDS] [ROUNDS]      (defaults 5 and 3; wrk, nginx, spawn-fcgi needed)
# Loopback only; every wrk run is bounded by its duration; everything started is stopped.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
rounds=${2:-3}
. "$top/bench/lib.sh"

# A store of 2,000 tasks, some of them finished.
store=$bench_work/store
bench_fill "$store" 2000
for _ in $(seq 1 30); do "$lmtasks" --db "$store" claim >/dev/null; done
for i in $(seq 0 9); do "$lmtasks" --db "$store" succeed "$i" --details '{"indexedDocuments":1}' >/dev/null; done
uid=1000
cc -O2 -o "$bench_work/const-fcgi" "$top/bench/const-fcgi.c" $(pkg-config --cflags --libs fcgi)

# The floor, a single-threaded libfcgi loop, would stall on kept connections, so it gets
# a connection per request, as such programs are deployed.
bench_nginx "upstream lmtasks { server unix:$bench_work/fcgi.sock; keepalive 128; }" \
	"$(bench_location / lmtasks)
	location /floor/ { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$bench_work/floor.sock; }"
bench_responder fcgi "$store"
fcgi_pid=$responder_pid
base=http://127.0.0.1:$port
bench_wait "$base/tasks/$uid"
curl -sf "$base/tasks/$uid" -o "$bench_work/task.json"
cp "$bench_work/task.json" "$bench_work/www/static/task.json"
curl -sf "$base/tasks?limit=20" -o "$bench_work/www/static/page.json"
spawn-fcgi -n -M 0666 -s "$bench_work/floor.sock" -- "$bench_work/const-fcgi" "$bench_work/task.json" >/dev/null 2>&1 &
bench_pids+=($!)
bench_wait "$base/floor/x"
# All three serve the same bytes, or the comparison means nothing.
for p in "/tasks/$uid" /floor/x /static/task.json; do
	cmp -s <(curl -sf "$base$p") "$bench_work/task.json" ||
		{ echo "bench: $p does not serve the task's bytes" >&2; exit 1; }
done

declare -A rps p50 p99 err
names=(static-task fcgi-task floor static-page fcgi-page)
paths=(/static/task.json "/tasks/$uid" /floor/x /static/page.json "/tasks?limit=20")
for _ in $(seq 1 "$rounds"); do
	for i in "${!names[@]}"; do
		read -r r a b e < <(bench_wrk "$base${paths[$i]}")
		n=${names[$i]}
		rps[$n]="${rps[$n]:-} $r"
		p50[$n]="${p50[$n]:-} $a"
		p99[$n]="${p99[$n]:-} $b"
		err[$n]=$(( ${err[$n]:-0} + e ))
	done
done
# Medians over the rounds; the ratio is against the static file of the same bytes.
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-12s %10s %8s %8s %7s %8s\n' what req/s p50_ms p99_ms errors ratio
for n in "${names[@]}"; do
	ref=static-task
	case $n in *page) ref=static-page ;; esac
	awk -v n="$n" -v r="$(median <<<"${rps[$n]}")" -v ref="$(median <<<"${rps[$ref]}")" \
		-v a="$(median <<<"${p50[$n]}")" -v b="$(median <<<"${p99[$n]}")" -v e="${err[$n]}" \
		'BEGIN { printf "%-12s %10.0f %8.2f %8.2f %7d %8.2f\n", n, r, a, b, e, r / ref }'
done
echo "(median of $rounds interleaved rounds of ${secs}s; wrk -t2 -c$conns; nginx 1 worker; lmtasks-fcgi with its default threads behind a keepalive 128 upstream)"
echo "responder private memory: $(bench_private_kib "$fcgi_pid") KiB"
