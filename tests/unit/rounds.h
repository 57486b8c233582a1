/* How many rounds a randomized unit test runs.
 *
 * test_rounds(n) is n in a plain build and n / 4 (at least 1) when LMTASKS_SANITIZED is set,
 * as scripts/test.sh sets it for its ASan+UBSan run: there a round costs about ten times
 * the CPU, and the plain run of the same suite (make distcheck) does every round anyway.
 * The rounds dropped are the last ones of the same generator, never a kind of check: a
 * test draws round after round from one seed, so the sanitized rounds are the first
 * n / 4 of the plain run's, and a seed that fails either way replays the same.
 * LMTASKS_TEST_ROUNDS=N (N > 0) runs N rounds instead, in either build: a longer run, or
 * the plain count under the sanitizers.
 *
 * A generator check written for the plain count (so many of the queries matched something)
 * scales its threshold with test_share(). */
#ifndef LMTASKS_TESTS_ROUNDS_H
#define LMTASKS_TESTS_ROUNDS_H

#include <stdio.h>
#include <stdlib.h>

#define TEST_ROUNDS_SANITIZED_DIVISOR 4

/* The rounds to run for a test that runs n in a plain build. */
__attribute__((unused))
static unsigned
test_rounds(unsigned n)
{
	const char *e = getenv("LMTASKS_TEST_ROUNDS");

	if (e != NULL && *e != '\0') {
		unsigned long v = strtoul(e, NULL, 10);
		return v > 0 ? (unsigned)v : n;
	}
	e = getenv("LMTASKS_SANITIZED");
	if (e != NULL && *e != '\0' && n > 0) {
		n /= TEST_ROUNDS_SANITIZED_DIVISOR;
		return n ? n : 1;
	}
	return n;
}

/* A threshold of part in full rounds, scaled to the rounds run (rounded down). */
__attribute__((unused))
static unsigned
test_share(unsigned part, unsigned rounds, unsigned full)
{
	return full ? (unsigned)((unsigned long long)part * rounds / full) : part;
}

#endif
