/* The program's clocks, and the test builds' seam that moves them. */
#include "config.h"

#include <time.h>

#include "lmtasks/clock.h"

#ifdef LMTASKS_TEST_CLOCK
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * Test builds only (the tests/ *-clocked programs; what is installed has no seam):
 * LMTASKS_TEST_CLOCK=FILE moves the clocks by what FILE holds, read at every call, so
 * that a running process sees the clock move the moment a test writes the file:
 *
 *	N	both clocks move forward by N microseconds (a decimal number);
 *	@N	the wall clock stands still at N microseconds since the epoch, for a test
 *		that names the very microsecond ("not claimable 1 us before its time");
 *		the monotonic clock is not moved.
 *
 * A test then says "the lease is 0.5 s, the clock moves 0.6 s" and never waits for the
 * machine to be fast enough.  No variable, no file or no number: the clocks are not moved.
 * seam() returns 1 when *us is the clock's reading, 0 when it is an offset.
 */
static int
seam(clockid_t id, int64_t *us)
{
	const char *path = getenv("LMTASKS_TEST_CLOCK");
	char buf[32];
	ssize_t n;
	int fd;

	*us = 0;
	if (path == NULL || *path == '\0' || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (buf[0] != '@') {
		*us = strtoll(buf, NULL, 10);
		return 0;
	}
	if (id != CLOCK_REALTIME)
		return 0;
	*us = strtoll(buf + 1, NULL, 10);
	return 1;
}
#else
#define seam(id, us) (*(us) = 0, 0)
#endif

static int64_t
read_clock(clockid_t id)
{
	struct timespec ts;
	int64_t us;

	if (seam(id, &us))
		return us;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + us;
}

int64_t
clock_now(void)
{
	return read_clock(CLOCK_REALTIME);
}

int64_t
clock_mono(void)
{
	return read_clock(CLOCK_MONOTONIC);
}
