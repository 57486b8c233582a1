# Shared by the bench/ scripts: a temporary directory, processes stopped by PID at exit,
# one nginx (1 worker) on loopback, and one wrk run reduced to a line of numbers.
# Sourced; expects $top.

bench_work=$(mktemp -d)
chmod 755 "$bench_work"	# nginx workers run as another user when started by root
bench_pids=()
bench_cleanup() {
	for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$bench_work"
}
trap bench_cleanup EXIT

build=${BUILD:-$top/build}
lmtasks=$build/lmtasks
fcgi=$build/lmtasks-fcgi
conns=${BENCH_CONNECTIONS:-64}

# A port no socket uses now (other people's servers share the loopback), below the
# kernel's range for outgoing connections (wrk's and nginx's own would otherwise take it
# between this check and the bind).
bench_free_port() {
	local low p
	read -r low _ < /proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 12000 ] || low=32768
	for _ in $(seq 50); do
		p=$((10000 + RANDOM % (low - 10000)))
		[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] || break
	done
	echo "$p"
}

# Starts nginx on a free loopback port with the given http-context lines and locations
# (with $work substituted by the caller); sets $port.
bench_nginx() {
	local upstreams=$1 locations=$2
	port=$(bench_free_port)
	# As root, nginx's workers run as root too: they may connect to a responder's socket
	# whatever its mode.
	local user=
	[ "$(id -u)" -ne 0 ] || user="user root;"
	cat > "$bench_work/nginx.conf" <<CONF
$user
worker_processes 1;
daemon off;
pid $bench_work/nginx.pid;
error_log $bench_work/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $bench_work/t1; fastcgi_temp_path $bench_work/t2;
	proxy_temp_path $bench_work/t3; uwsgi_temp_path $bench_work/t4; scgi_temp_path $bench_work/t5;
	$upstreams
	server {
		listen 127.0.0.1:$port;
		location /static/ { root $bench_work/www; default_type application/json; }
		$locations
	}
}
CONF
	mkdir -p "$bench_work/www/static"
	nginx -c "$bench_work/nginx.conf" &
	nginx_pid=$!
	bench_pids+=($!)
}

# The PID of the nginx started by bench_nginx's worker (not its cache manager or loader),
# once it answers.
bench_nginx_worker() {
	local p
	for p in $(pgrep -P "$nginx_pid"); do
		case $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null) in
		"nginx: worker process"*) echo "$p"; return 0 ;;
		esac
	done
	echo "bench: no nginx worker under $nginx_pid" >&2
	return 1
}

# CPU time a process has used so far, user and system, all its threads, in clock ticks;
# 0 for no PID.  (Fields 14 and 15 of /proc/PID/stat, counted after the command's name.)
bench_ticks() {
	[ -n "$1" ] || { echo 0; return 0; }
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
bench_tick_us=$((1000000 / $(getconf CLK_TCK)))

# A FastCGI location for an upstream, as nginx/lmtasks.conf recommends; a location other
# than / is a prefix split off as in nginx/lmtasks-location.conf.
bench_location() {
	local split=
	[ "$1" = / ] || split='fastcgi_split_path_info ^(/[a-z]+)(/.*)$; fastcgi_param PATH_INFO $fastcgi_path_info;'
	printf 'location %s { include /etc/nginx/fastcgi_params; %s fastcgi_keep_conn on; fastcgi_pass %s; }\n' \
		"$1" "$split" "$2"
}

# Starts lmtasks-fcgi on $bench_work/NAME.sock for STORE; its PID is in $responder_pid.
# The responder's socket is 0660; nginx's workers run as another user when started by
# root, so in this private temporary directory it is made 0666.
bench_sock=(--socket-mode 0666)
bench_responder() {
	local name=$1 store=$2
	"$fcgi" --db "$store" --listen "unix:$bench_work/$name.sock" "${bench_sock[@]}" \
		>/dev/null 2>>"$bench_work/fcgi.log" &
	responder_pid=$!
	bench_pids+=($!)
}

# Waits until URL answers 200.
bench_wait() {
	for _ in $(seq 100); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.1
	done
	echo "bench: $1 never answered" >&2
	return 1
}

# Fails the benchmark unless URL answers 200 with a JSON body (the speed of errors would
# mean nothing).
bench_json() {
	local body
	body=$(curl -sf --max-time 5 "$1") || { echo "bench: $1 does not answer 200" >&2; exit 1; }
	python3 -c 'import json, sys; json.loads(sys.argv[1])' "$body" 2>/dev/null ||
		{ echo "bench: $1 answers no JSON: ${body:0:200}" >&2; exit 1; }
}

# Fails the benchmark when wrk counted any error (socket errors, non-2xx answers).
bench_no_errors() {
	[ "$1" -eq 0 ] || { echo "bench: $1 errors ($2)" >&2; exit 1; }
}

# One wrk run of $secs seconds: prints "req/s p50_ms p99_ms errors requests"; options
# before the URL go to wrk (-s SCRIPT).
bench_wrk_n() {
	wrk -t2 -c"$conns" -d"${secs}s" --latency "$@" 2>&1 | awk '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
		/ requests in / { n = $1 }
		/Requests\/sec/ { rps = $2 }
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/Socket errors/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
		/Non-2xx/ { err += $NF }
		END { printf "%.0f %.2f %.2f %d %d\n", rps, p50, p99, err, n }'
}

# The same, printing "req/s p50_ms p99_ms errors".
bench_wrk() {
	bench_wrk_n "$@" | cut -d' ' -f1-4
}

# Writes a wrk script to FILE whose requests are PREFIX followed by FIRST, FIRST-1, ...,
# FIRST-COUNT+1, then again: no two requests in COUNT ask the same.  wrk's second thread
# starts half way round, so the two threads do not ask the same at once either.
bench_cycle_lua() {
	local file=$1 prefix=$2 first=$3 count=$4
	cat > "$file" <<LUA
local n = 0
function setup(thread) thread:set("start", n * $((count / 2))); n = n + 1 end
function init(args) i = start end
function request()
	local v = $first - i % $count
	i = i + 1
	return wrk.format(nil, "$prefix" .. v)
end
LUA
}

# Private memory of a process in KiB, less the store's mapped files.
bench_private_kib() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { skip = ($0 ~ /\.mdb$/) }
		/^Private_(Clean|Dirty):/ && !skip { kib += $2 }
		END { print kib + 0 }' "/proc/$1/smaps"
}

# Fills STORE with N tasks through one batch (five indexes, four types).
bench_fill() {
	local store=$1 n=$2
	"$lmtasks" --db "$store" init 2>/dev/null
	awk -v n="$n" 'BEGIN {
		split("movies books songs films docs", idx, " ")
		split("documentAddition settingsUpdate indexCreation documentDeletion", ty, " ")
		for (i = 0; i < n; i++)
			printf "{\"indexUid\":\"%s\",\"type\":\"%s\",\"details\":{\"receivedDocuments\":%d}}\n",
				idx[i % 5 + 1], ty[i % 4 + 1], i % 1000
	}' > "$bench_work/batch.ndjson"
	bench_batch_start=$(date +%s.%N)
	"$lmtasks" --db "$store" enqueue --batch "$bench_work/batch.ndjson" > /dev/null
	bench_batch_end=$(date +%s.%N)
}

# The store the request benchmarks read: 2,000 tasks in five indexes, 40 claimed, 30 of
# them succeeded (a page of succeeded tasks is full and has a next).
bench_store() {
	local store=$1
	bench_fill "$store" 2000
	for _ in $(seq 1 40); do "$lmtasks" --db "$store" claim >/dev/null; done
	for i in $(seq 0 29); do
		"$lmtasks" --db "$store" succeed "$i" --details '{"indexedDocuments":1}' >/dev/null
	done
}
