# Shared helpers for the shell test suites (cli.sh, cgi.sh, nginx.sh).  Source it:
#
#   . "${top_srcdir:-$(dirname "$0")/../..}/tests/lib/lib.sh"
#   lmt_tmpdir                          # $LMT_TMP: removed (and background jobs killed) on exit
#   check "name" cmd args...            # passes when cmd exits 0
#   assert_exit 3 cmd args...           # passes when cmd exits 3 (-m NAME to name the check)
#   assert_eq "name" "$expected" "$actual"
#   json_get "$json_or_file" 'd["results"][0]["uid"]'
#   summary                             # "N passed, M failed"; returns 1 when M > 0
#
# Every check prints one line: "ok N - name" or "not ok N - name", followed on failure by
# "# " lines that say why.  After run / check / assert_exit, $LMT_RC, $LMT_STDOUT and
# $LMT_STDERR hold the command's exit status and output (also in $LMT_TMP/last.out|err).
#
# Commands that are not shell functions are killed after $LMT_CMD_TIMEOUT seconds (default
# 60) so that a hang fails a check instead of the whole suite: a command so killed gives
# 124 (137 when it had to be killed with SIGKILL, 5 s after SIGTERM), and the log names
# it.  One watchdog per suite does that (lmt_guard), not a `timeout` process per command.

LMT_PASS=${LMT_PASS:-0}
LMT_FAIL=${LMT_FAIL:-0}
LMT_SKIP=${LMT_SKIP:-0}
LMT_N=${LMT_N:-0}
LMT_CMD_TIMEOUT=${LMT_CMD_TIMEOUT:-60}
LMT_CLEANUP=()
LMT_BG_PIDS=()
# The interpreter itself, not a version manager's shim: each call then costs ~40 ms, not ~170.
if [ -z "${LMT_PYTHON:-}" ]; then
	LMT_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	[ -x "$LMT_PYTHON" ] || LMT_PYTHON=python3
fi

# The binaries under test: from `make check`'s environment, else the build tree.
: "${top_builddir:=.}"
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${LMTASKS:=$top_builddir/lmtasks}"
# Under the sanitizers (scripts/test.sh sets LMTASKS_SANITIZED) the CLI the suites run is
# the same program without LeakSanitizer's scan at exit (tests/lib/noscan.c says why).
if [ -n "${LMTASKS_SANITIZED:-}" ] && [ -x "${LMTASKS_NOSCAN:-}" ]; then
	LMTASKS=$LMTASKS_NOSCAN
fi
: "${LMTASKS_FCGI:=$top_builddir/lmtasks-fcgi}"

# ---- bookkeeping ----

# lmt_on_exit CMD: runs CMD (a string, eval'd) when the script exits, last added first.
lmt_on_exit() {
	LMT_CLEANUP=("$1" "${LMT_CLEANUP[@]}")
}

# lmt_bg_track PID: kills PID (a background job of this shell; only it, not its children)
# on exit if it is still running.
lmt_bg_track() {
	LMT_BG_PIDS+=("$1")
}

lmt__cleanup() {
	local rc=$? c p
	local running=" $(jobs -pr | tr '\n' ' ') "
	for p in "${LMT_BG_PIDS[@]}"; do
		# Only a job of this shell that still runs: never a pid the system reused.
		case $running in *" $p "*) kill -9 "$p" 2>/dev/null ;; esac
	done
	for p in "${LMT_BG_PIDS[@]}"; do
		case $running in *" $p "*) wait "$p" 2>/dev/null ;; esac
	done
	for c in "${LMT_CLEANUP[@]}"; do
		eval "$c" || true
	done
	return "$rc"
}
trap lmt__cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# lmt_tmpdir: creates $LMT_TMP (once) and removes it on exit, unless LMT_KEEP_TMP is set.
lmt_tmpdir() {
	if [ -z "${LMT_TMP:-}" ] || [ ! -d "$LMT_TMP" ]; then
		LMT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/lmtasks-test.XXXXXXXX") || {
			echo "lmt_tmpdir: mktemp failed" >&2
			exit 99
		}
		export LMT_TMP
		# What lmt_sleep waits on (a FIFO opened read-write never has data).
		mkfifo "$LMT_TMP/.tick" 2>/dev/null && LMT_TICK=$LMT_TMP/.tick
		lmt__json_start
		lmt__watchdog_start
		if [ -n "${LMT_KEEP_TMP:-}" ]; then
			echo "# keeping $LMT_TMP" >&2
		else
			lmt_on_exit 'rm -rf -- "$LMT_TMP"'
		fi
	fi
	printf '%s\n' "$LMT_TMP" >/dev/null
}

# ---- results ----

lmt__diag() {
	# Prints its arguments as "# " lines, each line of each argument, at most 20 lines.
	printf '%s\n' "$@" | head -n 20 | sed 's/^/#   /'
}

ok() {
	LMT_N=$((LMT_N + 1))
	LMT_PASS=$((LMT_PASS + 1))
	printf 'ok %d - %s\n' "$LMT_N" "$1"
}

# fail NAME [WHY...]
fail() {
	LMT_N=$((LMT_N + 1))
	LMT_FAIL=$((LMT_FAIL + 1))
	printf 'not ok %d - %s\n' "$LMT_N" "$1"
	shift
	[ $# -gt 0 ] && lmt__diag "$@"
	return 0
}

# skip NAME WHY: counted apart; does not fail the suite.
skip() {
	LMT_N=$((LMT_N + 1))
	LMT_SKIP=$((LMT_SKIP + 1))
	printf 'ok %d - %s # SKIP %s\n' "$LMT_N" "$1" "${2:-}"
}

# lmt_skip_all WHY: the whole suite cannot run here; automake counts exit 77 as SKIP.
lmt_skip_all() {
	echo "SKIP: $*"
	exit 77
}

# lmt_ci: true under a CI run (CI=true, as CI services set it).
lmt_ci() {
	case ${CI:-} in true | TRUE | True | 1 | yes) return 0 ;; esac
	return 1
}

# lmt_have TOOL: TOOL is on PATH and not hidden by LMT_HIDE_TOOLS (a space- or
# comma-separated list, so that a test can play a machine without it).
lmt_have() {
	local hidden=" ${LMT_HIDE_TOOLS:-} "
	case ${hidden//,/ } in *" $1 "*) return 1 ;; esac
	command -v "$1" >/dev/null 2>&1
}

# lmt_missing_all TOOL WHY: TOOL, which scripts/test.sh installs, is missing.  The suite
# is skipped (exit 77) -- except under CI, where a run without it must not pass: the
# suite fails (exit 99) and names TOOL.
lmt_missing_all() {
	if lmt_ci; then
		echo "FAIL: $1 is missing (CI=true: what scripts/test.sh installs may not be skipped): $2"
		exit 99
	fi
	lmt_skip_all "$2"
}

# lmt_missing NAME TOOL WHY: the check NAME needs TOOL, which scripts/test.sh installs:
# skipped, or failed under CI, naming TOOL.
lmt_missing() {
	if lmt_ci; then
		fail "$1" "$2 is missing (CI=true: what scripts/test.sh installs may not be skipped): $3"
	else
		skip "$1" "$3"
	fi
}

# summary: prints "N passed, M failed" and returns non-zero when something failed.
summary() {
	[ "$LMT_SKIP" -gt 0 ] && echo "# $LMT_SKIP skipped"
	echo "$LMT_PASS passed, $LMT_FAIL failed"
	[ "$LMT_FAIL" -eq 0 ] && [ "$LMT_PASS" -gt 0 ]
}

# ---- running commands ----

# run CMD...: runs CMD, storing LMT_RC, LMT_STDOUT, LMT_STDERR; never fails itself.
# Standard input is passed through.
run() {
	lmt_tmpdir
	local out="$LMT_TMP/last.out" err="$LMT_TMP/last.err"
	local kind=
	# (type's answer through a file: a command substitution would fork.)
	type -t "$1" >"$LMT_TMP/last.type" 2>/dev/null
	read -r kind <"$LMT_TMP/last.type"
	if [ "$kind" = function ] || [ "$kind" = builtin ]; then
		"$@" >"$out" 2>"$err"
	else
		lmt_guard "$LMT_CMD_TIMEOUT" "$@" >"$out" 2>"$err"
	fi
	LMT_RC=$?
	# $(<FILE), not $(cat FILE): bash reads the file itself, no process is started.
	LMT_STDOUT=$(<"$out")
	LMT_STDERR=$(<"$err")
	return 0
}

# lmt_guard SECONDS CMD...: runs CMD (a program, in the foreground, with the caller's
# standard input and output) and returns its exit status; when it runs for more than
# SECONDS, the suite's watchdog sends it SIGTERM (SIGKILL 5 s later), says so in the log,
# and 124 is returned (137 when SIGKILL was needed), as timeout(1) would.  Without the
# watchdog (bash older than 5.0, a script that sourced this file apart from the suite, SECONDS
# not whole) it is timeout(1) itself.
lmt_guard() {
	local secs=$1 f rc
	shift
	if [ -z "$LMT__WATCHDOG" ] || [ ! -d "$LMT_TMP/.run" ] || [[ ! $secs =~ ^[0-9]+$ ]]; then
		timeout --foreground -k 5 "$secs" "$@"
		return
	fi
	# What the watchdog reads: since when, for how long, and what (the caller's shell is
	# the file's name: the command is its youngest child).
	f=$LMT_TMP/.run/$BASHPID
	printf '%s %s\n%s\n' "$EPOCHSECONDS" "$secs" "$*" >"$f"
	"$@"
	rc=$?
	: >"$f"
	if [ -e "$f.killed" ]; then
		local how=
		read -r how <"$f.killed"
		command rm -f "$f.killed"
		[ "$how" = KILL ] && return 137
		return 124
	fi
	return "$rc"
}

# The watchdog: one background shell per suite that looks, once a second, at what each of
# the suite's shells is running under lmt_guard.
LMT__WATCHDOG=
lmt__watchdog_start() {
	[ -z "$LMT__WATCHDOG" ] && [ "$BASHPID" = "$$" ] && [ -n "${EPOCHSECONDS:-}" ] &&
		[ -n "${LMT_TICK:-}" ] || return 0
	mkdir "$LMT_TMP/.run" 2>/dev/null || return 0
	lmt__watchdog "$$" </dev/null &
	LMT__WATCHDOG=$!
	lmt_bg_track "$LMT__WATCHDOG"
}
# lmt__youngest PID: the child of PID started last (the command its shell waits for).
lmt__youngest() {
	local c best= bt=-1 st rest
	local -a kids f
	# (The list ends without a newline: read's status says nothing.)
	read -r -a kids <"/proc/$1/task/$1/children" 2>/dev/null
	for c in "${kids[@]}"; do
		# Field 22 of stat is the start time; the name (field 2) may hold spaces.
		read -r rest <"/proc/$c/stat" 2>/dev/null || continue
		read -r -a f <<<"${rest##*) }"
		st=${f[19]}
		if [ "$st" -gt "$bt" ] || { [ "$st" -eq "$bt" ] && [ "$c" -gt "$best" ]; }; then
			bt=$st best=$c
		fi
	done
	[ -n "$best" ] && echo "$best"
}
lmt__watchdog() {
	local suite=$1 f start secs cmd pid shell
	local -A sent=()
	trap - EXIT INT TERM
	while [ -d "/proc/$suite" ] && [ -d "$LMT_TMP/.run" ]; do
		for f in "$LMT_TMP"/.run/*; do
			# (Empty: nothing running; *.killed: lmt_guard's answer.)
			[ -s "$f" ] && [ "${f%.killed}" = "$f" ] || continue
			start= secs= cmd=
			{ read -r start secs && read -r cmd; } 2>/dev/null <"$f"
			# (Whole seconds on both sides: more than SECS have passed, never fewer.)
			[ -n "$secs" ] && [ $((EPOCHSECONDS - start)) -gt "$secs" ] || continue
			shell=${f##*/}
			# A shell that was killed in the middle leaves its file: emptied, not acted on.
			[ -d "/proc/$shell" ] || { : >"$f"; continue; }
			pid=$(lmt__youngest "$shell") || continue
			if [ -z "${sent[$f $start]:-}" ]; then
				sent[$f $start]=$EPOCHSECONDS
				echo TERM >"$f.killed"
				printf '# lmt_guard: still running after %s s, killed (TERM): %s\n' \
					"$secs" "${cmd:0:200}"
				kill -TERM "$pid" 2>/dev/null
			elif [ "${sent[$f $start]}" != done ] && [ $((EPOCHSECONDS - sent[$f $start])) -gt 5 ]; then
				sent[$f $start]=done
				echo KILL >"$f.killed"
				printf '# lmt_guard: still running 5 s after SIGTERM, killed (KILL): %s\n' "${cmd:0:200}"
				kill -KILL "$pid" 2>/dev/null
			fi
		done
		read -r -t 1 _ <>"$LMT_TICK"
	done
}

lmt__cmdline() {
	local s="" a
	for a in "$@"; do
		case $a in
		*[[:space:]\"\'\\\$\`]* | "") s+=" $(printf '%q' "$a")" ;;
		*) s+=" $a" ;;
		esac
	done
	s=${s# }
	s=${s//"$LMTASKS"/lmtasks}
	[ ${#s} -gt 120 ] && s="${s:0:117}..."
	printf '%s' "$s"
}

# check NAME CMD...: passes when CMD exits 0.
check() {
	local name=$1
	shift
	run "$@"
	if [ "$LMT_RC" -eq 0 ]; then
		ok "$name"
	else
		fail "$name" "command: $(lmt__cmdline "$@")" "exit status: $LMT_RC" \
		    "stdout: ${LMT_STDOUT:0:400}" "stderr: ${LMT_STDERR:0:400}"
	fi
}

# assert_exit [-m NAME] CODE CMD...: passes when CMD exits CODE.
assert_exit() {
	local name=""
	if [ "$1" = -m ]; then
		name=$2
		shift 2
	fi
	local want=$1
	shift
	[ -n "$name" ] || name="exit $want: $(lmt__cmdline "$@")"
	run "$@"
	if [ "$LMT_RC" -eq "$want" ]; then
		ok "$name"
	else
		fail "$name" "command: $(lmt__cmdline "$@")" "expected exit $want, got $LMT_RC" \
		    "stdout: ${LMT_STDOUT:0:400}" "stderr: ${LMT_STDERR:0:400}"
	fi
}

# assert_eq NAME EXPECTED ACTUAL
assert_eq() {
	if [ "$2" == "$3" ]; then
		ok "$1"
	else
		fail "$1" "expected: ${2:0:600}" "got:      ${3:0:600}"
	fi
}

# assert_ne NAME UNEXPECTED ACTUAL
assert_ne() {
	if [ "$2" != "$3" ]; then
		ok "$1"
	else
		fail "$1" "expected anything but: ${2:0:600}"
	fi
}

# assert_match NAME ERE STRING: STRING (any line of it) matches the extended regex.
assert_match() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then
		ok "$1"
	else
		fail "$1" "expected to match: $2" "got: ${3:0:600}"
	fi
}

# assert_contains NAME NEEDLE HAYSTACK: a plain substring test.
assert_contains() {
	case $3 in
	*"$2"*) ok "$1" ;;
	*) fail "$1" "expected to contain: $2" "got: ${3:0:600}" ;;
	esac
}

# lmt_is_number STRING: a decimal number (an optional sign, digits, an optional fraction).
lmt_is_number() {
	[[ $1 =~ ^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]]
}

# assert_lt NAME A B: the number A (decimals allowed) is less than B; an empty or
# non-numeric A or B fails.
assert_lt() {
	if ! lmt_is_number "$2" || ! lmt_is_number "$3"; then
		fail "$1" "expected two numbers, got '$2' < '$3'"
	elif awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 < b + 0) }'; then
		ok "$1"
	else
		fail "$1" "expected $2 < $3"
	fi
}

# ---- JSON ----

# json_get JSON_OR_FILE EXPR: JSON_OR_FILE is JSON text, a file name, or - for stdin.  Evaluates the Python expression EXPR with d bound to the
# parsed JSON (key order kept) and prints the result: strings raw, everything else as
# compact JSON (null, true, [1,2]).  Exits 1 when the input is not JSON or EXPR raises.
# Also bound: keys(o) (list of o's keys, in order), re, json.
LMT__PY_JSON_GET=$(cat <<'EOF'
import json, os, re, sys
src, expr = sys.argv[1], sys.argv[2]
if src == "-":
    text = sys.stdin.read()
elif not src.lstrip().startswith(("{", "[")) and os.path.isfile(src):
    with open(src, encoding="utf-8") as f:
        text = f.read()
else:
    text = src
try:
    d = json.loads(text)
except ValueError as e:
    sys.stderr.write("json_get: not JSON (%s): %.200s\n" % (e, text))
    sys.exit(1)
def keys(o):
    return list(o.keys())
try:
    v = eval(expr, {"d": d, "keys": keys, "re": re, "json": json})
except Exception as e:
    sys.stderr.write("json_get: %s: %r\n" % (expr, e))
    sys.exit(1)
if isinstance(v, str):
    print(v)
else:
    print(json.dumps(v, separators=(",", ":"), ensure_ascii=False))
EOF
)
json_get() {
	lmt__json_served "$@" && return "$LMT__JSON_RC"
	"$LMT_PYTHON" -S -c "$LMT__PY_JSON_GET" "$1" "$2"
}

# The suites call json_get thousands of times, and a Python start costs more CPU than most
# of what they test: one Python per suite answers them all, through two FIFOs in $LMT_TMP
# (a request is SRC, EXPR and the caller's directory, NUL-separated, written at once; the
# answer is the exit status, stdout and stderr).  A lock file made with noclobber (an
# O_EXCL create) keeps two callers apart.  When the server is not there, or the lock is not
# had within 2 s, json_get starts its own Python as before: the answer is the same.
LMT__PY_JSON_SERVER=$(cat <<'EOF'
import json, os, re, sys, threading, time
req, resp, parent = sys.argv[1], sys.argv[2], int(sys.argv[3])
def watch():
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)
threading.Thread(target=watch, daemon=True).start()
def keys(o):
    return list(o.keys())
def answer(src, expr, cwd):
    text = src
    path = os.path.join(cwd, src)
    if not src.lstrip().startswith(("{", "[")) and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    try:
        d = json.loads(text)
    except ValueError as e:
        return 1, "", "json_get: not JSON (%s): %.200s\n" % (e, text)
    try:
        v = eval(expr, {"d": d, "keys": keys, "re": re, "json": json})
    except Exception as e:
        return 1, "", "json_get: %s: %r\n" % (expr, e)
    if isinstance(v, str):
        return 0, v + "\n", ""
    return 0, json.dumps(v, separators=(",", ":"), ensure_ascii=False) + "\n", ""
while True:
    with open(req, "rb") as f:
        data = f.read()
    parts = data.split(b"\0")
    try:
        src, expr, cwd = (p.decode("utf-8", "surrogateescape") for p in parts[:3])
        rc, out, err = answer(src, expr, cwd)
    except Exception as e:
        rc, out, err = 1, "", "json_get: %r\n" % e
    blob = b"%d\0%s\0%s\0" % (rc, out.replace("\0", "").encode("utf-8", "surrogateescape"),
                              err.replace("\0", "").encode("utf-8", "surrogateescape"))
    # The caller holds the answer's FIFO open before it writes; a caller killed in between
    # is waited for 5 s at most, then its answer is dropped, never the server blocked.
    deadline = time.monotonic() + 5
    fd = None
    while fd is None and time.monotonic() < deadline:
        try:
            fd = os.open(resp, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.001)
    if fd is None:
        continue
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
EOF
)
LMT__JSON_SERVER=
LMT__JSON_RC=0
# lmt__json_start: starts the server (once, from the suite's own shell).
lmt__json_start() {
	[ -z "$LMT__JSON_SERVER" ] && [ "$BASHPID" = "$$" ] && [ -n "${LMT_TMP:-}" ] || return 0
	mkfifo "$LMT_TMP/.json.req" "$LMT_TMP/.json.resp" 2>/dev/null || return 0
	"$LMT_PYTHON" -S -c "$LMT__PY_JSON_SERVER" "$LMT_TMP/.json.req" "$LMT_TMP/.json.resp" "$$" \
		</dev/null >/dev/null 2>&1 &
	LMT__JSON_SERVER=$!
	lmt_bg_track "$LMT__JSON_SERVER"
}
# lmt__json_served SRC EXPR: json_get through the server; false when it cannot be asked.
lmt__json_served() {
	local dir=${LMT_TMP:-} lock i src=$1 rc out err holder noclobber= fd
	[ -n "$LMT__JSON_SERVER" ] && [ -p "$dir/.json.req" ] || return 1
	kill -0 "$LMT__JSON_SERVER" 2>/dev/null || return 1
	if [ "$src" = - ]; then
		src=
		IFS= read -r -d '' src || :
	fi
	lock=$dir/.json.lock
	[[ $- == *C* ]] && noclobber=1
	set -C
	for ((i = 0; ; i++)); do
		{ printf '%s' "$BASHPID" >"$lock"; } 2>/dev/null && break
		# A holder that was killed leaves its lock: it is taken over.
		holder=
		read -r holder 2>/dev/null <"$lock"
		[ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null && rm -f "$lock" && continue
		if [ "$i" -ge 200 ]; then
			[ -n "$noclobber" ] || set +C
			# Not had within 2 s: a Python of its own, as json_get does without the server.
			printf '%s' "$src" | "$LMT_PYTHON" -S -c "$LMT__PY_JSON_GET" - "$2"
			LMT__JSON_RC=$?
			return 0
		fi
		lmt_sleep 0.01
	done
	[ -n "$noclobber" ] || set +C
	# The answer's FIFO is open (read and write, so the open does not wait) before the
	# request goes: the server finds a reader at once, however late this shell is scheduled.
	exec {fd}<>"$dir/.json.resp"
	printf '%s\0%s\0%s\0' "$src" "$2" "$PWD" >"$dir/.json.req"
	{ IFS= read -r -d '' rc; IFS= read -r -d '' out; IFS= read -r -d '' err; } <&"$fd"
	exec {fd}<&-
	rm -f "$lock"
	[ -n "$out" ] && printf '%s' "$out"
	[ -n "$err" ] && printf '%s' "$err" >&2
	LMT__JSON_RC=${rc:-1}
	return 0
}

# json_check NAME JSON_OR_FILE EXPR: passes when EXPR (as in json_get) is true.
json_check() {
	local got
	got=$(json_get "$2" "bool($3)" 2>&1)
	lmt__json_report "$1" "$2" "$3" "$got"
}
# lmt__json_report NAME JSON_OR_FILE EXPR GOT: json_check's verdict on GOT, EXPR's answer.
lmt__json_report() {
	if [ "$4" = true ]; then
		ok "$1"
	else
		local src=$2
		[ -f "$src" ] && src=$(head -c 600 "$src")
		fail "$1" "expected true: $3" "got: $4" "json: ${src:0:600}"
	fi
}

# json_into VAR JSON_OR_FILE EXPR: json_get's answer (stdout and stderr, without the last
# newline) in the variable VAR, and its status: as VAR=$(json_get ... 2>&1), without the
# subshell that costs a fork.
json_into() {
	local __f=$LMT_TMP/.json_into.$BASHPID __rc
	json_get "$2" "$3" >"$__f" 2>&1
	__rc=$?
	# ($(<FILE): read by the shell, no process.)
	printf -v "$1" '%s' "$(<"$__f")"
	return "$__rc"
}

# json_assert NAME JSON_OR_FILE EXPR: json_check, the same check and the same report,
# without a subshell (json_into).
json_assert() {
	local got
	json_into got "$2" "bool($3)"
	lmt__json_report "$1" "$2" "$3" "$got"
}

# assert_re NAME ERE STRING: assert_match, the same check and report; a STRING of one line
# is matched by the shell ([[ =~ ]], POSIX extended, as grep -E), several lines by grep.
assert_re() {
	case $3 in
	*$'\n'*) assert_match "$@" ;;
	*)
		if [[ $3 =~ $2 ]]; then
			ok "$1"
		else
			fail "$1" "expected to match: $2" "got: ${3:0:600}"
		fi
		;;
	esac
}

# ---- time ----

# now: seconds since the epoch, with microseconds.
now() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		printf '%s\n' "${EPOCHREALTIME/,/.}"
	else
		date +%s.%N
	fi
}

# elapsed START [END]: END (default now) minus START, in seconds with 3 decimals.
elapsed() {
	awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.3f\n", b - a }'
}

# The clock seam of the tests/*-clocked programs (src/clock.c): clock_use FILE points
# LMTASKS_TEST_CLOCK at FILE (the clock not moved yet) and makes $LMTASKS_CLOCKED,
# $LMTASKS_FCGI_CLOCKED and $LMTASKS_WRITER_CLOCKED the programs to run;
# clock_move SECONDS moves their clocks forward (a running process sees it at its next
# reading).  A test of a lease, an expiry or a deadline moves the clock past it instead
# of sleeping, so it holds however slow the machine is.
: "${LMTASKS_CLOCKED:=$top_builddir/tests/lmtasks-clocked}"
: "${LMTASKS_FCGI_CLOCKED:=$top_builddir/tests/lmtasks-fcgi-clocked}"
: "${LMTASKS_WRITER_CLOCKED:=$top_builddir/tests/lmtasks-writer-clocked}"
clock_use() {
	export LMTASKS_TEST_CLOCK=$1
	echo 0 >"$1"
}
clock_move() {
	local f=${LMTASKS_TEST_CLOCK:?clock_use first}
	awk -v a="$(cat "$f")" -v s="$1" 'BEGIN { printf "%.0f\n", a + s * 1000000 }' >"$f.new" &&
		mv "$f.new" "$f"
}

# lmt_sleep SECONDS: sleep(1) without a process: a timed read on the suite's FIFO, which
# never has data (sleep(1) when there is none, e.g. before lmt_tmpdir).
lmt_sleep() {
	if [ -n "${LMT_TICK:-}" ] && [ -p "$LMT_TICK" ]; then
		read -r -t "$1" _ <>"$LMT_TICK"
		return 0
	fi
	sleep "$1"
}

# wait_for SECONDS CMD...: retries CMD every 50 ms until it succeeds; 1 if time ran out.
# The loop itself starts no process: a poll is only as costly as CMD.
wait_for() {
	local deadline t
	if [ -n "${EPOCHREALTIME:-}" ]; then
		t=${EPOCHREALTIME/,/.}
		deadline=$(( ${t%.*} * 1000000 + 10#${t#*.} ))
		t=${1%%.*} && deadline=$(( deadline + ${t:-0} * 1000000 ))
		case $1 in *.*) t=${1#*.}000000 && deadline=$(( deadline + 10#${t:0:6} )) ;; esac
		shift
		while :; do
			"$@" >/dev/null 2>&1 && return 0
			t=${EPOCHREALTIME/,/.}
			[ $(( ${t%.*} * 1000000 + 10#${t#*.} )) -gt "$deadline" ] && return 1
			lmt_sleep 0.05
		done
	fi
	deadline=$(awk -v t="$(now)" -v s="$1" 'BEGIN { printf "%.6f", t + s }')
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t > d) }' && return 1
		sleep 0.05
	done
}

# ---- processes ----
# What a test waits for instead of sleeping: a state of the process, polled by wait_for
# with a bound that is only a hang guard.

# lmt_asleep PID: PID sleeps in poll, select or epoll (its /proc/PID/wchan names the
# call): a waiter that has looked once and found nothing to do yet.
lmt_asleep() {
	case $(cat "/proc/$1/wchan" 2>/dev/null) in *poll* | *select*) return 0 ;; esac
	return 1
}

# lmt_reads PID: the read system calls PID has made so far (syscr in /proc/PID/io).
lmt_reads() {
	awk '$1 == "syscr:" { print $2 }' "/proc/$1/io" 2>/dev/null
}

# lmt_looked PID READS: PID has read something since lmt_reads said READS, and sleeps
# again: it has looked at what changed since then and chose to wait on.
lmt_looked() {
	local r
	r=$(lmt_reads "$1")
	[ -n "$r" ] && [ "$r" -gt "$2" ] && lmt_asleep "$1"
}

# lmt_inotify PID: how many inotify descriptors PID holds.
lmt_inotify() {
	find "/proc/$1/fd" -lname 'anon_inode:inotify' 2>/dev/null | wc -l
}

# assert_soon NAME SECONDS CMD...: passes once CMD succeeds (retried every 50 ms); fails
# when it has not after SECONDS, which is a hang guard, never a measure of speed.
assert_soon() {
	local name=$1 secs=$2
	shift 2
	if wait_for "$secs" "$@"; then
		ok "$name"
	else
		fail "$name" "still false after $secs s: $(lmt__cmdline "$@")"
	fi
}

# lmt_ended PID: PID has exited (gone, or a zombie not yet waited for).
lmt_ended() {
	! kill -0 "$1" 2>/dev/null || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# lmt_wait_pid SECONDS PID: waits for the background job PID and returns its exit status;
# one still running after SECONDS (a hang guard, never a measure of speed) is killed and
# 124 returned.
lmt_wait_pid() {
	if ! wait_for "$1" lmt_ended "$2"; then
		kill -9 "$2" 2>/dev/null
		wait "$2" 2>/dev/null
		return 124
	fi
	wait "$2"
}
