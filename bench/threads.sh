#!/usr/bin/env bash
# The responder's --threads, side by side: one responder per thread count behind the same
# nginx, each asked for a task and for an index's page of 20 (with --page-cache 0, so that
# every page is walked), interleaved, at 16 and 64 clients; req/s, p99 and the CPU
# microseconds per request of nginx's worker and of the responder.  What the default
# (half the CPUs) rests on.
#   bench/threads.sh [SECONDS] [ROUNDS] [THREADS...]   (defaults 5, 3, "1 2")
#   CLIENTS="16 64": the client counts (scripts/test.sh's brief run: 64 alone)
# Loopback only; every wrk run is bounded by its duration; everything started is stopped.
# Fails on any error wrk counts; speed is printed, never asserted.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
CLIENTS=${CLIENTS:-16 64}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 2)
. "$top/bench/lib.sh"

store=$bench_work/store
bench_store "$store"
# Locations are letters (bench_location splits /[a-z]+/ off): 1 -> /tb/, 2 -> /tc/.
loc() { printf 't%s' "$(tr 0-9 a-j <<<"$1")"; }
ups= locs=
for t in "${counts[@]}"; do
	ups+="upstream t$t { server unix:$bench_work/t$t.sock; keepalive 128; } "
	locs+="$(bench_location "/$(loc "$t")/" "t$t") "
done
bench_nginx "$ups" "$locs"
declare -A pid
for t in "${counts[@]}"; do
	bench_sock=(--socket-mode 0666 --threads "$t" --page-cache 0)
	bench_responder "t$t" "$store"
	pid[$t]=$responder_pid
done
base=http://127.0.0.1:$port
for t in "${counts[@]}"; do bench_wait "$base/$(loc "$t")/tasks/1000"; done
ngx=$(bench_nginx_worker)

paths=(/tasks/1000 "/indexes/movies/tasks?limit=20")
names=(task index)
declare -A rps p99 nus rus err
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for c in $CLIENTS; do
	conns=$c
	for _ in $(seq 1 "$rounds"); do
		for i in "${!paths[@]}"; do
			for t in "${counts[@]}"; do
				n0=$(bench_ticks "$ngx") r0=$(bench_ticks "${pid[$t]}")
				read -r r _ b e n < <(bench_wrk_n "$base/$(loc "$t")${paths[$i]}")
				n1=$(bench_ticks "$ngx") r1=$(bench_ticks "${pid[$t]}")
				k=$c/${names[$i]}/$t
				rps[$k]="${rps[$k]:-} $r"
				p99[$k]="${p99[$k]:-} $b"
				nus[$k]="${nus[$k]:-} $(awk -v a="$n0" -v b="$n1" -v n="$n" -v u="$bench_tick_us" 'BEGIN { printf "%.2f", n ? (b - a) * u / n : 0 }')"
				rus[$k]="${rus[$k]:-} $(awk -v a="$r0" -v b="$r1" -v n="$n" -v u="$bench_tick_us" 'BEGIN { printf "%.2f", n ? (b - a) * u / n : 0 }')"
				err[$k]=$(( ${err[$k]:-0} + e ))
			done
		done
	done
done
printf '%-3s %-6s %7s %9s %7s %6s %8s %8s\n' c what threads req/s p99_ms errors nginx_us resp_us
for c in $CLIENTS; do
	for i in "${!paths[@]}"; do
		for t in "${counts[@]}"; do
			k=$c/${names[$i]}/$t
			printf '%-3s %-6s %7s %9.0f %7.2f %6d %8.2f %8.2f\n' "$c" "${names[$i]}" "$t" \
				"$(median <<<"${rps[$k]}")" "$(median <<<"${p99[$k]}")" "${err[$k]}" \
				"$(median <<<"${nus[$k]}")" "$(median <<<"${rus[$k]}")"
		done
	done
done
echo "(median of $rounds interleaved rounds of ${secs}s; wrk -t2; nginx 1 worker; $(nproc) CPUs; --page-cache 0)"
for k in "${!err[@]}"; do bench_no_errors "${err[$k]}" "$k threads"; done
for t in "${counts[@]}"; do bench_json "$base/$(loc "$t")/tasks/1000"; done
