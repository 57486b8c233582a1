#!/usr/bin/env bash
# FastCGI over TCP (README "Scaling"): nginx reaching lmtasks-fcgi --listen 127.0.0.2:PORT,
# a loopback address standing in for another host, with nginx/lmtasks-tcp.conf's upstream.
#
#   LMTASKS=build/lmtasks LMTASKS_FCGI=build/lmtasks-fcgi bash tests/e2e/tcp.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/httplib.sh"

set -u
[ -x "$HTTP_NGINX" ] || lmt_skip_all "no nginx (apt-get install nginx)"
command -v curl >/dev/null || lmt_skip_all "no curl"
command -v ss >/dev/null || lmt_skip_all "no ss (iproute2)"
[ -f /etc/nginx/fastcgi_params ] || lmt_skip_all "no /etc/nginx/fastcgi_params"

T=$HTTP_TMP
S=$T/store
http_demo_store tcp.sh
ADDR=127.0.0.2

# A free port on 127.0.0.2, and the responder on it.
started=
for _ in 1 2 3 4 5; do
	port=$(http_random_port) || continue
	"$LMTASKS_FCGI" --db "$S" --threads 2 --listen "$ADDR:$port" </dev/null >>"$T/fcgi.log" 2>&1 &
	pid=$!
	lmt_on_exit "http_stop $pid"
	for _ in $(seq 600); do
		[ -n "$(ss -Htln "( sport = :$port )" 2>/dev/null)" ] && { started=1; break; }
		http_alive "$pid" || break
		sleep 0.05
	done
	[ -n "$started" ] && break
done
[ -n "$started" ] || { echo "tcp.sh: lmtasks-fcgi did not listen on $ADDR"; cat "$T/fcgi.log"; exit 99; }
listen=$(ss -Htlnp "( sport = :$port )" 2>/dev/null | awk '{ print $4 }')
assert_eq "the responder listens on $ADDR:PORT only" "$ADDR:$port" "$listen"

# The upstream and location of nginx/lmtasks-tcp.conf, with this test's address.
conf=$(sed -n '/^upstream/,/^}/p' "$top_srcdir/nginx/lmtasks-tcp.conf" | sed "s|10.0.0.5:9000|$ADDR:$port|")
loc=$(sed -n '/^	location/,/^	}/p' "$top_srcdir/nginx/lmtasks-tcp.conf")
http_nginx_start tcp "$conf" "$loc" || exit 99

http GET /tasks/0
assert_eq "a task over FastCGI/TCP" 200 "$HTTP_STATUS"
cgi_ref=$("$LMTASKS" --db "$S" get 0)
assert_eq "the same bytes the CLI prints" "$cgi_ref" "$HTTP_BODY"
http GET '/tasks?limit=2'
assert_match "a list over FastCGI/TCP" '^\{"results":\[\{"uid":' "$HTTP_BODY"
http GET /tasks/99
assert_eq "a 404 over FastCGI/TCP" 404 "$HTTP_STATUS"
http HEAD /tasks/0
assert_eq "HEAD over FastCGI/TCP: 200, no body" "200 ''" "$HTTP_STATUS '$HTTP_BODY'"

# Kept connections: 200 requests from 4 clients, every one 200, few TCP connections.
codes=$(for c in 1 2 3 4; do
	(for _ in $(seq 50); do printf 'url = "%s/tasks/0"\noutput = "/dev/null"\n' "$HTTP_BASE"; done >"$T/c$c.cfg"
	 curl -s -K "$T/c$c.cfg" -w '%{http_code}\n') &
done; wait)
assert_eq "200 requests over TCP from 4 clients, all 200" "200:200" \
	"$(grep -c '^200$' <<<"$codes"):$(wc -l <<<"$codes" | tr -d ' ')"
est=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
tw=$(ss -Htn state time-wait "( sport = :$port or dport = :$port )" 2>/dev/null | wc -l)
assert_eq "nginx kept its connections to the responder open ($est open, 1 to 8)" 1 \
	"$(( est >= 1 && est <= 8 ))"
assert_lt "and reused them: $tw closed (a connection per request would leave 200)" "$tw" 10

summary
