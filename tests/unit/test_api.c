/* The API on a real store in a temp directory: a request in, a status and a body out,
 * with the same bytes the responder sends. */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/ops.h"
#include "lmtasks/store.h"
#include "tmpdb.h"

static struct printbuf *body;
static struct api_response rs;
static unsigned char master[AUTH_HASH_BYTES];
static const unsigned char *use_master;
static char api_key[AUTH_KEY_CHARS + 1];
static pagecache *pages;	/* the worker's list pages, when a test gives it one */
static struct api_memo *memo;	/* the worker's memo, when a test gives it one */

static void
setup(void)
{
	struct task t[3];
	struct ops_change_result r;
	struct ops_change start = { .kind = OPS_START, .uid = 1 };
	struct auth_key k = { .all = 0, .nindexes = 1, .indexes = { { "movies", 6 } } };

	tmpdb_setup();
	task_init(&t[0], "movies", 6, "documentAddition", 16, "{\"receivedDocuments\":3}", 23);
	task_init(&t[1], "movies", 6, "settingsUpdate", 14, "{}", 2);
	task_init(&t[2], "books", 5, "indexCreation", 13, "{}", 2);
	cr_assert_eq(ops_enqueue(s, t, 3, NULL), 0);
	cr_assert_eq(ops_change(s, &start, &r), 0);
	ops_task_free(&r.out);
	cr_assert_eq(auth_init(), 0);
	cr_assert_eq(ops_key_create(s, &k, api_key), 0);
	auth_hash("a-master-key-of-some-length", 27, master);
	use_master = NULL;
	body = printbuf_new();
}

static void
teardown(void)
{
	printbuf_free(body);
	pagecache_free(pages);
	pages = NULL;
	memo = NULL;
	tmpdb_teardown();
}

TestSuite(api, .init = setup, .fini = teardown);

/* Answers method uri (query after '?') with the header given; returns the status. */
static int
ask(const char *method, const char *uri, const char *authorization)
{
	char path[512];
	const char *q = strchr(uri, '?');
	struct api_request rq = { method, uri, "", path, q ? q + 1 : "", authorization };
	struct api_reader rd = { s, 0, tmpstore_path("db"), NULL, NULL, use_master, NULL, pages, memo };

	snprintf(path, sizeof(path), "%.*s", (int)(q ? q - uri : (long)strlen(uri)), uri);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &rd.txn), 0);
	cr_assert_eq(store_iter_open(s, rd.txn, &rd.it), 0);
	printbuf_reset(body);
	memset(&rs, 0, sizeof(rs));
	api_handle(&rq, &rd, body, &rs);
	store_iter_close(rd.it);
	mdb_txn_abort(rd.txn);
	return rs.status;
}

static void
body_is(const char *want)
{
	cr_assert_str_eq(body->buf, want);
}

Test(api, a_task_by_uid)
{
	cr_assert_eq(ask("GET", "/tasks/0", NULL), 200);
	cr_assert_not_null(strstr(body->buf, "{\"uid\":0,\"indexUid\":\"movies\",\"status\":\"enqueued\","
	    "\"type\":\"documentAddition\",\"details\":{\"receivedDocuments\":3},\"duration\":null,"));
	cr_assert_eq(ask("GET", "/tasks/1", NULL), 200);
	cr_assert_not_null(strstr(body->buf, "\"status\":\"processing\""));
}

Test(api, errors_have_meilisearch_bodies)
{
	cr_assert_eq(ask("GET", "/tasks/9", NULL), 404);
	body_is("{\"message\":\"Task `9` not found.\",\"code\":\"task_not_found\",\"type\":"
	    "\"invalid_request\",\"link\":\"https://docs.meilisearch.com/errors#task_not_found\"}");
	cr_assert_eq(ask("GET", "/tasks/abc", NULL), 400);
	cr_assert_not_null(strstr(body->buf, "\"code\":\"invalid_task_uids\""));
	cr_assert_eq(ask("GET", "/indexes/films/tasks", NULL), 404);
	cr_assert_not_null(strstr(body->buf, "Index `films` not found."));
	cr_assert_eq(ask("GET", "/indexes/books/tasks/0", NULL), 404);
	cr_assert_not_null(strstr(body->buf, "\"code\":\"task_not_found\""));
	cr_assert_eq(ask("POST", "/tasks", NULL), 405);
	cr_assert_str_eq(rs.allow, "GET, HEAD");
	cr_assert_eq(ask("GET", "/tasks?limit=x", NULL), 400);
	cr_assert_not_null(strstr(body->buf, "\"code\":\"invalid_task_limit\""));
}

Test(api, lists_page_newest_first)
{
	cr_assert_eq(ask("GET", "/tasks?limit=2", NULL), 200);
	cr_assert_not_null(strstr(body->buf, "{\"results\":[{\"uid\":2,"));
	cr_assert_not_null(strstr(body->buf, "],\"total\":3,\"limit\":2,\"from\":2,\"next\":0}"));
	cr_assert_eq(ask("GET", "/indexes/movies/tasks?statuses=processing", NULL), 200);
	cr_assert_not_null(strstr(body->buf, "],\"total\":1,\"limit\":20,\"from\":1,\"next\":null}"));
}

Test(api, head_answers_no_body_with_gets_status)
{
	cr_assert_eq(ask("HEAD", "/tasks/0", NULL), 200);
	cr_assert(rs.head);
	cr_assert_eq(ask("GET", "/health", NULL), 200);
	body_is("{\"status\":\"available\"}");
}

Test(api, keys_decide_what_a_request_sees)
{
	char bearer[AUTH_KEY_CHARS + 8];

	use_master = master;
	cr_assert_eq(ask("GET", "/tasks/0", NULL), 401);
	cr_assert_not_null(strstr(body->buf, "\"code\":\"missing_authorization_header\""));
	cr_assert_eq(ask("GET", "/tasks/0", "Bearer wrong"), 403);
	cr_assert_eq(ask("GET", "/tasks/2", "Bearer a-master-key-of-some-length"), 200);
	snprintf(bearer, sizeof(bearer), "Bearer %s", api_key);
	cr_assert_eq(ask("GET", "/tasks/0", bearer), 200);
	cr_assert_eq(ask("GET", "/tasks/2", bearer), 404);	/* another index's task */
	cr_assert_eq(ask("GET", "/indexes/books/tasks", bearer), 403);
	cr_assert_eq(ask("GET", "/tasks", bearer), 200);
	cr_assert_not_null(strstr(body->buf, "\"total\":2,"));
}

Test(api, headers_carry_the_length)
{
	char buf[256];
	size_t n;

	cr_assert_eq(ask("GET", "/tasks/0", NULL), 200);
	n = api_headers(&rs, (size_t)body->bpos, buf, sizeof(buf));
	buf[n] = '\0';
	cr_assert_not_null(strstr(buf, "Status: 200"));
	cr_assert_not_null(strstr(buf, "Content-Type: application/json"));
	char want[64];
	snprintf(want, sizeof(want), "Content-Length: %d", body->bpos);
	cr_assert_not_null(strstr(buf, want));
}

Test(api, an_unreadable_store_is_a_503_and_a_log_line)
{
	struct api_request rq = { "GET", "/tasks/0", "", "/tasks/0", "", NULL };
	struct api_reader rd = { NULL, LMT_ENOSTORE, "/nowhere", NULL, NULL, NULL };

	api_handle(&rq, &rd, body, &rs);
	cr_assert_eq(rs.status, 503);
	cr_assert_not_null(strstr(body->buf, "\"code\":\"store_unavailable\""));
	cr_assert_not_null(strstr(rs.log, "/nowhere"));
}

/* With a page cache, a list asked again in one snapshot is the kept copy; a write, a
 * restricted key or another query is another page, never the kept one. */
Test(api, kept_pages_answer_only_their_snapshot_key_and_query)
{
	char bearer[AUTH_KEY_CHARS + 8], first[2048], restricted[2048];

	cr_assert_eq(pagecache_new(1 << 16, &pages), 0);
	use_master = master;
	cr_assert_eq(ask("GET", "/tasks?limit=2", "Bearer a-master-key-of-some-length"), 200);
	cr_assert_eq(pagecache_count(pages), 0);	/* asked once: not kept */
	cr_assert_eq(ask("GET", "/tasks?limit=2", "Bearer a-master-key-of-some-length"), 200);
	cr_assert_eq(pagecache_count(pages), 1);
	snprintf(first, sizeof(first), "%s", body->buf);
	cr_assert_not_null(strstr(first, "\"total\":3,"));
	cr_assert_eq(ask("GET", "/tasks?limit=2", "Bearer a-master-key-of-some-length"), 200);
	body_is(first);
	cr_assert_eq(pagecache_count(pages), 1);	/* found, not kept twice */

	/* The key that sees movies only: its own page, never the master's. */
	snprintf(bearer, sizeof(bearer), "Bearer %s", api_key);
	cr_assert_eq(ask("GET", "/tasks?limit=2", bearer), 200);
	cr_assert_eq(ask("GET", "/tasks?limit=2", bearer), 200);
	cr_assert_not_null(strstr(body->buf, "\"total\":2,"));
	snprintf(restricted, sizeof(restricted), "%s", body->buf);
	cr_assert_eq(pagecache_count(pages), 2);
	cr_assert_eq(ask("GET", "/tasks?limit=2", bearer), 200);
	body_is(restricted);
	/* A wrong key is refused before any page is looked for. */
	cr_assert_eq(ask("GET", "/tasks?limit=2", "Bearer wrong"), 403);
	cr_assert_eq(ask("GET", "/tasks?limit=3", "Bearer a-master-key-of-some-length"), 200);
	cr_assert_not_null(strstr(body->buf, "\"limit\":3,"));
	cr_assert_eq(ask("GET", "/indexes/movies/tasks?limit=2",
	    "Bearer a-master-key-of-some-length"), 200);
	cr_assert_not_null(strstr(body->buf, "\"total\":2,"));

	/* A write: the same request shows it at once. */
	uint64_t uid = tmpdb_add("books");
	char want[64];
	snprintf(want, sizeof(want), "{\"results\":[{\"uid\":%" PRIu64 ",", uid);
	cr_assert_eq(ask("GET", "/tasks?limit=2", "Bearer a-master-key-of-some-length"), 200);
	cr_assert_not_null(strstr(body->buf, want), "%s", body->buf);
	cr_assert_not_null(strstr(body->buf, "\"total\":4,"));
	cr_assert_eq(pagecache_count(pages), 0);	/* the old snapshot's pages are gone */
	/* HEAD keeps the page its GET then sends. */
	cr_assert_eq(ask("HEAD", "/tasks?limit=1", "Bearer a-master-key-of-some-length"), 200);
	cr_assert_eq(ask("GET", "/tasks?limit=1", "Bearer a-master-key-of-some-length"), 200);
	cr_assert_not_null(strstr(body->buf, want));
}

/* The worker's memo of the level holds for one snapshot: `config compat v1` (a write) shows
 * on the next request, as without it. */
Test(api, the_remembered_level_follows_a_config_write)
{
	static struct api_memo m;
	struct settings out;

	memo = &m;
	cr_assert_eq(ask("GET", "/tasks/0", NULL), 200);
	cr_assert_null(strstr(body->buf, "\"batchUid\""));
	cr_assert_neq(m.txn_id, 0);
	cr_assert_eq(ask("GET", "/tasks/0", NULL), 200);
	cr_assert_null(strstr(body->buf, "\"batchUid\""));
	cr_assert_eq(ops_config_set(s, SETTING_COMPAT, COMPAT_V1, &out), 0);
	cr_assert_eq(ask("GET", "/tasks/0", NULL), 200);
	cr_assert_not_null(strstr(body->buf, "\"batchUid\""), "%s", body->buf);
	cr_assert_eq(m.level, COMPAT_V1);
}
