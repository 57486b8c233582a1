#!/usr/bin/env bash
# Throughput of lmtasks-fcgi behind nginx, next to nginx serving the same bytes as a static
# file, at 16 and 64 clients, in one run and interleaved:
#   a task, an index's page, a status-filtered page (unix socket, nginx/lmtasks.conf's
#   keepalive upstream); the same task and index page over FastCGI/TCP (127.0.0.2,
#   nginx/lmtasks-tcp.conf's upstream); a finished task through nginx/lmtasks-cache.conf;
#   and a constant-reply libfcgi program (the floor).
#   bench/http.sh [SECONDS] [ROUNDS] [CLIENTS...]   (defaults 5, 3, "16 64")
# Loopback only; every wrk run is bounded by its duration; everything started is stopped.
# Fails (exit 1) on any error wrk counts or an answer that is not JSON; speed is printed,
# never asserted.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(16 64)
. "$top/bench/lib.sh"

store=$bench_work/store
bench_store "$store"
uid=1000	# enqueued
done_uid=5	# succeeded: what a cache may keep
index_page="/indexes/movies/tasks?limit=20"
status_page="/tasks?statuses=succeeded&limit=20"
cc -O2 -o "$bench_work/const-fcgi" "$top/bench/const-fcgi.c" $(pkg-config --cflags --libs fcgi)

tcp_port=$((20000 + RANDOM % 20000))
mkdir -p "$bench_work/cache"
split() { printf 'fastcgi_split_path_info ^(/%s)(/.*)$; fastcgi_param PATH_INFO $fastcgi_path_info;' "$1"; }
# The floor, a single-threaded libfcgi loop, would stall on kept connections, so it gets
# a connection per request, as such programs are deployed.
bench_nginx "upstream lmtasks { server unix:$bench_work/fcgi.sock; keepalive 128; }
	upstream lmtasks_tcp { server 127.0.0.2:$tcp_port; keepalive 128; }
	$(sed "s|/var/cache/nginx/lmtasks|$bench_work/cache|" "$top/nginx/lmtasks-cache-zone.conf" | grep -v '^#')" \
	"$(bench_location / lmtasks)
	location /tcp/ { include /etc/nginx/fastcgi_params; $(split tcp) fastcgi_keep_conn on; fastcgi_pass lmtasks_tcp; }
	location /cached/ { include /etc/nginx/fastcgi_params; $(split cached) fastcgi_keep_conn on; fastcgi_pass lmtasks;
		include $top/nginx/lmtasks-cache.conf; }
	location /floor/ { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$bench_work/floor.sock; }"
bench_responder fcgi "$store"
fcgi_pid=$responder_pid
"$fcgi" --db "$store" --listen "127.0.0.2:$tcp_port" >/dev/null 2>>"$bench_work/fcgi.log" &
bench_pids+=($!)
base=http://127.0.0.1:$port
bench_wait "$base/tasks/$uid"
bench_wait "$base/tcp/tasks/$uid"
www=$bench_work/www/static
curl -sf "$base/tasks/$uid" -o "$www/task.json"
curl -sf "$base/tasks/$done_uid" -o "$www/done.json"
curl -sf "$base$index_page" -o "$www/index.json"
curl -sf "$base$status_page" -o "$www/status.json"
spawn-fcgi -n -M 0666 -s "$bench_work/floor.sock" -- "$bench_work/const-fcgi" "$www/task.json" >/dev/null 2>&1 &
bench_pids+=($!)
bench_wait "$base/floor/x"

names=(static-task fcgi-task tcp-task floor static-index fcgi-index tcp-index
	static-status fcgi-status static-done cached-done)
paths=(/static/task.json "/tasks/$uid" "/tcp/tasks/$uid" /floor/x /static/index.json "$index_page"
	"/tcp$index_page" /static/status.json "$status_page" /static/done.json "/cached/tasks/$done_uid")
refs=(static-task static-task static-task static-task static-index static-index static-index
	static-status static-status static-done static-done)
files=(task task task task index index index status status done done)
# Every pair serves the same bytes, or the comparison means nothing.
for i in "${!names[@]}"; do
	cmp -s <(curl -sf "$base${paths[$i]}") "$www/${files[$i]}.json" ||
		{ echo "bench: ${paths[$i]} does not serve the bytes of ${files[$i]}.json" >&2; exit 1; }
done
curl -sf -o /dev/null "$base/cached/tasks/$done_uid"
[ "$(curl -s -o /dev/null -D - "$base/cached/tasks/$done_uid" | tr -d '\r' | grep -ci '^cache-control: max-age')" = 1 ] ||
	{ echo "bench: the finished task is not marked cacheable" >&2; exit 1; }

for p in "/tasks/$uid" "/tasks?limit=20" /floor/x; do bench_json "$base$p"; done

declare -A rps p50 p99 err
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for c in "${clients[@]}"; do
	conns=$c
	for _ in $(seq 1 "$rounds"); do
		for i in "${!names[@]}"; do
			read -r r a b e < <(bench_wrk "$base${paths[$i]}")
			n=$c/${names[$i]}
			rps[$n]="${rps[$n]:-} $r"
			p50[$n]="${p50[$n]:-} $a"
			p99[$n]="${p99[$n]:-} $b"
			err[$n]=$(( ${err[$n]:-0} + e ))
		done
	done
done
# Medians over the rounds; the ratios are against the static file of the same bytes.
for c in "${clients[@]}"; do
	printf '%-3s %-13s %9s %7s %7s %6s %6s %8s\n' c what req/s p50_ms p99_ms errors ratio p99_ratio
	for i in "${!names[@]}"; do
		n=$c/${names[$i]} ref=$c/${refs[$i]}
		awk -v c="$c" -v n="${names[$i]}" -v r="$(median <<<"${rps[$n]}")" -v ref="$(median <<<"${rps[$ref]}")" \
			-v a="$(median <<<"${p50[$n]}")" -v b="$(median <<<"${p99[$n]}")" \
			-v refb="$(median <<<"${p99[$ref]}")" -v e="${err[$n]}" \
			'BEGIN { printf "%-3s %-13s %9.0f %7.2f %7.2f %6d %6.2f %8.2f\n", c, n, r, a, b, e, r / ref, b / refb }'
	done
done
echo "(median of $rounds interleaved rounds of ${secs}s; wrk -t2; nginx 1 worker; lmtasks-fcgi with its default threads behind keepalive 128 upstreams)"
echo "responder private memory: $(bench_private_kib "$fcgi_pid") KiB"
# Any error, or an answer that is no longer JSON after the load, fails the run.
for c in "${clients[@]}"; do
	for n in "${names[@]}"; do bench_no_errors "${err[$c/$n]}" "$c clients, $n"; done
done
for p in "/tasks/$uid" "$index_page" "$status_page" "/tcp/tasks/$uid" "/cached/tasks/$done_uid"; do
	bench_json "$base$p"
done
