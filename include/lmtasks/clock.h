/* The program's two clocks, in microseconds: the wall clock for what is recorded and
 * compared with records (enqueuedAt, leases, key expiry), the monotonic clock for
 * deadlines and intervals (a clock step must not close every connection). */
#ifndef LMTASKS_CLOCK_H
#define LMTASKS_CLOCK_H

#include <stdint.h>

/* Returns the current time in microseconds since the epoch. */
int64_t clock_now(void);

/* Returns microseconds on the monotonic clock (CLOCK_MONOTONIC). */
int64_t clock_mono(void);

#endif
