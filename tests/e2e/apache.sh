#!/usr/bin/env bash
# lmtasks-fcgi behind a real Apache httpd 2.4 (SPEC §2, §4), end to end, with the
# configurations shipped in apache/ used as they are (only paths, ports and names moved):
#
#   (a) mod_proxy_fcgi to `lmtasks-fcgi --listen unix:...`  apache/lmtasks-proxy-fcgi.conf
#       at / and under /api/ (its commented variant), the Authorization header passed by
#       CGIPassAuth (and without it: 401), or by its SetEnvIf alternative; and
#       apache/lmtasks-conf.conf (a2enconf lmtasks) under /lmtasks/; GET /tasks/stream
#       through its flushpackets=on ProxyPass: events at once, keep-alive, the end
#   (b) plain CGI through .htaccess                           apache/htaccess
#       at / and under /api/, AllowOverride as a shared host grants it, and the suEXEC
#       wrapper script of apache/README
#   (c) mod_fcgid starting the responder itself               apache/lmtasks-fcgid.conf
#       at / and under /api/ (its commented ScriptAlias), when mod_fcgid is installed
#
# each without a key (the task routes, errors, 405, HEAD) and with a master key (401, 403,
# the master key, an API key restricted to one index).  Bodies must be the bytes that
# `lmtasks get` / `lmtasks list` print.  One Apache, one virtual host per case, each on its
# own free port of 127.0.0.1, all from a configuration in a temporary directory; Apache
# and the responders are stopped by PID at the end.  Apache needs a user other than root
# for its workers: as root the suite runs them as www-data (else nobody) and makes the
# store, the key and the programs readable by that user's group.
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure, 77 when
# Apache is not installed.  Takes a few seconds.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/apache.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries apache.sh

APACHE=${LMT_APACHE:-}
if [ -z "$APACHE" ]; then
	for a in /usr/sbin/apache2 /usr/sbin/httpd "$(command -v apache2 2>/dev/null)" \
	    "$(command -v httpd 2>/dev/null)"; do
		[ -n "$a" ] && [ -x "$a" ] && { APACHE=$a; break; }
	done
fi
[ -n "$APACHE" ] && [ -x "$APACHE" ] ||
	lmt_missing_all apache2 "no Apache httpd (apt-get install apache2 libapache2-mod-fcgid)"
lmt_have curl || lmt_missing_all curl "no curl"
lmt_have ss || lmt_missing_all ss "no ss (iproute2)"
MODDIR=${LMT_APACHE_MODULES:-}
if [ -z "$MODDIR" ]; then
	for d in /usr/lib/apache2/modules /usr/lib64/httpd/modules /usr/lib/httpd/modules \
	    /usr/libexec/apache2 /usr/local/apache2/modules; do
		[ -f "$d/mod_proxy.so" ] && { MODDIR=$d; break; }
	done
fi
[ -n "$MODDIR" ] || lmt_missing_all apache2 "no Apache modules directory (mod_proxy.so) found"
AP=$top_srcdir/apache
for f in lmtasks-proxy-fcgi.conf lmtasks-conf.conf lmtasks-fcgid.conf htaccess README; do
	[ -f "$AP/$f" ] || { echo "apache.sh: $AP/$f is missing" >&2; exit 99; }
done

T=$HTTP_TMP
A=$T/apache		# ServerRoot: the configuration, logs/, run/
S=$T/home/store		# the store, outside every document root
KEYFILE=$T/home/master.key
START=$(now)

# ---- who Apache's workers run as ----
# Apache refuses to serve requests as root: as root, its workers (and the CGI and
# mod_fcgid programs they start) run as RUN_USER, which must reach every file here.
http_apache_run_user
# share PATH: RUN_GROUP may read PATH (and traverse it, for a directory); no-op unless root.
share() {
	[ -n "$RUN_GROUP" ] || return 0
	chgrp "$RUN_GROUP" "$@" && chmod g+rX "$@"
}

# ---- the store, the keys, the programs ----
chmod 711 "$T"
mkdir -p "$A/logs" "$A/run" "$A/sites" "$T/home" "$T/sbin"
chmod 750 "$T/home"
share "$T/home"
init_args=()
[ -n "$RUN_GROUP" ] && init_args=(--group "$RUN_GROUP")
http_demo_store apache.sh "${init_args[@]}"
#   0 movies documentAddition succeeded      1 books indexCreation failed
#   2 movies settingsUpdate canceled by 3    3 null taskCancelation succeeded
#   4 books documentAddition enqueued
MASTER=apache-suite-master-key-0123456789abcdef
printf '%s\n' "$MASTER" >"$KEYFILE"
chmod 600 "$KEYFILE"
share "$KEYFILE"
MOVIES_KEY=$(L key create --indexes movies 2>"$T/key.err" | json_get - 'd["key"]' 2>>"$T/key.err")
[ -n "$MOVIES_KEY" ] || { echo "apache.sh: lmtasks key create failed:" >&2; cat "$T/key.err" >&2; exit 99; }
# The programs Apache runs, where RUN_USER can execute them (a copy: the build tree may
# not be reachable), the way they would be installed.
install_prog() { cp "$LMTASKS_FCGI" "$1" && chmod 755 "$1"; }
install_prog "$T/sbin/lmtasks-fcgi"
install_prog "$T/home/lmtasks-fcgi"
share "$T/home/lmtasks-fcgi"

# ---- expected answers ----
# cli_body CMD...: what `lmtasks CMD...` prints, its trailing newline dropped.
cli_body() { L "$@" 2>/dev/null | head -c -1; }
GET0=$(cli_body get 0)
GET1=$(cli_body get 1)
LIST_MOVIES=$(cli_body list --indexUids movies)
LIST_FILTER=$(cli_body list --statuses succeeded,failed --limit 1)
LIST_BOOKS_REV=$(cli_body list --indexUids books --reverse)
LIST_2=$(cli_body list --limit 2)
E401=$(errbody missing_authorization_header \
	'The Authorization header is missing. It must use the bearer authorization method.' auth)
E403=$(errbody invalid_api_key 'The provided API key is invalid.' auth)
for v in GET0 GET1 LIST_MOVIES LIST_FILTER LIST_BOOKS_REV LIST_2; do
	[ -n "${!v}" ] || { echo "apache.sh: lmtasks gave no $v" >&2; exit 99; }
done

# ---- checks ----
FRAMING=""	# how Apache framed the bodies, for the report line of each approach

# reply NAME CODE [BODY]: the last http answer has status CODE, Content-Type
# application/json, a body framed either by a Content-Length equal to its size or by
# chunked transfer coding, and the bytes BODY (when given; else any JSON).
reply() {
	local why=() len cl te
	[ "$HTTP_STATUS" = "$2" ] || why+=("status: expected $2, got $HTTP_STATUS")
	# (Headers and the body's size read by the shell: no process for a check.)
	http_headers_load
	[ "${HTTP_HDR[content-type]-}" = application/json ] ||
		why+=("Content-Type: '${HTTP_HDR[content-type]-}'")
	http_file_bytes "$HTTP_BODY_FILE"
	len=$REPLY
	cl=${HTTP_HDR[content-length]-}
	te=${HTTP_HDR[transfer-encoding]-}
	if [ -n "$cl" ]; then
		[ "$cl" = "$len" ] || why+=("Content-Length: '$cl' for a body of $len bytes")
		FRAMING+=" length"
	elif [ "$te" = chunked ]; then
		FRAMING+=" chunked"
	else
		why+=("neither Content-Length nor Transfer-Encoding: chunked")
	fi
	if [ $# -ge 3 ]; then
		# Byte for byte, read whole by the shell, not cmp: read stops at a NUL (which
		# BODY cannot hold) with status 0, and such a body is not BODY.
		local got=
		IFS= read -r -d '' got <"$HTTP_BODY_FILE" && got=$'\1'
		[ "$got" == "$3" ] ||
			why+=("body expected: ${3:0:300}" "body got:      ${HTTP_BODY:0:300}")
	elif ! http_json_ok "$HTTP_BODY_FILE"; then
		why+=("body is not JSON: ${HTTP_BODY:0:300}")
	fi
	if [ ${#why[@]} -eq 0 ]; then ok "$1"; else fail "$1" "${why[@]}"; fi
}

# raw_head PATH [HEADER]: "HEAD PATH HTTP/1.0" to $HTTP_BASE, read until the server closes;
# prints how many bytes follow the headers (-1: no end of headers).
raw_head() {
	"$LMT_PYTHON" - "$HTTP_BASE" "$@" <<'EOF'
import socket, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
req = "HEAD %s%s HTTP/1.0\r\nHost: %s\r\n" % (u.path.rstrip("/"), sys.argv[2], u.netloc)
req += "".join(h + "\r\n" for h in sys.argv[3:] if h) + "\r\n"
s = socket.create_connection((u.hostname, u.port), timeout=5)
s.sendall(req.encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
head, sep, body = data.partition(b"\r\n\r\n")
print(len(body) if sep else -1)
EOF
}

# head_like_get NAME PATH [HEADER]: HEAD PATH answers 200 with the Content-Type of GET,
# GET's Content-Length if it sends one, and no body.
head_like_get() {
	local name=$1 path=$2 hdr=${3:-} len why=() h=()
	[ -n "$hdr" ] && h=(-H "$hdr")
	http GET "$path" "${h[@]}"
	http_file_bytes "$HTTP_BODY_FILE"
	len=$REPLY
	http HEAD "$path" "${h[@]}"
	[ "$HTTP_STATUS" = 200 ] || why+=("status $HTTP_STATUS")
	http_headers_load
	[ "${HTTP_HDR[content-type]-}" = application/json ] ||
		why+=("Content-Type: '${HTTP_HDR[content-type]-}'")
	case ${HTTP_HDR[content-length]-} in
	"" | "$len") ;;
	*) why+=("Content-Length ${HTTP_HDR[content-length]-}, GET's body has $len bytes") ;;
	esac
	local extra
	extra=$(raw_head "$path" "$hdr" 2>&1)
	[ "$extra" = 0 ] || why+=("HTTP/1.0 HEAD: $extra bytes after the headers")
	if [ ${#why[@]} -eq 0 ]; then ok "$name"; else fail "$name" "${why[@]}" "$(cat "$HTTP_HEADERS")"; fi
}

# open_suite WHAT: the routes through $HTTP_BASE, no key configured.
open_suite() {
	local w=$1
	http GET /tasks/1
	reply "$w: GET /tasks/1 = lmtasks get 1" 200 "$GET1"
	http GET /indexes/books/tasks/1
	reply "$w: GET /indexes/books/tasks/1 = lmtasks get 1" 200 "$GET1"
	http GET /indexes/movies/tasks
	reply "$w: GET /indexes/movies/tasks = lmtasks list --indexUids movies" 200 "$LIST_MOVIES"
	http GET '/tasks?statuses=succeeded,failed&limit=1'
	reply "$w: GET /tasks?statuses=succeeded,failed&limit=1 = lmtasks list" 200 "$LIST_FILTER"
	http GET '/tasks?indexUids=books&reverse=true'
	reply "$w: GET /tasks?indexUids=books&reverse=true = lmtasks list" 200 "$LIST_BOOKS_REV"
	http GET /tasks/%31/
	reply "$w: GET /tasks/%31/ (escaped, trailing slash) = task 1" 200 "$GET1"
	http GET /tasks/99
	reply "$w: GET /tasks/99: 404 task_not_found" 404 "$(errbody task_not_found 'Task `99` not found.')"
	http GET /indexes/nope/tasks
	reply "$w: GET /indexes/nope/tasks: 404 index_not_found" 404 \
		"$(errbody index_not_found 'Index `nope` not found.')"
	http GET /tasks/abc
	reply "$w: GET /tasks/abc: 400 invalid_task_uids" 400 \
		"$(errbody invalid_task_uids 'Task uid `abc` is invalid. It should only contain numeric characters.')"
	# Decoded once, not twice: %2531 is the uid "%31", not 1.
	http GET /tasks/%2531
	reply "$w: GET /tasks/%2531: 400 for the uid \`%31\` (decoded once)" 400 \
		"$(errbody invalid_task_uids 'Task uid `%31` is invalid. It should only contain numeric characters.')"
	http GET /nope
	reply "$w: GET /nope: 404 JSON naming /nope" 404 "$(errbody not_found 'Route `/nope` not found.')"
	http GET /health
	reply "$w: GET /health" 200 '{"status":"available"}'
	http POST /tasks/1
	if [ "$(http_header Allow)" = "GET, HEAD" ]; then
		reply "$w: POST /tasks/1: 405 JSON with Allow: GET, HEAD" 405
	else
		fail "$w: POST /tasks/1: 405 JSON with Allow: GET, HEAD" \
			"status $HTTP_STATUS, Allow: '$(http_header Allow)'" "$HTTP_BODY"
	fi
	head_like_get "$w: HEAD /tasks/1: 200, GET's headers, no body" /tasks/1
}

# key_suite WHAT: the routes through $HTTP_BASE, the master key $MASTER configured.
key_suite() {
	local w=$1
	local M=(-H "Authorization: Bearer $MASTER") K=(-H "Authorization: Bearer $MOVIES_KEY")
	http GET /tasks/0
	reply "$w: no Authorization: 401 missing_authorization_header" 401 "$E401"
	http GET /tasks/0 -H 'Authorization: Basic dXNlcjpwYXNz'
	reply "$w: Authorization: Basic: 401" 401 "$E401"
	http GET /tasks/0 -H 'Authorization: Bearer wrong-key-wrong-key-wrong'
	reply "$w: a wrong key: 403 invalid_api_key" 403 "$E403"
	http GET /tasks/0 "${M[@]}"
	reply "$w: the master key: GET /tasks/0 = lmtasks get 0" 200 "$GET0"
	http GET '/tasks?limit=2' "${M[@]}"
	reply "$w: the master key: GET /tasks?limit=2 = lmtasks list --limit 2" 200 "$LIST_2"
	head_like_get "$w: the master key: HEAD /tasks/0: 200, no body" /tasks/0 "Authorization: Bearer $MASTER"
	http GET /indexes/movies/tasks/0 "${K[@]}"
	reply "$w: an API key for movies: GET /indexes/movies/tasks/0 = lmtasks get 0" 200 "$GET0"
	http GET /indexes/movies/tasks "${K[@]}"
	reply "$w: an API key for movies: GET /indexes/movies/tasks" 200 "$LIST_MOVIES"
	http GET /indexes/books/tasks "${K[@]}"
	reply "$w: an API key for movies: GET /indexes/books/tasks: 403 invalid_api_key" 403 "$E403"
	http GET /tasks/1 "${K[@]}"
	reply "$w: an API key for movies: GET /tasks/1 (a books task): 404 task_not_found" 404 \
		"$(errbody task_not_found 'Task `1` not found.')"
	http GET /tasks "${K[@]}"
	json_assert "$w: an API key for movies: GET /tasks lists only movies' tasks" "$HTTP_BODY_FILE" \
		'[t["uid"] for t in d["results"]] == [2, 0] and d["total"] == 2'
}

# framing_note WHAT: one line saying how Apache framed the bodies since the last note (not
# a check: Apache drops the responder's Content-Length and frames the body itself).
framing_note() {
	local f
	f=$(printf '%s\n' $FRAMING | sort | uniq -c | awk '{ printf "%s%s x%s", s, $2, $1; s = ", " }')
	echo "# $1: bodies framed by: ${f:-nothing}"
	FRAMING=""
}

# no_errors NAME LOG...: no [error] (or worse) in Apache's logs LOG...
no_errors() {
	local name=$1 bad
	shift
	bad=$(grep -hE '\[([a-z_]+:)?(error|crit|alert|emerg)\]' "$@" 2>/dev/null | head -n 5)
	if [ -z "$bad" ]; then ok "$name"; else fail "$name" "$bad"; fi
}

# ---- Apache's configuration ----
APACHE_BUILTIN=$("$APACHE" -l 2>/dev/null)
LOADS=""
MISSING=""
# want NAME: LoadModule NAME_module unless built in; false (and noted) when missing.
want() {
	local n=$1 f=$MODDIR/mod_$1.so
	case $APACHE_BUILTIN in *"mod_$n.c"*) return 0 ;; esac
	if [ -f "$f" ]; then
		LOADS+="LoadModule ${n}_module $f"$'\n'
		return 0
	fi
	MISSING+=" mod_$n"
	return 1
}
# The MPM: event (as Debian), else prefork; or the one built in.
case $APACHE_BUILTIN in
*event.c* | *worker.c*) MPM=event ;;
*prefork.c*) MPM=prefork ;;
*)
	if want mpm_event; then MPM=event
	elif want mpm_prefork; then MPM=prefork
	else MPM=""
	fi
	MISSING=""
	;;
esac
for m in authz_core mime alias env setenvif rewrite proxy proxy_fcgi; do want "$m"; done
# Built into Debian's apache2, modules elsewhere: User/Group, CustomLog.
for m in unixd log_config; do want "$m" || MISSING=${MISSING% mod_$m}; done
# CGI: mod_cgid with a threaded MPM, mod_cgi with prefork.
if [ "$MPM" = event ]; then want cgid; else want cgi; fi
[ -n "$MPM" ] || lmt_missing_all apache2 "no Apache MPM module (mod_mpm_event or mod_mpm_prefork)"
[ -z "$MISSING" ] || lmt_missing_all apache2 "Apache modules missing:$MISSING"
HAVE_FCGID=no
want fcgid && HAVE_FCGID=yes
export APACHE_LOG_DIR=$A/logs	# the shipped sites log to ${APACHE_LOG_DIR}/...

# The ports: one per site.  SITES lists "NAME" in order; PORT_NAME is its port.
SITES=()
site_port() { local v="PORT_${1//-/_}"; echo "${!v}"; }

# base_config: $A/httpd.conf, including every $A/sites/*.conf.
base_config() {
	local listen="" s user=""
	for s in "${SITES[@]}"; do
		listen+="Listen 127.0.0.1:$(site_port "$s")"$'\n'
	done
	[ -n "$RUN_USER" ] && user="User $RUN_USER"$'\n'"Group $RUN_GROUP"
	local types=/etc/mime.types
	[ -f "$types" ] || types=/dev/null
	cat >"$A/httpd.conf" <<EOF
# Generated by tests/e2e/apache.sh for one test run.
ServerRoot "$A"
ServerName 127.0.0.1
PidFile "$A/run/httpd.pid"
DefaultRuntimeDir "$A/run"
ErrorLog "$A/logs/error.log"
LogLevel info
$LOADS
$user
# Debian's "combined", and the time taken (%D, microseconds) for a post-mortem.
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %Dus" combined
TypesConfig "$types"
Timeout 20
KeepAlive On
<IfModule mpm_event_module>
	StartServers 1
	ServerLimit 2
	ThreadsPerChild 16
	MaxRequestWorkers 32
	MinSpareThreads 4
	MaxSpareThreads 32
</IfModule>
<IfModule mpm_prefork_module>
	StartServers 2
	MinSpareServers 1
	MaxSpareServers 4
	MaxRequestWorkers 16
</IfModule>
<IfModule cgid_module>
	ScriptSock "$A/run/cgid.sock"
</IfModule>
<IfModule fcgid_module>
	FcgidIPCDir "$A/run/fcgid"
	FcgidProcessTableFile "$A/run/fcgid_shm"
	FcgidIOTimeout 20
</IfModule>
# As in Debian's apache2.conf: nothing is served or overridable unless a site says so.
<Directory />
	Options FollowSymLinks
	AllowOverride None
	Require all denied
</Directory>
$listen
IncludeOptional "$A/sites/*.conf"
EOF
}

# site NAME CONF: the site NAME (a VirtualHost for 127.0.0.1:PORT_NAME) from CONF.
site() {
	printf '%s\n' "$2" >"$A/sites/$1.conf"
}
# vhost NAME: "<VirtualHost 127.0.0.1:PORT>" and a ServerName of its own.
vhost() {
	printf '<VirtualHost 127.0.0.1:%s>\n\tServerName %s.test\n\tErrorLog "%s/logs/%s-error.log"\n' \
		"$(site_port "$1")" "$1" "$A" "$1"
}
# shipped NAME FILE SED...: the shipped VirtualHost FILE, for site NAME: its own address,
# ServerName and logs, then the sed expressions SED.
shipped() {
	local name=$1 file=$2
	shift 2
	local e=(-e "s|<VirtualHost \*:80>|<VirtualHost 127.0.0.1:$(site_port "$name")>|"
		-e "s|ServerName tasks.example.com|ServerName $name.test|"
		-e "s|lmtasks-error.log|$name-error.log|" -e "s|lmtasks-access.log|$name-access.log|")
	local x
	for x in "$@"; do e+=(-e "$x"); done
	sed "${e[@]}" "$AP/$file"
}

# apache_start: Apache from $A/httpd.conf, in the foreground of a background job;
# every site's port is chosen free, and chosen again when a bind fails.  Sets APACHE_PID.
APACHE_PID=
if command -v setsid >/dev/null; then
	SETSID=setsid
else
	SETSID=apache_setsid
	apache_setsid() {
		exec "$LMT_PYTHON" -c 'import os, sys; os.setsid(); os.execv(sys.argv[1], sys.argv[1:])' "$@"
	}
fi
apache_start() {
	local try i s ports ready
	for ((try = 0; try < 4; try++)); do
		ports=" "
		for s in "${SITES[@]}"; do
			local p
			for ((i = 0; i < 20; i++)); do
				p=$(http_random_port) || return 1
				case $ports in *" $p "*) ;; *) break ;; esac
			done
			printf -v "PORT_${s//-/_}" '%s' "$p"
			ports+="$p "
		done
		write_sites
		base_config
		if ! "$APACHE" -t -f "$A/httpd.conf" >"$A/configtest.log" 2>&1; then
			echo "apache.sh: apache2 -t rejects the configuration:" >&2
			sed 's/^/  /' "$A/configtest.log" >&2
			return 1
		fi
		: >"$A/logs/error.log"
		: >"$A/stdout.log"
		# In a session of its own: stopping, the prefork MPM signals its whole process
		# group, which would otherwise be this script's (and make's).  setsid execs
		# Apache in place: $! is Apache, a child of this shell.
		$SETSID "$APACHE" -f "$A/httpd.conf" -DFOREGROUND </dev/null >>"$A/stdout.log" 2>&1 &
		APACHE_PID=$!
		lmt_on_exit "apache_stop"
		ready=no
		# Up to 30 s (a hang guard: the loop ends as soon as every site listens).
		for ((i = 0; i < 600; i++)); do
			http_alive "$APACHE_PID" || break
			if grep -qE 'could not bind|AH00072|AH00076' "$A/logs/error.log" "$A/stdout.log" 2>/dev/null; then
				break
			fi
			ready=yes
			for s in "${SITES[@]}"; do
				http_port_free "$(site_port "$s")" && { ready=no; break; }
			done
			[ "$ready" = yes ] && return 0
			lmt_sleep 0.05
		done
		http_stop "$APACHE_PID"
		APACHE_PID=
	done
	echo "apache.sh: Apache did not start; its logs say:" >&2
	tail -n 20 "$A/logs/error.log" "$A/stdout.log" 2>/dev/null | sed 's/^/  /' >&2
	return 1
}

# our_programs: the PIDs of the programs of ours that Apache started (CGI, mod_fcgid),
# known by their executable: the copies under $T.
our_programs() {
	find /proc/[0-9]*/exe -maxdepth 0 -lname "$T/*" 2>/dev/null | sed 's|^/proc/\([0-9]*\)/exe$|\1|'
}

# apache_stop: SIGTERM to Apache (it stops its workers, the CGI daemon and mod_fcgid,
# which stops the responders it started); then any program of ours still running is
# killed by PID.
apache_stop() {
	[ -n "$APACHE_PID" ] || return 0
	http_stop "$APACHE_PID"
	APACHE_PID=
	local p i
	# Up to 30 s for them to go (a hang guard: it ends as soon as they are gone).
	for ((i = 0; i < 600; i++)); do
		[ -z "$(our_programs)" ] && return 0
		lmt_sleep 0.05
	done
	for p in $(our_programs); do
		echo "# apache.sh: pid $p ($(readlink "/proc/$p/exe")) outlived Apache: killed" >&2
		kill -KILL "$p" 2>/dev/null
	done
	return 0
}

# ---- the responders for (a) ----
# The socket is 0660: Apache's workers connect as RUN_USER, through its group.
start_fcgi() {
	local grp=()
	[ -n "$RUN_GROUP" ] && grp=(--socket-group "$RUN_GROUP")
	fcgi_start "$@" "${grp[@]}" || { fail "lmtasks-fcgi starts on $1"; summary; exit 1; }
}
start_fcgi "$T/open.sock" "$S" 2
OPEN_PID=$FCGI_PID
OPEN_LOG=$FCGI_LOG
start_fcgi "$T/key.sock" "$S" 2 --master-key-file "$KEYFILE"
KEY_PID=$FCGI_PID
KEY_LOG=$FCGI_LOG
start_fcgi "$T/param.sock" - 2
PARAM_PID=$FCGI_PID
PARAM_LOG=$FCGI_LOG
# For /tasks/stream: a keep-alive comment every 300 ms instead of every 15 s.
LMTASKS_STREAM_KEEPALIVE_MS=300 start_fcgi "$T/stream.sock" "$S" 2
STREAM_PID=$FCGI_PID

# ---- the sites ----
# (a) mod_proxy_fcgi
SITES+=(proxy proxy-prefix proxy-conf proxy-key proxy-nopass proxy-setenvif proxy-param proxy-stream)
# (b) CGI
SITES+=(cgi cgi-key cgi-suexec cgi-badkey)
# (c) mod_fcgid
[ "$HAVE_FCGID" = yes ] && SITES+=(fcgid fcgid-prefix fcgid-key fcgid-badkey)

# The SetEnvIf line that lmtasks-proxy-fcgi.conf offers for Apache before 2.4.13.
SETENVIF=$(sed -n 's/^[[:space:]]*#[[:space:]]*\(SetEnvIf Authorization .*\)$/\1/p' \
	"$AP/lmtasks-proxy-fcgi.conf" | head -n 1)
# The prefix variant at the end of lmtasks-proxy-fcgi.conf, uncommented.
PREFIX_BLOCK=$(sed -n '/^#<Location "\/api\/">/,/^#<\/Location>/s/^#//p' "$AP/lmtasks-proxy-fcgi.conf")
# The ScriptAlias that lmtasks-fcgid.conf offers for a prefix.
FCGID_PREFIX=$(sed -n 's/^[[:space:]]*#[[:space:]]*\(ScriptAlias "\/api\/" .*\)$/\1/p' \
	"$AP/lmtasks-fcgid.conf" | head -n 1)
# The suEXEC wrapper of apache/README.
WRAPPER=$(sed -n '/^    #!\/bin\/sh$/,/master\.key$/s/^    //p' "$AP/README")

# cgi_dir DIR HTACCESS PROGRAM: a directory of a shared host's site: the .htaccess and
# lmtasks.cgi; PROGRAM "-" is the responder itself, else a script.
cgi_dir() {
	mkdir -p "$1"
	printf '%s\n' "$2" >"$1/.htaccess"
	if [ "$3" = - ]; then
		install_prog "$1/lmtasks.cgi"
	else
		printf '%s\n' "$3" >"$1/lmtasks.cgi"
		chmod 755 "$1/lmtasks.cgi"
	fi
	chmod 755 "$1"
	chmod 644 "$1/.htaccess"
}
# cgi_site NAME DOCROOT: the virtual host a shared host gives its customer: the directory,
# with what .htaccess may change (as little as apache/htaccess needs).
cgi_site() {
	site "$1" "$(vhost "$1")
	DocumentRoot \"$2\"
	<Directory \"$2\">
		AllowOverride AuthConfig FileInfo Options=ExecCGI
		Require all granted
	</Directory>
</VirtualHost>"
}

write_sites() {
	rm -f "$A/sites/"*.conf
	# (a) as shipped, the socket moved; the same with the keyed responder; the prefix
	# variant; the keyed responder without CGIPassAuth (401 expected), and with the
	# SetEnvIf alternative instead.
	site proxy "$(shipped proxy lmtasks-proxy-fcgi.conf "s|unix:/run/lmtasks/fcgi.sock|unix:$T/open.sock|")"
	site proxy-key "$(shipped proxy-key lmtasks-proxy-fcgi.conf "s|unix:/run/lmtasks/fcgi.sock|unix:$T/key.sock|")"
	site proxy-stream "$(shipped proxy-stream lmtasks-proxy-fcgi.conf "s|unix:/run/lmtasks/fcgi.sock|unix:$T/stream.sock|")"
	# The prefix variant goes in a site that has a document root of its own.
	mkdir -p "$T/www-site"
	chmod 755 "$T/www-site"
	site proxy-prefix "$(vhost proxy-prefix)
	DocumentRoot \"$T/www-site\"
	<Directory \"$T/www-site\">
		Require all granted
	</Directory>
$(printf '%s\n' "$PREFIX_BLOCK" | sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/open.sock|")
</VirtualHost>"
	# apache/lmtasks-conf.conf (the Debian package's conf-available/lmtasks.conf), whole,
	# in a site with a document root of its own, as a2enconf puts it in every site.
	site proxy-conf "$(vhost proxy-conf)
	DocumentRoot \"$T/www-site\"
	<Directory \"$T/www-site\">
		Require all granted
	</Directory>
$(sed "s|unix:/run/lmtasks/fcgi.sock|unix:$T/open.sock|" "$AP/lmtasks-conf.conf")
</VirtualHost>"
	site proxy-nopass "$(shipped proxy-nopass lmtasks-proxy-fcgi.conf \
		"s|unix:/run/lmtasks/fcgi.sock|unix:$T/key.sock|" '/^[[:space:]]*CGIPassAuth On/d')"
	site proxy-setenvif "$(shipped proxy-setenvif lmtasks-proxy-fcgi.conf \
		"s|unix:/run/lmtasks/fcgi.sock|unix:$T/key.sock|" '/^[[:space:]]*CGIPassAuth On/d' \
		"s|^\([[:space:]]*ServerName .*\)$|\1\n\t$SETENVIF|")"
	site proxy-param "$(shipped proxy-param lmtasks-proxy-fcgi.conf \
		"s|unix:/run/lmtasks/fcgi.sock|unix:$T/param.sock|" \
		"s|^\([[:space:]]*\)#SetEnv LMTASKS_DB /var/lib/lmtasks|\1SetEnv LMTASKS_DB $S|")"
	# (b) the shipped .htaccess: at the root of a site without its key line; under /api/
	# as shipped; and the suEXEC way: no SetEnv, the wrapper script.
	local ht
	ht=$(sed "s|/home/me/lmtasks|$T/home|g" "$AP/htaccess")
	cgi_dir "$T/www-open" "$(printf '%s\n' "$ht" | sed '/^SetEnv LMTASKS_MASTER_KEY_FILE/d')" -
	cgi_site cgi "$T/www-open"
	mkdir -p "$T/www-key"
	chmod 755 "$T/www-key"
	cgi_dir "$T/www-key/api" "$ht" -
	cgi_site cgi-key "$T/www-key"
	cgi_dir "$T/www-suexec" "$(printf '%s\n' "$ht" | sed '/^SetEnv LMTASKS_/d')" \
		"$(printf '%s\n' "$WRAPPER" | sed "s|/home/me/lmtasks|$T/home|g")"
	cgi_site cgi-suexec "$T/www-suexec"
	cgi_dir "$T/www-badkey" "$(printf '%s\n' "$ht" | sed "s|$T/home/master.key|$T/home/no-such.key|")" -
	cgi_site cgi-badkey "$T/www-badkey"
	# (c) the shipped mod_fcgid site: without its key line; the same under /api/ (in a
	# site with a document root); as shipped; with a key file that does not exist.
	if [ "$HAVE_FCGID" = yes ]; then
		local fx=("s|/usr/sbin|$T/sbin|g" "s|/var/lib/lmtasks|$S|")
		site fcgid "$(shipped fcgid lmtasks-fcgid.conf "${fx[@]}" '/FcgidInitialEnv LMTASKS_MASTER_KEY_FILE/d')"
		site fcgid-prefix "$(shipped fcgid-prefix lmtasks-fcgid.conf "${fx[@]}" \
			'/FcgidInitialEnv LMTASKS_MASTER_KEY_FILE/d' \
			"s|^\([[:space:]]*\)ScriptAlias \"/\" .*|\1${FCGID_PREFIX//\/usr\/sbin/$T/sbin}|" \
			"s|^\([[:space:]]*ServerName .*\)$|\1\n\tDocumentRoot \"$T/www-site\"\n\t<Directory \"$T/www-site\">\n\t\tRequire all granted\n\t</Directory>|")"
		site fcgid-key "$(shipped fcgid-key lmtasks-fcgid.conf "${fx[@]}" "s|/etc/lmtasks/master.key|$KEYFILE|")"
		site fcgid-badkey "$(shipped fcgid-badkey lmtasks-fcgid.conf "${fx[@]}" \
			"s|/etc/lmtasks/master.key|$T/home/no-such.key|")"
	fi
}

[ -n "$SETENVIF" ] || fail "lmtasks-proxy-fcgi.conf offers a SetEnvIf line for old Apache"
[ -n "$PREFIX_BLOCK" ] || fail "lmtasks-proxy-fcgi.conf has a commented /api/ variant"
[ -n "$WRAPPER" ] || fail "apache/README shows the suEXEC wrapper script"
[ -n "$FCGID_PREFIX" ] || fail "lmtasks-fcgid.conf offers a ScriptAlias for /api/"
apache_start || { fail "Apache starts from $A/httpd.conf"; summary; exit 1; }
echo "# $("$APACHE" -v | head -n 1 | sed 's/^Server version: //'), $MPM MPM," \
	"pid $APACHE_PID, workers as ${RUN_USER:-$(id -un)}; mod_fcgid: $HAVE_FCGID"
base() { HTTP_BASE=http://127.0.0.1:$(site_port "$1")${2:-}; }

section "(a) mod_proxy_fcgi: apache/lmtasks-proxy-fcgi.conf"
FRAMING=""
base proxy
open_suite "proxy_fcgi"
base proxy-prefix /api
open_suite "proxy_fcgi under /api/"
base proxy-conf /lmtasks
open_suite "proxy_fcgi under /lmtasks/ (apache/lmtasks-conf.conf)"
base proxy-key
key_suite "proxy_fcgi, key"
base proxy-nopass
http GET /tasks/0 -H "Authorization: Bearer $MASTER"
reply "proxy_fcgi without CGIPassAuth: the master key does not arrive: 401" 401 "$E401"
base proxy-setenvif
http GET /tasks/0 -H "Authorization: Bearer $MASTER"
reply "proxy_fcgi with '$SETENVIF' instead: the master key: 200" 200 "$GET0"
http GET /tasks/0
reply "proxy_fcgi with SetEnvIf: no Authorization: 401" 401 "$E401"
base proxy-param
http GET /tasks/1
reply "proxy_fcgi, a responder without --db, the store named by '#SetEnv LMTASKS_DB' uncommented" \
	200 "$GET1"
# enablereuse=on: Apache keeps connections to the responder between requests.
kept=$(ss -Hx state established 2>/dev/null | grep -cF "$T/open.sock")
if [ "$kept" -ge 1 ]; then
	ok "enablereuse=on: Apache keeps $kept connection(s) to the responder open"
else
	fail "enablereuse=on: Apache keeps connections to the responder open" "none established"
fi
framing_note "(a) proxy_fcgi"
no_errors "(a): no errors in Apache's logs" "$A"/logs/proxy*-error.log "$A/logs/error.log"
assert_eq "(a): the responders logged no failure" "" \
	"$(grep -hv -e ': serving ' "$OPEN_LOG" "$KEY_LOG" "$PARAM_LOG" | head -n 5)"

section "(b) CGI: apache/htaccess"
base cgi
open_suite "cgi"
base cgi-key /api
key_suite "cgi under /api/, key"
base cgi-suexec
http GET /tasks/0
reply "cgi, the suEXEC wrapper of apache/README: no Authorization: 401" 401 "$E401"
http GET /tasks/0 -H "Authorization: Bearer $MASTER"
reply "cgi, the suEXEC wrapper: the master key: 200" 200 "$GET0"
framing_note "(b) CGI"
base cgi-badkey
http GET /tasks/0 -H "Authorization: Bearer $MASTER"
reply "cgi, a key file that cannot be read: 500 JSON, never the task" 500 \
	"$(errbody internal "The master key file cannot be read; see the server's error log." internal)"
# mod_cgi logs a program's stderr in the site's error log, mod_cgid in the server's.
assert_re "cgi, that key file: the program says why in Apache's error log" \
	"lmtasks-fcgi: cannot use the master key file $T/home/no-such.key" \
	"$(cat "$A/logs/cgi-badkey-error.log" "$A/logs/error.log" 2>/dev/null)"
no_errors "(b): no errors in Apache's logs" "$A/logs/cgi-error.log" "$A/logs/cgi-key-error.log" \
	"$A/logs/cgi-suexec-error.log"

section "(c) mod_fcgid: apache/lmtasks-fcgid.conf"
if [ "$HAVE_FCGID" = yes ]; then
	base fcgid
	open_suite "fcgid"
	base fcgid-prefix /api
	open_suite "fcgid under /api/ ('$FCGID_PREFIX')"
	base fcgid-key
	key_suite "fcgid, key"
	# The processes mod_fcgid started: the shipped command line, as RUN_USER.
	procs=""
	for p in $(our_programs); do
		[ "$(readlink "/proc/$p/exe")" = "$T/sbin/lmtasks-fcgi" ] || continue
		procs+="$(tr '\0' ' ' <"/proc/$p/cmdline")($(stat -c %U "/proc/$p"));"
	done
	assert_re "fcgid: mod_fcgid runs '$T/sbin/lmtasks-fcgi --threads 1'${RUN_USER:+ as $RUN_USER}" \
		"^($T/sbin/lmtasks-fcgi --threads 1 \\(${RUN_USER:-$(id -un)}\\);)+\$" "$procs"
	framing_note "(c) mod_fcgid"
	no_errors "(c): no errors in Apache's logs" "$A/logs/fcgid-error.log" "$A/logs/fcgid-key-error.log" \
		"$A/logs/fcgid-prefix-error.log"
	# A key file that cannot be read: the program exits at once; never an open answer.
	base fcgid-badkey
	t0=$(now)
	http GET /tasks/0
	took=$(elapsed "$t0")
	if [[ $HTTP_STATUS == 5[0-9][0-9] ]]; then
		ok "fcgid, a key file that cannot be read: $HTTP_STATUS, not the task ($took s)"
	else
		fail "fcgid, a key file that cannot be read: 5xx, not the task" "$HTTP_STATUS after $took s: ${HTTP_BODY:0:200}"
	fi
	assert_re "fcgid, that key file: the program says why in the server's error log" \
		"^lmtasks-fcgi: cannot use the master key file $T/home/no-such.key" "$(cat "$A/logs/error.log")"
else
	lmt_missing "(c) mod_fcgid" libapache2-mod-fcgid "mod_fcgid is not installed (apt-get install libapache2-mod-fcgid)"
fi

section "/tasks/stream through apache/lmtasks-proxy-fcgi.conf"
# Last: it adds a task to the store the answers above were computed from.
base proxy-stream
grep -q '^[[:space:]]*ProxyPass "/tasks/stream" .* flushpackets=on' "$AP/lmtasks-proxy-fcgi.conf" &&
	ok "lmtasks-proxy-fcgi.conf passes /tasks/stream with flushpackets=on" ||
	fail "lmtasks-proxy-fcgi.conf passes /tasks/stream with flushpackets=on"
http_stream_watch "proxy_fcgi /tasks/stream" "$(L enqueue movies documentAddition 2>/dev/null | json_get - 'd["uid"]')"
http GET /tasks/0
reply "proxy_fcgi: a plain GET on the same site still goes through ProxyPass /" 200 "$GET0"

section "stopping"
ports=()
for s in "${SITES[@]}"; do ports+=("$(site_port "$s")"); done
pid=$APACHE_PID
t0=$(now)
apache_stop
took=$(elapsed "$t0")
left=""
http_alive "$pid" && left+=" apache2 $pid"
for p in "${ports[@]}"; do http_port_free "$p" || left+=" 127.0.0.1:$p"; done
for p in $(our_programs); do left+=" $p:$(readlink "/proc/$p/exe")"; done
assert_eq "Apache stopped (SIGTERM, $took s): nothing listens on its ports, no program of ours runs" "" "$left"
for p in "$OPEN_PID" "$KEY_PID" "$PARAM_PID" "$STREAM_PID"; do
	kill -TERM "$p" 2>/dev/null
	http_wait_gone 30 "$p" || fail "SIGTERM: responder $p exits (30 s)"
done

echo "# apache.sh took $(elapsed "$START") s"
summary
