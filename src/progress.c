#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lmtasks/clock.h"
#include "lmtasks/progress.h"

#define DEFAULT_EVERY 4096
#define REDRAW_US 200000	/* at most five redraws a second */

/* Calls the listener on every p->every-th item and on the last one, so that the library's
 * loops stay one compare per item. */
void
progress_report(const struct progress *p, const char *what, uint64_t done, uint64_t total,
    int final)
{
	uint64_t every;

	if (p == NULL || p->fn == NULL)
		return;
	every = p->every ? p->every : DEFAULT_EVERY;
	if (final || (done != 0 && done % every == 0))
		p->fn(p->ctx, what, done, total, final);
}

/* Best effort: a terminal that does not take the line loses a frame, nothing more. */
static void
write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Draws one line over the previous one: "\r", the text, erase to the end of the line. */
static void
draw(void *ctx, const char *what, uint64_t done, uint64_t total, int final)
{
	struct progress_meter *m = ctx;
	int64_t t = clock_mono();
	double secs = (double)(t - m->start_us) / 1e6;
	char line[160];
	int len;

	/* Short work draws nothing: the last frame only follows a first one. */
	if (final ? !m->drawn : m->drawn && t - m->last_us < REDRAW_US)
		return;
	if (total)
		len = snprintf(line, sizeof(line), "\rlmtasks: %s %llu/%llu %s (%u%%), %.0f/s\033[K",
		    what, (unsigned long long)done, (unsigned long long)total, m->unit,
		    (unsigned)(done * 100 / total), secs > 0 ? (double)done / secs : 0.0);
	else
		len = snprintf(line, sizeof(line), "\rlmtasks: %s %llu %s, %.0f/s\033[K", what,
		    (unsigned long long)done, m->unit, secs > 0 ? (double)done / secs : 0.0);
	if (len > 0)
		write_all(m->fd, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
	m->last_us = t;
	m->drawn = 1;
}

int
progress_meter_open(struct progress_meter *m, struct progress *p, int fd, const char *unit,
    uint64_t every)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->unit = unit;
	p->fn = NULL;
	p->ctx = m;
	p->every = every;
	if (!isatty(fd))
		return 0;
	m->fd = fd;
	m->start_us = clock_mono();
	p->fn = draw;
	return 1;
}

void
progress_meter_unit(struct progress_meter *m, const char *unit)
{
	m->unit = unit;
	m->start_us = clock_mono();
}

void
progress_meter_close(struct progress_meter *m)
{
	if (m->fd >= 0 && m->drawn)
		write_all(m->fd, "\r\033[K", 4);
	m->drawn = 0;
}
