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
 * LMTASKS_TEST_CLOCK=FILE moves both clocks forward by the microseconds FILE holds, a
 * decimal number read at every call, so that a running process sees the clock move the
 * moment a test writes the file.  A test then says "the lease is 0.5 s, the clock moves
 * 0.6 s" and never waits for the machine to be fast enough.  No variable, no file or no
 * number: the clocks are not moved.
 */
static int64_t
offset(void)
{
	const char *path = getenv("LMTASKS_TEST_CLOCK");
	char buf[32];
	ssize_t n;
	int fd;

	if (path == NULL || *path == '\0' || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}
#else
#define offset() 0
#endif

static int64_t
read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + offset();
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
