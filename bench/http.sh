#!/usr/bin/env bash
# Throughput of lmtasks-fcgi behind nginx, next to nginx serving the same bytes as a static
# file and a minimal constant-reply FastCGI program, measured in one run and interleaved.
#   bench/http.sh [SECONDS] [ROUNDS]      (defaults 5 and 3; wrk, nginx, spawn-fcgi needed)
# Loopback only; every wrk run is bounded by its duration; everything started is stopped.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
rounds=${2:-3}
conns=${BENCH_CONNECTIONS:-64}
build=${BUILD:-$top/build}
lmtasks=$build/lmtasks
fcgi=$build/lmtasks-fcgi
work=$(mktemp -d)
chmod 755 "$work"	# nginx workers run as another user when started by root
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# A store of 2,000 tasks in every status.
"$lmtasks" --db "$work/store" init 2>/dev/null
awk 'BEGIN { for (i = 0; i < 2000; i++) printf "{\"indexUid\":\"%s\",\"type\":\"documentAddition\",\"details\":{\"receivedDocuments\":%d}}\n", i % 2 ? "movies" : "books", i }' |
	"$lmtasks" --db "$work/store" enqueue --batch - >/dev/null
for i in $(seq 1 30); do "$lmtasks" --db "$work/store" claim >/dev/null; done
for i in $(seq 0 9); do "$lmtasks" --db "$work/store" succeed "$i" --details '{"indexedDocuments":1}' >/dev/null; done
uid=1000

cc -O2 -o "$work/const-fcgi" "$top/bench/const-fcgi.c" $(pkg-config --cflags --libs fcgi)

port=$((20000 + RANDOM % 20000))
mkdir -p "$work/www"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/t1; fastcgi_temp_path $work/t2; proxy_temp_path $work/t3;
	uwsgi_temp_path $work/t4; scgi_temp_path $work/t5;
	upstream lmtasks { server unix:$work/fcgi.sock; keepalive 16; }
	server {
		listen 127.0.0.1:$port;
		location /static/ { root $work/www; default_type application/json; }
		# A single-threaded libfcgi loop stalls on kept connections, so the floor
		# gets a connection per request, as such programs are deployed.
		location /floor/ {
			include /etc/nginx/fastcgi_params;
			fastcgi_pass unix:$work/floor.sock;
		}
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_keep_conn on;
			fastcgi_pass lmtasks;
		}
	}
}
CONF
"$fcgi" --db "$work/store" --listen "unix:$work/fcgi.sock" 2>"$work/fcgi.log" &
pids+=($!)
nginx -c "$work/nginx.conf" &
pids+=($!)
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$port/tasks/$uid" -o "$work/task.json" 2>/dev/null && break
	sleep 0.1
done
mkdir -p "$work/www/static"
cp "$work/task.json" "$work/www/static/task.json"
curl -sf "http://127.0.0.1:$port/tasks?limit=20" -o "$work/www/static/page.json"
spawn-fcgi -n -M 0666 -s "$work/floor.sock" -- "$work/const-fcgi" "$work/task.json" >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
# All three serve the same bytes, or the comparison means nothing.
for p in "/tasks/$uid" /floor/x /static/task.json; do
	cmp -s <(curl -sf "http://127.0.0.1:$port$p") "$work/task.json" ||
		{ echo "bench: $p does not serve the task's bytes" >&2; exit 1; }
done

# One wrk run: prints "req/s p50_ms p99_ms errors".
run() {
	wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$1" 2>&1 | awk '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
		/Requests\/sec/ { rps = $2 }
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/Socket errors/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
		/Non-2xx/ { err += $NF }
		END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, err }'
}

declare -A sum_rps sum_p50 sum_p99 sum_err
names=(static-task fcgi-task floor static-page fcgi-page)
paths=(/static/task.json "/tasks/$uid" /floor/x /static/page.json "/tasks?limit=20")
for r in $(seq 1 "$rounds"); do
	for i in "${!names[@]}"; do
		read -r rps p50 p99 err < <(run "${paths[$i]}")
		n=${names[$i]}
		sum_rps[$n]=$(( ${sum_rps[$n]:-0} + rps ))
		sum_p50[$n]=$(awk -v a="${sum_p50[$n]:-0}" -v b="$p50" 'BEGIN { print a + b }')
		sum_p99[$n]=$(awk -v a="${sum_p99[$n]:-0}" -v b="$p99" 'BEGIN { print a + b }')
		sum_err[$n]=$(( ${sum_err[$n]:-0} + err ))
	done
done
printf '%-12s %10s %8s %8s %7s %8s\n' what req/s p50_ms p99_ms errors ratio
for n in "${names[@]}"; do
	ref=static-task
	case $n in *page) ref=static-page ;; esac
	awk -v n="$n" -v r="$rounds" -v rps="${sum_rps[$n]}" -v ref="${sum_rps[$ref]}" \
		-v p50="${sum_p50[$n]}" -v p99="${sum_p99[$n]}" -v err="${sum_err[$n]}" 'BEGIN {
		printf "%-12s %10.0f %8.2f %8.2f %7d %8.2f\n", n, rps / r, p50 / r, p99 / r, err, rps / ref }'
done
echo "($rounds rounds of ${secs}s each, interleaved; wrk -t2 -c$conns; nginx 1 worker; ratio against the static file of the same bytes)"
