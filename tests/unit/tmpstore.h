/* A fresh temporary directory per test: tmpstore_setup() / tmpstore_teardown() as a
 * Criterion suite's .init / .fini, tmpstore_path() for names inside it. */
#ifndef LMTASKS_TESTS_TMPSTORE_H
#define LMTASKS_TESTS_TMPSTORE_H

#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

static char tmpstore_dir[PATH_MAX];

/* Creates the directory under $TMPDIR (else /tmp); the test fails when it cannot. */
static void
tmpstore_setup(void)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || *base == '\0')
		base = "/tmp";
	int n = snprintf(tmpstore_dir, sizeof(tmpstore_dir), "%s/lmtasks-test-XXXXXX", base);
	cr_assert(n > 0 && (size_t)n < sizeof(tmpstore_dir), "TMPDIR is too long");
	cr_assert_not_null(mkdtemp(tmpstore_dir), "mkdtemp %s failed", tmpstore_dir);
}

static int
tmpstore_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes the directory and everything in it. */
static void
tmpstore_teardown(void)
{
	if (tmpstore_dir[0] != '\0')
		nftw(tmpstore_dir, tmpstore_rm, 16, FTW_DEPTH | FTW_PHYS);
	tmpstore_dir[0] = '\0';
}

/* Returns dir/name in a static buffer (one of four, so a few can be held at once). */
__attribute__((unused))
static const char *
tmpstore_path(const char *name)
{
	static char bufs[4][PATH_MAX];
	static unsigned next;
	char *p = bufs[next++ % 4];

	int n = snprintf(p, PATH_MAX, "%s/%s", tmpstore_dir, name);
	cr_assert(n > 0 && n < PATH_MAX, "path too long: %s/%s", tmpstore_dir, name);
	return p;
}

/* Moves the clock seam (src/clock.c, compiled into the suite) forward by us from where
 * the test last put it: LMTASKS_TEST_CLOCK names a file of the test's directory holding
 * how far.  Each test runs in a process of its own, so each starts unmoved. */
static int64_t tmpstore_moved;

static inline void
tmpstore_clock_move(int64_t us)
{
	FILE *f;

	cr_assert_eq(setenv("LMTASKS_TEST_CLOCK", tmpstore_path("clock"), 1), 0);
	cr_assert_not_null(f = fopen(tmpstore_path("clock"), "w"));
	tmpstore_moved += us;
	fprintf(f, "%" PRId64 "\n", tmpstore_moved);
	cr_assert_eq(fclose(f), 0);
}

/* Stops the wall clock of the seam at us since the epoch, however long the test then
 * takes: for a check that names the very microsecond.  The monotonic clock is not moved
 * while the wall clock stands (it reads real time), and a tmpstore_clock_move() after a
 * freeze starts the wall clock again from real time plus the moves before, not from the
 * frozen time: a test that freezes goes on freezing. */
static inline void
tmpstore_clock_freeze(int64_t us)
{
	FILE *f;

	cr_assert_eq(setenv("LMTASKS_TEST_CLOCK", tmpstore_path("clock"), 1), 0);
	cr_assert_not_null(f = fopen(tmpstore_path("clock"), "w"));
	fprintf(f, "@%" PRId64 "\n", us);
	cr_assert_eq(fclose(f), 0);
}

#endif
