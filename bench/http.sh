#!/usr/bin/env bash
# Throughput of lmtasks-fcgi behind nginx, next to nginx serving the same bytes as a static
# file, at 16 and 64 clients, in one run and interleaved:
#   a task, an index's page, a status-filtered page (unix socket, nginx/lmtasks.conf's
#   keepalive upstream), each page also asked with a different from= every request (no
#   two alike in 800, so a cache of pages misses); GET /health, the responder's constant
#   reply (the ceiling of its loop); the same task and index page over FastCGI/TCP
#   (127.0.0.2, nginx/lmtasks-tcp.conf's upstream); a finished task through
#   nginx/lmtasks-cache.conf; and a constant-reply libfcgi program (the floor).
# Beside req/s and latency, the CPU time per request of nginx's worker and of the
# process answering it (user + system, from /proc/PID/stat around each run): steadier
# than req/s on a shared machine.
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

tcp_port=$(bench_free_port)
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
tcp_pid=$!
bench_pids+=($!)
base=http://127.0.0.1:$port
bench_wait "$base/tasks/$uid"
bench_wait "$base/tcp/tasks/$uid"
www=$bench_work/www/static
curl -sf "$base/tasks/$uid" -o "$www/task.json"
curl -sf "$base/tasks/$done_uid" -o "$www/done.json"
curl -sf "$base$index_page" -o "$www/index.json"
curl -sf "$base$status_page" -o "$www/status.json"
curl -sf "$base/health" -o "$www/health.json"
# spawn-fcgi -n execs the program in its own process: $! is the program's PID.
spawn-fcgi -n -M 0666 -s "$bench_work/floor.sock" -- "$bench_work/const-fcgi" "$www/task.json" >/dev/null 2>&1 &
floor_pid=$!
bench_pids+=($!)
bench_wait "$base/floor/x"
ngw=$(bench_nginx_worker)

# Pages that miss: from=1999 down to 1200, a different one every request.  Every such page
# of the index holds 20 four-digit uids whose receivedDocuments have three digits, so each
# is exactly as long as the index page from the top (its static file), other uids; every
# such page of succeeded tasks is the status page itself (uids 29 to 10), byte for byte.
# A wrk script that makes each request costs wrk CPU that a fixed request does not (a
# quarter of the static file's rate at 16 clients on 2 cores), so their reference is the
# static file asked through the same script (nginx ignores the query of a static file).
miss_first=1999 miss_count=800
bench_cycle_lua "$bench_work/index-miss.lua" "$index_page&from=" $miss_first $miss_count
bench_cycle_lua "$bench_work/status-miss.lua" "$status_page&from=" $miss_first $miss_count
bench_cycle_lua "$bench_work/static-index-miss.lua" "/static/index.json?from=" $miss_first $miss_count
bench_cycle_lua "$bench_work/static-status-miss.lua" "/static/status.json?from=" $miss_first $miss_count

names=(static-task fcgi-task tcp-task floor static-health fcgi-health static-index fcgi-index
	tcp-index static-index-miss fcgi-index-miss static-status fcgi-status static-status-miss
	fcgi-status-miss static-done cached-done)
paths=(/static/task.json "/tasks/$uid" "/tcp/tasks/$uid" /floor/x /static/health.json /health
	/static/index.json "$index_page" "/tcp$index_page" "/static/index.json?from=$miss_first"
	"$index_page&from=$miss_first" /static/status.json "$status_page"
	"/static/status.json?from=$miss_first" "$status_page&from=$miss_first" /static/done.json
	"/cached/tasks/$done_uid")
refs=(static-task static-task static-task static-task static-health static-health static-index
	static-index static-index static-index-miss static-index-miss static-status static-status
	static-status-miss static-status-miss static-done static-done)
files=(task task task task health health index index index index index status status status
	status done done)
# The process that answers each (its CPU per request is printed; nginx's worker for all).
pids=("" "$fcgi_pid" "$tcp_pid" "$floor_pid" "" "$fcgi_pid" "" "$fcgi_pid" "$tcp_pid" ""
	"$fcgi_pid" "" "$fcgi_pid" "" "$fcgi_pid" "" "$fcgi_pid")
# The wrk script each is asked through, if any.
lua=("" "" "" "" "" "" "" "" "" static-index-miss index-miss "" "" static-status-miss status-miss
	"" "")
for a in paths refs files pids lua; do
	declare -n arr=$a
	[ ${#arr[@]} = ${#names[@]} ] || { echo "bench: $a has ${#arr[@]} entries, not ${#names[@]}" >&2; exit 1; }
	unset -n arr
done
# Every pair serves the same bytes, or the comparison means nothing.
for i in "${!names[@]}"; do
	cmp -s <(curl -sf "$base${paths[$i]}") "$www/${files[$i]}.json" ||
		{ echo "bench: ${paths[$i]} does not serve the bytes of ${files[$i]}.json" >&2; exit 1; }
done
# ... and every page that misses answers 200 with its static file's length.
for page in index status; do
	pv=${page}_page
	for v in $(seq $((miss_first - miss_count + 1)) $miss_first); do
		printf 'url = "%s"\noutput = "/dev/null"\n' "$base${!pv}&from=$v"
	done > "$bench_work/$page-miss.cfg"
	got=$(curl -s -K "$bench_work/$page-miss.cfg" -w '%{http_code} %{size_download}\n' | sort -u | tr '\n' ' ')
	[ "$got" = "200 $(stat -c %s "$www/$page.json") " ] ||
		{ echo "bench: the $page pages that miss answer $got, not 200 and the size of $page.json" >&2; exit 1; }
done
curl -sf -o /dev/null "$base/cached/tasks/$done_uid"
[ "$(curl -s -o /dev/null -D - "$base/cached/tasks/$done_uid" | tr -d '\r' | grep -ci '^cache-control: max-age')" = 1 ] ||
	{ echo "bench: the finished task is not marked cacheable" >&2; exit 1; }

for p in "/tasks/$uid" "/tasks?limit=20" /floor/x; do bench_json "$base$p"; done

declare -A rps p50 p99 err ngx_us own_us
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Microseconds of CPU per request from two tick counts and the requests served.
per_req() { awk -v t="$(( $2 - $1 ))" -v u="$bench_tick_us" -v n="$3" 'BEGIN { printf "%.2f", n ? t * u / n : 0 }'; }
for c in "${clients[@]}"; do
	conns=$c
	for _ in $(seq 1 "$rounds"); do
		for i in "${!names[@]}"; do
			opts=()
			[ -z "${lua[$i]}" ] || opts=(-s "$bench_work/${lua[$i]}.lua")
			t0=$(bench_ticks "$ngw") o0=$(bench_ticks "${pids[$i]}")
			read -r r a b e k < <(bench_wrk_n "${opts[@]}" "$base${paths[$i]}")
			t1=$(bench_ticks "$ngw") o1=$(bench_ticks "${pids[$i]}")
			n=$c/${names[$i]}
			rps[$n]="${rps[$n]:-} $r"
			p50[$n]="${p50[$n]:-} $a"
			p99[$n]="${p99[$n]:-} $b"
			err[$n]=$(( ${err[$n]:-0} + e ))
			ngx_us[$n]="${ngx_us[$n]:-} $(per_req "$t0" "$t1" "$k")"
			own_us[$n]="${own_us[$n]:-} $(per_req "$o0" "$o1" "$k")"
		done
	done
done
# Medians over the rounds; the ratios are against the static file of the same bytes.
for c in "${clients[@]}"; do
	printf '%-3s %-18s %9s %7s %7s %6s %6s %9s %8s %8s\n' c what req/s p50_ms p99_ms errors ratio p99_ratio \
		nginx_us resp_us
	for i in "${!names[@]}"; do
		n=$c/${names[$i]} ref=$c/${refs[$i]}
		awk -v c="$c" -v n="${names[$i]}" -v r="$(median <<<"${rps[$n]}")" -v ref="$(median <<<"${rps[$ref]}")" \
			-v a="$(median <<<"${p50[$n]}")" -v b="$(median <<<"${p99[$n]}")" \
			-v refb="$(median <<<"${p99[$ref]}")" -v e="${err[$n]}" \
			-v x="$(median <<<"${ngx_us[$n]}")" -v y="$(median <<<"${own_us[$n]}")" \
			'BEGIN { printf "%-3s %-18s %9.0f %7.2f %7.2f %6d %6.2f %9.2f %8.2f %8.2f\n", c, n, r, a, b, e, r / ref, b / refb, x, y }'
	done
done
echo "(median of $rounds interleaved rounds of ${secs}s; wrk -t2; nginx 1 worker; lmtasks-fcgi with its default threads behind keepalive 128 upstreams;"
echo " nginx_us, resp_us: CPU microseconds per request, user + system, of nginx's worker and of the process answering; ${bench_tick_us} us ticks)"
echo "responder private memory: $(bench_private_kib "$fcgi_pid") KiB"
# Any error, or an answer that is no longer JSON after the load, fails the run.
for c in "${clients[@]}"; do
	for n in "${names[@]}"; do bench_no_errors "${err[$c/$n]}" "$c clients, $n"; done
done
for p in "/tasks/$uid" "$index_page" "$status_page" "/tcp/tasks/$uid" "/cached/tasks/$done_uid" /health; do
	bench_json "$base$p"
done
