/* Log lines to standard error, whole and rate-limited (see log.h). */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "lmtasks/clock.h"
#include "lmtasks/log.h"

/* At most this many lines a second reach the log; the rest are counted and said. */
#define LOG_PER_SECOND 20

void
log_line(const char *prog, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int p, n;

	p = snprintf(line, sizeof(line), "%s: ", prog);
	if (p < 0 || (size_t)p >= sizeof(line) / 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + p, sizeof(line) - (size_t)p - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - (size_t)p - 2)
		n = (int)(sizeof(line) - (size_t)p - 2);
	n += p;
	line[n++] = '\n';
	/* A flood (a client or the system failing the same way again and again) must not
	 * fill the disk with lines: past LOG_PER_SECOND in a second the rest are counted,
	 * and the first line of a later second says how many were left out. */
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t second;
	static unsigned lines, dropped;
	char note[96];
	int k = 0;
	int64_t now = clock_mono() / 1000000;
	pthread_mutex_lock(&mu);
	if (now != second) {
		if (dropped)
			k = snprintf(note, sizeof(note), "%s: (%u lines like these left out)\n", prog,
			    dropped);
		second = now;
		lines = dropped = 0;
	}
	int keep = ++lines <= LOG_PER_SECOND;
	dropped += !keep;
	pthread_mutex_unlock(&mu);
	/* One write per line, so threads' lines do not interleave. */
	if (k > 0 && (size_t)k < sizeof(note) && write(STDERR_FILENO, note, (size_t)k) < 0)
		return;
	if (keep && write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
