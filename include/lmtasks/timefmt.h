/* Timestamps and durations as the tasks API prints them (SPEC §1). */
#ifndef LMTASKS_TIMEFMT_H
#define LMTASKS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Large enough for any output of this module, with its NUL. */
#define TIMEFMT_BUFSZ 48

/* Writes "2021-08-10T14:29:17.000000Z" into buf (TIMEFMT_BUFSZ); returns the length. */
size_t timefmt_rfc3339(int64_t us, char *buf);

/* Writes an ISO 8601 duration the way Meilisearch prints one (PT0S, PT0.250S, P1DT5S);
 * a negative span is printed as PT0S.  Returns the length. */
size_t timefmt_duration(int64_t us, char *buf);

/*
 * Parses RFC 3339 (any offset, up to nine fractional digits) or YYYY-MM-DD
 * (midnight UTC) into microseconds; *date_only tells which form it was.
 * Returns 0, or LMT_EINVAL.
 */
int timefmt_parse(const char *s, size_t len, int64_t *us, int *date_only);

/*
 * Parses a duration: a number (up to six decimals) with an optional unit, ms, s, m, h or
 * d, seconds when none ("90", "1.5", "250ms", "30s", "5m", "2h", "1d"), into
 * microseconds, at most max_us.  The one parser of the CLI's and NDJSON's durations.
 * Returns 0, or LMT_EINVAL (a sign, a space, an exponent or anything else).
 */
int timefmt_parse_delay(const char *s, size_t len, int64_t max_us, int64_t *us);

#endif
