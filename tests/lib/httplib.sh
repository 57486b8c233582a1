# Helpers for the HTTP suites (cgi.sh, nginx.sh): a real nginx and lmtasks-fcgi, each
# started in the background from a temporary directory and stopped BY PID on exit, plus
# request helpers that keep status, headers and body apart.  Source it:
#
#   . "$top_srcdir/tests/lib/httplib.sh"      # also sources tests/lib/lib.sh (checks, summary)
#
#   fcgi_start SOCK STORE [THREADS] [ARGS...]   # lmtasks-fcgi --listen unix:SOCK; $FCGI_PID
#   http_nginx_start NAME HTTP_CONF SERVER_CONF  # nginx on 127.0.0.1:<free port>; $HTTP_BASE
#   http GET /tasks [CURL_ARGS...]             # $HTTP_STATUS, $HTTP_BODY, http_header NAME
#   cgi GET /tasks/1 [NAME=VALUE...]           # $CGI_STATUS_LINE, $CGI_BODY, cgi_header NAME
#   http_stop PID                              # TERM, wait (2 s), KILL; its children too
#
# Environment (from `make check`): LMTASKS, LMTASKS_FCGI, top_srcdir, top_builddir.
# LMT_KEEP_TMP=1 keeps the temporary directory (configs, logs) for a post-mortem.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# A shim (pyenv) costs ~0.3 s a start and the suites start Python often: take the system's.
if [ -z "${LMT_PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
	LMT_PYTHON=/usr/bin/python3
fi
. "$top_srcdir/tests/lib/lib.sh"

# The binaries, as absolute paths (the suites cd around).
for _v in LMTASKS LMTASKS_FCGI; do
	_p=${!_v}
	case $_p in /*) ;; *) _p=$(cd "$(dirname "$_p")" 2>/dev/null && pwd)/$(basename "$_p") ;; esac
	printf -v "$_v" '%s' "$_p"
	export "${_v?}"
done
unset _v _p
# The suites name their stores; a store from the caller's environment must not leak in.
unset LMTASKS_DB LMTASKS_MAPSIZE

lmt_tmpdir
HTTP_TMP=$LMT_TMP
HTTP_NGINX=${HTTP_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
HTTP_BASE=${HTTP_BASE:-}
HTTP_STATUS=
HTTP_BODY=
HTTP_HEADERS=$HTTP_TMP/http.headers
HTTP_BODY_FILE=$HTTP_TMP/http.body
HTTP_NGINX_PID=
HTTP_NGINX_DIR=
HTTP_PORT=
FCGI_PID=
FCGI_LOG=
SERVE_PID=

# ---- what a suite needs before it starts ----

# http_need_binaries NAME: ends the suite NAME (exit 99, a hard error) unless $LMTASKS and
# $LMTASKS_FCGI are programs.
http_need_binaries() {
	local b
	for b in "$LMTASKS" "$LMTASKS_FCGI"; do
		[ -x "$b" ] || { echo "$1: no binary at $b (set LMTASKS and LMTASKS_FCGI)" >&2; exit 99; }
	done
}

# http_need_nginx: skips the suite (fails it under CI) without nginx, its stock
# fastcgi_params (then in $PARAMS), curl or ss.
http_need_nginx() {
	[ -x "$HTTP_NGINX" ] || lmt_missing_all nginx "no nginx (apt-get install nginx)"
	lmt_have curl || lmt_missing_all curl "no curl"
	lmt_have ss || lmt_missing_all ss "no ss (iproute2)"
	PARAMS=/etc/nginx/fastcgi_params
	[ -f "$PARAMS" ] || lmt_missing_all nginx "no $PARAMS"
}

# http_apache_run_user: as root, the user Apache's workers run as ($RUN_USER, its group
# $RUN_GROUP; Apache refuses to serve as root), or the suite is skipped; not root: both
# empty, Apache runs as this user.
http_apache_run_user() {
	local u
	RUN_USER="" RUN_GROUP=""
	[ "$(id -u)" -eq 0 ] || return 0
	for u in www-data apache daemon nobody; do
		id -u "$u" >/dev/null 2>&1 && { RUN_USER=$u; break; }
	done
	[ -n "$RUN_USER" ] || lmt_skip_all "running as root and no unprivileged user for Apache"
	RUN_GROUP=$(id -gn "$RUN_USER")
}

# ---- processes ----

# http_children PID: "CHILD:STARTTIME" for each process whose parent is PID, one a line
# (read from /proc: exact).  The start time tells a PID reused since from the child.
# Every process of the machine is looked at: read by the shell, not by one cat each.
http_children() {
	local f s
	for f in /proc/[0-9]*/stat; do
		read -r s 2>/dev/null <"$f" || continue
		s=${s##*) }	# after the name, which may hold spaces: "STATE PPID ..."
		set -- "$1" $s
		[ "$3" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}:${21}"; }
	done
}

# http__stat PID N: field N of /proc/PID/stat (N >= 3, counted as in proc(5)).
http__stat() {
	local s
	read -r s 2>/dev/null <"/proc/$1/stat" || return 1
	s=${s##*) }
	set -- "$2" $s
	local n=$(( $1 - 1 ))
	echo "${!n}"
}

# http_alive PID: true while PID runs (and is no zombie).  Polled often: no process started.
http_alive() {
	local s
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
	read -r s 2>/dev/null <"/proc/$1/stat" || return 0
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

# http_crafted SOCK PID LOG WHO: the five crafted FastCGI records of tests/lib/fcgi.py
# (crafted KIND), sent one after another by one Python (a server that died at one would
# refuse the next connection, and its "error" line would say so).  Each must close its
# connection while PID, WHO ("the responder"), lives; LOG must then name the malformed
# parameters and those past the limit.  hostile.sh and writer.sh aim it at their servers.
http_crafted() {
	local sock=$1 pid=$2 log=$3 who=$4 kinds=(overflow huge past_end version many)
	local args=() outs=() i out alive=0
	for i in "${kinds[@]}"; do args+=(-- crafted "$sock" "$i"); done
	mapfile -t outs < <("$LMT_PYTHON" "$top_srcdir/tests/lib/fcgi.py" repeat 0 0 "${args[@]:1}" 2>&1)
	http_alive "$pid" && alive=1
	for i in "${!kinds[@]}"; do
		out=${outs[i]:-}
		if [[ $out == closed* ]] && [ "$alive" = 1 ]; then
			ok "${kinds[i]}: the connection is closed ($out s), $who lives"
		else
			fail "${kinds[i]}: the connection is closed, $who lives" "$out" "$(tail -3 "$log")"
		fi
	done
	grep -q 'closed a FastCGI connection: malformed request parameters' "$log" &&
		ok "the log names the malformed parameters" ||
		fail "the log names the malformed parameters" "$(tail -5 "$log")"
	grep -q 'closed a FastCGI connection: request parameters larger than the limit' "$log" &&
		ok "the log names parameters past the limit" ||
		fail "the log names parameters past the limit" "$(tail -5 "$log")"
}

# http_wait_gone SECONDS PID: true once PID has exited (reaping it when it is our child).
http_wait_gone() {
	local end i=0
	end=$(( $1 * 20 ))
	while http_alive "$2"; do
		i=$((i + 1))
		[ "$i" -gt "$end" ] && return 1
		lmt_sleep 0.05
	done
	wait "$2" 2>/dev/null
	return 0
}

# http_stop PID [SIGNAL]: SIGNAL (TERM) to PID, up to 2 s to go, then KILL; then KILL to
# the children it had (nginx workers) that are still there, by PID.  Only a PID that is
# a child of this shell is signalled, so a PID reused since is never touched.  True when
# PID is gone.
http_stop() {
	local pid=$1 sig=${2:-TERM} kids k
	[ -n "$pid" ] || return 0
	if http_alive "$pid" && [ "$(http__stat "$pid" 4)" = "$$" ]; then
		kids=$(http_children "$pid")
		kill -"$sig" "$pid" 2>/dev/null
		http_wait_gone 2 "$pid" || { kill -KILL "$pid" 2>/dev/null; http_wait_gone 1 "$pid"; }
		for k in $kids; do
			[ "$(http__stat "${k%%:*}" 22)" = "${k#*:}" ] || continue
			http_wait_gone 1 "${k%%:*}" || kill -KILL "${k%%:*}" 2>/dev/null
		done
	fi
	wait "$pid" 2>/dev/null
	! http_alive "$pid"
}

# ---- the responder ----

# http_sock_ready PATH: something accepts connections on the unix socket PATH.
http_sock_ready() {
	[ -S "$1" ] && "$LMT_PYTHON" -c 'import socket,sys
s = socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(sys.argv[1]); s.close()' "$1" \
		2>/dev/null
}

# fcgi_start SOCK STORE [THREADS] [ARGS...]: starts lmtasks-fcgi --listen unix:SOCK --db STORE
# (STORE "-": no --db) in the background (stderr to $FCGI_LOG) and waits until the socket
# accepts.  Sets FCGI_PID.  Returns 1 (and says why on stderr) when it did not come up in
# 30 s (a hang guard: the loop ends as soon as it is up).
fcgi_start() {
	local sock=$1 store=$2 threads=${3:-2} db=()
	shift 2
	[ $# -gt 0 ] && shift
	[ "$store" = - ] || db=(--db "$store")
	FCGI_LOG=$HTTP_TMP/fcgi.$(basename "$sock").log
	"$LMTASKS_FCGI" --listen "unix:$sock" --threads "$threads" "${db[@]}" "$@" \
		</dev/null >>"$FCGI_LOG" 2>&1 &
	FCGI_PID=$!
	lmt_on_exit "http_stop $FCGI_PID"
	local i
	for ((i = 0; i < 600; i++)); do
		http_sock_ready "$sock" && return 0
		http_alive "$FCGI_PID" || break
		lmt_sleep 0.05
	done
	echo "fcgi_start: lmtasks-fcgi did not come up on $sock; its log:" >&2
	sed 's/^/  /' "$FCGI_LOG" >&2
	return 1
}

# ---- nginx ----

# http_port_free PORT: nothing listens on 127.0.0.1:PORT (TCP).
http_port_free() {
	[ -z "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]
}

# http_random_port: a port that is free right now, from 20000 up to the kernel's ephemeral
# range (32768 on Linux): a port in that range may be the local end of some client's
# connection, which no listing of listeners shows and which makes bind() fail.
http_random_port() {
	local p i lo=32768 span
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	span=$(( lo - 20000 ))
	[ "$span" -ge 1000 ] || span=41000	# a kernel that hands out low ports: take any
	for ((i = 0; i < 50; i++)); do
		p=$(( 20000 + (RANDOM * 32768 + RANDOM) % span ))
		http_port_free "$p" && { echo "$p"; return 0; }
	done
	return 1
}

# http_nginx_config DIR PORT HTTP_CONF SERVER_CONF: writes DIR/nginx.conf.  "@PORT@" in
# HTTP_CONF becomes PORT; SERVER_CONF "-": no server block of ours (HTTP_CONF has one).
http_nginx_config() {
	local dir=$1 port=$2 user="" server=""
	[ "$(id -u)" -eq 0 ] && user="user root;"
	if [ "$4" != - ]; then
		server="
	server {
		listen 127.0.0.1:$port;
		server_name localhost;
		# Answered by nginx itself: tells http_nginx_start that nginx is up.
		location = /__httplib_ready { access_log off; return 204; }
$4
	}"
	fi
	cat >"$dir/nginx.conf" <<EOF
# Generated by tests/lib/httplib.sh for one test run.
$user
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 1024; }
http {
	access_log $dir/access.log;
	client_body_temp_path $dir/tmp/client_body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	default_type application/octet-stream;
${3//@PORT@/$port}
$server
}
EOF
}

# http_nginx_start NAME HTTP_CONF SERVER_CONF: a real nginx from its own config in
# $HTTP_TMP/nginx-NAME, on 127.0.0.1 and a free random port (another one is tried when the
# bind fails).  HTTP_CONF goes in the http block (upstreams), SERVER_CONF in the server
# block (locations); with SERVER_CONF "-", HTTP_CONF brings its own server, listening on
# 127.0.0.1:@PORT@.  The stock fastcgi_params is copied next to the config, so that
# `include fastcgi_params;` works as in /etc/nginx.  Sets HTTP_PORT, HTTP_BASE,
# HTTP_NGINX_PID, HTTP_NGINX_DIR; stopped on exit.  Returns 1 (saying why) when nginx
# cannot be started.
http_nginx_start() {
	local name=$1 dir=$HTTP_TMP/nginx-$1 port try i pid code
	mkdir -p "$dir/tmp"
	[ -f /etc/nginx/fastcgi_params ] && cp /etc/nginx/fastcgi_params "$dir/"
	for ((try = 0; try < 5; try++)); do
		port=$(http_random_port) || break
		http_nginx_config "$dir" "$port" "$2" "$3"
		"$HTTP_NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
			</dev/null >>"$dir/stdout.log" 2>&1 &
		pid=$!
		lmt_on_exit "http_stop $pid QUIT"
		# Up to 30 s (it ends as soon as nginx answers).
		for ((i = 0; i < 600; i++)); do
			if ! http_alive "$pid"; then
				break
			fi
			if grep -q 'bind() to .* failed' "$dir/error.log" 2>/dev/null; then
				http_stop "$pid"	# the port was taken since we looked: try another
				: >"$dir/error.log"
				break
			fi
			if ! http_port_free "$port"; then
				# Any answer will do when the server is not ours (it routes everything).
				code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
					"http://127.0.0.1:$port/__httplib_ready" 2>/dev/null)
				if [ "$code" = 204 ] || { [ "$3" = - ] && [ "${code:-000}" != 000 ]; }; then
					HTTP_PORT=$port
					HTTP_BASE=http://127.0.0.1:$port
					HTTP_NGINX_PID=$pid
					HTTP_NGINX_DIR=$dir
					return 0
				fi
			fi
			lmt_sleep 0.05
		done
		http_stop "$pid"
	done
	echo "http_nginx_start: nginx $name did not start; $dir/error.log says:" >&2
	tail -n 20 "$dir/error.log" "$dir/stdout.log" 2>/dev/null | sed 's/^/  /' >&2
	return 1
}

# ---- requests ----

# http METHOD PATH [CURL_ARGS...]: one request to $HTTP_BASE$PATH.  Sets HTTP_STATUS (000
# when there was no answer), HTTP_BODY; the raw headers are in $HTTP_HEADERS, the raw
# body in $HTTP_BODY_FILE.  Never fails itself.
http() {
	local method=$1 path=$2 m=()
	shift 2
	case $method in
	GET) ;;
	HEAD) m=(--head) ;;
	*) m=(-X "$method") ;;
	esac
	: >"$HTTP_HEADERS"
	: >"$HTTP_BODY_FILE"
	HTTP_STATUS=$(curl -s --max-time 10 "${m[@]}" -D "$HTTP_HEADERS" -o "$HTTP_BODY_FILE" \
		-w '%{http_code}' "$@" "$HTTP_BASE$path" 2>/dev/null) || true
	[ -n "$HTTP_STATUS" ] || HTTP_STATUS=000
	# With --head, curl writes the headers where the body would go; a HEAD has no body.
	[ "$method" = HEAD ] && : >"$HTTP_BODY_FILE"
	HTTP_BODY=$(<"$HTTP_BODY_FILE")
	return 0
}

# http_header NAME: the value of the last response's header NAME (case-insensitive), or
# nothing.  Looks at the last header block (after any 100 Continue).
http_header() {
	http__header "$1" "$HTTP_HEADERS"
}

# (In the shell, not tr and awk: the suites ask for headers thousands of times.)
http__header() {
	local want line name v="" found=""
	want=${1,,}
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line//$'\r'/}
		case $line in HTTP/*) v="" found="" ;; esac
		[[ $line == *:* ]] || continue
		name=${line%%:*}
		if [ -z "$found" ] && [ "${name,,}" = "$want" ]; then
			v=${line#*:}
			v=${v#"${v%%[!$' \t']*}"}
			found=1
		fi
	done <"$2"
	[ -n "$found" ] && printf '%s\n' "$v"
	return 0
}

# http_headers_load [FILE]: every header of the last response in FILE (default
# $HTTP_HEADERS) into the associative array HTTP_HDR, keyed by the lower-case name, as
# http_header answers them (the last response's, the first of a repeated name): where a
# check reads several headers, one pass in the shell, and no $(...) subshell for each.
declare -A HTTP_HDR=()
http_headers_load() {
	local line name v
	HTTP_HDR=()
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line//$'\r'/}
		case $line in HTTP/*) HTTP_HDR=() ;; esac
		[[ $line == *:* ]] || continue
		name=${line%%:*}
		name=${name,,}
		[ -n "${HTTP_HDR[$name]+set}" ] && continue
		v=${line#*:}
		HTTP_HDR[$name]=${v#"${v%%[!$' \t']*}"}
	done <"${1:-$HTTP_HEADERS}"
	return 0
}

# http_file_bytes FILE: REPLY is FILE's size in bytes, read by the shell (no wc); a file
# with a NUL byte, which the shell cannot hold, is measured by wc -c.
http_file_bytes() {
	local LC_ALL=C b=
	if IFS= read -r -d '' b <"$1"; then
		REPLY=$(wc -c <"$1")
		REPLY=${REPLY//[!0-9]/}
	else
		REPLY=${#b}
	fi
}

# http_status_line: the status line of the last response, without the CR.
http_status_line() {
	tr -d '\r' <"$HTTP_HEADERS" | grep '^HTTP/' | tail -n 1
}

# cgi METHOD URI [NAME=VALUE...]: runs $LMTASKS_FCGI as a CGI program in a clean
# environment (REQUEST_METHOD, REQUEST_URI=URI, QUERY_STRING from URI, then the NAME=VALUE
# overrides; NAME= with nothing unsets it) with standard input from /dev/null.  Sets
# CGI_RC, CGI_STATUS_LINE (the first line, no CR), CGI_CODE (3 digits), CGI_BODY,
# CGI_STDERR; raw output in $CGI_OUT, headers in $CGI_HEADERS, body in $CGI_BODY_FILE.
# The responder gets --db "$CGI_DB" (when set) and "${CGI_ARGS[@]}".
CGI_OUT=$HTTP_TMP/cgi.out
CGI_HEADERS=$HTTP_TMP/cgi.headers
CGI_BODY_FILE=$HTTP_TMP/cgi.body
CGI_ERR=$HTTP_TMP/cgi.err
CGI_DB=${CGI_DB:-}	# passed as --db when set
CGI_ARGS=()		# more arguments for the responder
cgi() {
	local method=$1 uri=$2 qs="" a
	local -a envs
	shift 2
	case $uri in *\?*) qs=${uri#*\?} ;; esac
	envs=(PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1
		REQUEST_METHOD="$method" REQUEST_URI="$uri" QUERY_STRING="$qs")
	local -a unset_args=()
	for a in "$@"; do
		if [[ $a == *= ]]; then
			unset_args+=(-u "${a%=}")
		else
			envs+=("$a")
		fi
	done
	local -a db=()
	[ -n "$CGI_DB" ] && db=(--db "$CGI_DB")
	db+=("${CGI_ARGS[@]}")
	# NAME= unsets NAME: it is left out of the clean environment (env -i) altogether.
	if [ ${#unset_args[@]} -gt 0 ]; then
		local -a kept=()
		for a in "${envs[@]}"; do
			case " ${unset_args[*]} " in *" ${a%%=*} "*) ;; *) kept+=("$a") ;; esac
		done
		envs=("${kept[@]}")
	fi
	lmt_guard 10 env -i "${envs[@]}" "$LMTASKS_FCGI" "${db[@]}" \
		</dev/null >"$CGI_OUT" 2>"$CGI_ERR"
	CGI_RC=$?
	# Headers: up to and including the first empty (CR LF) line; the body: the rest, as is.
	# The header lines are read by the shell (this runs for every CGI request of the
	# suites); only the body, which may hold anything, is cut out by tail.
	# (As sed's 1,/^\r\{0,1\}$/: the first line never ends them.)
	local line hl=0 first=1 eoh=""
	CGI_STATUS_LINE=""
	{
		while IFS= read -r line; do
			printf '%s\n' "$line" >&3
			lmt__bytes "$line"
			hl=$((hl + REPLY + 1))
			if [ -n "$first" ]; then
				CGI_STATUS_LINE=${line//$'\r'/}
				first=""
			elif [ "$line" = "" ] || [ "$line" = $'\r' ]; then
				eoh=1
				break
			fi
		done
		if [ -z "$eoh" ] && [ -n "$line" ]; then
			printf '%s' "$line" >&3
			[ -n "$first" ] && CGI_STATUS_LINE=${line//$'\r'/}
		fi
	} <"$CGI_OUT" 3>"$CGI_HEADERS"
	if [ -n "$eoh" ]; then
		tail -c +"$((hl + 1))" "$CGI_OUT" >"$CGI_BODY_FILE"
	else
		: >"$CGI_BODY_FILE"
	fi
	CGI_CODE=""
	[[ $CGI_STATUS_LINE =~ ^Status:\ ([0-9][0-9][0-9]) ]] && CGI_CODE=${BASH_REMATCH[1]}
	CGI_BODY=$(<"$CGI_BODY_FILE")
	CGI_STDERR=$(<"$CGI_ERR")
	return 0
}

# lmt__bytes STRING: REPLY is the length of STRING in bytes.
lmt__bytes() {
	local LC_ALL=C
	REPLY=${#1}
}

# cgi_header NAME: a header of the last CGI answer (case-insensitive), or nothing.
cgi_header() {
	http__header "$1" "$CGI_HEADERS"
}

# http_json_ok FILE: FILE holds one complete JSON value (and nothing else), in UTF-8.
# (json_get reads the file so and parses it, through the suite's one Python.)
http_json_ok() {
	json_get "$1" True >/dev/null 2>&1
}

# http_load BASE SECONDS CLIENTS REQUESTS PATH...: CLIENTS threads, each with one kept-alive
# HTTP/1.1 connection (reopened when the server closes it), send REQUESTS GETs each (at
# most SECONDS in all), cycling through PATH... ("{uid:N}" in a path is replaced by a
# random uid from 0 to N).  Every answer must be 200 (or 404 task_not_found for a task
# path), with Content-Type application/json, a body as long as its Content-Length, and
# valid JSON that fits the route.  Prints "requests=N bad=M" and up to 5 "# ..." lines
# about bad answers; exits 1 when something was bad or the time ran out before the end.
http_load() {
	"$LMT_PYTHON" - "$@" <<'EOF'
import http.client, json, random, sys, threading, time, urllib.parse
base, seconds, clients, per = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
paths = sys.argv[5:]
u = urllib.parse.urlsplit(base)
deadline = time.monotonic() + seconds
lock = threading.Lock()
done = [0]
bad = []
unfinished = [0]

def check(path, status, headers, body):
    ctype = headers.get("Content-Type", "")
    if ctype != "application/json":
        return "Content-Type %r" % ctype
    cl = headers.get("Content-Length")
    if cl is None or int(cl) != len(body):
        return "Content-Length %r for a body of %d bytes" % (cl, len(body))
    try:
        d = json.loads(body)
    except ValueError as e:
        return "not JSON (%s): %.120r" % (e, body)
    route = path.split("?")[0].rstrip("/")
    if route.endswith("/tasks"):
        if status != 200:
            return "status %d" % status
        if list(d) != ["results", "total", "limit", "from", "next"]:
            return "envelope keys %r" % list(d)
        uids = [t["uid"] for t in d["results"]]
        if uids != sorted(uids, reverse=("reverse=true" not in path)) or len(set(uids)) != len(uids):
            return "results out of order: %r" % uids
        if len(uids) > d["limit"] or d["total"] < len(uids):
            return "page of %d, limit %r, total %r" % (len(uids), d["limit"], d["total"])
        return None
    if route == "/health":
        return None if status == 200 and d == {"status": "available"} else "health %d %r" % (status, d)
    # A task.
    if status == 200:
        want = int(route.rsplit("/", 1)[1])
        if d.get("uid") != want or "status" not in d or "enqueuedAt" not in d:
            return "task %r for uid %d" % (body[:120], want)
        return None
    if status == 404 and d.get("code") == "task_not_found":
        return None
    return "status %d: %.160r" % (status, body)

def client(k):
    conn = None
    rnd = random.Random(k)
    for i in range(per):
        if time.monotonic() > deadline:
            with lock:
                unfinished[0] += per - i
            break
        p = paths[(k + i) % len(paths)]
        if "{uid:" in p:
            a = p.index("{uid:")
            b = p.index("}", a)
            p = p[:a] + str(rnd.randint(0, int(p[a + 5:b]))) + p[b + 1:]
        for attempt in (0, 1):
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            try:
                conn.request("GET", (u.path.rstrip("/") or "") + p)
                r = conn.getresponse()
                body = r.read()
                status, headers = r.status, r.headers
                if r.will_close:
                    conn.close()
                    conn = None
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                # A kept-alive connection that nginx closed between two requests: reopen
                # once; a second failure is a failure.
                conn.close()
                conn = None
                if attempt:
                    status, headers, body = 0, {}, repr(e).encode()
            except Exception as e:
                conn.close()
                conn = None
                status, headers, body = 0, {}, repr(e).encode()
                break
        why = check(p, status, headers, body) if status else "no answer: %s" % body.decode()
        with lock:
            done[0] += 1
            if why:
                bad.append("%s -> %s" % (p, why))
    if conn:
        conn.close()

ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("requests=%d bad=%d unfinished=%d" % (done[0], len(bad), unfinished[0]))
for b in bad[:5]:
    print("# " + b)
sys.exit(1 if bad or unfinished[0] else 0)
EOF
}

# ---- what the HTTP suites share: their store and the error bodies they expect ----

L() { "$LMTASKS" --db "$S" "$@"; }
section() { echo "# --- $*"; }

# http_demo_store NAME [INIT_ARGS...]: makes the store $S with every status, two indexes
# and the store's own task, or ends the suite NAME:
#   0 movies documentAddition  succeeded (details amended)
#   1 books  indexCreation     failed
#   2 movies settingsUpdate    canceled by 3
#   3 null   taskCancelation   succeeded
#   4 books  documentAddition  enqueued
http_demo_store() {
	local name=$1
	shift
	{
		L init "$@" &&
		L enqueue movies documentAddition --details '{"receivedDocuments":3}' &&
		L enqueue books indexCreation &&
		L enqueue movies settingsUpdate --details '{"rankingRules":["typo","words"]}' &&
		L claim --index movies &&
		L succeed 0 --details '{"indexedDocuments":3}' &&
		L start 1 &&
		L fail 1 --code index_already_exists --message 'Index `books` already exists.' \
			--type invalid_request &&
		L cancel 2 &&
		L enqueue books documentAddition --details '{"receivedDocuments":1}'
	} >"$HTTP_TMP/setup.log" 2>&1 || {
		echo "$name: cannot build the store:" >&2
		cat "$HTTP_TMP/setup.log" >&2
		exit 99
	}
}

# ---- scripts/serve.sh, the quick start ----

# http_serve_start DIR OUT [NAME=VALUE...]: starts DIR/scripts/serve.sh in the background
# on a free port ($PORT), with the variables given in its environment, its output in OUT;
# sets $SERVE_PID.  http_serve_ready waits for it.
http_serve_start() {
	local dir=$1 out=$2
	shift 2
	PORT=$(http_random_port) || return 1
	(cd "$dir" && exec env LMTASKS_PORT="$PORT" "$@" ./scripts/serve.sh) </dev/null >"$out" 2>&1 &
	SERVE_PID=$!
}

# http_serve_ready OUT SECONDS: true once serve.sh says in OUT that it is ready, false when
# it exits first or SECONDS pass.
http_serve_ready() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		grep -q 'The Meilisearch tasks API' "$1" 2>/dev/null && return 0
		http_alive "$SERVE_PID" || return 1
		sleep 0.2
	done
	return 1
}

# http_serve_stop SECONDS: SIGTERM to serve.sh, which stops nginx and the responder by PID
# (up to 3 s each); SIGKILL after SECONDS.
http_serve_stop() {
	[ -n "$SERVE_PID" ] || return 0
	http_alive "$SERVE_PID" && kill -TERM "$SERVE_PID" 2>/dev/null
	http_wait_gone "$1" "$SERVE_PID" || http_stop "$SERVE_PID" KILL
	SERVE_PID=
}

# errbody CODE MESSAGE [TYPE]: the error body the API must give, byte for byte.
errbody() {
	printf '{"message":"%s","code":"%s","type":"%s","link":"https://docs.meilisearch.com/errors#%s"}' \
		"$2" "$1" "${3:-invalid_request}" "$1"
}

# http_stream_watch LABEL UID: GET $HTTP_BASE/tasks/stream?uids=UID through a web server,
# with the responder sending `: keep-alive` every LMTASKS_STREAM_KEEPALIVE_MS (under a
# second): the current state comes, a keep-alive comment passes, `lmtasks start` arrives
# as an event while the stream is still open (so nothing buffers it on the way: a buffer
# would hold it until the stream ends), `lmtasks succeed` too, and the stream ends by
# itself.  UID must be enqueued.  The 30 s bounds (and curl's 120 s) are hang guards: the
# events come in milliseconds, and 30 s holds on a machine at a fifth of its speed.
http_stream_watch() {
	local label=$1 uid=$2 out=$HTTP_TMP/watch.$2 pid rc
	curl -sN --max-time 120 -o "$out" "$HTTP_BASE/tasks/stream?uids=$uid" &
	pid=$!
	lmt_bg_track $pid
	assert_soon "$label: the current state arrives" 30 grep -q '"status":"enqueued"' "$out"
	assert_soon "$label: the keep-alive comment passes" 30 grep -q '^: keep-alive' "$out"
	L start "$uid" >/dev/null
	assert_soon "$label: 'lmtasks start' arrives as an event, the stream still open" 30 \
	    grep -q '"status":"processing"' "$out"
	run kill -0 $pid
	assert_eq "$label: ... (curl still runs)" 0 "$LMT_RC"
	L succeed "$uid" >/dev/null
	assert_soon "$label: 'lmtasks succeed' arrives as an event" 30 grep -q '"status":"succeeded"' "$out"
	lmt_wait_pid 30 $pid
	rc=$?
	assert_eq "$label: the stream then ends by itself (curl exits 0)" 0 "$rc"
	assert_eq "$label: the events, in order" "enqueued processing succeeded" \
	    "$(sed -n 's/^data: .*"status":"\([a-z]*\)".*/\1/p' "$out" | tr '\n' ' ' | sed 's/ $//')"
}
