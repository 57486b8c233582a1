/* Paths and query strings of the tasks API, parsed without a store. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/quote.h"
#include "lmtasks/route.h"

static int
parse(const char *path, struct route *r, struct api_error *err)
{
	return route_parse(path, strlen(path), 0, r, err);
}

Test(route, the_five_routes)
{
	struct route r;
	struct api_error err;

	cr_assert_eq(parse("/tasks", &r, &err), 0);
	cr_assert_eq(r.kind, ROUTE_TASKS);
	cr_assert_eq(parse("/tasks/42", &r, &err), 0);
	cr_assert_eq(r.kind, ROUTE_TASK);
	cr_assert_eq(r.uid, 42);
	cr_assert_eq(parse("/indexes/movies/tasks", &r, &err), 0);
	cr_assert_eq(r.kind, ROUTE_INDEX_TASKS);
	cr_assert_str_eq(r.index, "movies");
	cr_assert_eq(parse("/indexes/movies_2-x/tasks/7", &r, &err), 0);
	cr_assert_eq(r.kind, ROUTE_INDEX_TASK);
	cr_assert_str_eq(r.index, "movies_2-x");
	cr_assert_eq(r.uid, 7);
	cr_assert_eq(parse("/health", &r, &err), 0);
	cr_assert_eq(r.kind, ROUTE_HEALTH);
}

Test(route, one_trailing_slash_is_ignored_two_are_not)
{
	struct route r;
	struct api_error err;

	cr_assert_eq(parse("/tasks/", &r, &err), 0);
	cr_assert_eq(r.kind, ROUTE_TASKS);
	cr_assert_eq(parse("/tasks/5/", &r, &err), 0);
	cr_assert_eq(r.uid, 5);
	cr_assert_eq(parse("/tasks//", &r, &err), 404);
	cr_assert_eq(parse("//tasks", &r, &err), 404);
}

Test(route, segments_are_percent_decoded_before_checks)
{
	struct route r;
	struct api_error err;

	cr_assert_eq(parse("/tasks/%31%32", &r, &err), 0);
	cr_assert_eq(r.uid, 12);
	cr_assert_eq(parse("/indexes/mo%76ies/tasks", &r, &err), 0);
	cr_assert_str_eq(r.index, "movies");
	cr_assert_eq(parse("/%74asks", &r, &err), 0);
	cr_assert_eq(r.kind, ROUTE_TASKS);
	/* A decoded slash belongs to the segment, and is not a valid index character. */
	cr_assert_eq(parse("/indexes/a%2Fb/tasks", &r, &err), 400);
	cr_assert_str_eq(err.code, "invalid_index_uid");
	cr_assert_eq(parse("/indexes/a%00b/tasks", &r, &err), 400);
	cr_assert_str_eq(err.code, "invalid_index_uid");
}

Test(route, broken_escapes_are_bad_requests)
{
	struct route r;
	struct api_error err;

	cr_assert_eq(parse("/tasks/%zz", &r, &err), 400);
	cr_assert_str_eq(err.code, "bad_request");
	cr_assert_eq(parse("/tasks/1%", &r, &err), 400);
	cr_assert_eq(parse("/tasks/1%3", &r, &err), 400);
}

Test(route, bad_uids)
{
	static const char *const bad[] = {
		"/tasks/abc", "/tasks/-1", "/tasks/+1", "/tasks/0x10", "/tasks/1.5", "/tasks/1e3",
		"/tasks/%201", "/tasks/18446744073709551615", "/tasks/99999999999999999999999",
		"/indexes/movies/tasks/x",
	};
	struct route r;
	struct api_error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(bad[i], &r, &err), 400, "%s", bad[i]);
		cr_assert_str_eq(err.code, "invalid_task_uids", "%s", bad[i]);
	}
	cr_assert_eq(parse("/tasks/abc", &r, &err), 400);
	cr_assert_str_eq(err.message,
	    "Task uid `abc` is invalid. It should only contain numeric characters.");
	cr_assert_eq(parse("/tasks/18446744073709551614", &r, &err), 0);
	cr_assert_eq(r.uid, UINT64_C(18446744073709551614));
}

Test(route, bad_index_uids)
{
	char path[2048];
	struct route r;
	struct api_error err;

	cr_assert_eq(parse("/indexes/bad!/tasks", &r, &err), 400);
	cr_assert_str_eq(err.code, "invalid_index_uid");
	cr_assert(strstr(err.message, "`bad!` is not a valid index uid") == err.message);
	memset(path, 0, sizeof(path));
	strcpy(path, "/indexes/");
	memset(path + 9, 'a', 401);
	strcat(path, "/tasks");
	cr_assert_eq(parse(path, &r, &err), 400);
	cr_assert_str_eq(err.code, "invalid_index_uid");
	path[9 + 400] = '\0';
	strcat(path, "/tasks");
	cr_assert_eq(parse(path, &r, &err), 0);
	cr_assert_eq(r.index_len, 400);
}

Test(route, unknown_paths_are_404)
{
	static const char *const unknown[] = {
		"/", "", "tasks", "/task", "/tasks/1/2", "/indexes", "/indexes/movies",
		"/indexes/movies/tasks/1/x", "/indexes/movies/documents", "/health/x",
	};
	struct route r;
	struct api_error err;

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		cr_assert_eq(parse(unknown[i], &r, &err), 404, "%s", unknown[i]);
		cr_assert_str_eq(err.code, "not_found", "%s", unknown[i]);
	}
}

Test(route, path_from_cgi_parameters)
{
	char buf[ROUTE_PATH_MAX];
	struct api_error err;
	size_t len;
	int decoded;

	/* nginx at /: the raw REQUEST_URI without its query. */
	cr_assert_eq(route_path("/tasks/1?x=%20", "/tasks/1", NULL, buf, &len, &decoded, &err), 0);
	cr_assert_str_eq(buf, "/tasks/1");
	cr_assert_eq(decoded, 0);
	/* Under a prefix, split by the web server. */
	cr_assert_eq(route_path("/api/tasks/1", "/api", "/tasks/1", buf, &len, &decoded, &err), 0);
	cr_assert_str_eq(buf, "/tasks/1");
	/* A rewrite: REQUEST_URI does not start with SCRIPT_NAME, PATH_INFO is trusted. */
	cr_assert_eq(route_path("/tasks/1", "/cgi-bin/lmtasks", "/tasks/1", buf, &len, &decoded, &err), 0);
	cr_assert_str_eq(buf, "/tasks/1");
	cr_assert_eq(decoded, 1);
	/* A SCRIPT_NAME that is no whole segment of the path is no prefix of it. */
	cr_assert_eq(route_path("/tasks/1", "/t", "/tasks/1", buf, &len, &decoded, &err), 0);
	cr_assert_str_eq(buf, "/tasks/1");
	cr_assert_eq(route_path("/api?x=1", "/api", "/health", buf, &len, &decoded, &err), 0);
	cr_assert_str_eq(buf, "/health");
	cr_assert_eq(route_path("/lmtasks.cgi", "/lmtasks.cgi", "/lmtasks.cgi", buf, &len, &decoded,
	    &err), 0);
	cr_assert_str_eq(buf, "/lmtasks.cgi");
	/* No REQUEST_URI at all. */
	cr_assert_eq(route_path(NULL, "/x", "/tasks", buf, &len, &decoded, &err), 0);
	cr_assert_str_eq(buf, "/tasks");
	cr_assert_eq(decoded, 1);
}

Test(route, overlong_paths_are_414)
{
	static char uri[ROUTE_PATH_MAX + 10];
	char buf[ROUTE_PATH_MAX];
	struct api_error err;
	size_t len;
	int decoded;

	memset(uri, 'a', sizeof(uri) - 1);
	uri[0] = '/';
	cr_assert_eq(route_path(uri, NULL, NULL, buf, &len, &decoded, &err), 414);
}

Test(route, quote_keeps_messages_valid_utf8)
{
	char out[64];

	cr_assert_str_eq(quote_text("ab\x01\xff", 4, out, sizeof(out)), "ab\xef\xbf\xbd\xef\xbf\xbd");
	cr_assert_str_eq(quote_text("caf\xc3\xa9", 5, out, sizeof(out)), "caf\xc3\xa9");
	quote_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 72, out,
	    sizeof(out));
	cr_assert(strlen(out) < sizeof(out));
	cr_assert(strcmp(out + strlen(out) - 3, "...") == 0);
}

Test(query, defaults_and_values)
{
	struct query q;
	struct query_error err;

	query_init(&q);
	cr_assert_eq(query_parse(NULL, &q, &err), 0);
	cr_assert_eq(q.limit, 20);
	cr_assert_eq(q.from, TASK_NO_UID);
	cr_assert_eq(q.reverse, 0);
	cr_assert_eq(query_parse("limit=5&from=10&reverse=true", &q, &err), 0);
	cr_assert_eq(q.limit, 5);
	cr_assert_eq(q.from, 10);
	cr_assert_eq(q.reverse, 1);
	query_init(&q);
	cr_assert_eq(query_parse("limit=0&&reverse=false&", &q, &err), 0);
	cr_assert_eq(q.limit, 0);
	cr_assert_eq(q.reverse, 0);
	query_init(&q);
	cr_assert_eq(query_parse("%6cimit=%31", &q, &err), 0);
	cr_assert_eq(q.limit, 1);
}

Test(query, each_bad_value_gets_its_code)
{
	static const struct {
		const char *qs, *code;
	} cases[] = {
		{ "limit=abc", "invalid_task_limit" }, { "limit=-1", "invalid_task_limit" },
		{ "limit=", "invalid_task_limit" }, { "limit=1001", "invalid_task_limit" },
		{ "limit=0x10", "invalid_task_limit" }, { "limit=+5", "invalid_task_limit" },
		{ "limit=99999999999999999999999", "invalid_task_limit" },
		{ "from=x", "invalid_task_from" }, { "from=", "invalid_task_from" },
		{ "from=18446744073709551615", "invalid_task_from" },
		{ "reverse=yes", "invalid_task_reverse" }, { "reverse=", "invalid_task_reverse" },
		{ "reverse=TRUE", "invalid_task_reverse" },
		{ "nope=1", "bad_request" }, { "limit=1&limit=2", "bad_request" },
		{ "limit=%zz", "bad_request" },
	};
	struct query_error err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct query q;
		query_init(&q);
		cr_assert_eq(query_parse(cases[i].qs, &q, &err), LMT_EINVAL, "%s", cases[i].qs);
		cr_assert_str_eq(err.code, cases[i].code, "%s", cases[i].qs);
	}
}

Test(query, messages_name_the_parameter_and_value)
{
	struct query q;
	struct query_error err;

	query_init(&q);
	query_parse("limit=abc", &q, &err);
	cr_assert_str_eq(err.message,
	    "Invalid value in parameter `limit`: could not parse `abc` as a positive integer");
	query_parse("x=1", &q, &err);
	cr_assert_str_eq(err.message, "Unknown parameter `x`: expected one of `limit`, `from`, "
	    "`reverse`, `uids`, `canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, "
	    "`beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, "
	    "`beforeFinishedAt`");
	/* compat v1: batchUids too, in Meilisearch's order. */
	query_init(&q);
	q.v1 = 1;
	query_parse("x=1", &q, &err);
	cr_assert_str_eq(err.message, "Unknown parameter `x`: expected one of `limit`, `from`, "
	    "`reverse`, `batchUids`, `uids`, `canceledBy`, `types`, `statuses`, `indexUids`, "
	    "`afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, "
	    "`afterFinishedAt`, `beforeFinishedAt`");
	query_init(&q);
	cr_assert_eq(query_parse("batchUids=1", &q, &err), LMT_EINVAL);
	query_init(&q);
	q.v1 = 1;
	cr_assert_eq(query_parse("batchUids=3,1", &q, &err), 0);
	cr_assert_eq(q.nbatches, 2);
	cr_assert_eq(q.batches[0], 1);
	query_init(&q);
	query_parse("statuses=done", &q, &err);
	cr_assert_str_eq(err.message, "Invalid value in parameter `statuses`: `done` is not a valid "
	    "task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, "
	    "`canceled`.");
	query_init(&q);
	query_parse("afterEnqueuedAt=yesterday", &q, &err);
	cr_assert_str_eq(err.message, "Invalid value in parameter `afterEnqueuedAt`: `yesterday` is "
	    "an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format.");
}

Test(query, filters_parse)
{
	struct query q;
	struct query_error err;

	query_init(&q);
	cr_assert_eq(query_parse("uids=5,1,5,3&statuses=enqueued,failed&types=documentAddition"
	    "&indexUids=movies,books&canceledBy=9", &q, &err), 0, "%s", err.message);
	cr_assert_eq(q.nuids, 3);
	cr_assert_eq(q.uids[0], 1);
	cr_assert_eq(q.uids[2], 5);
	cr_assert_eq(q.statuses, (1u << TASK_ENQUEUED) | (1u << TASK_FAILED));
	cr_assert_eq(q.ntypes, 1);
	cr_assert_eq(q.nindexes, 2);
	cr_assert_eq(q.ncanceled, 1);
	/* `*` anywhere in a list means any. */
	query_init(&q);
	cr_assert_eq(query_parse("statuses=failed,*&uids=*&indexUids=a,*", &q, &err), 0);
	cr_assert_eq(q.statuses, 0);
	cr_assert_eq(q.nuids, 0);
	cr_assert_eq(q.nindexes, 0);
	/* Dates: an after date-only value starts the next day; before is strict. */
	query_init(&q);
	cr_assert_eq(query_parse("afterEnqueuedAt=2024-01-01&beforeFinishedAt=2024-01-03T00:00:00Z",
	    &q, &err), 0);
	struct task t = { .status = TASK_SUCCEEDED, .type = { "x", 1 }, .canceled_by = TASK_NO_UID };
	t.enqueued_at = INT64_C(1704153600000000);	/* 2024-01-02T00:00:00Z */
	t.finished_at = INT64_C(1704240000000000) - 1;	/* just before 2024-01-03 */
	cr_assert(query_match(&q, &t));
	t.enqueued_at -= 1;				/* still on 2024-01-01 */
	cr_assert(!query_match(&q, &t));
	t.enqueued_at += 1;
	t.finished_at += 1;
	cr_assert(!query_match(&q, &t));
	/* A date filter on a time that is not set does not match. */
	query_init(&q);
	cr_assert_eq(query_parse("beforeStartedAt=2030-01-01", &q, &err), 0);
	t.started_at = 0;
	cr_assert(!query_match(&q, &t));
}

Test(query, each_filter_gets_its_code)
{
	static const struct {
		const char *qs, *code;
	} cases[] = {
		{ "uids=a", "invalid_task_uids" }, { "uids=1,,2", "invalid_task_uids" },
		{ "uids=", "invalid_task_uids" }, { "uids=-1", "invalid_task_uids" },
		{ "statuses=done", "invalid_task_statuses" }, { "types=Bad", "invalid_task_types" },
		{ "indexUids=a%21", "invalid_index_uid" }, { "canceledBy=x", "invalid_task_canceled_by" },
		{ "beforeEnqueuedAt=x", "invalid_task_before_enqueued_at" },
		{ "afterEnqueuedAt=2024-13-01", "invalid_task_after_enqueued_at" },
		{ "beforeStartedAt=2024-02-30", "invalid_task_before_started_at" },
		{ "afterStartedAt=1", "invalid_task_after_started_at" },
		{ "beforeFinishedAt=2024-01-01T25:00:00Z", "invalid_task_before_finished_at" },
		{ "afterFinishedAt=2024-01-01T00:00:00", "invalid_task_after_finished_at" },
		{ "statuses=failed&statuses=enqueued", "bad_request" },
	};
	struct query_error err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct query q;
		query_init(&q);
		cr_assert_eq(query_parse(cases[i].qs, &q, &err), LMT_EINVAL, "%s", cases[i].qs);
		cr_assert_str_eq(err.code, cases[i].code, "%s", cases[i].qs);
	}
}

Test(query, huge_lists_are_refused)
{
	static char qs[QUERY_LIST_MAX * 8 + 64];
	struct query q;
	struct query_error err;
	size_t n = (size_t)sprintf(qs, "uids=");

	for (int i = 0; i <= QUERY_LIST_MAX; i++)
		n += (size_t)sprintf(qs + n, "%s%d", i ? "," : "", i);
	query_init(&q);
	cr_assert_eq(query_parse(qs, &q, &err), LMT_EINVAL);
	cr_assert_str_eq(err.code, "invalid_task_uids");
}

Test(query, scope_and_filters_are_anded)
{
	struct query q;
	struct query_error err;

	query_init(&q);
	cr_assert_eq(query_parse("indexUids=books", &q, &err), 0);
	query_scope(&q, "movies", 6);
	cr_assert(q.empty);
	query_init(&q);
	cr_assert_eq(query_parse("indexUids=books,movies", &q, &err), 0);
	query_scope(&q, "movies", 6);
	cr_assert(!q.empty);
	cr_assert_eq(q.nindexes, 1);
}
