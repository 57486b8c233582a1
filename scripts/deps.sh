#!/usr/bin/env bash
# Installs the Debian packages lmtasks needs that are not there yet; sourced by
# serve.sh and test.sh.  Nothing is fetched when everything is installed.
lmt_install_deps() {
	local pkgs=(build-essential autoconf automake pkg-config
		libfcgi-dev libjson-c-dev liblmdb-dev libsodium-dev libcriterion-dev
		libcurl4-openssl-dev zlib1g-dev
		nginx spawn-fcgi lmdb-utils curl "$@")
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	echo "lmtasks: installing ${missing[*]}" >&2
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || {
			echo "lmtasks: run as root, or install: ${missing[*]}" >&2
			return 1
		}
		sudo=(sudo)
	fi
	# Packages such as nginx and apache2 start their system service when installed; the
	# project starts its own servers on other ports, so keep those from starting (the
	# usual policy-rc.d, only when there is none already).
	local policy=/usr/sbin/policy-rc.d added=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
			"${sudo[@]}" chmod 755 "$policy" && added=1
	fi
	local rc=0
	"${sudo[@]}" apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null || rc=$?
	[ -n "$added" ] && "${sudo[@]}" rm -f "$policy"
	return "$rc"
}

# Configures (once) and builds in build/, out of the source tree; run from the top.
lmt_build() {
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
	fi
	mkdir -p build
	if [ ! -f build/Makefile ] || [ configure -nt build/Makefile ]; then
		(cd build && ../configure -q "$@")
	fi
	make -s -C build -j"$(nproc)"
}
