#!/usr/bin/env bash
# The quick start, scripts/serve.sh, from a copy of the tree in a 0700 directory -- as
# root, /root/lmtasks-test.XXXXXXXX, where a fresh Debian machine's user clones: nginx's
# workers run as nobody there and may not enter the tree.  serve.sh runs on a free port
# with the binaries of this build (LMTASKS_BUILD), and must:
#
#   - say it is ready, and serve /health, a task, a page and a write made with the CLI
#     through nginx;
#   - keep its socket outside the tree, in a private directory that it removes on SIGTERM,
#     when it stops nginx and the responder by PID and frees the port;
#   - when /health fails, not say it is ready, and name the cause from nginx's error log
#     (played by a responder whose socket nobody may open).
#
# One line per check; ends with "N passed, M failed"; exits non-zero on a failure.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
http_need_binaries quickstart.sh
[ -x "$HTTP_NGINX" ] || lmt_missing_all nginx "no nginx (apt-get install nginx)"
lmt_have curl || lmt_missing_all curl "no curl"
lmt_have ss || lmt_missing_all ss "no ss (iproute2)"
[ -f /etc/nginx/fastcgi_params ] || lmt_missing_all nginx "no /etc/nginx/fastcgi_params"
T=$HTTP_TMP
START=$(now)
BUILD=$(dirname "$LMTASKS")

# The copy: the tree as a user would have it, without builds or a var/ of its own.
base=${TMPDIR:-/tmp}
[ "$(id -u)" -eq 0 ] && [ -d /root ] && [ -w /root ] && base=/root
D=$(mktemp -d "$base/lmtasks-test.XXXXXXXX") || { echo "quickstart.sh: mktemp failed" >&2; exit 99; }
lmt_on_exit 'rm -rf -- "$D"'
chmod 0700 "$D"
tar -C "$top_srcdir" --exclude=./build --exclude='./build-*' --exclude=./var --exclude=./.git \
	--exclude='./lmtasks-*' -cf - . | tar -C "$D" -xf - ||
	{ echo "quickstart.sh: cannot copy the tree to $D" >&2; exit 99; }
chmod -R u+w "$D"	# a distcheck tree is read-only
chmod 0700 "$D"		# (tar gave it the source tree's mode)
assert_eq "the copy is in a 0700 directory ($D)" 700 "$(stat -c %a "$D")"

# serve_start NAME BUILD_DIR: starts serve.sh from the copy in the background; true once
# it says it is ready, false when it exits (or after 60 s).  Output in $T/NAME.out.
serve_start() {
	http_serve_start "$D" "$T/$1.out" LMTASKS_BUILD="$2" || return 1
	lmt_bg_track "$SERVE_PID"
	http_serve_ready "$T/$1.out" 60
}
serve_stop() { http_serve_stop 15; }
lmt_on_exit serve_stop

echo "# ---- serve.sh from $D"
if serve_start ok "$BUILD"; then
	ok "serve.sh says it is ready on 127.0.0.1:$PORT"
else
	fail "serve.sh says it is ready" "$(tail -n 20 "$T/ok.out")"
	summary
	exit
fi
U=http://127.0.0.1:$PORT
http_get() { curl -s --max-time 5 -o "$T/body" -w '%{http_code}' "$U$1"; }
assert_eq "GET /health through nginx: 200" 200 "$(http_get /health)"
assert_eq "... {\"status\":\"available\"}" '{"status":"available"}' "$(cat "$T/body")"
assert_eq "GET /tasks/0: 200" 200 "$(http_get /tasks/0)"
json_check "... the demo store's task 0 (movies, indexCreation)" "$T/body" \
	'd["uid"] == 0 and d["indexUid"] == "movies" and d["type"] == "indexCreation"'
assert_eq "GET /tasks?limit=2&from=5: 200" 200 "$(http_get '/tasks?limit=2&from=5')"
json_check "... a page of two from 5" "$T/body" '[t["uid"] for t in d["results"]] == [5, 4] and d["total"] == 9'
run "$LMTASKS" --db "$D/var/store" enqueue movies documentAddition --details '{"receivedDocuments":5}'
assert_eq "the CLI writes into the demo store" 0 "$LMT_RC"
assert_eq "GET /tasks/9 serves that write: 200" 200 "$(http_get /tasks/9)"
json_check "... as enqueued" "$T/body" 'd["uid"] == 9 and d["status"] == "enqueued"'
assert_eq "GET /ui/: the dashboard's page, 200" 200 "$(http_get /ui/)"
assert_contains "... its page" "lmtasks" "$(cat "$T/body")"
assert_eq "GET /ui/app.js: 200" 200 "$(http_get /ui/app.js)"
assert_eq "GET /ui/vendor/chart.js/chart.esm.js (libjs-chart.js): 200" 200 \
	"$(http_get /ui/vendor/chart.js/chart.esm.js)"
sock=$(sed -n 's/^  Socket: //p' "$T/ok.out")
case $sock in
"$D"/* | "") fail "the socket is outside the tree" "serve.sh says: ${sock:-nothing}" ;;
*) ok "the socket is outside the tree ($sock)" ;;
esac
rundir=$(dirname "$sock")
if [ "$(id -u)" -eq 0 ]; then
	assert_eq "its directory: 750, group of nginx's workers (nobody's)" "750 $(id -gn nobody)" \
		"$(stat -c '%a %G' "$rundir" 2>&1)"
else
	assert_eq "its directory: 700" 700 "$(stat -c %a "$rundir" 2>&1)"
fi
assert_eq "nginx's error log holds no error" "" \
	"$(grep -E '\[(error|crit|alert|emerg)\]' "$D/var/nginx/error.log" 2>/dev/null | head -n 3)"
pid=$SERVE_PID
serve_stop
! http_alive "$pid" && ok "serve.sh stops on SIGTERM" || fail "serve.sh stops on SIGTERM"
http_port_free "$PORT" && ok "... nothing is left on port $PORT" ||
	fail "... nothing is left on port $PORT" "$(ss -Htlnp "( sport = :$PORT )")"
[ ! -e "$rundir" ] && ok "... and its runtime directory is gone" ||
	fail "... and its runtime directory is gone" "$(ls -la "$rundir")"
left=$(pgrep -af -- "$D" | head -n 3)
assert_eq "... no process of it is left" "" "$left"

echo "# ---- /health fails: serve.sh names the cause"
# A build whose responder makes its socket unusable to anyone but root: nginx's workers
# get "Permission denied", as they did with the socket in a 0700 tree.
FB=$T/badbuild
mkdir -p "$FB"
ln -s "$LMTASKS" "$FB/lmtasks"
cat >"$FB/lmtasks-fcgi" <<EOF
#!/usr/bin/env bash
# lmtasks-fcgi with a socket nobody but root may use, from the moment it exists (the last
# --socket-mode given wins).
exec "$LMTASKS_FCGI" "\$@" --socket-mode 0000
EOF
chmod +x "$FB/lmtasks-fcgi"
if serve_start bad "$FB"; then
	fail "with /health failing, serve.sh does not say it is ready" "$(tail -n 20 "$T/bad.out")"
else
	ok "with /health failing, serve.sh does not say it is ready"
fi
if http_alive "$SERVE_PID"; then
	serve_stop
	rc=timeout
else
	wait "$SERVE_PID"
	rc=$?
	SERVE_PID=
fi
assert_ne "... and exits non-zero" 0 "$rc"
out=$(cat "$T/bad.out")
assert_contains "... says /health does not answer 200" "GET /health answers 502, not 200" "$out"
assert_match "... shows nginx's error log line" 'connect\(\) to unix:.*fcgi\.sock failed \(13: Permission denied\)' "$out"
assert_contains "... and names the cause" "cannot reach the socket" "$out"
http_port_free "$PORT" && ok "... and leaves nothing on port $PORT" ||
	fail "... and leaves nothing on port $PORT" "$(ss -Htlnp "( sport = :$PORT )")"

echo "# $(elapsed "$START") s"
summary
