/* Webhooks on a real store: the record's round trip and its corruption, add (ids, the
 * cursor at the log's end), the cursor's compare-and-move after a delivery, a failure
 * kept, delete; the batch notify collects (finished tasks only, filters, order, bounds,
 * a pruned cursor); the gzip body; header names and values, a header value that is not
 * a string (a damaged record); a password in a URL masked, by our own parser and by
 * libcurl's, in `webhook list`'s report of the URL and the last error. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>
#include <zlib.h>

#include "lmtasks/error.h"
#include "lmtasks/feed.h"
#include "lmtasks/notify.h"
#include "lmtasks/ops.h"
#include "lmtasks/report.h"
#include "lmtasks/store.h"
#include "lmtasks/webhook.h"
#include "tmpdb.h"

TestSuite(webhook, .init = tmpdb_setup, .fini = tmpdb_teardown);

static void
finish(uint64_t uid)
{
	tmpdb_change(OPS_START, uid);
	tmpdb_change(OPS_SUCCEED, uid);
}

static struct webhook
hook(const char *filter)
{
	struct webhook w = { 0 };

	w.url = (struct task_str){ "http://127.0.0.1:9/x", 20 };
	w.headers = (struct task_str){ "{\"X-A\":\"b\"}", 11 };
	w.filter = (struct task_str){ filter, strlen(filter) };
	cr_assert_eq(ops_webhook_add(s, &w), 0);
	return w;
}

static uint64_t
log_end(void)
{
	MDB_txn *txn;
	uint64_t first, last;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(feed_bounds(s, txn, &first, &last), 0);
	mdb_txn_abort(txn);
	return last;
}

/* Reads webhook id into *w, its strings copied into buf (freed by the caller). */
static int
get(uint64_t id, struct webhook *w, unsigned char **buf)
{
	MDB_txn *txn;
	int rc;

	*buf = NULL;
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	if ((rc = webhook_get(s, txn, id, w)) == 0) {
		size_t n = webhook_encode(w, NULL);
		*buf = malloc(n);
		webhook_encode(w, *buf);
		cr_assert_eq(webhook_decode(id, *buf, n, w), 0);
	}
	mdb_txn_abort(txn);
	return rc;
}

Test(webhook, record_round_trip_and_corruption)
{
	struct webhook w = { 7, 42, 1000, 3, 2000, 5, 3000, 4000,
	    { "http://a/b", 10 }, { "{}", 2 }, { "statuses=failed", 15 }, { "boom", 4 } }, r;
	size_t n = webhook_encode(&w, NULL);
	unsigned char *buf = malloc(n);

	webhook_encode(&w, buf);
	cr_assert_eq(webhook_decode(7, buf, n, &r), 0);
	cr_assert(r.id == 7 && r.cursor == 42 && r.created_at == 1000 && r.delivered == 3 &&
	    r.delivered_at == 2000 && r.missed == 5 && r.missed_at == 3000 &&
	    r.failing_since == 4000);
	cr_assert(r.url.len == 10 && memcmp(r.url.ptr, "http://a/b", 10) == 0);
	cr_assert(r.filter.len == 15 && r.error.len == 4);
	for (size_t cut = 0; cut < n; cut++)
		cr_assert_eq(webhook_decode(7, buf, cut, &r), LMT_ECORRUPT, "cut at %zu", cut);
	buf[0] = 99;
	cr_assert_eq(webhook_decode(7, buf, n, &r), LMT_ECORRUPT);
	free(buf);
	w.error = (struct task_str){ NULL, 0 };
	n = webhook_encode(&w, NULL);
	buf = malloc(n);
	webhook_encode(&w, buf);
	cr_assert_eq(webhook_decode(7, buf, n, &r), 0);
	cr_assert_null(r.error.ptr, "no error stays no error");
	free(buf);
}

Test(webhook, add_starts_at_the_log_end_with_new_ids)
{
	uint64_t u = tmpdb_add("movies");
	finish(u);
	struct webhook a = hook(""), b;
	unsigned char *buf;

	cr_assert_eq(a.id, 1);
	cr_assert_eq(a.cursor, log_end(), "the cursor is the log's end: %lu", (unsigned long)a.cursor);
	cr_assert_eq(a.cursor, 3);
	cr_assert_eq(ops_webhook_delete(s, a.id), 0);
	cr_assert_eq(ops_webhook_delete(s, a.id), MDB_NOTFOUND);
	struct webhook c = hook("");
	cr_assert_eq(c.id, 2, "ids are never reused");
	cr_assert_eq(get(1, &b, &buf), MDB_NOTFOUND);
	cr_assert_eq(get(2, &b, &buf), 0);
	cr_assert(b.headers.len == 11 && memcmp(b.headers.ptr, "{\"X-A\":\"b\"}", 11) == 0);
	free(buf);
}

Test(webhook, cursor_moves_only_from_where_it_was)
{
	struct webhook w = hook(""), r;
	unsigned char *buf;
	uint64_t u = tmpdb_add("movies");

	finish(u);
	struct ops_webhook_step fail = { w.id, w.cursor, w.cursor, 0, 0, "HTTP status 500", 5 };
	cr_assert_eq(ops_webhook_record(s, &fail), 0);
	cr_assert_eq(get(w.id, &r, &buf), 0);
	cr_assert(r.cursor == w.cursor && r.failing_since == 5 && r.error.len == 15);
	free(buf);
	struct ops_webhook_step ok = { w.id, w.cursor, log_end(), 1, 0, NULL, 9 };
	cr_assert_eq(ops_webhook_record(s, &ok), 0);
	cr_assert_eq(get(w.id, &r, &buf), 0);
	cr_assert(r.cursor == log_end() && r.delivered == 1 && r.delivered_at == 9 &&
	    r.error.ptr == NULL && r.failing_since == 0);
	free(buf);
	cr_assert_eq(ops_webhook_record(s, &ok), LMT_ECLAIMED, "from no longer matches");
	cr_assert_eq(ops_webhook_delete(s, w.id), 0);
	struct ops_webhook_step gone = { w.id, log_end(), log_end(), 0, 0, NULL, 10 };
	cr_assert_eq(ops_webhook_record(s, &gone), MDB_NOTFOUND);
}

/* Collects for w with filter text qs. */
static int
collect(const struct webhook *w, const char *qs, size_t max, struct notify_batch *b)
{
	struct query *q = malloc(sizeof(*q));
	struct query_error err;
	int rc;

	query_init(q);
	cr_assert_eq(query_parse(qs, q, &err), 0);
	rc = notify_collect(s, w, q, max, NOTIFY_BATCH_BYTES, b);
	free(q);
	return rc;
}

/* The uids of b's lines, in order, into u (room for 16); returns their number. */
static size_t
uids(const struct notify_batch *b, uint64_t *u)
{
	size_t n = 0;
	const char *p = b->body->buf;

	while (p && (p = strstr(p, "{\"uid\":")) != NULL && n < 16) {
		u[n++] = strtoull(p + 7, NULL, 10);
		p = strchr(p, '\n');
	}
	return n;
}

Test(webhook, collect_sends_finished_matching_tasks_in_order)
{
	struct webhook w = hook("indexUids=movies");
	struct notify_batch b = { .body = printbuf_new() };
	uint64_t a = tmpdb_add("movies"), c = tmpdb_add("books"), d = tmpdb_add("movies"), e = tmpdb_add("movies"), u[16];

	finish(d);
	finish(c);
	tmpdb_change(OPS_START, e);
	finish(a);
	cr_assert_eq(collect(&w, w.filter.ptr, 100, &b), 0);
	cr_assert_eq(b.ntasks, 2);
	cr_assert_eq(uids(&b, u), 2);
	cr_assert(u[0] == d && u[1] == a, "in the order they finished, movies only");
	cr_assert_eq(b.from, w.cursor);
	cr_assert_eq(b.to, log_end(), "the batch reads to the log's end");
	cr_assert_eq(b.missed, 0);
	cr_assert_eq(b.body->buf[b.body->bpos - 1], '\n');

	/* At most max tasks: the batch ends at the change of the last one taken. */
	cr_assert_eq(collect(&w, "", 1, &b), 0);
	cr_assert_eq(b.ntasks, 1);
	cr_assert_eq(uids(&b, u), 1);
	cr_assert_eq(u[0], d);
	cr_assert(b.to < log_end());
	w.cursor = b.to;
	cr_assert_eq(collect(&w, "", 1, &b), 0);
	cr_assert_eq(uids(&b, u), 1);
	cr_assert_eq(u[0], c, "the next batch goes on from there");

	/* Nothing new: to == from. */
	w.cursor = log_end();
	cr_assert_eq(collect(&w, "", 100, &b), 0);
	cr_assert(b.ntasks == 0 && b.to == b.from && b.from == w.cursor);
	printbuf_free(b.body);
}

Test(webhook, collect_goes_on_past_a_pruned_cursor)
{
	struct feed_retention r = { 3, 0 };
	struct settings st;
	struct webhook w = hook("");
	struct notify_batch b = { .body = printbuf_new() };
	uint64_t u[16], last = 0;

	cr_assert_eq(ops_config_set(s, SETTING_FEED_RETENTION, feed_retention_encode(&r), &st), 0);
	for (int i = 0; i < 4; i++)
		finish(last = tmpdb_add("movies"));
	cr_assert_eq(collect(&w, "", 100, &b), 0);
	cr_assert(b.missed > 0, "the gap is reported");
	cr_assert_eq(b.from, w.cursor + b.missed);
	cr_assert_eq(b.from + 3, log_end(), "from the oldest change kept");
	cr_assert_eq(uids(&b, u), 1);
	cr_assert_eq(u[0], last);
	printbuf_free(b.body);
}

Test(webhook, gzip_body_inflates_back)
{
	const char text[] = "{\"uid\":1}\n{\"uid\":2}\n";
	unsigned char *gz, out[64];
	size_t gzlen;
	z_stream z = { 0 };

	cr_assert_eq(notify_gzip(text, sizeof(text) - 1, &gz, &gzlen), 0);
	cr_assert(gzlen > 18 && gz[0] == 0x1f && gz[1] == 0x8b, "a gzip member");
	cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = gz;
	z.avail_in = (uInt)gzlen;
	z.next_out = out;
	z.avail_out = sizeof(out);
	cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
	cr_assert_eq(z.total_out, sizeof(text) - 1);
	cr_assert(memcmp(out, text, sizeof(text) - 1) == 0);
	inflateEnd(&z);
	free(gz);
}

Test(webhook, header_names_and_values)
{
	cr_assert(webhook_header_name_valid("Authorization", 13));
	cr_assert(webhook_header_name_valid("X-Tag", 5));
	cr_assert_not(webhook_header_name_valid("", 0));
	cr_assert_not(webhook_header_name_valid("X Tag", 5));
	cr_assert_not(webhook_header_name_valid("content-encoding", 16));
	cr_assert_not(webhook_header_name_valid("Host", 4));
	cr_assert(webhook_header_value_valid("Bearer abc", 10));
	cr_assert_not(webhook_header_value_valid("a\r\nX: y", 7));
}

Test(webhook, headers_become_a_curl_list_after_our_own)
{
	struct webhook w = hook("");
	struct curl_slist *l;

	cr_assert_eq(notify_headers(&w, &l), 0);
	cr_assert_str_eq(l->data, "Content-Type: application/x-ndjson");
	cr_assert_str_eq(l->next->data, "Content-Encoding: gzip");
	cr_assert_str_eq(l->next->next->next->data, "X-A: b");
	curl_slist_free_all(l);
	w.headers = (struct task_str){ "[1]", 3 };
	cr_assert_eq(notify_headers(&w, &l), LMT_ECORRUPT);
}

/* webhook_mask() of url on itself, as a string. */
static char *
masked(const char *url)
{
	char *out;
	size_t n;

	cr_assert_eq(webhook_mask(url, strlen(url), url, strlen(url), &out, &n), 0);
	cr_assert_eq(strlen(out), n);
	return out;
}

Test(webhook, a_urls_password_is_masked_by_our_own_parser)
{
	static const char *const cases[][2] = {
		{ "http://u:pw@h/x", "http://u:***@h/x" },
		{ "https://user:p%40ss@h.example:8443/a?b=c#d", "https://user:***@h.example:8443/a?b=c#d" },
		{ "http://u:p@ss@h/x", "http://u:***@h/x" },	/* the last '@' ends it */
		{ "http://u:pw@[::1]:9/x", "http://u:***@[::1]:9/x" },
		{ "http://u:pw@h", "http://u:***@h" },
		{ "http://u:@h/", "http://u:***@h/" },		/* an empty one: hidden too */
		{ "http://:pw@h/", "http://:***@h/" },
		{ "http://u:a:b@h/", "http://u:***@h/" },	/* from the first ':' */
		{ "HTTP://U:PW@H/", "HTTP://U:***@H/" },
		{ "http://u@h/x", "http://u@h/x" },		/* a user alone: nothing secret */
		{ "http://h/x", "http://h/x" },
		{ "http://[::1]:9/x", "http://[::1]:9/x" },
		{ "http://h/a?x=u:p@y", "http://h/a?x=u:p@y" },	/* '@' after the authority */
		{ "http://h#u:p@y", "http://h#u:p@y" },
		{ "http://u:p@h#f@x", "http://u:***@h#f@x" },
		{ "u:p@h/x", "u:p@h/x" },			/* no "://": no authority */
		{ "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = masked(cases[i][0]);
		cr_assert_str_eq(out, cases[i][1], "%s", cases[i][0]);
		free(out);
	}
	size_t off, len;
	cr_assert_eq(webhook_url_password("http://u:p%40ss@h/", 18, &off, &len), 1);
	cr_assert(off == 9 && len == 6, "as written, percent-encoded");
	cr_assert_eq(webhook_url_password("http://u@h/", 11, &off, &len), 0);
}

Test(webhook, a_password_is_masked_in_other_text_even_cut_short)
{
	static const char url[] = "http://hook:s3cret@127.0.0.1:9/x";
	static const char *const cases[][2] = {
		{ "POST http://hook:s3cret@127.0.0.1:9/x: HTTP status 500",
		    "POST http://hook:***@127.0.0.1:9/x: HTTP status 500" },
		{ "POST http://hook:s3cr", "POST http://hook:***" },	/* cut at a bound */
		{ "POST http://hook:s3cret", "POST http://hook:***" },
		{ "a:s3cret@b and a:s3cret@c", "a:***@b and a:***@c" },
		{ "s3cret alone, or :s3cretX@", "s3cret alone, or :s3cretX@" },
		{ "ends with a colon:", "ends with a colon:" },
	};
	char *out;
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(webhook_mask(url, strlen(url), cases[i][0], strlen(cases[i][0]), &out,
		    &n), 0);
		cr_assert_str_eq(out, cases[i][1]);
		free(out);
	}
}

Test(webhook, notify_masks_the_url_as_libcurl_reads_it)
{
	static const char *const cases[][2] = {
		{ "http://u:pw@127.0.0.1:9/x", "http://u:***@127.0.0.1:9/x" },
		{ "http://u%40x:p%40ss@h/x?a=b#c", "http://u%40x:***@h/x?a=b#c" },
		{ "http://u:pw@[::1]:9/x", "http://u:***@[::1]:9/x" },
		{ "http://u:p@ss@h/x", "http://u:***@h/x" },	/* libcurl refuses it: ours */
		{ "http://u@h/x", "http://u@h/x" },
		{ "http://[::1]:9/x", "http://[::1]:9/x" },
		{ "https://bücher.example/ä", "https://bücher.example/ä" },
	};
	char *out;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(notify_url_mask(cases[i][0], &out), 0);
		cr_assert_str_eq(out, cases[i][1]);
		free(out);
	}
}

Test(webhook, a_header_value_that_is_not_a_string_is_a_damaged_record)
{
	struct webhook w = hook("");
	struct curl_slist *l;

	w.headers = (struct task_str){ "{\"X-A\":null}", 12 };
	cr_assert_eq(notify_headers(&w, &l), LMT_ECORRUPT);
	w.headers = (struct task_str){ "{\"X-A\":\"b\",\"X-B\":3}", 19 };
	cr_assert_eq(notify_headers(&w, &l), LMT_ECORRUPT);
}

/* report_webhook(w) as text (freed by the caller). */
static char *
reported(const struct webhook *w)
{
	struct printbuf *pb = printbuf_new();
	char *text;

	cr_assert_not_null(pb);
	cr_assert_eq(report_webhook(pb, w, 1, 0), 0);
	text = strdup(pb->buf);
	printbuf_free(pb);
	return text;
}

Test(webhook, its_report_masks_the_password_in_the_url_and_the_last_error)
{
	static const char url[] = "http://hook:s3cret@127.0.0.1:9/x";
	/* As 0.2.0 kept it, the URL in clear, and cut at 512 bytes. */
	static const char err[] = "POST http://hook:s3cret@127.0.0.1:9/x: HTTP status 500";
	struct webhook w = { .id = 1, .url = { url, sizeof(url) - 1 }, .headers = { "{}", 2 },
	    .filter = { "", 0 }, .error = { err, sizeof(err) - 1 } };
	char *text = reported(&w);

	cr_assert_null(strstr(text, "s3cret"), "%s", text);
	cr_assert_not_null(strstr(text, "\"url\":\"http://hook:***@127.0.0.1:9/x\""), "%s", text);
	cr_assert_not_null(strstr(text, "\"lastError\":\"POST http://hook:***@127.0.0.1:9/x: "
	    "HTTP status 500\""), "%s", text);
	free(text);
	w.error = (struct task_str){ err, 20 };	/* "POST http://hook:s3c" */
	text = reported(&w);
	cr_assert_null(strstr(text, "s3c"), "%s", text);
	free(text);
}

Test(webhook, its_report_shows_a_null_header_value_of_a_damaged_record)
{
	static const char headers[] = "{\"X-A\":null,\"Authorization\":null,\"X-B\":\"b\"}";
	struct webhook w = { .id = 1, .url = { "http://h/", 9 },
	    .headers = { headers, sizeof(headers) - 1 }, .filter = { "", 0 } };
	char *text = reported(&w);

	cr_assert_not_null(strstr(text, "\"headers\":{\"X-A\":null,\"Authorization\":null,"
	    "\"X-B\":\"b\"}"), "%s", text);
	free(text);
}
