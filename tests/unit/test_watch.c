/* The store-change watch (watch.c) on a data.mdb in a temporary directory: a write wakes
 * it, watch_drain empties it and asks for the short re-checks, watch_timeout follows that
 * schedule, and a missing file or LMTASKS_NO_INOTIFY falls back to polling.  Waits are
 * poll() with a generous bound, never a sleep that assumes a fast machine. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lmtasks/watch.h"
#include "tmpstore.h"

#define WAIT_MS 10000

static struct watch w = { -1, 0 };

static void
init(void)
{
	unsetenv("LMTASKS_NO_INOTIFY");
	tmpstore_setup();
}

static void
fini(void)
{
	watch_close(&w);
	tmpstore_teardown();
}

TestSuite(watch, .init = init, .fini = fini);

/* Makes data.mdb (with a few bytes) in the directory. */
static void
make_data(void)
{
	int fd = open(tmpstore_path("data.mdb"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "lmdb", 4), 4);
	cr_assert_eq(close(fd), 0);
}

/* Writes to data.mdb, as a commit does. */
static void
write_data(void)
{
	int fd = open(tmpstore_path("data.mdb"), O_WRONLY | O_APPEND);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "more", 4), 4);
	cr_assert_eq(close(fd), 0);
}

/* Returns 1 when w.fd turns readable within ms, 0 when not. */
static int
readable(int ms)
{
	struct pollfd p = { .fd = w.fd, .events = POLLIN };
	int n;

	while ((n = poll(&p, 1, ms)) < 0)
		cr_assert_eq(errno, EINTR, "poll failed");
	return n == 1 && (p.revents & POLLIN);
}

Test(watch, a_write_to_the_data_file_wakes_the_watch)
{
	make_data();
	cr_assert_eq(watch_open(&w, tmpstore_dir), 0);
	cr_assert_geq(w.fd, 0, "inotify is unavailable here");
	cr_assert_eq(readable(0), 0, "awake before any write");
	cr_assert_eq(watch_drain(&w), 0, "a change reported with none made");
	write_data();
	cr_assert_eq(readable(WAIT_MS), 1, "no event within %d ms of a write", WAIT_MS);
	cr_assert_eq(watch_drain(&w), 1);
	cr_assert_eq(readable(0), 0, "watch_drain left events behind");
}

Test(watch, after_an_event_the_rechecks_run_out_on_schedule)
{
	int rechecks = 0;

	make_data();
	cr_assert_eq(watch_open(&w, tmpstore_dir), 0);
	cr_assert_geq(w.fd, 0);
	cr_assert_eq(watch_timeout(&w, -1), -1, "no change yet: wait for the next event");
	cr_assert_eq(watch_timeout(&w, WATCH_LOST_MS), WATCH_LOST_MS);
	write_data();
	cr_assert_eq(readable(WAIT_MS), 1);
	cr_assert_eq(watch_drain(&w), 1);
	/* Re-checks every WATCH_RECHECK_MS, about 200 ms of them, then back to waiting. */
	while (watch_timeout(&w, -1) == WATCH_RECHECK_MS) {
		cr_assert_eq(watch_timeout(&w, 3), 3, "the cap is kept");
		cr_assert_eq(watch_drain(&w), 1, "a re-check said no change");
		cr_assert_lt(++rechecks, 1000, "the re-checks never end");
	}
	cr_assert_eq(rechecks * WATCH_RECHECK_MS, 200);
	cr_assert_eq(watch_timeout(&w, -1), -1);
	cr_assert_eq(watch_drain(&w), 0);
}

Test(watch, a_missing_data_file_falls_back_to_polling)
{
	cr_assert_eq(watch_open(&w, tmpstore_dir), 0);
	cr_assert_eq(w.fd, -1);
	cr_assert_eq(watch_timeout(&w, -1), WATCH_POLL_MS);
	cr_assert_eq(watch_timeout(&w, 7), 7);
	cr_assert_eq(watch_drain(&w), 1, "polling must read again every time");
	cr_assert_eq(watch_drain(&w), 1);
	watch_close(&w);
	cr_assert_eq(w.fd, -1);
}

Test(watch, no_inotify_asked_falls_back_to_polling)
{
	make_data();
	cr_assert_eq(setenv("LMTASKS_NO_INOTIFY", "1", 1), 0);
	cr_assert_eq(watch_open(&w, tmpstore_dir), 0);
	cr_assert_eq(w.fd, -1);
	cr_assert_eq(watch_timeout(&w, -1), WATCH_POLL_MS);
	cr_assert_eq(setenv("LMTASKS_NO_INOTIFY", "0", 1), 0);
	cr_assert_eq(watch_open(&w, tmpstore_dir), 0);
	cr_assert_geq(w.fd, 0, "LMTASKS_NO_INOTIFY=0 turned inotify off");
}

Test(watch, a_deleted_data_file_wakes_the_watch)
{
	make_data();
	cr_assert_eq(watch_open(&w, tmpstore_dir), 0);
	cr_assert_geq(w.fd, 0);
	cr_assert_eq(unlink(tmpstore_path("data.mdb")), 0);
	cr_assert_eq(readable(WAIT_MS), 1);
	cr_assert_eq(watch_drain(&w), 1);
}

/* A data file renamed over the watched one (lmtasks compact): the renaming wakes the watch,
 * and from then on the new file's writes do. */
Test(watch, a_file_renamed_over_it_is_watched_next)
{
	make_data();
	cr_assert_eq(watch_open(&w, tmpstore_dir), 0);
	cr_assert_geq(w.fd, 0);
	int fd = open(tmpstore_path("data.mdb.compact"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "copy", 4), 4);
	cr_assert_eq(close(fd), 0);
	cr_assert_eq(rename(tmpstore_path("data.mdb.compact"), tmpstore_path("data.mdb")), 0);
	cr_assert(readable(WAIT_MS), "the renaming wakes it");
	cr_assert_eq(watch_drain(&w), 1);
	while (w.recheck > 0)
		watch_drain(&w);
	write_data();
	cr_assert(readable(WAIT_MS), "a write to the new file wakes it");
	cr_assert_eq(watch_drain(&w), 1);
}
