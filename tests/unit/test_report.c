/* The CLI's reports (report.c): each one valid JSON with the fields the CLI documents, the
 * stats of a real store, the settings as config shows them, names escaped, webhook
 * secrets hidden. */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "lmtasks/compat.h"
#include "lmtasks/feed.h"
#include "lmtasks/report.h"
#include "lmtasks/settings.h"
#include "tmpdb.h"

static struct printbuf *pb;

static void
init(void)
{
	tmpdb_setup();
	pb = printbuf_new();
	cr_assert_not_null(pb);
}

static void
fini(void)
{
	printbuf_free(pb);
	tmpdb_teardown();
}

TestSuite(report, .init = init, .fini = fini);

/* The report so far, parsed: the test fails when it is not one JSON object and nothing
 * else; the caller puts it (json_object_put). */
static json_object *
parsed(void)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, pb->buf, pb->bpos);

	cr_assert_eq(json_tokener_get_error(tok), json_tokener_success, "not JSON: %.*s",
	    pb->bpos, pb->buf);
	cr_assert_eq(json_tokener_get_parse_end(tok), (size_t)pb->bpos, "bytes after the JSON");
	json_tokener_free(tok);
	cr_assert(json_object_is_type(o, json_type_object), "%s", pb->buf);
	return o;
}

static json_object *
field(json_object *o, const char *name)
{
	json_object *v = NULL;

	cr_assert(json_object_object_get_ex(o, name, &v), "no \"%s\" in %s", name,
	    json_object_to_json_string(o));
	return v;
}

/* The report so far as a string. */
static const char *
text(void)
{
	printbuf_memappend(pb, "", 1);
	pb->bpos--;
	return pb->buf;
}

Test(report, batch_gives_its_range_or_nulls)
{
	cr_assert_eq(report_batch(pb, 0, 0, 0), 0);
	cr_assert_str_eq(text(), "{\"enqueued\":0,\"firstUid\":null,\"lastUid\":null}");
	printbuf_reset(pb);
	cr_assert_eq(report_batch(pb, 3, 7, 9), 0);
	cr_assert_str_eq(text(), "{\"enqueued\":3,\"firstUid\":7,\"lastUid\":9}");
}

Test(report, check_is_ok_only_without_problems)
{
	cr_assert_eq(report_check(pb, 5, 0), 0);
	cr_assert_str_eq(text(), "{\"ok\":true,\"tasks\":5,\"problems\":0}");
	printbuf_reset(pb);
	cr_assert_eq(report_check(pb, 5, 2), 0);
	cr_assert_str_eq(text(), "{\"ok\":false,\"tasks\":5,\"problems\":2}");
}

Test(report, settings_as_config_shows_them)
{
	struct settings st = { .v = {
		[SETTING_MAX_BYTES] = UINT64_C(1) << 30,
		[SETTING_MAX_TASKS] = 0,
		[SETTING_FEED_RETENTION] = FEED_RETENTION_AGE_BIT | (7 * 86400),
		[SETTING_COMPAT] = COMPAT_V1,
		[SETTING_MAX_ATTEMPTS] = 5,
		[SETTING_RETRY_BACKOFF] = 90000,
	} };

	cr_assert_eq(report_settings(pb, &st), 0);
	cr_assert_str_eq(text(), "{\"maxBytes\":1073741824,\"maxTasks\":0,"
	    "\"feedRetention\":\"7d\",\"compat\":\"v1\",\"maxAttempts\":5,"
	    "\"retryBackoff\":\"90s\"}");
	printbuf_reset(pb);
	st.v[SETTING_FEED_RETENTION] = 500;
	st.v[SETTING_COMPAT] = COMPAT_V025;
	cr_assert_eq(report_settings(pb, &st), 0);
	cr_assert_not_null(strstr(text(), "\"feedRetention\":500,\"compat\":\"v0.25\","), "%s",
	    text());
}

Test(report, stats_of_a_store_count_its_tasks)
{
	struct store_stats st;
	struct settings set;
	uint64_t live, last = 0;
	MDB_txn *txn;

	for (int i = 0; i < 3; i++)
		last = tmpdb_add(i == 2 ? "movies" : "books");
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_stats(s, txn, &st), 0);
	cr_assert_eq(store_live_bytes(s, txn, &live), 0);
	cr_assert_eq(settings_read(s, txn, &set), 0);
	mdb_txn_abort(txn);
	cr_assert_eq(report_stats(pb, &st, live, &set), 0);

	json_object *o = parsed();
	cr_assert_eq(json_object_get_uint64(field(o, "tasks")), 3);
	cr_assert_eq(json_object_get_uint64(field(o, "nextUid")), last + 1);
	json_object *by = field(o, "statuses");
	cr_assert_eq(json_object_get_uint64(field(by, "enqueued")), 3);
	cr_assert_eq(json_object_get_uint64(field(by, "succeeded")), 0);
	cr_assert_eq(json_object_object_length(by), TASK_NSTATUS);
	cr_assert_eq(json_object_get_uint64(field(o, "indexes")), 2);
	cr_assert_eq(json_object_get_uint64(field(o, "liveBytes")), live);
	cr_assert_gt(live, 0);
	cr_assert_eq(json_object_get_uint64(field(o, "newTasksUntilBytes")),
	    set.v[SETTING_MAX_BYTES] / 100 * SETTINGS_ENQUEUE_PERCENT);
	json_object *conf = field(o, "settings");
	cr_assert_eq(json_object_get_uint64(field(conf, "maxTasks")), SETTINGS_MAX_TASKS_DEFAULT);
	cr_assert_eq(json_object_get_uint64(field(conf, "feedRetention")),
	    FEED_RETENTION_DEFAULT);
	cr_assert_str_eq(json_object_get_string(field(conf, "compat")), "v0.25");
	cr_assert_eq(json_object_get_uint64(field(conf, "maxAttempts")), 0);
	cr_assert_str_eq(json_object_get_string(field(conf, "retryBackoff")), "10s");
	json_object_put(o);
}

Test(report, an_index_name_is_escaped)
{
	static const char name[] = "a\"b\\c\n\x01";
	struct task_str n = { name, sizeof(name) - 1 };

	cr_assert_eq(report_index(pb, n, 1700000000000000), 0);
	json_object *o = parsed();
	cr_assert_str_eq(json_object_get_string(field(o, "uid")), name);
	cr_assert_eq(strncmp(json_object_get_string(field(o, "createdAt")), "2023-11-14T22:13:20",
	    19), 0, "%s", json_object_get_string(field(o, "createdAt")));
	json_object_put(o);
	printbuf_reset(pb);
	cr_assert_eq(report_index_deleted(pb, n), 0);
	o = parsed();
	cr_assert_str_eq(json_object_get_string(field(o, "uid")), name);
	cr_assert(json_object_get_boolean(field(o, "deleted")));
	json_object_put(o);
}

Test(report, a_webhooks_authorization_is_hidden)
{
	static const char headers[] =
	    "{\"Authorization\":\"Bearer s3cr3t-token\",\"X-Team\":\"ops\"}";
	struct webhook w = {
		.id = 2, .cursor = 4, .created_at = 1700000000000000, .delivered = 9,
		.url = { "http://127.0.0.1:9/hook", 23 },
		.headers = { headers, sizeof(headers) - 1 },
		.filter = { "statuses=failed", 15 },
	};

	cr_assert_eq(report_webhook(pb, &w, 10, 12), 0);
	cr_assert_null(strstr(text(), "s3cr3t"), "the secret shown: %s", text());
	json_object *o = parsed();
	json_object *h = field(o, "headers");
	cr_assert_str_eq(json_object_get_string(field(h, "Authorization")), "Bearer XXX...");
	cr_assert_str_eq(json_object_get_string(field(h, "X-Team")), "ops");
	cr_assert_eq(json_object_get_uint64(field(o, "pending")), 8);
	cr_assert(json_object_get_boolean(field(o, "pruned")), "cursor 4, log from 10: pruned");
	cr_assert(json_object_is_type(field(o, "lastError"), json_type_null));
	cr_assert(json_object_is_type(field(o, "deliveredAt"), json_type_null));
	cr_assert_str_eq(json_object_get_string(field(o, "filters")), "statuses=failed");
	json_object_put(o);
}

Test(report, a_webhook_caught_up_is_not_pruned)
{
	struct webhook w = {
		.id = 1, .cursor = 12, .created_at = 1700000000000000,
		.url = { "http://x/", 9 }, .headers = { "{}", 2 }, .filter = { "", 0 },
		.error = { "HTTP 500", 8 }, .failing_since = 1700000000000000,
	};

	cr_assert_eq(report_webhook(pb, &w, 10, 12), 0);
	json_object *o = parsed();
	cr_assert_eq(json_object_get_uint64(field(o, "pending")), 0);
	cr_assert(!json_object_get_boolean(field(o, "pruned")));
	cr_assert_str_eq(json_object_get_string(field(o, "lastError")), "HTTP 500");
	cr_assert_eq(json_object_object_length(field(o, "headers")), 0);
	json_object_put(o);
}

Test(report, backup_and_restore_name_their_directory)
{
	cr_assert_eq(report_backup(pb, "/var/backups/\"t\"", 3, 4), 0);
	json_object *o = parsed();
	cr_assert_str_eq(json_object_get_string(field(o, "backup")), "/var/backups/\"t\"");
	cr_assert_eq(json_object_get_uint64(field(o, "nextUid")), 4);
	json_object_put(o);
	printbuf_reset(pb);
	cr_assert_eq(report_restore(pb, "/b", 3, 1, 4), 0);
	cr_assert_str_eq(text(), "{\"restored\":\"/b\",\"tasks\":3,\"changedTasks\":1,\"nextUid\":4}");
}
