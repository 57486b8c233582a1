/* Retry delays: exponential backoff with jitter, and the durations that set it. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "lmtasks/error.h"
#include "lmtasks/retry.h"
#include "lmtasks/timefmt.h"

/* The jitter's range, in tenths of a percent: 0 to 400 for ±20%. */
#define JITTER_SPAN (20u * RETRY_JITTER_PERCENT)

int64_t
retry_delay_us(uint32_t first_ms, unsigned attempt, uint32_t jitter)
{
	uint64_t cap = first_ms > RETRY_BACKOFF_CAP_MS ? first_ms : RETRY_BACKOFF_CAP_MS;
	uint64_t ms = first_ms ? first_ms : 1;

	/* Doubled one step at a time: a thousand attempts must not shift past 64 bits. */
	for (unsigned i = 1; i < attempt && ms < cap; i++)
		ms *= 2;
	if (ms > cap)
		ms = cap;
	if (jitter > JITTER_SPAN)
		jitter = JITTER_SPAN;
	/* ms * 1000 µs scaled by (1000 - JITTER_SPAN / 2 + jitter) per mille. */
	return (int64_t)(ms * (1000 - JITTER_SPAN / 2 + jitter));
}

int64_t
retry_backoff_us(uint32_t first_ms, unsigned attempt)
{
	/* Idempotent and cheap once done; randombytes needs no more. */
	if (sodium_init() < 0)
		return retry_delay_us(first_ms, attempt, JITTER_SPAN / 2);
	return retry_delay_us(first_ms, attempt, randombytes_uniform(JITTER_SPAN + 1));
}

static const struct {
	const char *unit;
	uint64_t ms;
} units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
};

int
retry_parse_duration(const char *text, uint32_t *ms)
{
	int64_t us;

	/* timefmt's durations, in whole milliseconds (a part of one is dropped). */
	if (timefmt_parse_delay(text, strlen(text), (int64_t)RETRY_BACKOFF_MAX_MS * 1000, &us) != 0 ||
	    us < 1000)
		return LMT_EINVAL;
	*ms = (uint32_t)(us / 1000);
	return 0;
}

void
retry_format_duration(uint32_t ms, char text[RETRY_DURATION_BUFSZ])
{
	if (ms == 0) {
		snprintf(text, RETRY_DURATION_BUFSZ, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].ms == 0) {
			snprintf(text, RETRY_DURATION_BUFSZ, "%lu%s",
			    (unsigned long)(ms / units[i].ms), units[i].unit);
			return;
		}
	}
}
