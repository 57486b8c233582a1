/* inotify on the store's data file, shared by the responder's streams. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "lmtasks/watch.h"

/* A commit writes the file; renaming another over it, or deleting it, ends it. */
#define WATCH_EVENTS (IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF)

int
watch_open(struct watch *w, const char *path)
{
	char data[PATH_MAX];
	const char *off = getenv("LMTASKS_NO_INOTIFY");

	w->fd = -1;
	w->recheck = 0;
	w->data = NULL;
	/* The fallback on purpose (a test, or a file system where inotify says nothing). */
	if (off && *off && strcmp(off, "0") != 0)
		return 0;
	if (snprintf(data, sizeof(data), "%s/data.mdb", path) >= (int)sizeof(data))
		return 0;
	if ((w->data = strdup(data)) == NULL || (w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
		goto off;
	if (inotify_add_watch(w->fd, data, WATCH_EVENTS) < 0)
		goto off;
	return 0;
off:
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->data);
	w->data = NULL;
	return 0;
}

void
watch_close(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->data);
	w->data = NULL;
}

int
watch_drain(struct watch *w)
{
	char buf[4096];
	int got = 0;

	if (w->fd < 0)
		return 1;
	while (read(w->fd, buf, sizeof(buf)) > 0)
		got = 1;
	/* The same file: the same watch, nothing changes; another one renamed over it: it
	 * is added (the old one's ends with the old file). */
	if (got && w->data)
		(void)inotify_add_watch(w->fd, w->data, WATCH_EVENTS);
	if (got) {
		w->recheck = 20;	/* 200 ms of short waits: the commit may still be syncing */
		return 1;
	}
	if (w->recheck > 0) {
		w->recheck--;
		return 1;
	}
	return 0;
}

int
watch_timeout(struct watch *w, int cap_ms)
{
	int t = w->fd < 0 ? WATCH_POLL_MS : w->recheck > 0 ? WATCH_RECHECK_MS : -1;

	if (cap_ms >= 0 && (t < 0 || t > cap_ms))
		t = cap_ms;
	return t;
}
