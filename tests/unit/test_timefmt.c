/* Timestamps and durations: the exact strings of SPEC §1, and parsing of filter dates. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/clock.h"
#include "lmtasks/error.h"
#include "lmtasks/timefmt.h"

#define S INT64_C(1000000)
#define DAY (INT64_C(86400) * S)

static void
expect_rfc3339(int64_t us, const char *want)
{
	char buf[TIMEFMT_BUFSZ];
	size_t n = timefmt_rfc3339(us, buf);

	cr_assert_str_eq(buf, want, "%lld: got %s, want %s", (long long)us, buf, want);
	cr_assert_eq(n, strlen(want), "%lld: length %zu", (long long)us, n);
}

static void
expect_duration(int64_t us, const char *want)
{
	char buf[TIMEFMT_BUFSZ];
	size_t n = timefmt_duration(us, buf);

	cr_assert_str_eq(buf, want, "%lld: got %s, want %s", (long long)us, buf, want);
	cr_assert_eq(n, strlen(want), "%lld: length %zu", (long long)us, n);
}

static int64_t
parse_ok(const char *s, int want_date_only)
{
	int64_t us = -42;
	int date_only = -1;

	cr_assert_eq(timefmt_parse(s, strlen(s), &us, &date_only), 0, "'%s' must parse", s);
	cr_assert_eq(date_only, want_date_only, "'%s': date_only %d", s, date_only);
	return us;
}

static void
parse_bad(const char *s)
{
	int64_t us = 0;
	int date_only = 0;

	cr_expect_eq(timefmt_parse(s, strlen(s), &us, &date_only), LMT_EINVAL,
	    "'%s' must be refused", s);
}

/* timefmt_rfc3339 */

Test(rfc3339, epoch)
{
	expect_rfc3339(0, "1970-01-01T00:00:00.000000Z");
}

Test(rfc3339, spec_example)
{
	expect_rfc3339(INT64_C(1628605757000000), "2021-08-10T14:29:17.000000Z");
}

Test(rfc3339, microseconds_six_digits)
{
	expect_rfc3339(INT64_C(1628605757123456), "2021-08-10T14:29:17.123456Z");
	expect_rfc3339(INT64_C(1628605757000001), "2021-08-10T14:29:17.000001Z");
	expect_rfc3339(INT64_C(1628605757100000), "2021-08-10T14:29:17.100000Z");
	expect_rfc3339(INT64_C(1628605757999999), "2021-08-10T14:29:17.999999Z");
	expect_rfc3339(INT64_C(1628605757000010), "2021-08-10T14:29:17.000010Z");
}

Test(rfc3339, leap_day)
{
	expect_rfc3339(INT64_C(1709210096) * S, "2024-02-29T12:34:56.000000Z");
	expect_rfc3339(INT64_C(1709251200) * S - 1, "2024-02-29T23:59:59.999999Z");
	expect_rfc3339(INT64_C(1709251200) * S, "2024-03-01T00:00:00.000000Z");
	expect_rfc3339(INT64_C(951782400) * S, "2000-02-29T00:00:00.000000Z");
	/* 2100 is not a leap year: Feb 28 is followed by Mar 1. */
	expect_rfc3339(INT64_C(4107456000) * S + DAY, "2100-03-01T00:00:00.000000Z");
}

Test(rfc3339, year_boundaries)
{
	expect_rfc3339(INT64_C(1704067199) * S + 999999, "2023-12-31T23:59:59.999999Z");
	expect_rfc3339(INT64_C(1704067200) * S, "2024-01-01T00:00:00.000000Z");
	expect_rfc3339(INT64_C(946684799) * S + 999999, "1999-12-31T23:59:59.999999Z");
	expect_rfc3339(INT64_C(946684800) * S, "2000-01-01T00:00:00.000000Z");
	expect_rfc3339(INT64_C(253402300799) * S + 999999, "9999-12-31T23:59:59.999999Z");
}

Test(rfc3339, before_epoch)
{
	expect_rfc3339(-1, "1969-12-31T23:59:59.999999Z");
	expect_rfc3339(-DAY, "1969-12-31T00:00:00.000000Z");
}

/* timefmt_duration: the golden values of SPEC §1 */

Test(duration, zero)
{
	expect_duration(0, "PT0S");
}

Test(duration, whole_milliseconds_three_digits)
{
	expect_duration(250000, "PT0.250S");
	expect_duration(1000, "PT0.001S");
	expect_duration(1500000, "PT1.500S");
}

Test(duration, microseconds_six_digits)
{
	expect_duration(184408, "PT0.184408S");
	expect_duration(1, "PT0.000001S");
	expect_duration(59999999, "PT59.999999S");
	expect_duration(1000010, "PT1.000010S");
}

Test(duration, whole_seconds)
{
	expect_duration(1000000, "PT1S");
	expect_duration(3600000000, "PT3600S");
	expect_duration(DAY - S, "PT86399S");
}

Test(duration, days_then_seconds)
{
	expect_duration(INT64_C(86405000000), "P1DT5S");
	expect_duration(DAY + 250000, "P1DT0.250S");
	expect_duration(3 * DAY + 7200 * S + 184408, "P3DT7200.184408S");
}

/* Exactly whole days: Meilisearch's serializer prints only the date part ("P1D"). */
Test(duration, whole_days)
{
	expect_duration(INT64_C(86400000000), "P1D");
	expect_duration(2 * DAY, "P2D");
}

Test(duration, negative_is_zero)
{
	expect_duration(-1, "PT0S");
	expect_duration(-INT64_C(86405000000), "PT0S");
	expect_duration(INT64_MIN, "PT0S");
}

/* timefmt_parse */

Test(parse, utc_z)
{
	cr_assert_eq(parse_ok("2021-08-10T14:29:17Z", 0), INT64_C(1628605757000000));
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.000000Z", 0), INT64_C(1628605757000000));
	cr_assert_eq(parse_ok("1970-01-01T00:00:00Z", 0), 0);
}

Test(parse, lower_case_t_and_z)
{
	cr_assert_eq(parse_ok("2021-08-10t14:29:17z", 0), INT64_C(1628605757000000));
}

Test(parse, offsets)
{
	cr_assert_eq(parse_ok("2021-08-10T16:29:17+02:00", 0), INT64_C(1628605757000000));
	cr_assert_eq(parse_ok("2021-08-10T09:59:17-04:30", 0), INT64_C(1628605757000000));
	cr_assert_eq(parse_ok("2021-08-10T14:29:17+00:00", 0), INT64_C(1628605757000000));
	cr_assert_eq(parse_ok("2021-08-10T14:29:17-00:00", 0), INT64_C(1628605757000000));
	/* An offset that crosses midnight and the year. */
	cr_assert_eq(parse_ok("2024-01-01T01:00:00+02:00", 0), INT64_C(1704067200) * S - 3600 * S);
	cr_assert_eq(parse_ok("2023-12-31T22:00:00.5-02:00", 0), INT64_C(1704067200) * S + 500000);
}

Test(parse, fractions)
{
	int64_t base = INT64_C(1628605757000000);

	cr_assert_eq(parse_ok("2021-08-10T14:29:17.1Z", 0), base + 100000);
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.12Z", 0), base + 120000);
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.123Z", 0), base + 123000);
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.000001Z", 0), base + 1);
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.123456Z", 0), base + 123456);
	/* Digits past the microsecond are accepted and dropped, up to nine in all. */
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.1234567Z", 0), base + 123456);
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.123456789Z", 0), base + 123456);
	cr_assert_eq(parse_ok("2021-08-10T14:29:17.999999999+01:00", 0), base - 3600 * S + 999999);
}

Test(parse, fraction_too_long_or_empty)
{
	parse_bad("2021-08-10T14:29:17.1234567890Z");
	parse_bad("2021-08-10T14:29:17.Z");
	parse_bad("2021-08-10T14:29:17.");
}

Test(parse, date_only)
{
	cr_assert_eq(parse_ok("2021-08-10", 1), INT64_C(1628553600000000));
	cr_assert_eq(parse_ok("1970-01-01", 1), 0);
	cr_assert_eq(parse_ok("2024-02-29", 1), INT64_C(1709164800) * S);
	cr_assert_eq(parse_ok("2024-01-01", 1), INT64_C(1704067200) * S);
}

Test(parse, leap_days)
{
	cr_assert_eq(parse_ok("2024-02-29T12:34:56Z", 0), INT64_C(1709210096) * S);
	cr_assert_eq(parse_ok("2000-02-29", 1), INT64_C(951782400) * S);
	parse_bad("2023-02-29");
	parse_bad("2023-02-29T00:00:00Z");
	parse_bad("1900-02-29");
	parse_bad("2100-02-29");
	parse_bad("2024-02-30");
}

Test(parse, invalid_dates)
{
	parse_bad("2023-13-01");
	parse_bad("2023-00-10");
	parse_bad("2023-01-00");
	parse_bad("2023-01-32");
	parse_bad("2023-04-31");
	parse_bad("2023-06-31T00:00:00Z");
	parse_bad("2023-1-01");
	parse_bad("2023-01-1");
	parse_bad("23-01-01");
	parse_bad("2023/01/01");
}

Test(parse, invalid_times)
{
	parse_bad("2021-08-10T24:00:00Z");
	parse_bad("2021-08-10T14:60:00Z");
	parse_bad("2021-08-10T14:29:61Z");
	parse_bad("2021-08-10T14:29Z");
	parse_bad("2021-08-10T14:29:17");
	parse_bad("2021-08-10T");
	parse_bad("2021-08-10T1:29:17Z");
	parse_bad("2021-08-10T14:29:17+02");
	parse_bad("2021-08-10T14:29:17+0200");
	parse_bad("2021-08-10T14:29:17+24:00");
	parse_bad("2021-08-10T14:29:17+02:60");
}

Test(parse, garbage_and_trailing)
{
	parse_bad("");
	parse_bad("garbage");
	parse_bad("yesterday");
	parse_bad("1628605757");
	parse_bad("2021-08-10x");
	parse_bad("2021-08-10 ");
	parse_bad(" 2021-08-10");
	parse_bad("2021-08-10T14:29:17Zx");
	parse_bad("2021-08-10T14:29:17ZZ");
	parse_bad("2021-08-10T14:29:17+02:00Z");
	parse_bad("2021-08-10T14:29:17Z ");
}

Test(parse, length_is_honoured)
{
	const char *s = "2021-08-10T14:29:17Zjunk";
	int64_t us = 0;
	int date_only = -1;

	cr_assert_eq(timefmt_parse(s, 20, &us, &date_only), 0);
	cr_assert_eq(us, INT64_C(1628605757000000));
	cr_assert_eq(date_only, 0);
	cr_assert_eq(timefmt_parse(s, 10, &us, &date_only), 0);
	cr_assert_eq(us, INT64_C(1628553600000000));
	cr_assert_eq(date_only, 1);
	cr_assert_eq(timefmt_parse(s, 19, &us, &date_only), LMT_EINVAL);
	cr_assert_eq(timefmt_parse(s, 0, &us, &date_only), LMT_EINVAL);
}

Test(parse, round_trip)
{
	static const int64_t fixed[] = {
		0, 1, 999999, INT64_C(1628605757000000), INT64_C(1628605757123456),
		INT64_C(1709210096) * S + 7, INT64_C(1704067199) * S + 999999,
		INT64_C(946684800) * S, INT64_C(253402300799) * S + 999999,
	};
	char buf[TIMEFMT_BUFSZ];
	uint64_t x = 88172645463325252u;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		int64_t us = -1;
		int date_only = -1;
		size_t n = timefmt_rfc3339(fixed[i], buf);
		cr_assert_eq(timefmt_parse(buf, n, &us, &date_only), 0, "%s", buf);
		cr_assert_eq(us, fixed[i], "%s gave %lld, want %lld", buf, (long long)us,
		    (long long)fixed[i]);
		cr_assert_eq(date_only, 0);
	}
	/* Pseudo-random instants between 1970 and 9999. */
	for (int i = 0; i < 10000; i++) {
		int64_t want, us = -1;
		int date_only = -1;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		want = (int64_t)(x % (uint64_t)(INT64_C(253402300800) * S));
		size_t n = timefmt_rfc3339(want, buf);
		cr_assert_eq(n, 27, "%s", buf);
		cr_assert_eq(timefmt_parse(buf, n, &us, &date_only), 0, "%s", buf);
		cr_assert_eq(us, want, "%s gave %lld, want %lld", buf, (long long)us, (long long)want);
	}
}

Test(now, is_recent_microseconds)
{
	int64_t a = clock_now(), b = clock_now();

	/* After 2021-01-01 and before 2200: microseconds, not seconds or nanoseconds. */
	cr_assert_gt(a, INT64_C(1609459200) * S);
	cr_assert_lt(a, INT64_C(7258118400) * S);
	cr_assert_geq(b, a);
}

Test(delay, seconds_and_units)
{
	static const struct {
		const char *s;
		int64_t us;
	} ok[] = {
		{ "0", 0 }, { "90", 90000000 }, { "1.5", 1500000 }, { "0.000001", 1 },
		{ "0.0000019", 1 }, { "30s", 30000000 }, { "5m", 300000000 },
		{ "2h", INT64_C(7200000000) }, { "1d", INT64_C(86400000000) },
		{ "1.5h", INT64_C(5400000000) }, { "3650d", INT64_C(315360000000000) },
		{ "1ms", 1000 }, { "250ms", 250000 }, { "1.5ms", 1500 },
	};
	static const char *const bad[] = { "", "s", "-1", "+1", "1e3", " 1", "1 ", "1.", ".5",
	    "1y", "ms", "5mm", "1msms", "3651d", "99999999999999999999" };
	int64_t us;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(timefmt_parse_delay(ok[i].s, strlen(ok[i].s), INT64_C(315360000000000),
		    &us), 0, "%s", ok[i].s);
		cr_assert_eq(us, ok[i].us, "%s: %lld", ok[i].s, (long long)us);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(timefmt_parse_delay(bad[i], strlen(bad[i]), INT64_C(315360000000000),
		    &us), LMT_EINVAL, "%s", bad[i]);
}
