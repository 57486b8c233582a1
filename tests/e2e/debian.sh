#!/usr/bin/env bash
# The Debian package, end to end on this machine (as root): debian/ builds
# lmtasks_<version>-<rev>_<arch>.deb with dpkg-buildpackage, lintian finds no error or
# warning, and then, with apt-get on the real system:
#
#   (1) a fresh install: the programs (their --version is configure.ac's), the man pages,
#       lmtasks without libcurl, notify through the installed lmtasks-notify,
#       the units (not enabled, nothing started), the nginx snippet and the Apache conf,
#       the examples, the user lmtasks, the store /var/lib/lmtasks as `init --group
#       www-data` makes it; a request served by nginx through the installed snippet to the
#       installed unit's ExecStart, run as the unit's user on a socket handed over as
#       systemd does; remove keeps the store and the user, purge leaves nothing behind
#   (2) an upgrade from 0.1.0 (commit ff400d2 with the debian/ first made for it, commit
#       4978b0b, and a 0.1.0-1 entry;
#       built once and kept in $top_builddir/debian-old/): tasks enqueued, claimed,
#       finished, canceled and deleted under 0.1.0 are served the same, byte for byte,
#       after the upgrade; then purge leaves nothing behind
#
# The system nginx and Apache are never started or reloaded (a private nginx on a free
# loopback port includes the installed snippet), and no system service is left running.
# The suite refuses to run (exit 77) where lmtasks is installed already or
# /var/lib/lmtasks exists: it would replace them.  Run by scripts/test.sh as its own step,
# not by `make check` (it installs packages).  Takes about a minute (the first run longer:
# it builds the 0.1.0 package).
#
#   top_builddir=build bash tests/e2e/debian.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
top_builddir=$(cd "$top_builddir" 2>/dev/null && pwd) || top_builddir=$top_srcdir/build
# The programs under test are the installed ones (notify's too: not the build tree's).
LMTASKS=/usr/bin/lmtasks
LMTASKS_FCGI=/usr/sbin/lmtasks-fcgi
LMTASKS_NOTIFY_INSTALLED=/usr/libexec/lmtasks/lmtasks-notify
unset LMTASKS_NOTIFY
. "$top_srcdir/tests/lib/httplib.sh"
set -u

OLD_COMMIT=ff400d2
OLD_PACKAGING=4978b0b	# the first debian/: what 0.1.0's files were packaged with
OLD_VERSION=0.1.0
STORE=/var/lib/lmtasks
SOCK_DIR=/run/lmtasks
SNIPPET=/etc/nginx/snippets/lmtasks.conf
APACHE_CONF=/etc/apache2/conf-available/lmtasks.conf
UNITS=/lib/systemd/system
section() { echo "# --- $*"; }

[ "$(id -u)" = 0 ] || lmt_skip_all "not root: the suite installs the package with apt-get"
for c in dpkg-buildpackage lintian apt-get dpkg-parsechangelog setpriv systemd-socket-activate curl man; do
	command -v "$c" >/dev/null || lmt_skip_all "no $c (apt-get install devscripts lintian systemd man-db curl)"
done
[ -x "$HTTP_NGINX" ] || lmt_skip_all "no nginx"
if dpkg-query -W -f='${Status}' lmtasks 2>/dev/null | grep -q 'installed\|config-files'; then
	lmt_skip_all "the package lmtasks is installed on this machine: this suite would replace it"
fi
[ -e "$STORE" ] && lmt_skip_all "$STORE exists: this suite would delete it"
[ -e "$SOCK_DIR" ] && lmt_skip_all "$SOCK_DIR exists: something serves lmtasks here"

T=$HTTP_TMP
START=$(now)
VERSION=$(sed -n 's/^AC_INIT(\[lmtasks\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
ARCH=$(dpkg --print-architecture)
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -qq -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confnew)
INSTALLED=
# Whatever happens, the package and the store go (by purge), and our servers stop.
lmt_on_exit 'if [ -n "$INSTALLED" ]; then "${APT[@]}" purge lmtasks >/dev/null 2>&1; fi'
lmt_on_exit 'rm -rf "$SOCK_DIR"'

# build_deb SRCDIR LOG: dpkg-buildpackage -b in SRCDIR (without the debug package).
build_deb() {
	(cd "$1" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" \
		dpkg-buildpackage -us -uc -b) >"$2" 2>&1
}

# apt_install DEB: installs (or upgrades to) DEB as an admin would; the log in $T/apt.log.
apt_install() {
	"${APT[@]}" install "$1" >"$T/apt.log" 2>&1
}

# our_responders: PIDs of processes running the installed responder.
responders() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$LMTASKS_FCGI" ] && echo "${p#/proc/}"
	done
}

# no_service NAME: the package started nothing: no responder runs, no unit is enabled
# (and, where systemd runs, none is active).
no_service() {
	local running enabled=""
	running=$(responders | tr '\n' ' ')
	enabled=$(find /etc/systemd/system -name 'lmtasks-*' 2>/dev/null | tr '\n' ' ')
	if [ -d /run/systemd/system ]; then
		systemctl is-active --quiet lmtasks-fcgi.socket lmtasks-fcgi.service lmtasks-notify.service &&
			enabled+=" (active)"
	fi
	assert_eq "$1: no lmtasks-fcgi runs, no unit is enabled or active" "" "$running$enabled"
}

# store_model NAME: /var/lib/lmtasks as `lmtasks init --group www-data` makes it.
store_model() {
	local got
	got=$(stat -c '%n %a %U %G' "$STORE" "$STORE/data.mdb" "$STORE/lock.mdb" 2>&1 | sed "s|^$STORE/||; s|^$STORE |dir |")
	assert_eq "$1: the store: directory 2750, data.mdb 0640, lock.mdb 0660, lmtasks's, group www-data" \
		$'dir 2750 lmtasks www-data\ndata.mdb 640 lmtasks www-data\nlock.mdb 660 lmtasks www-data' "$got"
}

# as_lmtasks CMD...: runs CMD as the store's owner (as a worker would).
as_lmtasks() { setpriv --reuid=lmtasks --regid=lmtasks --init-groups -- "$@"; }

# serve_start: the installed unit's ExecStart, as its User, on $SOCK_DIR/fcgi.sock handed
# over by systemd-socket-activate (LISTEN_FDS, as lmtasks-fcgi.socket does), and a private
# nginx whose server includes the installed snippet.  Sets RESP_PID.
RESP_PID=
serve_start() {
	local exec user group sock
	exec=$(sed -n 's/^ExecStart=//p' "$UNITS/lmtasks-fcgi.service")
	user=$(sed -n 's/^User=//p' "$UNITS/lmtasks-fcgi.service")
	group=$(sed -n 's/^Group=//p' "$UNITS/lmtasks-fcgi.service")
	sock=$(sed -n 's/^ListenStream=//p' "$UNITS/lmtasks-fcgi.socket")
	assert_eq "the socket unit listens where the snippet connects" \
		"$(sed -n 's/^[[:space:]]*fastcgi_pass unix:\(.*\);/\1/p' "$SNIPPET")" "$sock"
	mkdir -p "$(dirname "$sock")"
	# shellcheck disable=SC2086	# ExecStart is words
	systemd-socket-activate -l "$sock" \
		setpriv --reuid="$user" --regid="$group" --init-groups -- $exec >"$T/responder.log" 2>&1 &
	RESP_PID=$!
	lmt_bg_track "$RESP_PID"
	if wait_for 30 http_sock_ready "$sock"; then
		ok "the unit's '$exec' runs as $user:$group on $sock"
	else
		fail "the unit's '$exec' runs as $user:$group on $sock" "$(cat "$T/responder.log")"
		return 1
	fi
	http_nginx_start snippet "" "	include $SNIPPET;" ||
		{ fail "a private nginx starts with 'include $SNIPPET;'"; return 1; }
}

serve_stop() {
	[ -n "$HTTP_NGINX_PID" ] && http_stop "$HTTP_NGINX_PID" QUIT
	[ -n "$RESP_PID" ] && http_stop "$RESP_PID"
	HTTP_NGINX_PID='' RESP_PID=''
	rm -rf "$SOCK_DIR"
}

# purged NAME: nothing of the package is left.
purged() {
	local left="" f
	for f in /usr/bin/lmtasks "$LMTASKS_FCGI" "$LMTASKS_NOTIFY_INSTALLED" "$STORE" "$SNIPPET" "$APACHE_CONF" \
		"$UNITS/lmtasks-fcgi.service" "$UNITS/lmtasks-fcgi.socket" "$UNITS/lmtasks-notify.service" \
		/usr/sbin/lmtasks-writer /usr/share/man/man8/lmtasks-writer.8.gz /usr/share/doc/lmtasks \
		/usr/share/man/man1/lmtasks.1.gz /usr/share/man/man8/lmtasks-fcgi.8.gz; do
		[ -e "$f" ] && left+="$f "
	done
	left+=$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
		/etc/systemd/system -name '*lmtasks*' 2>/dev/null | tr '\n' ' ')
	getent passwd lmtasks >/dev/null && left+="user:lmtasks "
	getent group lmtasks >/dev/null && left+="group:lmtasks "
	dpkg-query -W lmtasks >/dev/null 2>&1 && left+="dpkg:$(dpkg-query -W -f='${Status}' lmtasks) "
	left+=$(responders | sed 's/^/pid:/' | tr '\n' ' ')
	assert_eq "$1: nothing is left (programs, store, user, group, snippets, units, state, processes)" "" "$left"
}

# ---- the package ----

section "build"
SRC=$T/src/lmtasks-$VERSION
mkdir -p "$SRC"
if git -C "$top_srcdir" rev-parse --git-dir >/dev/null 2>&1; then
	# The files git knows and the new ones it does not ignore (the tree as it is now).
	git -C "$top_srcdir" ls-files -z --cached --others --exclude-standard |
		(cd "$top_srcdir" && tar --null -T - -c) | tar -x -C "$SRC"
else
	(cd "$top_srcdir" && tar -c --exclude=./build --exclude=./build-san --exclude=./build-fuzz .) | tar -x -C "$SRC"
fi
DEB_VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
assert_eq "debian/changelog's version is configure.ac's ($VERSION), revision 1 or more" \
	"$VERSION" "$(printf '%s' "$DEB_VERSION" | sed -n 's/^\(.*\)-[0-9][0-9]*$/\1/p')"
assert_eq "the man pages name version $VERSION" \
	"lmtasks $VERSION"$'\n'"lmtasks $VERSION" \
	"$(sed -s -n '1s/^\.TH [^"]*"[^"]*" "\([^"]*\)".*/\1/p' "$SRC/doc/lmtasks.1" "$SRC/doc/lmtasks-fcgi.8")"
t0=$(now)
if build_deb "$SRC" "$T/build.log"; then
	ok "dpkg-buildpackage -us -uc -b ($(elapsed "$t0") s)"
else
	fail "dpkg-buildpackage -us -uc -b" "$(tail -n 20 "$T/build.log")"
	summary
	exit 1
fi
DEB=$T/src/lmtasks_${DEB_VERSION}_$ARCH.deb
check "it made lmtasks_${DEB_VERSION}_$ARCH.deb" test -f "$DEB"
run lintian --fail-on none "$T/src/lmtasks_${DEB_VERSION}_$ARCH.changes"
tags=$(printf '%s\n' "$LMT_STDOUT" | grep -E '^[EW]: ' || true)
assert_eq "lintian: no error, no warning (debian/lmtasks.lintian-overrides says what is kept)" "" "$tags"
contents=$(dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|')
missing=""
for f in /usr/bin/lmtasks /usr/sbin/lmtasks-fcgi "$LMTASKS_NOTIFY_INSTALLED" /usr/share/man/man1/lmtasks.1.gz \
	/usr/share/man/man8/lmtasks-fcgi.8.gz "$UNITS/lmtasks-fcgi.socket" "$UNITS/lmtasks-fcgi.service" \
	"$UNITS/lmtasks-notify.service" /usr/sbin/lmtasks-writer /usr/share/man/man8/lmtasks-writer.8.gz \
	"$SNIPPET" "$APACHE_CONF" /usr/share/doc/lmtasks/examples/lmtasks.conf \
	/usr/share/doc/lmtasks/examples/lmtasks-location.conf /usr/share/doc/lmtasks/examples/spawn-fcgi.txt \
	/usr/share/doc/lmtasks/examples/apache/lmtasks-proxy-fcgi.conf /usr/share/doc/lmtasks/copyright \
	/usr/share/lmtasks/ui/index.html /usr/share/lmtasks/ui/app.js /etc/nginx/snippets/lmtasks-ui.conf; do
	grep -qxF "$f" <<<"$contents" || missing+="$f "
done
assert_eq "the .deb holds the programs, man pages, units, snippets, examples" "" "$missing"
assert_eq "/etc files are conffiles" "$APACHE_CONF"$'\n'"/etc/nginx/snippets/lmtasks-ui.conf"$'\n'"/etc/nginx/snippets/lmtasks-writer.conf"$'\n'"$SNIPPET" \
	"$(dpkg-deb -I "$DEB" conffiles | sort)"

# ---- (1) a fresh install ----

section "(1) install"
if apt_install "$DEB"; then
	INSTALLED=1
	ok "apt-get install $(basename "$DEB")"
else
	fail "apt-get install $(basename "$DEB")" "$(tail -n 20 "$T/apt.log")"
	summary
	exit 1
fi
run lmtasks --version
assert_eq "lmtasks --version: lmtasks $VERSION (PATH finds /usr/bin/lmtasks)" "lmtasks $VERSION" "$LMT_STDOUT"
run lmtasks-fcgi --version
assert_eq "lmtasks-fcgi --version: lmtasks-fcgi $VERSION" "lmtasks-fcgi $VERSION" "$LMT_STDOUT"
run env MANPAGER=cat MANWIDTH=80 man lmtasks
assert_match "man lmtasks shows lmtasks(1)" '^ +lmtasks +- +enqueue' "$LMT_STDOUT"
run env MANPAGER=cat MANWIDTH=80 man 8 lmtasks-fcgi
assert_match "man 8 lmtasks-fcgi shows lmtasks-fcgi(8)" '^ +lmtasks-fcgi +- ' "$LMT_STDOUT"
check "the nginx snippet is nginx/lmtasks-location.conf" cmp "$SNIPPET" "$top_srcdir/nginx/lmtasks-location.conf"
check "the Apache conf (a2enconf lmtasks) is apache/lmtasks-conf.conf" cmp "$APACHE_CONF" "$top_srcdir/apache/lmtasks-conf.conf"
check "the examples are in /usr/share/doc/lmtasks/examples" \
	test -f /usr/share/doc/lmtasks/examples/apache/lmtasks-fcgid.conf
assert_eq "the service runs $LMTASKS_FCGI on the store" "ExecStart=$LMTASKS_FCGI --db $STORE" \
	"$(grep '^ExecStart=' "$UNITS/lmtasks-fcgi.service")"
IFS=: read -r _ _ uid _ _ home shell <<<"$(getent passwd lmtasks)"
if [ -n "${uid:-}" ] && [ "$uid" -lt 1000 ] && [ "$home" = "$STORE" ] && [ "$shell" = /usr/sbin/nologin ]; then
	ok "the system user lmtasks (uid $uid, home $STORE, no login shell)"
else
	fail "the system user lmtasks" "$(getent passwd lmtasks)"
fi
store_model "install"
no_service "install"

section "(1) the store and the permission model"
check "lmtasks check on the new store" lmtasks check
run as_lmtasks lmtasks enqueue movies documentAddition --details '{"receivedDocuments":10}'
assert_eq "the user lmtasks writes the store (enqueue without --db: the default is $STORE)" 0 "$LMT_RC"
run setpriv --reuid=www-data --regid=www-data --init-groups -- lmtasks enqueue movies documentAddition
assert_eq "the web server's user cannot write it (exit 4)" 4 "$LMT_RC"
store_model "after writes"

section "(1) lmtasks links no libcurl; notify runs the installed lmtasks-notify"
if command -v ldd >/dev/null; then
	assert_eq "/usr/bin/lmtasks links no libcurl (nor zlib)" "" "$(ldd /usr/bin/lmtasks | grep -E 'libcurl|libz\.')"
	assert_match "$LMTASKS_NOTIFY_INSTALLED links libcurl" 'libcurl' "$(ldd "$LMTASKS_NOTIFY_INSTALLED")"
fi
run as_lmtasks lmtasks notify --once
assert_eq "lmtasks notify --once (no webhooks): lmtasks execs $LMTASKS_NOTIFY_INSTALLED, exit 0" "0 " \
	"$LMT_RC $LMT_STDERR"
run as_lmtasks lmtasks --db "$STORE" notify --batch-size 0
assert_match "  ... which checks notify's values (exit 2)" '^2 lmtasks: notify: --batch-size' "$LMT_RC $LMT_STDERR"
run "$LMTASKS_NOTIFY_INSTALLED" --version
assert_eq "lmtasks-notify --version" "lmtasks-notify $VERSION" "$LMT_STDOUT"
assert_eq "the notify service runs lmtasks notify on the store" \
	"ExecStart=/usr/bin/lmtasks --db $STORE notify" "$(grep '^ExecStart=' "$UNITS/lmtasks-notify.service")"

section "(1) served through the installed snippet"
if serve_start; then
	http GET /tasks/0
	assert_eq "nginx + $SNIPPET + the responder: GET /tasks/0 is lmtasks get 0" \
		"200 $(lmtasks get 0)" "$HTTP_STATUS $HTTP_BODY"
	http GET /health
	assert_eq "GET /health" '200 {"status":"available"}' "$HTTP_STATUS $HTTP_BODY"
fi
serve_stop

section "(1) remove, then purge"
if "${APT[@]}" remove lmtasks >"$T/apt.log" 2>&1; then
	ok "apt-get remove lmtasks"
else
	fail "apt-get remove lmtasks" "$(tail -n 20 "$T/apt.log")"
fi
left=""
for f in /usr/bin/lmtasks "$LMTASKS_FCGI" "$LMTASKS_NOTIFY_INSTALLED"; do [ -e "$f" ] && left+="$f "; done
assert_eq "remove: the programs are gone" "" "$left"
kept=$(stat -c %U "$STORE/data.mdb" 2>&1; getent passwd lmtasks | cut -d: -f1)
assert_eq "remove keeps the store and the user" $'lmtasks\nlmtasks' "$kept"
if "${APT[@]}" purge lmtasks >"$T/apt.log" 2>&1; then
	ok "apt-get purge lmtasks"
	INSTALLED=
else
	fail "apt-get purge lmtasks" "$(tail -n 20 "$T/apt.log")"
fi
purged "purge"

# ---- (2) upgrade from 0.1.0 ----

section "(2) upgrade from $OLD_VERSION"
OLD_DIR=$top_builddir/debian-old
OLD_DEB=$OLD_DIR/lmtasks_$OLD_VERSION-1_$ARCH.deb
# The old package is built once (its sources and packaging are fixed commits).
STAMP=$(git -C "$top_srcdir" rev-parse "$OLD_COMMIT" "$OLD_PACKAGING" 2>/dev/null | sha256sum | cut -c1-16)
if [ -f "$OLD_DEB" ] && [ "$(cat "$OLD_DIR/stamp" 2>/dev/null)" = "$STAMP" ]; then
	ok "the $OLD_VERSION package, built before from the same commits ($OLD_DEB)"
elif ! git -C "$top_srcdir" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null ||
	! git -C "$top_srcdir" cat-file -e "$OLD_PACKAGING^{commit}" 2>/dev/null; then
	skip "the upgrade from $OLD_VERSION" "commit $OLD_COMMIT or $OLD_PACKAGING is not in this repository (a shallow clone?)"
	OLD_DEB=
else
	rm -rf "$OLD_DIR"
	mkdir -p "$OLD_DIR/lmtasks-$OLD_VERSION"
	OSRC=$OLD_DIR/lmtasks-$OLD_VERSION
	git -C "$top_srcdir" archive "$OLD_COMMIT" | tar -x -C "$OSRC"
	# The first packaging over the old sources: its debian/ and the Apache conf it installs,
	# which the old tree did not have yet (today's debian/ installs files 0.1.0 lacks).
	git -C "$top_srcdir" archive "$OLD_PACKAGING" debian apache/lmtasks-conf.conf | tar -x -C "$OSRC"
	{
		echo "lmtasks ($OLD_VERSION-1) unstable; urgency=medium"
		echo
		echo "  * Release $OLD_VERSION."
		echo
		sed -n '/^ -- /{p;q}' "$SRC/debian/changelog"
	} >"$OSRC/debian/changelog"
	t0=$(now)
	if build_deb "$OSRC" "$OLD_DIR/build.log" && [ -f "$OLD_DEB" ]; then
		ok "the $OLD_VERSION package: commit $OLD_COMMIT with the debian/ of $OLD_PACKAGING ($(elapsed "$t0") s)"
		echo "$STAMP" >"$OLD_DIR/stamp"
		rm -rf "$OSRC"
	else
		fail "the $OLD_VERSION package: commit $OLD_COMMIT with the debian/ of $OLD_PACKAGING" "$(tail -n 20 "$OLD_DIR/build.log")"
		OLD_DEB=
	fi
fi

if [ -n "$OLD_DEB" ] && apt_install "$OLD_DEB"; then
	INSTALLED=1
	ok "apt-get install $(basename "$OLD_DEB")"
	run lmtasks --version
	assert_eq "lmtasks --version: lmtasks $OLD_VERSION" "lmtasks $OLD_VERSION" "$LMT_STDOUT"
	# Tasks in every state, by the old writer: 300 by batch, claimed, finished, failed,
	# canceled, some deleted (uids stay allocated), an index deleted.
	"$LMT_PYTHON" -c '
import json
for i in range(300):
    print(json.dumps({"indexUid": ["movies", "books", "music"][i % 3], "type": "documentAddition",
                      "details": {"receivedDocuments": i}}))' >"$T/batch.ndjson"
	if { as_lmtasks lmtasks enqueue --batch - <"$T/batch.ndjson" &&
		as_lmtasks lmtasks claim --index movies && as_lmtasks lmtasks succeed 0 --details '{"indexedDocuments":1}' &&
		as_lmtasks lmtasks claim --index books && as_lmtasks lmtasks fail 1 --code boom --message "it broke" &&
		as_lmtasks lmtasks start 2 && as_lmtasks lmtasks claim && as_lmtasks lmtasks cancel 4 5 &&
		as_lmtasks lmtasks delete 1 && as_lmtasks lmtasks index delete music; } >"$T/old.log" 2>&1; then
		ok "$OLD_VERSION: 300 tasks enqueued, claimed, succeeded, failed, canceled, deleted"
	else
		fail "$OLD_VERSION: 300 tasks enqueued, claimed, succeeded, failed, canceled, deleted" "$(cat "$T/old.log")"
	fi
	lmtasks list --reverse --limit 1000 >"$T/before.json"
	lmtasks list --reverse --limit 1000 --indexUids movies >"$T/before-movies.json"
	n_before=$(json_get "$T/before.json" 'd["total"]')
	# 300, less the one deleted, with the taskCancelation and the taskDeletion.
	json_check "$OLD_VERSION: the store holds 301 tasks" "$T/before.json" 'd["total"] == 301'
	if apt_install "$DEB"; then
		ok "apt-get install $(basename "$DEB") over $OLD_VERSION"
	else
		fail "apt-get install $(basename "$DEB") over $OLD_VERSION" "$(tail -n 20 "$T/apt.log")"
	fi
	run lmtasks --version
	assert_eq "after the upgrade: lmtasks $VERSION" "lmtasks $VERSION" "$LMT_STDOUT"
	check "after the upgrade: lmtasks check" lmtasks check
	store_model "after the upgrade"
	no_service "after the upgrade"
	run lmtasks list --reverse --limit 1000
	assert_eq "after the upgrade: lmtasks list is what it was (all $n_before tasks)" "$(cat "$T/before.json")" "$LMT_STDOUT"
	if serve_start; then
		http GET "/tasks?reverse=true&limit=1000"
		assert_eq "after the upgrade: nginx serves every task as before (GET /tasks, $n_before tasks)" \
			"200 $(cat "$T/before.json")" "$HTTP_STATUS $HTTP_BODY"
		http GET "/indexes/movies/tasks?reverse=true&limit=1000"
		assert_eq "after the upgrade: GET /indexes/movies/tasks as before" \
			"200 $(cat "$T/before-movies.json")" "$HTTP_STATUS $HTTP_BODY"
		http GET /indexes/music/tasks
		assert_eq "after the upgrade: the deleted index is still deleted" 404 "$HTTP_STATUS"
	fi
	serve_stop
	run as_lmtasks lmtasks enqueue movies indexUpdate
	json_check "after the upgrade: the next uid is 302 (uids never reused)" "$LMT_STDOUT" 'd["uid"] == 302'
	if "${APT[@]}" purge lmtasks >"$T/apt.log" 2>&1; then
		ok "apt-get purge lmtasks"
		INSTALLED=
	else
		fail "apt-get purge lmtasks" "$(tail -n 20 "$T/apt.log")"
	fi
	purged "purge after the upgrade"
elif [ -n "$OLD_DEB" ]; then
	fail "apt-get install $(basename "$OLD_DEB")" "$(tail -n 20 "$T/apt.log")"
fi

echo "# $(elapsed "$START") s"
summary
