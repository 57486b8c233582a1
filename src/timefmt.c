/* Microsecond timestamps to and from RFC 3339, and durations in ISO 8601. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lmtasks/error.h"
#include "lmtasks/text.h"
#include "lmtasks/timefmt.h"

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm): no libc, no time zone. */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static const char pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Two digits of v < 100. */
static inline char *
put2(char *p, unsigned v)
{
	memcpy(p, pairs + 2 * v, 2);
	return p + 2;
}

/* The date part of the last day formatted by this thread: the times of a page of tasks
 * mostly fall on a few days. */
static _Thread_local struct {
	int64_t days;
	char text[11];		/* "YYYY-MM-DDT" */
} last_day = { INT64_MIN, "" };

size_t
timefmt_rfc3339(int64_t us, char *buf)
{
	int64_t days = us / US_PER_DAY, rem = us % US_PER_DAY;

	if (rem < 0) {
		rem += US_PER_DAY;
		days--;
	}
	if (days != last_day.days) {
		int64_t y;
		unsigned m, d;
		civil_from_days(days, &y, &m, &d);
		if (y < 0 || y > 9999) {
			memcpy(buf, "0000-01-01T00:00:00.000000Z", 28);
			return 27;
		}
		char *p = put2(put2(last_day.text, (unsigned)(y / 100)), (unsigned)(y % 100));
		*p++ = '-';
		p = put2(p, m);
		*p++ = '-';
		p = put2(p, d);
		*p = 'T';
		last_day.days = days;
	}

	unsigned secs = (unsigned)(rem / US_PER_SEC), frac = (unsigned)(rem % US_PER_SEC);
	char *p = buf;
	memcpy(p, last_day.text, 11);
	p = put2(p + 11, secs / 3600);
	*p++ = ':';
	p = put2(p, secs / 60 % 60);
	*p++ = ':';
	p = put2(p, secs % 60);
	*p++ = '.';
	p = put2(p, frac / 10000);
	p = put2(p, frac / 100 % 100);
	p = put2(p, frac % 100);
	*p++ = 'Z';
	*p = '\0';
	return (size_t)(p - buf);
}

/* Writes v in decimal, no padding; returns the end. */
static char *
put_decimal(char *p, uint64_t v)
{
	char buf[TEXT_U64_MAX], *q = text_u64(buf + sizeof(buf), v);
	size_t n = (size_t)(buf + sizeof(buf) - q);

	memcpy(p, q, n);
	return p + n;
}

size_t
timefmt_duration(int64_t us, char *buf)
{
	char *p = buf;

	*p++ = 'P';
	if (us <= 0) {
		memcpy(p, "T0S", 4);
		return 4;
	}

	uint64_t rem = (uint64_t)us;

	if (rem >= (uint64_t)US_PER_DAY) {
		p = put_decimal(p, rem / (uint64_t)US_PER_DAY);
		*p++ = 'D';
		rem %= (uint64_t)US_PER_DAY;
	}
	if (rem != 0) {
		/* Under a day: 32-bit arithmetic from here on. */
		unsigned secs = (unsigned)(rem / (uint64_t)US_PER_SEC);
		unsigned frac = (unsigned)(rem % (uint64_t)US_PER_SEC);
		*p++ = 'T';
		if (secs < 100)
			p = secs < 10 ? (*p = (char)('0' + secs), p + 1) : put2(p, secs);
		else
			p = put_decimal(p, secs);
		/* Three digits for whole milliseconds, else six. */
		if (frac != 0) {
			*p++ = '.';
			if (frac % 1000 == 0) {
				*p++ = (char)('0' + frac / 100000);
				p = put2(p, frac / 1000 % 100);
			} else {
				p = put2(put2(put2(p, frac / 10000), frac / 100 % 100), frac % 100);
			}
		}
		*p++ = 'S';
	}
	*p = '\0';
	return (size_t)(p - buf);
}

/* Reads exactly n digits at *p; returns -1 when they are not all digits. */
static int64_t
take_digits(const char **p, const char *end, int n)
{
	int64_t v = 0;

	if (end - *p < n)
		return -1;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

static int
take_char(const char **p, const char *end, char a, char b)
{
	if (*p < end && (**p == a || **p == b)) {
		(*p)++;
		return 1;
	}
	return 0;
}

static int
days_in_month(int64_t y, unsigned m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 ? 28 + leap : dim[m - 1];
}

int
timefmt_parse(const char *s, size_t len, int64_t *us, int *date_only)
{
	const char *p = s, *end = s + len;
	int64_t y, mo, d, h, mi, sec, frac = 0, offset = 0;

	if ((y = take_digits(&p, end, 4)) < 0 || !take_char(&p, end, '-', '-') ||
	    (mo = take_digits(&p, end, 2)) < 1 || mo > 12 || !take_char(&p, end, '-', '-') ||
	    (d = take_digits(&p, end, 2)) < 1 || d > days_in_month(y, (unsigned)mo))
		return LMT_EINVAL;
	int64_t day = days_from_civil(y, (unsigned)mo, (unsigned)d);
	if (p == end) {
		*us = day * US_PER_DAY;
		*date_only = 1;
		return 0;
	}
	if (!take_char(&p, end, 'T', 't') ||
	    (h = take_digits(&p, end, 2)) < 0 || h > 23 || !take_char(&p, end, ':', ':') ||
	    (mi = take_digits(&p, end, 2)) < 0 || mi > 59 || !take_char(&p, end, ':', ':') ||
	    (sec = take_digits(&p, end, 2)) < 0 || sec > 60)
		return LMT_EINVAL;
	if (take_char(&p, end, '.', '.')) {
		int n = 0;
		while (p < end && *p >= '0' && *p <= '9') {
			if (n < 6)
				frac = frac * 10 + (*p - '0');
			n++;
			p++;
		}
		if (n == 0 || n > 9)
			return LMT_EINVAL;
		for (; n < 6; n++)
			frac *= 10;
	}
	if (take_char(&p, end, 'Z', 'z')) {
		offset = 0;
	} else if (p < end && (*p == '+' || *p == '-')) {
		int sign = *p++ == '-' ? -1 : 1;
		int64_t oh, om;
		if ((oh = take_digits(&p, end, 2)) < 0 || oh > 23 || !take_char(&p, end, ':', ':') ||
		    (om = take_digits(&p, end, 2)) < 0 || om > 59)
			return LMT_EINVAL;
		offset = sign * (oh * 3600 + om * 60);
	} else {
		return LMT_EINVAL;
	}
	if (p != end)
		return LMT_EINVAL;
	*us = day * US_PER_DAY + ((h * 3600 + mi * 60 + sec) - offset) * US_PER_SEC + frac;
	*date_only = 0;
	return 0;
}

int
timefmt_parse_delay(const char *s, size_t len, int64_t max_us, int64_t *us)
{
	/* The longest first: "ms" before "s". */
	static const struct {
		const char *unit;
		size_t len;
		int64_t us;
	} units[] = { { "ms", 2, 1000 }, { "s", 1, US_PER_SEC }, { "m", 1, 60 * US_PER_SEC },
	    { "h", 1, 3600 * US_PER_SEC }, { "d", 1, US_PER_DAY } };
	const char *p = s, *end = s + len;
	int64_t whole = 0, frac = 0, unit = US_PER_SEC;
	int digits = 0, fdigits = 0;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (len > units[i].len && memcmp(end - units[i].len, units[i].unit, units[i].len) == 0) {
			unit = units[i].us;
			end -= units[i].len;
			break;	/* one unit */
		}
	}
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
		if (whole > INT64_MAX / 10 / unit)
			return LMT_EINVAL;
		whole = whole * 10 + (*p - '0');
	}
	if (p < end && *p == '.') {
		for (p++; p < end && *p >= '0' && *p <= '9'; p++, fdigits++) {
			if (fdigits < 6)
				frac = frac * 10 + (*p - '0');
		}
		if (fdigits == 0)
			return LMT_EINVAL;
		for (int n = fdigits; n < 6; n++)
			frac *= 10;
	}
	if (p != end || digits == 0)
		return LMT_EINVAL;
	/* frac is in millionths of the unit; a unit is a whole number of µs. */
	int64_t v = whole * unit + frac * (unit / 1000) / 1000;
	if (v > max_us)
		return LMT_EINVAL;
	*us = v;
	return 0;
}
