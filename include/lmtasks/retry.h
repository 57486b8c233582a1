/* A task's retry policy: the delay before each retry (exponential backoff with jitter) and
 * durations as the CLI, NDJSON and `config` write them.  Knows nothing of the store. */
#ifndef LMTASKS_RETRY_H
#define LMTASKS_RETRY_H

#include <stdint.h>

/* The first retry's delay when neither the task nor the store gives one (retryBackoff). */
#define RETRY_BACKOFF_DEFAULT_MS 10000u
/* Each retry waits twice as long as the one before, up to this (or up to the first
 * delay, when that is longer): past an hour a task is better looked at by a person. */
#define RETRY_BACKOFF_CAP_MS 3600000u
/* The longest first delay a policy may give: a day. */
#define RETRY_BACKOFF_MAX_MS 86400000u
/* Every delay is drawn within ±this share (percent) of its doubling, so that the tasks a
 * failure hit together do not come back together. */
#define RETRY_JITTER_PERCENT 20

/*
 * The delay before the retry that follows failed attempt number attempt (1 for the
 * first), in µs, for a policy whose first delay is first_ms (1 or more): first_ms doubled
 * attempt - 1 times, capped at max(RETRY_BACKOFF_CAP_MS, first_ms), then scaled by
 * (100 - RETRY_JITTER_PERCENT + jitter / 10) percent, jitter from 0 to
 * 20 * RETRY_JITTER_PERCENT (larger is taken as that).  Deterministic: the tests' seam.
 */
int64_t retry_delay_us(uint32_t first_ms, unsigned attempt, uint32_t jitter);

/* retry_delay_us() with jitter drawn uniformly by libsodium's randombytes. */
int64_t retry_backoff_us(uint32_t first_ms, unsigned attempt);

/*
 * Parses a duration: a number with an optional unit, ms, s, m, h or d (none: seconds),
 * like 30s, 1.5m, 250ms or 2h, into whole milliseconds, 1 to RETRY_BACKOFF_MAX_MS.
 * Returns 0, or LMT_EINVAL.
 */
int retry_parse_duration(const char *text, uint32_t *ms);

#define RETRY_DURATION_BUFSZ 16

/* Writes ms as retry_parse_duration() reads it back, in the largest whole unit (10s, 90m,
 * 1500ms) into text. */
void retry_format_duration(uint32_t ms, char text[RETRY_DURATION_BUFSZ]);

#endif
