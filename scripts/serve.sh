#!/usr/bin/env bash
# Try lmtasks: installs what is missing, builds into build/, creates a demo store in
# var/store (once), and serves it through a real nginx on http://127.0.0.1:7700 until
# Ctrl-C.  What it keeps stays in this tree: var/store, var/nginx (nginx's config and
# logs).  What nginx's workers must reach -- the FastCGI socket, nginx's temporary files
# and a copy of the dashboard's page (ui/) -- lives in a private directory made for this
# run outside the tree (under $XDG_RUNTIME_DIR, /run as root, else $TMPDIR or /tmp) and
# removed at the end: run as root, nginx's workers run as nobody, who may not enter a
# checkout under /root (0700).  The dashboard is read from that copy: restart to see an
# edit of ui/.
#
#   scripts/serve.sh                    # then: curl http://127.0.0.1:7700/tasks
#                                       # and the dashboard: http://127.0.0.1:7700/ui/
#   LMTASKS_PORT=8080 scripts/serve.sh  # another port
#   LMTASKS_BUILD=DIR scripts/serve.sh  # lmtasks and lmtasks-fcgi from DIR, not built here
#
# Stop it with Ctrl-C or SIGTERM: nginx and lmtasks-fcgi are stopped by PID.
set -uo pipefail
# Started in the background by a script (`scripts/serve.sh &`), the shell inherits SIGINT
# ignored and could not trap it; start again with it restored, so that SIGINT stops us.
ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status 2>/dev/null)
if [ -z "${LMTASKS_SERVE_SIGNALS:-}" ] && (( 16#${ign:-0} & 2 )) &&
    env --default-signal=INT true 2>/dev/null; then
	LMTASKS_SERVE_SIGNALS=1 exec env --default-signal=INT,QUIT bash "$0" "$@"
fi
cd "$(dirname "$0")/.." || exit 1
TOP=$(pwd)
PORT=${LMTASKS_PORT:-7700}
VAR=$TOP/var
STORE=$VAR/store
NGX=$VAR/nginx
RUN=		# the private runtime directory: the socket, nginx's temporary files
SOCK=
FCGI_PID=
NGINX_PID=
NGINX_KIDS=

say() { printf 'lmtasks: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case $PORT in '' | *[!0-9]*) die "LMTASKS_PORT must be a port number, not '$PORT'" ;; esac
[ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "LMTASKS_PORT must be from 1 to 65535"

. scripts/deps.sh
# libjs-chart.js: the dashboard's charts (served at /ui/vendor/chart.js/).
lmt_install_deps libjs-chart.js || die "cannot install the packages lmtasks needs"
BUILD=${LMTASKS_BUILD:-}
if [ -z "$BUILD" ]; then
	lmt_build || die "the build failed (see above)"
	BUILD=$TOP/build
fi
LMTASKS=$BUILD/lmtasks
LMTASKS_FCGI=$BUILD/lmtasks-fcgi
[ -x "$LMTASKS" ] && [ -x "$LMTASKS_FCGI" ] || die "$BUILD/lmtasks or $BUILD/lmtasks-fcgi is missing"
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX_BIN" ] || die "no nginx; install it (apt-get install nginx)"
PARAMS=/etc/nginx/fastcgi_params
[ -f "$PARAMS" ] || die "no $PARAMS (it comes with nginx)"
unset LMTASKS_DB

# ---- the demo store: every status, two indexes ----
L() { "$LMTASKS" --db "$1" "${@:2}" >/dev/null; }
demo_store() {
	local s=$1
	L "$s" init &&
	# 0, 1: movies created and filled
	L "$s" enqueue movies indexCreation --details '{"primaryKey":"id"}' &&
	L "$s" start 0 && L "$s" succeed 0 &&
	L "$s" enqueue movies documentAddition --details '{"receivedDocuments":3}' &&
	L "$s" start 1 && L "$s" succeed 1 --details '{"indexedDocuments":3}' &&
	# 2, 3: books created; an addition that failed
	L "$s" enqueue books indexCreation &&
	L "$s" start 2 && L "$s" succeed 2 --details '{"primaryKey":"isbn"}' &&
	L "$s" enqueue books documentAddition --details '{"receivedDocuments":2}' &&
	L "$s" start 3 &&
	L "$s" fail 3 --type invalid_request --code missing_document_id \
		--message 'Document doesn'\''t have a `isbn` attribute: `{"title":"Dune"}`.' &&
	# 4: a settings update canceled by 5 (the taskCancelation the cancel records)
	L "$s" enqueue movies settingsUpdate \
		--details '{"rankingRules":["typo","words","proximity","attribute","exactness"]}' &&
	L "$s" cancel 4 &&
	# 6 processing, 7 and 8 enqueued
	L "$s" enqueue movies documentAddition --details '{"receivedDocuments":1200}' &&
	L "$s" start 6 &&
	L "$s" enqueue books documentAddition --details '{"receivedDocuments":10}' &&
	L "$s" enqueue movies documentDeletion --details '{"receivedDocumentIds":2}'
}
mkdir -p "$NGX" || die "cannot create $VAR"
rm -rf "$VAR/run" "$NGX/tmp"	# where 0.1.0 kept the socket and nginx's temporary files
if [ -e "$STORE" ] && ! "$LMTASKS" --db "$STORE" stats >/dev/null 2>&1; then
	# Made by an older build, most likely: keep it, aside, and start a fresh demo.
	old=$STORE.old-$(date +%Y%m%d-%H%M%S)
	mv "$STORE" "$old" || die "var/store cannot be read by this build; move it away"
	say "var/store cannot be read by this build: moved it to var/$(basename "$old")"
fi
if [ ! -f "$STORE/data.mdb" ]; then
	rm -rf "$STORE.new"
	demo_store "$STORE.new" 2>"$VAR/demo.err" || {
		cat "$VAR/demo.err" >&2
		rm -rf "$STORE.new"
		die "could not create the demo store"
	}
	mv "$STORE.new" "$STORE" || die "cannot move the demo store into $STORE"
	say "created a demo store in var/store"
fi

# ---- stopping: by PID, nginx's workers too ----
children() {
	local f s
	for f in /proc/[0-9]*/stat; do
		s=$(cat "$f" 2>/dev/null) || continue
		s=${s##*) }
		set -- "$1" $s
		[ "$3" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
	done
}
alive() {
	kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
# stop_pid PID SIGNAL: SIGNAL, up to 3 s to go, then KILL.
stop_pid() {
	local i
	alive "$1" || return 0
	kill -"$2" "$1" 2>/dev/null
	for ((i = 0; i < 60; i++)); do
		alive "$1" || break
		sleep 0.05
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}
stopped=
stop_all() {
	[ -n "$stopped" ] && return
	stopped=1
	trap '' INT TERM
	if [ -n "$NGINX_PID" ]; then
		[ -n "$NGINX_KIDS" ] || NGINX_KIDS=$(children "$NGINX_PID")
		stop_pid "$NGINX_PID" QUIT
		for k in $NGINX_KIDS; do stop_pid "$k" TERM; done
	fi
	[ -n "$FCGI_PID" ] && stop_pid "$FCGI_PID" TERM
	[ -n "$RUN" ] && [ -d "$RUN" ] && rm -rf -- "$RUN"
	say "stopped"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

# ---- the private runtime directory ----
# As root, nginx's workers run as WORKER (nobody): the directory is theirs to enter, by
# group, and nobody else's.  Otherwise they run as we do and it stays 0700.
WORKER= WORKER_GROUP=
if [ "$(id -u)" -eq 0 ]; then
	WORKER=nobody
	WORKER_GROUP=$(id -gn "$WORKER" 2>/dev/null) || die "no user $WORKER for nginx's workers"
	base=/run
else
	base=${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}
fi
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
RUN=$(mktemp -d "$base/lmtasks-serve.XXXXXXXX") || die "cannot create a runtime directory in $base"
if [ -n "$WORKER" ]; then
	chgrp "$WORKER_GROUP" "$RUN" && chmod 0750 "$RUN" ||
		die "cannot give $RUN to group $WORKER_GROUP"
fi
SOCK=$RUN/fcgi.sock
mkdir "$RUN/tmp" || die "cannot create $RUN/tmp"
# The dashboard's page, where nginx's workers may read it (the tree may be closed to them).
cp -R ui "$RUN/ui" && chmod -R u+w,a+rX "$RUN/ui" || die "cannot copy ui/ to $RUN/ui"
[ ${#SOCK} -lt 100 ] || die "the socket path $SOCK is too long for a unix socket; set TMPDIR"

# ---- the responder ----
if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" 2>/dev/null ||
    { command -v ss >/dev/null && [ -n "$(ss -Htln "( sport = :$PORT )")" ]; }; then
	die "something already listens on 127.0.0.1:$PORT; stop it or set LMTASKS_PORT"
fi
"$LMTASKS_FCGI" --db "$STORE" --listen "unix:$SOCK" ${WORKER_GROUP:+--socket-group "$WORKER_GROUP"} </dev/null &
FCGI_PID=$!
for ((i = 0; i < 100; i++)); do
	[ -S "$SOCK" ] && break
	alive "$FCGI_PID" || break
	sleep 0.05
done
[ -S "$SOCK" ] && alive "$FCGI_PID" || die "lmtasks-fcgi did not start"

# ---- nginx, from nginx/lmtasks.conf with the socket, the port and the page moved ----
cp "$PARAMS" "$NGX/fastcgi_params"
sed -e "s|unix:/run/lmtasks/fcgi.sock|unix:$SOCK|" -e "s|127\.0\.0\.1:7700|127.0.0.1:$PORT|" \
	-e "s|/usr/share/lmtasks/ui/|$RUN/ui/|" nginx/lmtasks.conf >"$NGX/lmtasks.conf"
user_line=
[ -n "$WORKER" ] && user_line="user $WORKER $WORKER_GROUP;"
cat >"$NGX/nginx.conf" <<EOF
# Written by scripts/serve.sh at every start; edit nginx/lmtasks.conf instead.
$user_line
worker_processes 1;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log;
events { worker_connections 512; }
http {
	access_log $NGX/access.log;
	client_body_temp_path $RUN/tmp/client_body;
	proxy_temp_path $RUN/tmp/proxy;
	fastcgi_temp_path $RUN/tmp/fastcgi;
	uwsgi_temp_path $RUN/tmp/uwsgi;
	scgi_temp_path $RUN/tmp/scgi;
	default_type application/octet-stream;
	include $NGX/lmtasks.conf;
}
EOF
log_start=$(stat -c %s "$NGX/error.log" 2>/dev/null || echo 0)
"$NGINX_BIN" -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/error.log" </dev/null &
NGINX_PID=$!
up=
for ((i = 0; i < 100; i++)); do
	alive "$NGINX_PID" || break
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/health")
	if [ "${code:-000}" != 000 ]; then
		up=1
		break
	fi
	sleep 0.05
done
if [ -z "$up" ]; then
	tail -n 5 "$NGX/error.log" >&2
	die "nginx did not start on 127.0.0.1:$PORT (var/nginx/error.log)"
fi
NGINX_KIDS=$(children "$NGINX_PID")
if [ "$code" != 200 ]; then
	# The cause is in nginx's error log (a worker that cannot reach the socket) or in
	# lmtasks-fcgi's messages above (a store it cannot read): show both, and stop.
	say "GET /health answers $code, not 200; nginx's error log (var/nginx/error.log) says:"
	tail -c +"$((log_start + 1))" "$NGX/error.log" 2>/dev/null | grep -v '\[notice\]' |
		tail -n 5 | sed 's/^/    /' >&2
	if tail -c +"$((log_start + 1))" "$NGX/error.log" 2>/dev/null | grep -q 'fcgi.sock.*Permission denied\|Permission denied.*fcgi.sock'; then
		say "nginx's workers${WORKER:+ (user $WORKER)} cannot reach the socket $SOCK"
	fi
	die "not serving: GET /health must answer 200 (lmtasks-fcgi's own messages, if any, are above)"
fi

U=http://127.0.0.1:$PORT
CLI=build/lmtasks
[ "$BUILD" = "$TOP/build" ] || CLI=$LMTASKS
cat <<EOF

  The Meilisearch tasks API, from var/store, on $U
  (nginx pid $NGINX_PID, lmtasks-fcgi pid $FCGI_PID; Ctrl-C stops both)

    curl $U/tasks
    curl $U/tasks/0
    curl '$U/tasks?limit=2&from=5'
    curl '$U/tasks?reverse=true&limit=3'
    curl $U/indexes/movies/tasks
    curl $U/indexes/books/tasks/3
    curl $U/health

  The dashboard: $U/ui/ (no key needed: this demo responder has none)

  Write with the CLI, then read again:
    $CLI --db var/store enqueue movies documentAddition --details '{"receivedDocuments":5}'
    $CLI --db var/store claim && $CLI --db var/store succeed 7

  Logs: var/nginx/access.log, var/nginx/error.log; lmtasks-fcgi logs failures here.
  Socket: $SOCK

EOF

# Until Ctrl-C, SIGTERM, or one of the two ending by itself.
while alive "$NGINX_PID" && alive "$FCGI_PID"; do
	wait -n "$NGINX_PID" "$FCGI_PID" 2>/dev/null
done
alive "$NGINX_PID" || say "nginx exited (var/nginx/error.log)"
alive "$FCGI_PID" || say "lmtasks-fcgi exited"
stop_all
exit 1
