#!/usr/bin/env bash
# Progress on long commands: `enqueue --batch`, `delete` and `check` draw a progress line
# (done/total and a rate) on standard error when it is a terminal, erased when they end,
# and write nothing extra when it is not.  The terminal is a pseudo-terminal (Python's
# pty); without one, standard error must be byte for byte what it was.
#
# One line per check; ends with "N passed, M failed".  Takes a few seconds.
#
#   LMTASKS=build/lmtasks bash tests/e2e/progress.sh

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"
set -u
[ -x "$LMTASKS" ] || { echo "progress.sh: no binary at $LMTASKS" >&2; exit 99; }
unset LMTASKS_DB
lmt_tmpdir
T=$LMT_TMP
N=20000

# on_pty OUT ERR IN CMD...: runs CMD with standard error on a pseudo-terminal (what it
# writes there goes to ERR, raw), standard output to OUT, standard input from IN (a file;
# "pipe:FILE" feeds FILE through a pipe).  Exits with CMD's status.
on_pty() {
	"$LMT_PYTHON" - "$@" <<'EOF'
import os, pty, subprocess, sys, threading
out, err, inp = sys.argv[1:4]
m, s = pty.openpty()
piped = inp.startswith("pipe:")
src = open(inp[5:] if piped else inp, "rb")
with open(out, "wb") as o:
    p = subprocess.Popen(sys.argv[4:], stdin=subprocess.PIPE if piped else src, stdout=o, stderr=s)
os.close(s)
if piped:
    def feed():
        p.stdin.write(src.read())
        p.stdin.close()
    threading.Thread(target=feed).start()
buf = b""
while True:
    try:
        d = os.read(m, 65536)
    except OSError:
        break
    if not d:
        break
    buf += d
open(err, "wb").write(buf)
sys.exit(p.wait())
EOF
}

# frames FILE: how many times the progress line was drawn.
frames() { grep -o $'\rlmtasks: [a-z]* [0-9]' "$1" | wc -l; }

"$LMT_PYTHON" -c "
import json
for i in range($N):
    print(json.dumps({'indexUid': 'movies', 'type': 'documentAddition', 'details': {'n': i}}))
" >"$T/batch.ndjson"
SIZE=$(stat -c %s "$T/batch.ndjson")
for st in tty plain; do "$LMTASKS" --db "$T/$st" init 2>/dev/null; done

echo "# --- enqueue --batch FILE"
t0=$(now)
on_pty "$T/tty.out" "$T/tty.err" /dev/null "$LMTASKS" --db "$T/tty" enqueue --batch "$T/batch.ndjson"
rc=$?
took=$(elapsed "$t0")
"$LMTASKS" --db "$T/plain" enqueue --batch "$T/batch.ndjson" >"$T/plain.out" 2>"$T/plain.err"
assert_eq "on a pty: exit 0, the same standard output as without" "0 $(cat "$T/plain.out")" "$rc $(cat "$T/tty.out")"
assert_match "on a pty: 'stored done/total tasks (percent), rate/s'" \
	"lmtasks: stored $N/$N tasks \\(100%\\), [0-9]+/s" "$(tr '\r' '\n' <"$T/tty.err")"
assert_match "on a pty: 'read done/size bytes' while reading the file ($SIZE bytes)" \
	"lmtasks: read [0-9]+/$SIZE bytes \\([0-9]+%\\), [0-9]+/s" "$(tr '\r' '\n' <"$T/tty.err")"
assert_eq "on a pty: the line is erased at the end (\\r ESC[K)" "0d1b5b4b" "$(tail -c 4 "$T/tty.err" | od -An -tx1 | tr -d ' \n')"
f=$(frames "$T/tty.err")
assert_lt "on a pty: drawn at most five times a second per phase ($f frames in $took s)" \
	"$f" "$(awk -v t="$took" 'BEGIN { printf "%d", 10 * t + 5 }')"
assert_eq "without a pty: nothing on standard error (byte for byte)" "" "$(od -An -c "$T/plain.err")"

echo "# --- enqueue --batch - (a pipe: the total is not known)"
on_pty "$T/tty2.out" "$T/tty2.err" "pipe:$T/batch.ndjson" "$LMTASKS" --db "$T/tty" enqueue --batch -
rc=$?
assert_eq "on a pty: exit 0, $N more tasks" "0 {\"enqueued\":$N,\"firstUid\":$N,\"lastUid\":$((2 * N - 1))}" "$rc $(cat "$T/tty2.out")"
assert_match "on a pty: 'read done bytes, rate/s', no total" "lmtasks: read [0-9]+ bytes, [0-9]+/s" \
	"$(tr '\r' '\n' <"$T/tty2.err")"
assert_eq "on a pty: no 'read done/total' for a pipe" "" "$(tr '\r' '\n' <"$T/tty2.err" | grep 'read [0-9]*/')"
"$LMTASKS" --db "$T/plain" enqueue --batch - <"$T/batch.ndjson" >"$T/plain2.out" 2>"$T/plain2.err"
assert_eq "without a pty: nothing on standard error" "" "$(od -An -c "$T/plain2.err")"

echo "# --- a bad line: the message after the erased line, and alone without a pty"
{ cat "$T/batch.ndjson"; echo '{"indexUid":"movies"}'; } >"$T/bad.ndjson"
on_pty "$T/tty6.out" "$T/tty6.err" /dev/null "$LMTASKS" --db "$T/tty" enqueue --batch "$T/bad.ndjson"
rc=$?
"$LMTASKS" --db "$T/plain" enqueue --batch "$T/bad.ndjson" >/dev/null 2>"$T/plain6.err"
prc=$?
msg=$(cat "$T/plain6.err")
assert_match "without a pty: exit 2 and only the message naming line $((N + 1))" \
	"^2 1 lmtasks: line $((N + 1)): " "$prc $(wc -l <"$T/plain6.err") $msg"
# The pty turns "\n" into "\r\n".
bytes=$(($(wc -c <"$T/plain6.err") + 5))
assert_eq "on a pty: exit 2, the progress erased, then the same message" \
	"2 $(printf '\r\033[K%s\r\n' "$msg" | od -An -c)" \
	"$rc $(tail -c "$bytes" "$T/tty6.err" | od -An -c)"

echo "# --- check"
on_pty "$T/tty3.out" "$T/tty3.err" /dev/null "$LMTASKS" --db "$T/tty" check
rc=$?
assert_eq "on a pty: exit 0, the check's answer" "0 {\"ok\":true,\"tasks\":$((2 * N)),\"problems\":0}" "$rc $(cat "$T/tty3.out")"
assert_match "on a pty: 'checked done/total tasks'" "lmtasks: checked $((2 * N))/$((2 * N)) tasks \\(100%\\)" \
	"$(tr '\r' '\n' <"$T/tty3.err")"
"$LMTASKS" --db "$T/plain" check >"$T/plain3.out" 2>"$T/plain3.err"
assert_eq "without a pty: nothing on standard error" "" "$(od -An -c "$T/plain3.err")"

echo "# --- delete"
for st in tty plain; do
	seq 0 $((N - 1)) | xargs -n 5000 "$LMTASKS" --db "$T/$st" cancel >/dev/null 2>&1
done
on_pty "$T/tty4.out" "$T/tty4.err" /dev/null "$LMTASKS" --db "$T/tty" delete --statuses canceled
rc=$?
json_check "on a pty: delete exits 0 ($rc), $N tasks deleted" "$T/tty4.out" "d['details']['deletedTasks'] == $N"
assert_match "on a pty: 'deleted done/total tasks'" "lmtasks: deleted $N/$N tasks \\(100%\\)" \
	"$(tr '\r' '\n' <"$T/tty4.err")"
"$LMTASKS" --db "$T/plain" delete --statuses canceled >"$T/plain4.out" 2>"$T/plain4.err"
assert_eq "without a pty: nothing on standard error" "" "$(od -An -c "$T/plain4.err")"

echo "# --- a short command draws nothing"
on_pty "$T/tty5.out" "$T/tty5.err" /dev/null "$LMTASKS" --db "$T/tty" enqueue movies indexUpdate
assert_eq "on a pty: enqueue of one task writes nothing on standard error" "" "$(od -An -c "$T/tty5.err")"
head -n 4000 "$T/batch.ndjson" >"$T/small.ndjson"
on_pty "$T/tty7.out" "$T/tty7.err" /dev/null "$LMTASKS" --db "$T/tty" enqueue --batch "$T/small.ndjson"
assert_eq "on a pty: a batch of 4000 tasks writes nothing on standard error" "" "$(od -An -c "$T/tty7.err")"
"$LMTASKS" --db "$T/small" init 2>/dev/null
"$LMTASKS" --db "$T/small" enqueue --batch "$T/small.ndjson" >/dev/null
on_pty "$T/tty8.out" "$T/tty8.err" /dev/null "$LMTASKS" --db "$T/small" check
assert_eq "on a pty: check of 4000 tasks writes nothing on standard error" "" "$(od -An -c "$T/tty8.err")"

summary
