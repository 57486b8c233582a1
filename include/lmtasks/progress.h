/*
 * Progress of long operations (a batch stored, many tasks deleted, a store checked).
 * The library counts and calls a function every so many items; it writes nothing.  The
 * CLI passes a meter that draws on a terminal and stays silent anywhere else.
 */
#ifndef LMTASKS_PROGRESS_H
#define LMTASKS_PROGRESS_H

#include <stdint.h>

/* done items of total so far (total 0: not known); what names the work ("stored");
 * final is set on the last call of an operation. */
typedef void progress_fn(void *ctx, const char *what, uint64_t done, uint64_t total, int final);

struct progress {
	progress_fn *fn;	/* NULL: nobody listens */
	void *ctx;
	uint64_t every;		/* call fn when done is a multiple of it (0: 4096) */
};

/*
 * Tells p's function that done of total items are done, when done is a multiple of
 * p->every or final is set (the last call of an operation).  p may be NULL.
 */
void progress_report(const struct progress *p, const char *what, uint64_t done, uint64_t total,
    int final);

/* A meter that draws "lmtasks: what done/total unit (pct%), rate/s" on a terminal,
 * redrawn at most five times a second. */
struct progress_meter {
	int fd;			/* -1: not a terminal, draws nothing */
	const char *unit;	/* "tasks", "bytes" */
	int64_t start_us, last_us;
	int drawn;
};

/* Prepares m to draw on fd if fd is a terminal, and sets p to feed it (every items);
 * returns 1 when it will draw, else 0 (and p->fn is NULL: nothing is ever written). */
int progress_meter_open(struct progress_meter *m, struct progress *p, int fd, const char *unit,
    uint64_t every);

/* Changes the unit of the meter's next lines ("bytes" while reading, then "tasks"). */
void progress_meter_unit(struct progress_meter *m, const char *unit);

/* Erases the meter's line, so what the command prints next starts on a clean line. */
void progress_meter_close(struct progress_meter *m);

#endif
