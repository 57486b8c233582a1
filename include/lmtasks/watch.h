/* Waking when the store changes: inotify on data.mdb (a commit writes it), with a slow poll
 * where inotify says nothing (LMTASKS_NO_INOTIFY=1, some network file systems). */
#ifndef LMTASKS_WATCH_H
#define LMTASKS_WATCH_H

#include <stdint.h>

struct watch {
	int fd;		/* the inotify descriptor to poll for reading; -1: polling */
	int recheck;	/* short re-checks left after an event */
	char *data;	/* PATH/data.mdb, watched again after each event (watch_drain) */
};

/* Watches PATH/data.mdb; w->fd is -1 when inotify is off or unavailable (then callers
 * poll every WATCH_POLL_MS).  watch_close() frees what it holds.  Returns 0. */
int watch_open(struct watch *w, const char *path);

void watch_close(struct watch *w);

#define WATCH_POLL_MS 50

/*
 * After poll() said w->fd is readable (or a timeout passed): drains the events and
 * returns 1 when the store may have changed, 0 when not.  After events, the file at the
 * path is watched again: a data file renamed over it (lmtasks compact) is watched from
 * then on, not the one it replaced (whose renaming is itself an event).  LMDB publishes a commit in
 * lock.mdb a moment after data.mdb changes, so after an event the caller should read
 * again within WATCH_RECHECK_MS for a while: watch_timeout() says how long to wait.
 */
int watch_drain(struct watch *w);

#define WATCH_RECHECK_MS 10

/* With inotify on, a waiter that must not miss a change looks again this often all the
 * same: an event lost (a full queue, a replaced file) costs at most this. */
#define WATCH_LOST_MS 250

/* The poll() timeout (ms) to use next, at most cap_ms (-1: no cap). */
int watch_timeout(struct watch *w, int cap_ms);

#endif
