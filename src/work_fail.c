/* The message of a command's failure (lmtasks work): how it ended, then the last lines of
 * its stderr, as valid UTF-8. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <lmdb.h>

#include "lmtasks/error.h"
#include "lmtasks/task.h"
#include "work_fail.h"

/* Copies len bytes of text into out as valid UTF-8 with no NUL (a bad byte becomes '?');
 * returns the bytes written (out has room for len). */
static size_t
clean_text(const char *text, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)text[i];
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (n > 1 && (i + n > len || !task_utf8_valid(text + i, n)))
			n = 0;
		if (n == 0 || c == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, text + i, n);
		o += n;
		i += n;
	}
	return o;
}

/* stderr's last lines (whole ones when the ring overflowed), into out; returns the length. */
static size_t
stderr_tail(const struct proc *pr, char *out)
{
	size_t n = pr->tailn < WORK_STDERR_TAIL ? pr->tailn : WORK_STDERR_TAIL, lines = 0;
	size_t first = pr->tailn < WORK_STDERR_TAIL ? 0 : pr->tailn % WORK_STDERR_TAIL;
	char raw[WORK_STDERR_TAIL];
	const char *p = raw;

	for (size_t i = 0; i < n; i++)
		raw[i] = pr->tail[(first + i) % WORK_STDERR_TAIL];
	while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
		n--;
	if (pr->tailn > WORK_STDERR_TAIL) {	/* the first line is cut: from the next one */
		const char *nl = memchr(raw, '\n', n);
		if (nl && nl + 1 < raw + n)
			p = nl + 1;
	}
	for (const char *q = raw + n; q > p; q--)
		if (q[-1] == '\n' && ++lines == WORK_STDERR_LINES) {
			p = q;
			break;
		}
	return clean_text(p, (size_t)(raw + n - p), out);
}

/* How the command ended, then what it said last on stderr. */
void
work_fail_message(const struct proc *p, char *message, size_t size)
{
	char tail[WORK_STDERR_TAIL];
	size_t tn = stderr_tail(p, tail);
	int n;

	if (p->status_unknown)
		n = snprintf(message, size, "The command exited, but its status "
		    "is unknown: the system reaped it (lmtasks work was started with SIGCHLD "
		    "ignored)");
	else if (WIFEXITED(p->status))
		n = snprintf(message, size, "The command exited with status %d",
		    WEXITSTATUS(p->status));
	else
		n = snprintf(message, size, "The command was killed by signal "
		    "%d (%s)", WTERMSIG(p->status), strsignal(WTERMSIG(p->status)));
	if (tn == 0)
		snprintf(message + n, size - (size_t)n, ".");
	else
		snprintf(message + n, size - (size_t)n, ": %.*s", (int)tn, tail);
}

/* Why a change about a held task was refused, from its answer. */
const char *
work_gone_why(int rc)
{
	if (rc == LMT_ETRANSITION)
		return "the task is no longer processing (cancelled, or its lease ended and "
		    "another process ended it)";
	if (rc == MDB_NOTFOUND)
		return "the task was deleted";
	if (rc == LMT_ECLAIMED)
		return "its lease ended and another worker claimed it";
	if (rc == LMT_ENOLEASE)
		return "the task holds no lease";
	return "its lease ended first";
}
