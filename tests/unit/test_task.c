/* The task model: transitions, names, and the validators of SPEC §1. */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/error.h"
#include "lmtasks/task.h"

#define LIT(s) (s), (sizeof(s) - 1)

/* Transitions */

Test(task, enqueued_to_processing_allowed)
{
	cr_assert_eq(task_transition_allowed(TASK_ENQUEUED, TASK_PROCESSING), 1);
}

Test(task, enqueued_to_canceled_allowed)
{
	cr_assert_eq(task_transition_allowed(TASK_ENQUEUED, TASK_CANCELED), 1);
}

Test(task, processing_to_succeeded_allowed)
{
	cr_assert_eq(task_transition_allowed(TASK_PROCESSING, TASK_SUCCEEDED), 1);
}

Test(task, processing_to_failed_allowed)
{
	cr_assert_eq(task_transition_allowed(TASK_PROCESSING, TASK_FAILED), 1);
}

Test(task, processing_to_canceled_allowed)
{
	cr_assert_eq(task_transition_allowed(TASK_PROCESSING, TASK_CANCELED), 1);
}

Test(task, every_other_transition_refused)
{
	static const int allowed[TASK_NSTATUS][TASK_NSTATUS] = {
		[TASK_ENQUEUED] = {[TASK_PROCESSING] = 1, [TASK_CANCELED] = 1 },
		[TASK_PROCESSING] = {[TASK_SUCCEEDED] = 1, [TASK_FAILED] = 1, [TASK_CANCELED] = 1 },
	};
	int refused = 0;

	for (int from = 0; from < TASK_NSTATUS; from++) {
		for (int to = 0; to < TASK_NSTATUS; to++) {
			if (allowed[from][to])
				continue;
			cr_expect_eq(task_transition_allowed((enum task_status)from, (enum task_status)to), 0,
			    "%s -> %s must be refused", task_status_name((enum task_status)from),
			    task_status_name((enum task_status)to));
			refused++;
		}
	}
	/* 25 pairs, 5 allowed. */
	cr_assert_eq(refused, 20);
}

Test(task, same_status_refused)
{
	for (int s = 0; s < TASK_NSTATUS; s++)
		cr_expect_eq(task_transition_allowed((enum task_status)s, (enum task_status)s), 0,
		    "%s -> itself must be refused", task_status_name((enum task_status)s));
}

Test(task, terminal_is_final)
{
	static const enum task_status terminal[] = { TASK_SUCCEEDED, TASK_FAILED, TASK_CANCELED };

	for (size_t i = 0; i < 3; i++) {
		for (int to = 0; to < TASK_NSTATUS; to++)
			cr_expect_eq(task_transition_allowed(terminal[i], (enum task_status)to), 0,
			    "%s -> %s must be refused", task_status_name(terminal[i]),
			    task_status_name((enum task_status)to));
	}
}

Test(task, out_of_range_status_refused)
{
	cr_assert_eq(task_transition_allowed(TASK_NSTATUS, TASK_PROCESSING), 0);
	cr_assert_eq(task_transition_allowed(TASK_ENQUEUED, TASK_NSTATUS), 0);
	cr_assert_eq(task_transition_allowed(TASK_PROCESSING, TASK_NSTATUS), 0);
}

Test(task, terminal_statuses)
{
	cr_assert_eq(task_status_terminal(TASK_ENQUEUED), 0);
	cr_assert_eq(task_status_terminal(TASK_PROCESSING), 0);
	cr_assert_eq(task_status_terminal(TASK_SUCCEEDED), 1);
	cr_assert_eq(task_status_terminal(TASK_FAILED), 1);
	cr_assert_eq(task_status_terminal(TASK_CANCELED), 1);
}

/* Status and error type names */

Test(task, status_names)
{
	cr_assert_str_eq(task_status_name(TASK_ENQUEUED), "enqueued");
	cr_assert_str_eq(task_status_name(TASK_PROCESSING), "processing");
	cr_assert_str_eq(task_status_name(TASK_SUCCEEDED), "succeeded");
	cr_assert_str_eq(task_status_name(TASK_FAILED), "failed");
	cr_assert_str_eq(task_status_name(TASK_CANCELED), "canceled");
	cr_assert_null(task_status_name(TASK_NSTATUS));
	cr_assert_null(task_status_name((enum task_status)-1));
}

Test(task, status_parse_every_name)
{
	static const struct { const char *name; enum task_status s; } cases[] = {
		{ "enqueued", TASK_ENQUEUED }, { "processing", TASK_PROCESSING },
		{ "succeeded", TASK_SUCCEEDED }, { "failed", TASK_FAILED },
		{ "canceled", TASK_CANCELED },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum task_status s = TASK_NSTATUS;
		cr_assert_eq(task_status_parse(cases[i].name, strlen(cases[i].name), &s), 0,
		    "%s must parse", cases[i].name);
		cr_assert_eq(s, cases[i].s, "%s parsed to %d", cases[i].name, (int)s);
	}
}

Test(task, status_parse_refuses_others)
{
	static const char *const bad[] = {
		"", "Enqueued", "ENQUEUED", "enqueue", "enqueuedx", "cancelled", "success", " failed",
		"failed ", "unknown",
	};
	enum task_status s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(task_status_parse(bad[i], strlen(bad[i]), &s), LMT_EINVAL,
		    "'%s' must be refused", bad[i]);
}

Test(task, status_parse_honours_length)
{
	enum task_status s = TASK_NSTATUS;

	/* The bytes past len are not part of the name ... */
	cr_assert_eq(task_status_parse("failed,canceled", 6, &s), 0);
	cr_assert_eq(s, TASK_FAILED);
	/* ... and a prefix of a name is not the name. */
	cr_assert_eq(task_status_parse("failed", 4, &s), LMT_EINVAL);
}

Test(task, error_type_names)
{
	cr_assert_str_eq(task_error_type_name(TASK_ERR_INVALID_REQUEST), "invalid_request");
	cr_assert_str_eq(task_error_type_name(TASK_ERR_INTERNAL), "internal");
	cr_assert_str_eq(task_error_type_name(TASK_ERR_AUTH), "auth");
	cr_assert_null(task_error_type_name(TASK_NERRTYPE));
}

Test(task, error_type_parse)
{
	enum task_error_type t = TASK_NERRTYPE;

	cr_assert_eq(task_error_type_parse("invalid_request", &t), 0);
	cr_assert_eq(t, TASK_ERR_INVALID_REQUEST);
	cr_assert_eq(task_error_type_parse("internal", &t), 0);
	cr_assert_eq(t, TASK_ERR_INTERNAL);
	cr_assert_eq(task_error_type_parse("auth", &t), 0);
	cr_assert_eq(t, TASK_ERR_AUTH);
	cr_assert_eq(task_error_type_parse("", &t), LMT_EINVAL);
	cr_assert_eq(task_error_type_parse("Internal", &t), LMT_EINVAL);
	cr_assert_eq(task_error_type_parse("invalid-request", &t), LMT_EINVAL);
	cr_assert_eq(task_error_type_parse("system", &t), LMT_EINVAL);
}

/* Index uids */

Test(task, index_uid_simple)
{
	cr_assert_eq(task_index_uid_valid(LIT("movies")), 1);
	cr_assert_eq(task_index_uid_valid(LIT("a")), 1);
	cr_assert_eq(task_index_uid_valid(LIT("0")), 1);
	cr_assert_eq(task_index_uid_valid(LIT("Movies_2021-v2")), 1);
	cr_assert_eq(task_index_uid_valid(LIT("-_")), 1);
}

Test(task, index_uid_every_allowed_char)
{
	const char *ok = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

	cr_assert_eq(task_index_uid_valid(ok, strlen(ok)), 1);
	for (int c = 1; c < 256; c++) {
		char s[3] = { 'a', (char)c, 'b' };
		int want = strchr(ok, c) != NULL;
		cr_expect_eq(task_index_uid_valid(s, 3), want, "byte 0x%02x: want %d", c, want);
	}
}

Test(task, index_uid_length_limits)
{
	char buf[TASK_INDEX_MAX + 2];

	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(task_index_uid_valid(buf, 400), 1, "400 bytes are allowed");
	cr_assert_eq(task_index_uid_valid(buf, 401), 0, "401 bytes are too many");
	cr_assert_eq(task_index_uid_valid(buf, 0), 0, "empty is refused");
	cr_assert_eq(task_index_uid_valid(NULL, 0), 0, "null is refused");
}

Test(task, index_uid_bad_chars)
{
	cr_assert_eq(task_index_uid_valid(LIT("my index")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("a.b")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("a/b")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("movies*")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("caf\xc3\xa9")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("tab\t")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("a%20b")), 0);
}

Test(task, index_uid_nul_refused)
{
	cr_assert_eq(task_index_uid_valid(LIT("ab\0cd")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("\0")), 0);
	cr_assert_eq(task_index_uid_valid(LIT("abc\0")), 0);
}

/* Types */

Test(task, type_meilisearch_types)
{
	static const char *const types[] = {
		"indexCreation", "indexUpdate", "indexDeletion", "documentAddition",
		"documentPartial", "documentDeletion", "clearAll", "settingsUpdate",
		"taskCancelation", "taskDeletion",
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		cr_expect_eq(task_type_valid(types[i], strlen(types[i])), 1, "%s", types[i]);
}

Test(task, type_shape)
{
	cr_assert_eq(task_type_valid(LIT("a")), 1);
	cr_assert_eq(task_type_valid(LIT("x9")), 1);
	cr_assert_eq(task_type_valid(LIT("reindex2Z")), 1);
	cr_assert_eq(task_type_valid(LIT("")), 0);
	cr_assert_eq(task_type_valid(NULL, 0), 0);
	cr_assert_eq(task_type_valid(LIT("Abc")), 0, "must start lower case");
	cr_assert_eq(task_type_valid(LIT("1abc")), 0, "must start with a letter");
	cr_assert_eq(task_type_valid(LIT("_abc")), 0);
	cr_assert_eq(task_type_valid(LIT("a_b")), 0);
	cr_assert_eq(task_type_valid(LIT("a-b")), 0);
	cr_assert_eq(task_type_valid(LIT("a b")), 0);
	cr_assert_eq(task_type_valid(LIT("a\0b")), 0);
	cr_assert_eq(task_type_valid(LIT("ab\xc3\xa9")), 0);
}

Test(task, type_length_limits)
{
	char buf[TASK_TYPE_MAX + 2];

	memset(buf, 'B', sizeof(buf));
	buf[0] = 'a';
	cr_assert_eq(task_type_valid(buf, 64), 1, "64 bytes are allowed");
	cr_assert_eq(task_type_valid(buf, 65), 0, "65 bytes are too many");
}

Test(task, error_code_valid)
{
	char buf[TASK_CODE_MAX + 2];

	cr_assert_eq(task_error_code_valid(LIT("task_not_found")), 1);
	cr_assert_eq(task_error_code_valid(LIT("e2big")), 1);
	cr_assert_eq(task_error_code_valid(LIT("")), 0);
	cr_assert_eq(task_error_code_valid(LIT("Task_not_found")), 0);
	cr_assert_eq(task_error_code_valid(LIT("task-not-found")), 0);
	cr_assert_eq(task_error_code_valid(LIT("a\0b")), 0);
	memset(buf, 'e', sizeof(buf));
	cr_assert_eq(task_error_code_valid(buf, 255), 1);
	cr_assert_eq(task_error_code_valid(buf, 256), 0);
}

/* UTF-8 */

Test(task, utf8_valid_sequences)
{
	cr_assert_eq(task_utf8_valid(LIT("")), 1);
	cr_assert_eq(task_utf8_valid(LIT("plain ascii ~\x7f")), 1);
	cr_assert_eq(task_utf8_valid(LIT("\xc2\x80")), 1, "U+0080");
	cr_assert_eq(task_utf8_valid(LIT("caf\xc3\xa9")), 1, "U+00E9");
	cr_assert_eq(task_utf8_valid(LIT("\xdf\xbf")), 1, "U+07FF");
	cr_assert_eq(task_utf8_valid(LIT("\xe0\xa0\x80")), 1, "U+0800");
	cr_assert_eq(task_utf8_valid(LIT("\xe2\x82\xac")), 1, "U+20AC");
	cr_assert_eq(task_utf8_valid(LIT("\xed\x9f\xbf")), 1, "U+D7FF");
	cr_assert_eq(task_utf8_valid(LIT("\xee\x80\x80")), 1, "U+E000");
	cr_assert_eq(task_utf8_valid(LIT("\xef\xbf\xbf")), 1, "U+FFFF");
	cr_assert_eq(task_utf8_valid(LIT("\xf0\x90\x80\x80")), 1, "U+10000");
	cr_assert_eq(task_utf8_valid(LIT("\xf0\x9d\x84\x9e")), 1, "U+1D11E");
	cr_assert_eq(task_utf8_valid(LIT("\xf4\x8f\xbf\xbf")), 1, "U+10FFFF");
}

Test(task, utf8_overlong_refused)
{
	cr_assert_eq(task_utf8_valid(LIT("\xc0\x80")), 0, "overlong NUL");
	cr_assert_eq(task_utf8_valid(LIT("\xc0\xaf")), 0, "overlong '/'");
	cr_assert_eq(task_utf8_valid(LIT("\xc1\xbf")), 0, "overlong U+007F");
	cr_assert_eq(task_utf8_valid(LIT("\xe0\x80\x80")), 0, "3-byte overlong NUL");
	cr_assert_eq(task_utf8_valid(LIT("\xe0\x9f\xbf")), 0, "3-byte overlong U+07FF");
	cr_assert_eq(task_utf8_valid(LIT("\xf0\x80\x80\x80")), 0, "4-byte overlong NUL");
	cr_assert_eq(task_utf8_valid(LIT("\xf0\x8f\xbf\xbf")), 0, "4-byte overlong U+FFFF");
}

Test(task, utf8_surrogates_refused)
{
	cr_assert_eq(task_utf8_valid(LIT("\xed\xa0\x80")), 0, "U+D800");
	cr_assert_eq(task_utf8_valid(LIT("\xed\xaf\xbf")), 0, "U+DBFF");
	cr_assert_eq(task_utf8_valid(LIT("\xed\xb0\x80")), 0, "U+DC00");
	cr_assert_eq(task_utf8_valid(LIT("\xed\xbf\xbf")), 0, "U+DFFF");
	cr_assert_eq(task_utf8_valid(LIT("\xed\xa0\xbd\xed\xb8\x80")), 0, "CESU-8 pair");
}

Test(task, utf8_beyond_10ffff_refused)
{
	cr_assert_eq(task_utf8_valid(LIT("\xf4\x90\x80\x80")), 0, "U+110000");
	cr_assert_eq(task_utf8_valid(LIT("\xf5\x80\x80\x80")), 0, "lead F5");
	cr_assert_eq(task_utf8_valid(LIT("\xf7\xbf\xbf\xbf")), 0, "lead F7");
	cr_assert_eq(task_utf8_valid(LIT("\xf8\x88\x80\x80\x80")), 0, "5-byte form");
	cr_assert_eq(task_utf8_valid(LIT("\xfe")), 0);
	cr_assert_eq(task_utf8_valid(LIT("\xff")), 0);
}

Test(task, utf8_truncated_refused)
{
	cr_assert_eq(task_utf8_valid(LIT("\xc3")), 0);
	cr_assert_eq(task_utf8_valid(LIT("ab\xe2\x82")), 0);
	cr_assert_eq(task_utf8_valid(LIT("\xf0\x9d\x84")), 0);
	cr_assert_eq(task_utf8_valid(LIT("\xc3" "a")), 0, "lead then ASCII");
	cr_assert_eq(task_utf8_valid(LIT("\xe2\x82" "a")), 0);
	cr_assert_eq(task_utf8_valid(LIT("\xf0\x9d\x84" "a")), 0);
	/* A valid sequence cut by the length given. */
	cr_assert_eq(task_utf8_valid("\xe2\x82\xac", 2), 0);
}

Test(task, utf8_stray_continuation_refused)
{
	cr_assert_eq(task_utf8_valid(LIT("\x80")), 0);
	cr_assert_eq(task_utf8_valid(LIT("a\xbf" "b")), 0);
	cr_assert_eq(task_utf8_valid(LIT("\xc3\xa9\xa9")), 0);
}

Test(task, utf8_nul_refused)
{
	cr_assert_eq(task_utf8_valid(LIT("\0")), 0);
	cr_assert_eq(task_utf8_valid(LIT("a\0b")), 0);
	cr_assert_eq(task_utf8_valid(LIT("caf\xc3\xa9\0")), 0);
}

Test(task, progress_a_worker_may_report)
{
	cr_assert(task_progress_valid(0, 1, NULL, 0));
	cr_assert(task_progress_valid(UINT32_MAX, UINT32_MAX, "indexing \xc3\xa9", 11));
	cr_assert_not(task_progress_valid(0, 0, NULL, 0), "no total");
	cr_assert_not(task_progress_valid(2, 1, NULL, 0), "past the total");
	cr_assert_not(task_progress_valid(0, 1, "\xc3", 1), "cut UTF-8");
	cr_assert_not(task_progress_valid(0, 1, "a\0b", 3), "a NUL");
	cr_assert_not(task_progress_valid(0, 1, NULL, 1), "a length without bytes");
	char step[TASK_STEP_MAX + 1];
	memset(step, 'a', sizeof(step));
	cr_assert(task_progress_valid(0, 1, step, TASK_STEP_MAX));
	cr_assert_not(task_progress_valid(0, 1, step, TASK_STEP_MAX + 1), "too long");
}

/* A report moves when the log's readers would see something new: its first, another
 * step, another whole point; and when it is gone. */
Test(task, progress_moves_by_points_and_steps)
{
	struct task a, b;

	task_init(&a, "m", 1, "x", 1, "{}", 2);
	b = a;
	cr_assert_not(task_progress_moved(&a, &b), "none, none");
	b.progress_done = 0;
	b.progress_total = 1000;
	cr_assert(task_progress_moved(&a, &b), "the first report");
	a = b;
	b.progress_done = 9;
	cr_assert_not(task_progress_moved(&a, &b), "0.9%%: the same point");
	b.progress_done = 10;
	cr_assert(task_progress_moved(&a, &b), "1%%");
	a = b;
	b.progress_done = 1;
	b.progress_total = 100;
	cr_assert_not(task_progress_moved(&a, &b), "1 of 100 is 1%% too");
	b.progress_step = (struct task_str){ "x", 1 };
	cr_assert(task_progress_moved(&a, &b), "another step");
	a = b;
	b.progress_step = (struct task_str){ "y", 1 };
	cr_assert(task_progress_moved(&a, &b), "another step of the same length");
	task_progress_clear(&b);
	cr_assert(task_progress_moved(&a, &b), "gone");
}
