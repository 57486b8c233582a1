/* The store settings' table: names found both ways, each kind of value parsed and shown as
 * `lmtasks config` shows it, refused values with the message that says what is wanted, and
 * the defaults. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/retry.h"
#include "lmtasks/settings.h"

#define MIB (UINT64_C(1) << 20)

/* Parses text for id (it must be taken) and returns how config shows it. */
static const char *
round_trip(enum setting_id id, const char *text, uint64_t want, int word)
{
	static char out[SETTINGS_TEXT_MAX];
	const char *why = NULL;
	uint64_t v = 0;

	cr_assert_eq(settings_parse(id, text, &v, &why), 0, "%s refused", text);
	cr_assert_eq(v, want, "%s: %llu, not %llu", text, (unsigned long long)v,
	    (unsigned long long)want);
	cr_assert_eq(settings_format(id, v, out), word, "%s: a word or a number", text);
	return out;
}

/* Checks that text is refused for id, with the message that starts with why_start. */
static void
refused(enum setting_id id, const char *text, const char *why_start)
{
	const char *why = NULL;
	uint64_t v = 12345;

	cr_assert_eq(settings_parse(id, text, &v, &why), LMT_EINVAL, "\"%s\" taken", text);
	cr_assert_not_null(why);
	cr_assert_eq(strncmp(why, why_start, strlen(why_start)), 0, "\"%s\": %s", text, why);
}

Test(settings, names_and_keys_are_found_both_ways)
{
	static const char *const names[SETTING_COUNT] = {
		"maxBytes", "maxTasks", "feedRetention", "compat", "maxAttempts", "retryBackoff"
	};
	enum setting_id id;

	for (int i = 0; i < SETTING_COUNT; i++) {
		cr_assert_str_eq(settings_name((enum setting_id)i), names[i]);
		cr_assert_eq(settings_find(names[i], &id), 0);
		cr_assert_eq(id, i);
		cr_assert_not_null(strstr(settings_names(), names[i]));
		cr_assert_eq(strncmp(settings_key((enum setting_id)i), "setting.", 8), 0,
		    "%s kept outside the settings' prefix", names[i]);
	}
	cr_assert_str_eq(settings_key(SETTING_FEED_RETENTION), FEED_RETENTION_KEY);
	cr_assert_null(settings_name(SETTING_COUNT));
	cr_assert_null(settings_key(SETTING_COUNT));
	cr_assert_eq(settings_find("maxbytes", &id), LMT_EINVAL);
	cr_assert_eq(settings_find("", &id), LMT_EINVAL);
}

Test(settings, max_bytes_takes_sizes_in_powers_of_1024)
{
	cr_assert_str_eq(round_trip(SETTING_MAX_BYTES, "1048576", MIB, 0), "1048576");
	cr_assert_str_eq(round_trip(SETTING_MAX_BYTES, "1M", MIB, 0), "1048576");
	cr_assert_str_eq(round_trip(SETTING_MAX_BYTES, "1024K", MIB, 0), "1048576");
	cr_assert_str_eq(round_trip(SETTING_MAX_BYTES, "512MiB", 512 * MIB, 0), "536870912");
	cr_assert_str_eq(round_trip(SETTING_MAX_BYTES, "2gib", 2048 * MIB, 0), "2147483648");
	cr_assert_str_eq(round_trip(SETTING_MAX_BYTES, "3GB", 3072 * MIB, 0), "3221225472");
	cr_assert_str_eq(round_trip(SETTING_MAX_BYTES, "1T", MIB * MIB, 0), "1099511627776");
}

Test(settings, max_bytes_refuses_what_is_no_size_or_under_1mib)
{
	static const char *const bad[] = {
		"", "-1", "+5M", "1048575", "1023K", "0", "1X", "1MB2", "1MiBs", "1.5G", "M",
		"99999999999999999999", "16777216T", " 1M",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(SETTING_MAX_BYTES, bad[i], "a size of at least 1MiB");
}

Test(settings, a_size_with_a_space_for_a_suffix_is_refused)
{
	uint64_t v = 0;

	cr_assert_eq(settings_parse_size("1 ", &v), LMT_EINVAL, "\"1 \" read as %llu",
	    (unsigned long long)v);
	cr_assert_eq(settings_parse_size("1 B", &v), LMT_EINVAL);
	refused(SETTING_MAX_BYTES, "2 ", "a size of at least 1MiB");
}

Test(settings, parse_size_alone_takes_small_sizes)
{
	uint64_t v = 0;

	cr_assert_eq(settings_parse_size("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(settings_parse_size("512k", &v), 0);
	cr_assert_eq(v, 512 * 1024);
	cr_assert_eq(settings_parse_size("512KB", &v), 0);
	cr_assert_eq(v, 512 * 1024);
	cr_assert_eq(settings_parse_size("16777215T", &v), 0);
	cr_assert_eq(v, UINT64_C(16777215) << 40);
	cr_assert_eq(settings_parse_size("16777216T", &v), LMT_EINVAL, "2^64 wrapped");
}

Test(settings, max_tasks_takes_a_count_and_0_for_off)
{
	cr_assert_str_eq(round_trip(SETTING_MAX_TASKS, "0", 0, 0), "0");
	cr_assert_str_eq(round_trip(SETTING_MAX_TASKS, "1000000", 1000000, 0), "1000000");
	cr_assert_str_eq(round_trip(SETTING_MAX_TASKS, "9999999999999999999",
	    UINT64_C(9999999999999999999), 0), "9999999999999999999");
}

Test(settings, max_tasks_refuses_what_is_no_whole_number)
{
	static const char *const bad[] = {
		"", "-1", "+1", "1k", "1.0", " 1", "1 ", "x", "10000000000000000000",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(SETTING_MAX_TASKS, bad[i], "a whole number of tasks");
}

Test(settings, feed_retention_takes_a_count_or_an_age)
{
	cr_assert_str_eq(round_trip(SETTING_FEED_RETENTION, "100000", 100000, 0), "100000");
	cr_assert_str_eq(round_trip(SETTING_FEED_RETENTION, "1", 1, 0), "1");
	uint64_t week = FEED_RETENTION_AGE_BIT | (7 * 86400);
	cr_assert_str_eq(round_trip(SETTING_FEED_RETENTION, "7d", week, 1), "7d");
	cr_assert_str_eq(round_trip(SETTING_FEED_RETENTION, "168h", week, 1), "7d");
	cr_assert_str_eq(round_trip(SETTING_FEED_RETENTION, "12h",
	    FEED_RETENTION_AGE_BIT | 43200, 1), "12h");
	cr_assert_str_eq(round_trip(SETTING_FEED_RETENTION, "30m",
	    FEED_RETENTION_AGE_BIT | 1800, 1), "30m");
	cr_assert_str_eq(round_trip(SETTING_FEED_RETENTION, "90s",
	    FEED_RETENTION_AGE_BIT | 90, 1), "90s");
}

Test(settings, feed_retention_refuses_zero_and_other_units)
{
	static const char *const bad[] = { "", "0", "0d", "-1", "7w", "7dd", "d", "1.5h", " 7d" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(SETTING_FEED_RETENTION, bad[i], "a number of changes (at least 1)");
}

Test(settings, compat_takes_its_two_levels)
{
	cr_assert_str_eq(round_trip(SETTING_COMPAT, "v0.25", COMPAT_V025, 1), "v0.25");
	cr_assert_str_eq(round_trip(SETTING_COMPAT, "v1", COMPAT_V1, 1), "v1");
	refused(SETTING_COMPAT, "v2", "a compatibility level: v0.25 (the default) or v1");
	refused(SETTING_COMPAT, "V1", "a compatibility level");
	refused(SETTING_COMPAT, "", "a compatibility level");
}

Test(settings, max_attempts_takes_0_to_1000)
{
	cr_assert_str_eq(round_trip(SETTING_MAX_ATTEMPTS, "0", 0, 0), "0");
	cr_assert_str_eq(round_trip(SETTING_MAX_ATTEMPTS, "5", 5, 0), "5");
	cr_assert_str_eq(round_trip(SETTING_MAX_ATTEMPTS, "1000", 1000, 0), "1000");
	refused(SETTING_MAX_ATTEMPTS, "1001", "a number of attempts");
	refused(SETTING_MAX_ATTEMPTS, "-1", "a number of attempts");
	refused(SETTING_MAX_ATTEMPTS, "3x", "a number of attempts");
}

Test(settings, retry_backoff_takes_a_duration_printed_in_its_largest_unit)
{
	cr_assert_str_eq(round_trip(SETTING_RETRY_BACKOFF, "10s", 10000, 1), "10s");
	cr_assert_str_eq(round_trip(SETTING_RETRY_BACKOFF, "30", 30000, 1), "30s");
	cr_assert_str_eq(round_trip(SETTING_RETRY_BACKOFF, "1.5m", 90000, 1), "90s");
	cr_assert_str_eq(round_trip(SETTING_RETRY_BACKOFF, "250ms", 250, 1), "250ms");
	cr_assert_str_eq(round_trip(SETTING_RETRY_BACKOFF, "2h", 7200000, 1), "2h");
	cr_assert_str_eq(round_trip(SETTING_RETRY_BACKOFF, "1d", 86400000, 1), "1d");
	refused(SETTING_RETRY_BACKOFF, "0", "a duration");
	refused(SETTING_RETRY_BACKOFF, "25h", "a duration");
	refused(SETTING_RETRY_BACKOFF, "5w", "a duration");
	refused(SETTING_RETRY_BACKOFF, "", "a duration");
	refused(SETTING_RETRY_BACKOFF, "s", "a duration");
}

Test(settings, an_id_out_of_range_is_refused)
{
	const char *why = NULL;
	uint64_t v;

	cr_assert_eq(settings_parse(SETTING_COUNT, "1", &v, &why), LMT_EINVAL);
}

Test(settings, the_defaults)
{
	char out[SETTINGS_TEXT_MAX];

	cr_assert_eq(SETTINGS_MAX_TASKS_DEFAULT, 1000000);
	cr_assert_eq(settings_format(SETTING_FEED_RETENTION, 0, out), 0,
	    "the default retention (0 kept) is a count");
	cr_assert_str_eq(out, "100000");
	cr_assert_eq(settings_format(SETTING_FEED_RETENTION, FEED_RETENTION_DEFAULT, out), 0);
	cr_assert_str_eq(out, "100000");
	cr_assert_eq(settings_format(SETTING_COMPAT, COMPAT_V025, out), 1);
	cr_assert_str_eq(out, "v0.25");
	cr_assert_eq(settings_format(SETTING_RETRY_BACKOFF, RETRY_BACKOFF_DEFAULT_MS, out), 1);
	cr_assert_str_eq(out, "10s");
	/* maxBytes: half of the disk's free space, never under 1 MiB. */
	cr_assert_geq(settings_default_max_bytes("/nonexistent/lmtasks"), MIB);
	cr_assert_eq(settings_default_max_bytes("/nonexistent/lmtasks"), MIB);
	cr_assert_geq(settings_default_max_bytes("/"), MIB);
}
