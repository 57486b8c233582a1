/* NDJSON batches: every line checked, the first bad one named, the tasks in order. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/batch.h"
#include "lmtasks/clock.h"
#include "lmtasks/error.h"

static int
parse(const char *text, struct batch **b, size_t *line, char *why)
{
	return batch_parse(text, strlen(text), b, line, why, 256);
}

Test(batch, lines_become_tasks_in_order)
{
	struct batch *b = NULL;
	char why[256];
	size_t line = 0;
	const char *text =
	    "{\"indexUid\":\"movies\",\"type\":\"documentAddition\",\"details\":{\"n\":1}}\n"
	    "\n"
	    "  {\"type\":\"settingsUpdate\", \"indexUid\":\"books\"}\r\n"
	    "{\"indexUid\":\"movies\",\"type\":\"indexCreation\",\"details\":{ \"a\" : [1, 2] }}";

	cr_assert_eq(parse(text, &b, &line, why), 0, "%s", why);
	cr_assert_eq(batch_count(b), 3);
	struct task *t = batch_tasks(b);
	cr_assert(t[0].index_uid.len == 6 && memcmp(t[0].index_uid.ptr, "movies", 6) == 0);
	cr_assert(t[0].details.len == 7 && memcmp(t[0].details.ptr, "{\"n\":1}", 7) == 0);
	cr_assert(t[1].type.len == 14 && memcmp(t[1].type.ptr, "settingsUpdate", 14) == 0);
	cr_assert(t[1].details.len == 2 && memcmp(t[1].details.ptr, "{}", 2) == 0);
	cr_assert(t[2].details.len == 11 && memcmp(t[2].details.ptr, "{\"a\":[1,2]}", 11) == 0,
	    "details are kept compact: %.*s", (int)t[2].details.len, t[2].details.ptr);
	cr_assert_eq(t[2].status, TASK_ENQUEUED);
	batch_free(b);
}

Test(batch, an_empty_batch_is_no_tasks)
{
	struct batch *b = NULL;
	char why[256];
	size_t line = 0;

	cr_assert_eq(parse("\n\n", &b, &line, why), 0);
	cr_assert_eq(batch_count(b), 0);
	batch_free(b);
}

Test(batch, the_first_bad_line_is_named)
{
	static const struct {
		const char *text;
		size_t line;
		const char *why;
	} cases[] = {
		{ "{\"indexUid\":\"a\",\"type\":\"x\"}\nnot json\n", 2, "" },
		{ "{\"indexUid\":\"a b\",\"type\":\"x\"}\n", 1, "indexUid" },
		{ "{\"indexUid\":\"a\",\"type\":\"Bad\"}\n", 1, "type" },
		{ "{\"indexUid\":\"a\"}\n", 1, "type" },
		{ "{\"indexUid\":\"a\",\"type\":\"x\",\"details\":[1]}\n", 1, "details" },
		{ "\n\n{\"indexUid\":\"a\",\"type\":\"x\",\"other\":1}\n", 3, "" },
		{ "[1,2]\n", 1, "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct batch *b = NULL;
		char why[256] = "";
		size_t line = 0;
		cr_assert_eq(parse(cases[i].text, &b, &line, why), LMT_EINVAL, "case %zu", i);
		cr_assert_eq(line, cases[i].line, "case %zu: line %zu", i, line);
		cr_assert_not_null(strstr(why, cases[i].why), "case %zu: %s", i, why);
		cr_assert_gt(strlen(why), 0);
		batch_free(b);
	}
}

/* customMetadata: a string (or null: none) on any line; anything else names the line. */
Test(batch, custom_metadata_is_a_string_field)
{
	struct batch *b = NULL;
	char why[256];
	size_t line = 0;
	const char *text =
	    "{\"indexUid\":\"movies\",\"type\":\"x\",\"customMetadata\":\"ticket-\\u00e9\"}\n"
	    "{\"indexUid\":\"movies\",\"type\":\"x\"}\n"
	    "{\"indexUid\":\"movies\",\"type\":\"x\",\"customMetadata\":null}\n"
	    "{\"customMetadata\":\"\",\"indexUid\":\"movies\",\"type\":\"x\"}\n";

	cr_assert_eq(parse(text, &b, &line, why), 0, "%s", why);
	cr_assert_eq(batch_count(b), 4);
	struct task *t = batch_tasks(b);
	cr_assert(t[0].custom_metadata.len == 9 &&
	    memcmp(t[0].custom_metadata.ptr, "ticket-\xc3\xa9", 9) == 0);
	cr_assert_null(t[1].custom_metadata.ptr);
	cr_assert_null(t[2].custom_metadata.ptr);
	cr_assert_not_null(t[3].custom_metadata.ptr);
	cr_assert_eq(t[3].custom_metadata.len, 0);
	batch_free(b);

	cr_assert_eq(parse("{\"indexUid\":\"a\",\"type\":\"x\"}\n"
	    "{\"indexUid\":\"a\",\"type\":\"x\",\"customMetadata\":7}\n", &b, &line, why), LMT_EINVAL);
	cr_assert_eq(line, 2);
	cr_assert(strstr(why, "customMetadata") != NULL, "%s", why);
}

/* A retry policy: maxAttempts 1 to 1000, backoff a duration or a number of seconds (null:
 * none); anything else names the line. */
Test(batch, a_retry_policy_is_two_fields)
{
	struct batch *b = NULL;
	char why[256];
	size_t line = 0;
	const char *text =
	    "{\"indexUid\":\"m\",\"type\":\"x\",\"maxAttempts\":3,\"backoff\":\"1.5m\"}\n"
	    "{\"indexUid\":\"m\",\"type\":\"x\",\"maxAttempts\":1000,\"backoff\":2.5}\n"
	    "{\"indexUid\":\"m\",\"type\":\"x\",\"maxAttempts\":null,\"backoff\":null}\n"
	    "{\"indexUid\":\"m\",\"type\":\"x\"}\n";

	cr_assert_eq(parse(text, &b, &line, why), 0, "%s", why);
	struct task *t = batch_tasks(b);
	cr_assert_eq(t[0].max_attempts, 3);
	cr_assert_eq(t[0].backoff_ms, 90000);
	cr_assert_eq(t[1].max_attempts, 1000);
	cr_assert_eq(t[1].backoff_ms, 2500);
	cr_assert_eq(t[2].max_attempts + t[2].backoff_ms + t[3].max_attempts + t[3].backoff_ms, 0);
	batch_free(b);

	static const char *const bad[] = {
		"\"maxAttempts\":0", "\"maxAttempts\":1001", "\"maxAttempts\":\"3\"",
		"\"maxAttempts\":2.5", "\"backoff\":\"5w\"", "\"backoff\":0", "\"backoff\":true",
		"\"backoff\":\"25h\"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line2[160];
		snprintf(line2, sizeof(line2), "{\"indexUid\":\"a\",\"type\":\"x\"}\n"
		    "{\"indexUid\":\"a\",\"type\":\"x\",%s}\n", bad[i]);
		cr_assert_eq(parse(line2, &b, &line, why), LMT_EINVAL, "%s taken", bad[i]);
		cr_assert_eq(line, 2);
		cr_assert(strstr(why, bad[i][1] == 'm' ? "maxAttempts" : "backoff") != NULL, "%s",
		    why);
	}
}

/* A line's schedule reads the same whichever parser takes it: the plain form (the fast
 * path) and one json-c must read (spaces, an exponent, a key order). */
Test(batch, priority_delay_and_not_before_read_alike_on_both_paths)
{
	static const struct {
		const char *line;
		int32_t priority;
		int64_t delay;		/* µs from the call; -1: not_before is `at` */
		int64_t at;
	} cases[] = {
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"priority\":7}", 7, 0, 0 },
		{ "{\"indexUid\":\"m\", \"type\":\"x\", \"priority\": 7}", 7, 0, 0 },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"priority\":-1000000}", -1000000, 0, 0 },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":90}", 0, 90000000, 0 },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":1.5}", 0, 1500000, 0 },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":15e-1}", 0, 1500000, 0 },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":\"5m\"}", 0, 300000000, 0 },
		{ "{ \"delay\" : \"5m\", \"indexUid\":\"m\",\"type\":\"x\"}", 0, 300000000, 0 },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":0,\"priority\":2}", 2, 0, 0 },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"notBefore\":\"2030-01-02T03:04:05Z\"}", 0, -1,
		    INT64_C(1893553445000000) },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"notBefore\":\"2030-01-02T04:04:05+01:00\","
		    "\"details\":{\"a\":1}}", 0, -1, INT64_C(1893553445000000) },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"notBefore\":null,\"priority\":null}", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct batch *b = NULL;
		char why[256] = "";
		size_t line = 0;
		int64_t before = clock_now();
		cr_assert_eq(parse(cases[i].line, &b, &line, why), 0, "%s: %s", cases[i].line, why);
		int64_t after = clock_now();
		struct task *t = batch_tasks(b);
		cr_assert_eq(t->priority, cases[i].priority, "%s", cases[i].line);
		if (cases[i].delay < 0)
			cr_assert_eq(t->not_before, cases[i].at, "%s", cases[i].line);
		else if (cases[i].delay == 0)
			cr_assert_eq(t->not_before, 0, "%s", cases[i].line);
		else
			cr_assert(t->not_before >= before + cases[i].delay &&
			    t->not_before <= after + cases[i].delay, "%s", cases[i].line);
		batch_free(b);
	}
}

Test(batch, a_bad_schedule_is_refused_with_its_reason)
{
	static const struct {
		const char *line;
		const char *why;
	} cases[] = {
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"priority\":1000001}", "priority" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"priority\":1.5}", "priority" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"priority\":\"1\"}", "priority" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":-1}", "delay" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":\"1y\"}", "delay" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":\"3651d\"}", "delay" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":true}", "delay" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"notBefore\":\"tomorrow\"}", "notBefore" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"notBefore\":\"1969-12-31\"}", "notBefore" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"notBefore\":5}", "notBefore" },
		{ "{\"indexUid\":\"m\",\"type\":\"x\",\"delay\":5,\"notBefore\":\"2030-01-01\"}",
		    "do not go together" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct batch *b = NULL;
		char why[256] = "";
		size_t line = 0;
		cr_assert_eq(parse(cases[i].line, &b, &line, why), LMT_EINVAL, "%s", cases[i].line);
		cr_assert_eq(line, 1);
		cr_assert(strstr(why, cases[i].why), "%s: %s", cases[i].line, why);
	}
}
