/* JSON output: golden bytes for every status, durations, errors, escaping and envelopes. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "lmtasks/api_error.h"
#include "lmtasks/render.h"
#include "lmtasks/task.h"

#define STR(s) ((struct task_str){ (s), sizeof(s) - 1 })
#define NOSTR ((struct task_str){ NULL, 0 })

/* 2021-08-10T14:29:17.000000Z */
#define T0 INT64_C(1628605757000000)
#define SEC INT64_C(1000000)

static struct printbuf *pb;

static void
pb_setup(void)
{
	pb = printbuf_new();
	cr_assert_not_null(pb);
}

static void
pb_teardown(void)
{
	printbuf_free(pb);
}

TestSuite(render, .init = pb_setup, .fini = pb_teardown);

/* Asserts that pb holds exactly want (length included: no NUL can hide a tail). */
static void
expect_pb(const char *want)
{
	cr_assert_eq((size_t)printbuf_length(pb), strlen(want),
	    "length %d, want %zu\n got: %s\nwant: %s", printbuf_length(pb), strlen(want),
	    pb->buf, want);
	cr_assert(memcmp(pb->buf, want, strlen(want)) == 0, "\n got: %s\nwant: %s", pb->buf, want);
}

static struct task
task_of(enum task_status status)
{
	struct task t;

	memset(&t, 0, sizeof(t));
	t.uid = 0;
	t.status = status;
	t.enqueued_at = T0;
	t.canceled_by = TASK_NO_UID;
	t.index_uid = STR("movies");
	t.type = STR("documentAddition");
	t.details = STR("{}");
	return t;
}

Test(render, spec_example)
{
	struct task t = task_of(TASK_SUCCEEDED);

	t.type = STR("settingsUpdate");
	t.details = STR("{\"rankingRules\":[\"typo\",\"ranking:desc\",\"words\",\"proximity\","
	    "\"attribute\",\"exactness\"]}");
	t.started_at = T0 + SEC;
	t.finished_at = T0 + 2 * SEC;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":0,\"indexUid\":\"movies\",\"status\":\"succeeded\",\"type\":\"settingsUpdate\","
	    "\"details\":{\"rankingRules\":[\"typo\",\"ranking:desc\",\"words\",\"proximity\","
	    "\"attribute\",\"exactness\"]},"
	    "\"duration\":\"PT1S\",\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":\"2021-08-10T14:29:18.000000Z\",\"finishedAt\":\"2021-08-10T14:29:19.000000Z\"}");
}

Test(render, enqueued)
{
	struct task t = task_of(TASK_ENQUEUED);

	t.uid = 5;
	t.details = STR("{\"receivedDocuments\":79000}");
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":5,\"indexUid\":\"movies\",\"status\":\"enqueued\",\"type\":\"documentAddition\","
	    "\"details\":{\"receivedDocuments\":79000},\"duration\":null,"
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\",\"startedAt\":null,\"finishedAt\":null}");
}

Test(render, processing)
{
	struct task t = task_of(TASK_PROCESSING);

	t.uid = 6;
	t.started_at = T0 + 123456;
	t.lease_until = T0 + 60 * SEC;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":6,\"indexUid\":\"movies\",\"status\":\"processing\",\"type\":\"documentAddition\","
	    "\"details\":{},\"duration\":null,"
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\",\"startedAt\":\"2021-08-10T14:29:17.123456Z\","
	    "\"finishedAt\":null}");
}

Test(render, failed_with_error_object)
{
	struct task t = task_of(TASK_FAILED);

	t.uid = 1;
	t.type = STR("indexCreation");
	t.details = STR("{\"primaryKey\":\"id\"}");
	t.started_at = T0 + SEC;
	t.finished_at = T0 + SEC + 250000;
	t.error_code = STR("index_already_exists");
	t.error_message = STR("Index `movies` already exists.");
	t.error_type = TASK_ERR_INVALID_REQUEST;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":1,\"indexUid\":\"movies\",\"status\":\"failed\",\"type\":\"indexCreation\","
	    "\"details\":{\"primaryKey\":\"id\"},"
	    "\"error\":{\"message\":\"Index `movies` already exists.\",\"code\":\"index_already_exists\","
	    "\"type\":\"invalid_request\",\"link\":\"https://docs.meilisearch.com/errors#index_already_exists\"},"
	    "\"duration\":\"PT0.250S\",\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":\"2021-08-10T14:29:18.000000Z\",\"finishedAt\":\"2021-08-10T14:29:18.250000Z\"}");
}

Test(render, failed_error_types_and_escaped_message)
{
	struct task t = task_of(TASK_FAILED);

	t.started_at = T0;
	t.finished_at = T0;
	t.error_code = STR("internal");
	t.error_message = STR("disk \"full\"\n");
	t.error_type = TASK_ERR_INTERNAL;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":0,\"indexUid\":\"movies\",\"status\":\"failed\",\"type\":\"documentAddition\","
	    "\"details\":{},"
	    "\"error\":{\"message\":\"disk \\\"full\\\"\\n\",\"code\":\"internal\","
	    "\"type\":\"internal\",\"link\":\"https://docs.meilisearch.com/errors#internal\"},"
	    "\"duration\":\"PT0S\",\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":\"2021-08-10T14:29:17.000000Z\",\"finishedAt\":\"2021-08-10T14:29:17.000000Z\"}");
	printbuf_reset(pb);
	t.error_code = STR("invalid_api_key");
	t.error_message = STR("The provided API key is invalid.");
	t.error_type = TASK_ERR_AUTH;
	cr_assert_eq(render_task(pb, &t), 0);
	cr_assert_not_null(strstr(pb->buf, ",\"error\":{\"message\":\"The provided API key is invalid.\","
	    "\"code\":\"invalid_api_key\",\"type\":\"auth\","
	    "\"link\":\"https://docs.meilisearch.com/errors#invalid_api_key\"},\"duration\":"), "%s", pb->buf);
}

Test(render, canceled_while_processing)
{
	struct task t = task_of(TASK_CANCELED);

	t.uid = 3;
	t.canceled_by = 9;
	t.started_at = T0 + SEC;
	t.finished_at = T0 + 3601 * SEC;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":3,\"indexUid\":\"movies\",\"status\":\"canceled\",\"type\":\"documentAddition\","
	    "\"canceledBy\":9,\"details\":{},\"duration\":\"PT3600S\","
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\",\"startedAt\":\"2021-08-10T14:29:18.000000Z\","
	    "\"finishedAt\":\"2021-08-10T15:29:18.000000Z\"}");
}

Test(render, canceled_while_enqueued)
{
	struct task t = task_of(TASK_CANCELED);

	t.uid = 4;
	t.canceled_by = 0;
	t.finished_at = T0 + 5 * SEC;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":4,\"indexUid\":\"movies\",\"status\":\"canceled\",\"type\":\"documentAddition\","
	    "\"canceledBy\":0,\"details\":{},\"duration\":null,"
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\",\"startedAt\":null,"
	    "\"finishedAt\":\"2021-08-10T14:29:22.000000Z\"}");
}

Test(render, no_canceled_by_or_error_on_other_statuses)
{
	static const enum task_status others[] = {
		TASK_ENQUEUED, TASK_PROCESSING, TASK_SUCCEEDED,
	};

	for (size_t i = 0; i < 3; i++) {
		struct task t = task_of(others[i]);
		t.canceled_by = 9;
		t.error_code = STR("stale_code");
		t.error_message = STR("stale");
		printbuf_reset(pb);
		cr_assert_eq(render_task(pb, &t), 0);
		cr_expect_null(strstr(pb->buf, "canceledBy"), "%s", pb->buf);
		cr_expect_null(strstr(pb->buf, "\"error\""), "%s", pb->buf);
		cr_expect_null(strstr(pb->buf, "stale"), "%s", pb->buf);
	}
}

Test(render, null_index)
{
	struct task t = task_of(TASK_SUCCEEDED);

	t.uid = 12;
	t.index_uid = NOSTR;
	t.type = STR("taskCancelation");
	t.details = STR("{\"matchedTasks\":2,\"canceledTasks\":1,\"originalFilter\":\"?uids=3,4\"}");
	t.started_at = T0;
	t.finished_at = T0;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":12,\"indexUid\":null,\"status\":\"succeeded\",\"type\":\"taskCancelation\","
	    "\"details\":{\"matchedTasks\":2,\"canceledTasks\":1,\"originalFilter\":\"?uids=3,4\"},"
	    "\"duration\":\"PT0S\",\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":\"2021-08-10T14:29:17.000000Z\",\"finishedAt\":\"2021-08-10T14:29:17.000000Z\"}");
}

Test(render, large_uid)
{
	struct task t = task_of(TASK_ENQUEUED);

	t.uid = UINT64_MAX - 1;
	cr_assert_eq(render_task(pb, &t), 0);
	cr_assert(strncmp(pb->buf, "{\"uid\":18446744073709551614,", 28) == 0, "%s", pb->buf);
}

/* A succeeded task that ran for span microseconds, rendered whole. */
static void
expect_duration_in_task(int64_t span, const char *duration, const char *finished)
{
	struct task t = task_of(TASK_SUCCEEDED);
	char want[1024];

	t.started_at = T0;
	t.finished_at = T0 + span;
	printbuf_reset(pb);
	cr_assert_eq(render_task(pb, &t), 0);
	snprintf(want, sizeof(want),
	    "{\"uid\":0,\"indexUid\":\"movies\",\"status\":\"succeeded\",\"type\":\"documentAddition\","
	    "\"details\":{},\"duration\":\"%s\",\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":\"2021-08-10T14:29:17.000000Z\",\"finishedAt\":\"%s\"}", duration, finished);
	expect_pb(want);
}

Test(render, durations)
{
	expect_duration_in_task(0, "PT0S", "2021-08-10T14:29:17.000000Z");
	expect_duration_in_task(250000, "PT0.250S", "2021-08-10T14:29:17.250000Z");
	expect_duration_in_task(184408, "PT0.184408S", "2021-08-10T14:29:17.184408Z");
	expect_duration_in_task(3600 * SEC, "PT3600S", "2021-08-10T15:29:17.000000Z");
	expect_duration_in_task(86405 * SEC, "P1DT5S", "2021-08-11T14:29:22.000000Z");
}

Test(render, six_digit_timestamps)
{
	struct task t = task_of(TASK_PROCESSING);

	t.enqueued_at = T0 + 1;
	t.started_at = T0 + 10;
	cr_assert_eq(render_task(pb, &t), 0);
	cr_assert_not_null(strstr(pb->buf, "\"enqueuedAt\":\"2021-08-10T14:29:17.000001Z\","
	    "\"startedAt\":\"2021-08-10T14:29:17.000010Z\",\"finishedAt\":null}"), "%s", pb->buf);
}

Test(render, output_parses_back)
{
	struct task t = task_of(TASK_FAILED);
	json_object *obj, *v;
	static const char *const keys[] = {
		"uid", "indexUid", "status", "type", "details", "error", "duration", "enqueuedAt",
		"startedAt", "finishedAt",
	};
	size_t i = 0;

	t.started_at = T0;
	t.finished_at = T0 + 184408;
	t.error_code = STR("bad");
	t.error_message = STR("a\x01" "b\x1f" "c\x7f" "d\"\\/\xc3\xa9\xe2\x82\xac");
	cr_assert_eq(render_task(pb, &t), 0);
	obj = json_tokener_parse(pb->buf);
	cr_assert_not_null(obj, "not JSON: %s", pb->buf);
	json_object_object_foreach(obj, key, val) {
		(void)val;
		cr_assert(i < 10, "extra key %s", key);
		cr_assert_str_eq(key, keys[i], "key %zu is %s, want %s", i, key, keys[i]);
		i++;
	}
	cr_assert_eq(i, 10);
	cr_assert(json_object_object_get_ex(obj, "error", &v));
	cr_assert(json_object_object_get_ex(v, "message", &v));
	cr_assert_str_eq(json_object_get_string(v), "a\x01" "b\x1f" "c\x7f" "d\"\\/\xc3\xa9\xe2\x82\xac");
	json_object_put(obj);
}

Test(render, appends_to_existing_content)
{
	struct task t = task_of(TASK_ENQUEUED);

	printbuf_memappend(pb, "X", 1);
	cr_assert_eq(render_task_summary(pb, &t), 0);
	cr_assert_eq(pb->buf[0], 'X');
	cr_assert_eq(pb->buf[1], '{');
}

/* Summary */

Test(render, summary)
{
	struct task t = task_of(TASK_ENQUEUED);

	t.uid = 42;
	t.started_at = T0 + SEC;
	t.details = STR("{\"a\":1}");
	cr_assert_eq(render_task_summary(pb, &t), 0);
	expect_pb("{\"uid\":42,\"indexUid\":\"movies\",\"status\":\"enqueued\",\"type\":\"documentAddition\","
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\"}");
}

Test(render, summary_null_index)
{
	struct task t = task_of(TASK_SUCCEEDED);

	t.uid = 7;
	t.index_uid = NOSTR;
	t.type = STR("taskDeletion");
	t.enqueued_at = T0 + 999999;
	cr_assert_eq(render_task_summary(pb, &t), 0);
	expect_pb("{\"uid\":7,\"indexUid\":null,\"status\":\"succeeded\",\"type\":\"taskDeletion\","
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.999999Z\"}");
}

/* Errors */

Test(render, error_spec_body)
{
	cr_assert_eq(render_error(pb, "Task `1` not found.", "task_not_found", "invalid_request"), 0);
	expect_pb("{\"message\":\"Task `1` not found.\",\"code\":\"task_not_found\",\"type\":\"invalid_request\","
	    "\"link\":\"https://docs.meilisearch.com/errors#task_not_found\"}");
}

Test(render, error_auth)
{
	cr_assert_eq(render_error(pb, "The provided API key is invalid.", "invalid_api_key", "auth"), 0);
	expect_pb("{\"message\":\"The provided API key is invalid.\",\"code\":\"invalid_api_key\","
	    "\"type\":\"auth\",\"link\":\"https://docs.meilisearch.com/errors#invalid_api_key\"}");
}

Test(render, error_message_escaped)
{
	cr_assert_eq(render_error(pb, "Index `a\"b` not found.\n", "index_not_found", "invalid_request"), 0);
	expect_pb("{\"message\":\"Index `a\\\"b` not found.\\n\",\"code\":\"index_not_found\","
	    "\"type\":\"invalid_request\",\"link\":\"https://docs.meilisearch.com/errors#index_not_found\"}");
}

Test(render, api_error)
{
	struct api_error e;

	cr_assert_eq(api_error_set(&e, 404, "task_not_found", "invalid_request", "Task `%llu` not found.",
	    (unsigned long long)1), 404);
	cr_assert_eq(e.status, 404);
	cr_assert_str_eq(e.message, "Task `1` not found.");
	cr_assert_eq(api_error_render(pb, &e), 0);
	expect_pb("{\"message\":\"Task `1` not found.\",\"code\":\"task_not_found\",\"type\":\"invalid_request\","
	    "\"link\":\"https://docs.meilisearch.com/errors#task_not_found\"}");
}

/* Strings */

static void
expect_string(const char *in, size_t len, const char *want)
{
	printbuf_reset(pb);
	cr_assert_eq(render_string(pb, in, len), 0);
	expect_pb(want);
}

Test(render, string_plain)
{
	expect_string("", 0, "\"\"");
	expect_string("movies", 6, "\"movies\"");
	expect_string("a/b", 3, "\"a/b\"");
}

Test(render, string_quotes_and_backslash)
{
	expect_string("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
	expect_string("C:\\dir\\", 7, "\"C:\\\\dir\\\\\"");
	expect_string("\"\\\"", 3, "\"\\\"\\\\\\\"\"");
}

Test(render, string_short_escapes)
{
	expect_string("a\nb", 3, "\"a\\nb\"");
	expect_string("a\tb", 3, "\"a\\tb\"");
	expect_string("\r\b\f", 3, "\"\\r\\b\\f\"");
}

Test(render, string_control_chars_as_u00xx)
{
	expect_string("\x01", 1, "\"\\u0001\"");
	expect_string("a\x1f", 2, "\"a\\u001f\"");
	expect_string("\x0b\x1b", 2, "\"\\u000b\\u001b\"");
	expect_string("a\0b", 3, "\"a\\u0000b\"");
}

Test(render, string_every_control_char)
{
	for (int c = 0; c < 0x20; c++) {
		char in[1] = { (char)c }, want[16];
		switch (c) {
		case '\b': strcpy(want, "\"\\b\""); break;
		case '\f': strcpy(want, "\"\\f\""); break;
		case '\n': strcpy(want, "\"\\n\""); break;
		case '\r': strcpy(want, "\"\\r\""); break;
		case '\t': strcpy(want, "\"\\t\""); break;
		default: snprintf(want, sizeof(want), "\"\\u%04x\"", c);
		}
		expect_string(in, 1, want);
	}
}

Test(render, string_utf8_unescaped)
{
	expect_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e", 14,
	    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\"");
	expect_string("\x7f", 1, "\"\x7f\"");
}

Test(render, string_length_is_honoured)
{
	expect_string("abcdef", 3, "\"abc\"");
}

/* The list envelope */

Test(render, list_empty)
{
	cr_assert_eq(render_list_open(pb), 0);
	cr_assert_eq(render_list_close(pb, 0, 20, TASK_NO_UID, TASK_NO_UID), 0);
	expect_pb("{\"results\":[],\"total\":0,\"limit\":20,\"from\":null,\"next\":null}");
}

Test(render, list_two_tasks)
{
	struct task a = task_of(TASK_ENQUEUED), b = task_of(TASK_ENQUEUED);

	a.uid = 1;
	b.uid = 0;
	cr_assert_eq(render_list_open(pb), 0);
	cr_assert_eq(render_task(pb, &a), 0);
	cr_assert_eq(render_comma(pb), 0);
	cr_assert_eq(render_task(pb, &b), 0);
	cr_assert_eq(render_list_close(pb, 2, 20, 1, TASK_NO_UID), 0);
	expect_pb("{\"results\":["
	    "{\"uid\":1,\"indexUid\":\"movies\",\"status\":\"enqueued\",\"type\":\"documentAddition\","
	    "\"details\":{},\"duration\":null,\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":null,\"finishedAt\":null},"
	    "{\"uid\":0,\"indexUid\":\"movies\",\"status\":\"enqueued\",\"type\":\"documentAddition\","
	    "\"details\":{},\"duration\":null,\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":null,\"finishedAt\":null}"
	    "],\"total\":2,\"limit\":20,\"from\":1,\"next\":null}");
}

Test(render, list_with_next)
{
	cr_assert_eq(render_list_open(pb), 0);
	cr_assert_eq(render_list_close(pb, 18446744073709551614u, 1000, 0, 18446744073709551613u), 0);
	expect_pb("{\"results\":[],\"total\":18446744073709551614,\"limit\":1000,\"from\":0,"
	    "\"next\":18446744073709551613}");
}

/* customMetadata: after finishedAt in Meilisearch v1's task (and its summary), only when
 * set, escaped as any text; never in the v0.25 layout. */
Test(render, custom_metadata_where_meilisearch_puts_it)
{
	struct task t = task_of(TASK_ENQUEUED);

	t.uid = 3;
	t.custom_metadata = STR("ticket \"42\"\n\xc3\xa9");
	cr_assert_eq(render_task_v1(pb, &t), 0);
	expect_pb("{\"uid\":3,\"batchUid\":null,\"indexUid\":\"movies\",\"status\":\"enqueued\","
	    "\"type\":\"documentAddition\",\"canceledBy\":null,\"details\":{},\"error\":null,"
	    "\"duration\":null,\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\",\"startedAt\":null,"
	    "\"finishedAt\":null,\"customMetadata\":\"ticket \\\"42\\\"\\n\xc3\xa9\"}");
	printbuf_reset(pb);
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":3,\"indexUid\":\"movies\",\"status\":\"enqueued\",\"type\":\"documentAddition\","
	    "\"details\":{},\"duration\":null,\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":null,\"finishedAt\":null}");
	printbuf_reset(pb);
	cr_assert_eq(render_task_summary(pb, &t), 0);
	expect_pb("{\"uid\":3,\"indexUid\":\"movies\",\"status\":\"enqueued\",\"type\":\"documentAddition\","
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\",\"customMetadata\":\"ticket \\\"42\\\"\\n\xc3\xa9\"}");
	/* An empty string is metadata too; none is no key at all. */
	printbuf_reset(pb);
	t.custom_metadata = STR("");
	cr_assert_eq(render_task_v1(pb, &t), 0);
	cr_assert(strstr(pb->buf, ",\"finishedAt\":null,\"customMetadata\":\"\"}") != NULL, "%s", pb->buf);
	printbuf_reset(pb);
	t.custom_metadata = NOSTR;
	cr_assert_eq(render_task_v1(pb, &t), 0);
	cr_assert_null(strstr(pb->buf, "customMetadata"));
}

/* The queue's own keys go into details (SPEC §6), each only when it says something; the
 * task's status and error stay Meilisearch's. */
Test(render, queue_keys_in_details)
{
	struct task t = task_of(TASK_ENQUEUED);

	t.uid = 6;
	t.details = STR("{\"receivedDocuments\":1}");
	t.priority = -3;
	t.not_before = T0 + 30 * SEC;
	t.attempts = 1;
	t.max_attempts = 4;
	t.error_code = STR("worker_failed");
	t.error_message = STR("exit \"3\"");
	t.error_type = TASK_ERR_INTERNAL;
	cr_assert_eq(render_task(pb, &t), 0);
	expect_pb("{\"uid\":6,\"indexUid\":\"movies\",\"status\":\"enqueued\",\"type\":\"documentAddition\","
	    "\"details\":{\"receivedDocuments\":1,\"priority\":-3,"
	    "\"notBefore\":\"2021-08-10T14:29:47.000000Z\",\"attempts\":1,\"maxAttempts\":4,"
	    "\"lastError\":{\"message\":\"exit \\\"3\\\"\",\"code\":\"worker_failed\","
	    "\"type\":\"internal\",\"link\":\"https://docs.meilisearch.com/errors#worker_failed\"}},"
	    "\"duration\":null,\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\",\"startedAt\":null,"
	    "\"finishedAt\":null}");

	/* Processing: no notBefore; progress in a Meilisearch batch's shape; empty details. */
	printbuf_reset(pb);
	t = task_of(TASK_PROCESSING);
	t.started_at = T0 + SEC;
	t.not_before = T0 + 30 * SEC;
	t.progress_done = 1;
	t.progress_total = 3;
	t.progress_step = STR("indexing");
	cr_assert_eq(render_task_v1(pb, &t), 0);
	expect_pb("{\"uid\":0,\"batchUid\":null,\"indexUid\":\"movies\",\"status\":\"processing\","
	    "\"type\":\"documentAddition\",\"canceledBy\":null,"
	    "\"details\":{\"progress\":{\"steps\":[{\"currentStep\":\"indexing\",\"finished\":1,"
	    "\"total\":3}],\"percentage\":33.3}},\"error\":null,\"duration\":null,"
	    "\"enqueuedAt\":\"2021-08-10T14:29:17.000000Z\","
	    "\"startedAt\":\"2021-08-10T14:29:18.000000Z\",\"finishedAt\":null}");

	/* Failed for good: the error is Meilisearch's own, not a lastError. */
	printbuf_reset(pb);
	t = task_of(TASK_FAILED);
	t.attempts = 4;
	t.max_attempts = 4;
	t.error_code = STR("worker_failed");
	t.error_message = STR("x");
	cr_assert_eq(render_task(pb, &t), 0);
	cr_assert(strstr(pb->buf, "\"details\":{\"attempts\":4,\"maxAttempts\":4},\"error\":{") != NULL,
	    "%s", pb->buf);
	cr_assert(strstr(pb->buf, "lastError") == NULL);
}

/* Progress belongs to a processing task: a record of another status that carried some
 * (none is written so) shows none. */
Test(render, progress_only_on_a_processing_task)
{
	struct task t = task_of(TASK_SUCCEEDED);

	t.started_at = T0 + SEC;
	t.finished_at = T0 + 2 * SEC;
	t.progress_done = 1;
	t.progress_total = 3;
	t.progress_step = STR("indexing");
	cr_assert_eq(render_task(pb, &t), 0);
	cr_assert(strstr(pb->buf, "\"details\":{},") != NULL, "%s", pb->buf);
	printbuf_reset(pb);
	cr_assert_eq(render_task_v1(pb, &t), 0);
	cr_assert(strstr(pb->buf, "\"details\":{},") != NULL, "%s", pb->buf);
}
