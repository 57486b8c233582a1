/* GET /metrics: the store's numbers against what the store keeps, the bounded lease count,
 * the workers' counters summed, the text, and the route behind its key action. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <lmdb.h>

#include "lmtasks/api.h"
#include "lmtasks/auth.h"
#include "lmtasks/clock.h"
#include "lmtasks/metrics.h"
#include "lmtasks/ops.h"
#include "lmtasks/query.h"
#include "lmtasks/route.h"
#include "lmtasks/store.h"
#include "lmtasks/webhook.h"
#include "tmpdb.h"

static struct printbuf *pb;

static void
setup(void)
{
	tmpdb_setup();
	pb = printbuf_new();
	cr_assert_not_null(pb);
}

static void
teardown(void)
{
	printbuf_free(pb);
	tmpdb_teardown();
}

TestSuite(metrics, .init = setup, .fini = teardown);

/* Enqueues one task of index and type; returns its uid. */
static uint64_t
add(const char *index, const char *type)
{
	struct task t;

	task_init(&t, index, strlen(index), type, strlen(type), "{}", 2);
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), 0);
	return t.uid;
}

/* Starts uid with a lease of lease_us (0: none). */
static void
start(uint64_t uid, int64_t lease_us)
{
	struct ops_change ch = { .kind = OPS_START, .uid = uid, .lease = lease_us };
	struct ops_change_result r = { 0 };

	cr_assert_eq(ops_change(s, &ch, &r), 0);
	ops_task_free(&r.out);
}

/* Reads the store's numbers at `now` (0: a second after the last write) and renders
 * them into pb. */
static void
scrape(struct metrics_store *m, int64_t now)
{
	const char *paths[METRICS_ROUTES] = {
		[ROUTE_TASKS] = "/tasks", [ROUTE_HEALTH] = "/health",
	};
	MDB_txn *txn;

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(metrics_read(s, txn, NULL, now, m), 0);
	printbuf_reset(pb);
	cr_assert_eq(metrics_render(pb, m, paths), 0);
	metrics_store_free(m);
	mdb_txn_abort(txn);
}

/* The value of the sample whose line starts with `series ` ; fails when there is none. */
static uint64_t
value(const char *series)
{
	char want[512];
	const char *p;
	uint64_t v;

	snprintf(want, sizeof(want), "\n%s ", series);
	p = strstr(pb->buf, want);
	cr_assert_not_null(p, "no sample %s in:\n%s", series, pb->buf);
	cr_assert_eq(sscanf(p + strlen(want), "%" SCNu64, &v), 1, "%s", series);
	return v;
}

Test(metrics, counts_as_the_store_keeps_them)
{
	struct metrics_store m;
	struct store_stats st;
	MDB_txn *txn;

	add("movies", "documentAddition");	/* 0: succeeded */
	add("movies", "settingsUpdate");	/* 1: failed */
	add("books", "documentAddition");	/* 2: processing */
	add("books", "indexCreation");		/* 3: enqueued */
	add("movies", "documentAddition");	/* 4: enqueued */
	start(0, 0);
	tmpdb_change(OPS_SUCCEED, 0);
	start(1, 0);
	tmpdb_change(OPS_FAIL, 1);
	int64_t before = clock_now();
	start(2, 0);
	int64_t after = clock_now();
	scrape(&m, 0);
	cr_assert_geq(value("meilisearch_last_update"), (uint64_t)(before / 1000000),
	    "the newest change's time, in seconds");
	cr_assert_leq(value("meilisearch_last_update"), (uint64_t)(after / 1000000));
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_stats(s, txn, &st), 0);
	mdb_txn_abort(txn);
	for (int i = 0; i < TASK_NSTATUS; i++) {
		char series[128];
		snprintf(series, sizeof(series), "meilisearch_nb_tasks{kind=\"statuses\",value=\"%s\"}",
		    task_status_name((enum task_status)i));
		cr_assert_eq(value(series), st.by_status[i], "%s", series);
	}
	cr_assert_eq(value("meilisearch_nb_tasks{kind=\"statuses\",value=\"enqueued\"}"), 2);
	cr_assert_eq(value("meilisearch_nb_tasks{kind=\"types\",value=\"documentAddition\"}"), 3);
	cr_assert_eq(value("meilisearch_nb_tasks{kind=\"types\",value=\"indexCreation\"}"), 1);
	cr_assert_eq(value("meilisearch_nb_tasks{kind=\"indexes\",value=\"movies\"}"), 3);
	cr_assert_eq(value("meilisearch_nb_tasks{kind=\"indexes\",value=\"books\"}"), 2);
	cr_assert_eq(value("lmtasks_tasks{index=\"books\",status=\"processing\"}"), 1);
	cr_assert_eq(value("lmtasks_tasks{index=\"movies\",status=\"failed\"}"), 1);
	cr_assert_eq(value("lmtasks_tasks{index=\"movies\",status=\"enqueued\"}"), 1);
	cr_assert_eq(value("meilisearch_is_indexing"), 1);
	cr_assert_eq(value("meilisearch_index_count"), 2);
	cr_assert_eq(value("lmtasks_tasks_enqueued_total"), 5);
	cr_assert_eq(value("lmtasks_tasks_finished_total"), 2);
	cr_assert_eq(value("lmtasks_store_tasks"), 5);
	cr_assert_eq(value("lmtasks_changes_total"), 10, "5 enqueues, 3 starts, 2 ends");
	cr_assert_eq(value("lmtasks_metrics_cut{family=\"indexes\"}"), 0);
	cr_assert_null(strstr(pb->buf, "meilisearch_http_requests_total"),
	    "no responder counters in a process that serves none");
}

Test(metrics, finished_counter_keeps_deleted_tasks)
{
	struct ops_record_result r = { 0 };
	struct metrics_store m;
	struct query_error why;
	struct query q;

	for (int i = 0; i < 3; i++) {
		add("movies", "documentAddition");
		start((uint64_t)i, 0);
		tmpdb_change(OPS_SUCCEED, (uint64_t)i);
	}
	add("movies", "documentAddition");
	scrape(&m, 0);
	cr_assert_eq(value("lmtasks_tasks_finished_total"), 3);
	query_init(&q);
	cr_assert_eq(query_parse("statuses=succeeded", &q, &why), 0);
	cr_assert_eq(ops_delete(s, &q, 0, "?statuses=succeeded", &r), 0);
	ops_task_free(&r.out);
	scrape(&m, 0);
	cr_assert_eq(value("meilisearch_nb_tasks{kind=\"statuses\",value=\"succeeded\"}"), 1,
	    "only the taskDeletion task is left succeeded");
	cr_assert_eq(value("lmtasks_tasks_finished_total"), 4,
	    "the three deleted still count, and the taskDeletion task finished too");
	cr_assert_eq(value("lmtasks_tasks_enqueued_total"), 5);
}

Test(metrics, queue_age_and_leases_at_a_given_time)
{
	struct metrics_store m;
	MDB_txn *txn;
	struct task t;
	int64_t at;

	add("movies", "documentAddition");
	add("movies", "documentAddition");
	add("books", "documentAddition");
	start(0, 10 * 1000000);		/* a 10 s lease */
	start(1, 60 * 1000000);		/* a 60 s lease */
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, 0, &t), 0);
	at = t.enqueued_at;
	cr_assert_eq(store_get(s, txn, 2, &t), 0);
	mdb_txn_abort(txn);
	scrape(&m, t.enqueued_at + 2500000);
	cr_assert_eq(value("lmtasks_leases"), 2);
	cr_assert_eq(value("lmtasks_leases_expired"), 0);
	cr_assert_not_null(strstr(pb->buf, "\nlmtasks_queue_oldest_age_seconds 2.500000\n"),
	    "task 2 is the oldest enqueued: %s", pb->buf);
	cr_assert_not_null(strstr(pb->buf, "\nmeilisearch_task_queue_latency_seconds "),
	    "the latency is there");
	/* 30 s on: the first lease ended, the second not. */
	scrape(&m, at + 30 * 1000000 + 1000000);
	cr_assert_eq(value("lmtasks_leases_expired"), 1);
	scrape(&m, at + 3600 * INT64_C(1000000));
	cr_assert_eq(value("lmtasks_leases_expired"), 2);
}

Test(metrics, latency_is_the_oldest_enqueued_or_processing)
{
	struct metrics_store m;
	MDB_txn *txn;
	struct task t;

	add("movies", "documentAddition");
	add("movies", "documentAddition");
	start(0, 0);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, 0, &t), 0);
	mdb_txn_abort(txn);
	scrape(&m, t.enqueued_at + 7000000);
	cr_assert_not_null(strstr(pb->buf, "\nmeilisearch_task_queue_latency_seconds 7.000000\n"),
	    "task 0 (processing) is the oldest waiting: %s", pb->buf);
	start(1, 0);
	tmpdb_change(OPS_SUCCEED, 0);
	tmpdb_change(OPS_SUCCEED, 1);
	scrape(&m, t.enqueued_at + 7000000);
	cr_assert_not_null(strstr(pb->buf, "\nmeilisearch_task_queue_latency_seconds 0.000000\n"));
	cr_assert_not_null(strstr(pb->buf, "\nlmtasks_queue_oldest_age_seconds 0.000000\n"));
	cr_assert_eq(value("meilisearch_is_indexing"), 0);
}

Test(metrics, lease_count_reads_at_most_twice_the_bound)
{
	MDB_txn *txn;
	uint64_t total, expired;
	int64_t until[6];

	for (int i = 0; i < 6; i++) {
		add("movies", "documentAddition");
		start((uint64_t)i, (int64_t)(i + 1) * 1000000);
	}
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	for (int i = 0; i < 6; i++) {
		struct task t;
		cr_assert_eq(store_get(s, txn, (uint64_t)i, &t), 0);
		until[i] = t.lease_until;
	}
	/* Two ended: fewer than the bound, counted from the first. */
	cr_assert_eq(store_lease_count(s, txn, until[2], 3, &total, &expired), 0);
	cr_assert_eq(total, 6);
	cr_assert_eq(expired, 2);
	/* Five ended, one live: the live side is short, the rest are expired. */
	cr_assert_eq(store_lease_count(s, txn, until[5], 3, &total, &expired), 0);
	cr_assert_eq(expired, 5);
	/* Four and two with a bound of 2: both sides reach it, the answer is the bound. */
	cr_assert_eq(store_lease_count(s, txn, until[4], 2, &total, &expired), 0);
	cr_assert_eq(expired, 2, "at least the bound");
	/* All ended. */
	cr_assert_eq(store_lease_count(s, txn, until[5] + 1, 3, &total, &expired), 0);
	cr_assert_eq(expired, 6);
	mdb_txn_abort(txn);
}

/* Every worker's requests are summed; the histogram's buckets are cumulative. */
static size_t
three(void)
{
	return 3;
}

Test(metrics, worker_counters_summed_at_a_scrape)
{
	metrics_worker *a, *b;
	struct metrics_store m;

	add("movies", "documentAddition");
	cr_assert_eq(metrics_worker_new(&a), 0);
	cr_assert_eq(metrics_worker_new(&b), 0);
	metrics_serve(three);
	metrics_note(a, "GET", ROUTE_TASKS, 200, 50);
	metrics_note(a, "GET", ROUTE_TASKS, 200, 300);
	metrics_note(b, "GET", ROUTE_TASKS, 200, 2000000);
	metrics_note(b, "GET", ROUTE_TASKS, 404, 10);
	metrics_note(a, "HEAD", ROUTE_TASKS, 200, 10);
	metrics_note(b, "POST", ROUTE_NONE, 405, 10);
	metrics_note(b, NULL, ROUTE_TASKS, 200, 10);
	metrics_page(a, 1);
	metrics_page(b, 0);
	metrics_page(b, 1);
	scrape(&m, 0);
	cr_assert_eq(value("meilisearch_http_requests_total{method=\"GET\",path=\"/tasks\","
	    "status=\"200\"}"), 4);
	cr_assert_eq(value("meilisearch_http_requests_total{method=\"GET\",path=\"/tasks\","
	    "status=\"404\"}"), 1);
	cr_assert_eq(value("meilisearch_http_requests_total{method=\"HEAD\",path=\"/tasks\","
	    "status=\"200\"}"), 1);
	cr_assert_eq(value("meilisearch_http_requests_total{method=\"other\",path=\"unmatched\","
	    "status=\"405\"}"), 1);
	cr_assert_eq(value("meilisearch_http_response_time_seconds_bucket{method=\"GET\","
	    "path=\"/tasks\",le=\"0.0001\"}"), 3, "50, 10 and 10 µs");
	cr_assert_eq(value("meilisearch_http_response_time_seconds_bucket{method=\"GET\","
	    "path=\"/tasks\",le=\"0.0005\"}"), 4, "and 300 µs");
	cr_assert_eq(value("meilisearch_http_response_time_seconds_bucket{method=\"GET\","
	    "path=\"/tasks\",le=\"1\"}"), 4);
	cr_assert_eq(value("meilisearch_http_response_time_seconds_bucket{method=\"GET\","
	    "path=\"/tasks\",le=\"2.5\"}"), 5, "and 2 s");
	cr_assert_eq(value("meilisearch_http_response_time_seconds_bucket{method=\"GET\","
	    "path=\"/tasks\",le=\"+Inf\"}"), 5);
	cr_assert_eq(value("meilisearch_http_response_time_seconds_count{method=\"GET\","
	    "path=\"/tasks\"}"), 5);
	cr_assert_not_null(strstr(pb->buf, "\nmeilisearch_http_response_time_seconds_sum{method="
	    "\"GET\",path=\"/tasks\"} 2.000370\n"), "%s", pb->buf);
	cr_assert_eq(value("lmtasks_streams_open"), 3);
	/* Every status the responder answers has its label; any other is "other". */
	static const int codes[] = { 200, 204, 304, 400, 401, 403, 404, 405, 410, 414, 422, 431,
	    500, 503 };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		metrics_note(a, "GET", ROUTE_HEALTH, codes[i], 10);
	metrics_note(a, "GET", ROUTE_HEALTH, 418, 10);
	metrics_note(a, "GET", ROUTE_HEALTH, 199, 10);
	metrics_note(a, "GET", ROUTE_HEALTH, 600, 10);
	scrape(&m, 0);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		char series[160];
		snprintf(series, sizeof(series), "meilisearch_http_requests_total{method=\"GET\","
		    "path=\"/health\",status=\"%d\"}", codes[i]);
		cr_assert_eq(value(series), 1, "%s", series);
	}
	cr_assert_eq(value("meilisearch_http_requests_total{method=\"GET\",path=\"/health\","
	    "status=\"other\"}"), 3);
	cr_assert_eq(value("lmtasks_page_cache_hits_total"), 2);
	cr_assert_eq(value("lmtasks_page_cache_misses_total"), 1);
}

/* Each family's lines come together, after its one TYPE line: what the format asks. */
Test(metrics, families_are_grouped)
{
	struct metrics_store m;
	metrics_worker *w;
	char seen[64][96];
	size_t nseen = 0;
	char current[96] = "";

	add("movies", "documentAddition");
	add("books", "indexCreation");
	cr_assert_eq(metrics_worker_new(&w), 0);
	metrics_serve(NULL);
	metrics_note(w, "GET", ROUTE_TASKS, 200, 50);
	scrape(&m, 0);
	for (char *line = strtok(pb->buf, "\n"); line; line = strtok(NULL, "\n")) {
		char name[96];
		if (sscanf(line, "# TYPE %95s", name) == 1) {
			for (size_t i = 0; i < nseen; i++)
				cr_assert_str_neq(seen[i], name, "%s typed twice", name);
			cr_assert_lt(nseen, 64);
			strcpy(seen[nseen++], name);
			strcpy(current, name);
			continue;
		}
		if (line[0] == '#')
			continue;
		size_t n = strcspn(line, "{ ");
		cr_assert_eq(strncmp(line, current, strlen(current)), 0, "%s outside %s", line,
		    current);
		cr_assert(n == strlen(current) || strncmp(line + strlen(current), "_bucket", 7) == 0 ||
		    strncmp(line + strlen(current), "_sum", 4) == 0 ||
		    strncmp(line + strlen(current), "_count", 6) == 0, "%s outside %s", line,
		    current);
	}
	cr_assert_gt(nseen, 20);
}

Test(metrics, key_actions)
{
	const char *names[AUTH_ACTIONS_MAX];
	struct auth_grant g = { .all = 1 };
	struct api_error err;
	unsigned a;

	cr_assert_eq(auth_actions_parse("metrics.get", &a), 0);
	cr_assert_eq(a, AUTH_METRICS_GET);
	cr_assert_eq(auth_actions_parse("tasks.*,metrics.*", &a), 0);
	cr_assert_eq(auth_actions_list(a, names), 2);
	cr_assert_str_eq(names[0], "tasks.*");
	cr_assert_str_eq(names[1], "metrics.*");
	cr_assert_eq(auth_actions_list(~0u, names), AUTH_ACTIONS_MAX);
	g.actions = AUTH_METRICS_GET;
	cr_assert_eq(auth_permits(&g, AUTH_METRICS_GET, &err), 0);
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_GET, &err), 403, "metrics.get reads no task");
	g.actions = AUTH_TASKS_ALL;
	cr_assert_eq(auth_permits(&g, AUTH_METRICS_GET, &err), 403, "tasks.* is no metrics action");
	g.actions = AUTH_METRICS_ALL;
	cr_assert_eq(auth_permits(&g, AUTH_METRICS_GET, &err), 0);
	cr_assert_eq(auth_permits(&g, AUTH_TASKS_GET, &err), 403);
	g.actions = AUTH_ALL;
	cr_assert_eq(auth_permits(&g, AUTH_METRICS_GET, &err), 0);
}

/* GET /metrics through api_handle with the header given; returns the status. */
static int
ask(const char *method, const unsigned char *master, const char *authorization,
    struct api_response *rs)
{
	struct api_request rq = { method, "/metrics", "", "/metrics", "", authorization };
	struct api_reader rd = { s, 0, tmpstore_path("db"), NULL, NULL, master, NULL, NULL, NULL,
	    NULL, -1 };

	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &rd.txn), 0);
	printbuf_reset(pb);
	memset(rs, 0, sizeof(*rs));
	api_handle(&rq, &rd, pb, rs);
	mdb_txn_abort(rd.txn);
	cr_assert_eq(rd.route, ROUTE_METRICS);
	return rs->status;
}

Test(metrics, the_route_behind_its_key_action)
{
	unsigned char master[AUTH_HASH_BYTES];
	char metrics_key[AUTH_KEY_CHARS + 1], tasks_key[AUTH_KEY_CHARS + 1];
	char books_key[AUTH_KEY_CHARS + 1], header[128];
	struct auth_key mk = { .all = 1, .actions = AUTH_METRICS_GET };
	struct auth_key tk = { .all = 1, .actions = AUTH_TASKS_ALL };
	struct auth_key bk = { .nindexes = 1, .indexes = { { "books", 5 } },
	    .actions = AUTH_METRICS_GET };
	struct api_response rs;
	char hdr[256];

	add("movies", "documentAddition");
	cr_assert_eq(auth_init(), 0);
	cr_assert_eq(ops_key_create(s, &mk, metrics_key), 0);
	cr_assert_eq(ops_key_create(s, &tk, tasks_key), 0);
	cr_assert_eq(ops_key_create(s, &bk, books_key), 0);
	auth_hash("a-master-key-of-some-length", 27, master);

	cr_assert_eq(ask("GET", NULL, NULL, &rs), 200, "no master key: open, as every route");
	cr_assert_str_eq(rs.type, METRICS_CONTENT_TYPE);
	api_headers(&rs, (size_t)pb->bpos, hdr, sizeof(hdr));
	cr_assert_not_null(strstr(hdr, "\r\nContent-Type: text/plain; version=0.0.4; "
	    "charset=utf-8\r\n"), "%s", hdr);
	cr_assert_not_null(strstr(hdr, "Cache-Control: no-store"), "%s", hdr);
	cr_assert_eq(ask("GET", master, NULL, &rs), 401);
	cr_assert_null(rs.type, "an error is JSON");
	cr_assert_not_null(strstr(pb->buf, "\"code\":\"missing_authorization_header\""));
	cr_assert_eq(ask("GET", master, "Bearer a-master-key-of-some-length", &rs), 200);
	snprintf(header, sizeof(header), "Bearer %s", metrics_key);
	cr_assert_eq(ask("GET", master, header, &rs), 200, "metrics.get");
	cr_assert_eq(ask("HEAD", master, header, &rs), 200);
	cr_assert_eq(rs.head, 1);
	snprintf(header, sizeof(header), "Bearer %s", tasks_key);
	cr_assert_eq(ask("GET", master, header, &rs), 403, "tasks.* does not read metrics");
	cr_assert_not_null(strstr(pb->buf, "\"code\":\"invalid_api_key\""));
	snprintf(header, sizeof(header), "Bearer %s", books_key);
	cr_assert_eq(ask("GET", master, header, &rs), 403, "a key for some indexes only");
	cr_assert_not_null(strstr(pb->buf, "must allow access to all indexes"), "%s", pb->buf);
	cr_assert_eq(ask("POST", master, header, &rs), 405);
}

/* What could grow without bound is cut to its bound, and the cut is said. */
Test(metrics, families_cut_to_their_bounds)
{
	static struct task t[METRICS_INDEXES_MAX + 1];
	static char names[METRICS_INDEXES_MAX + 1][16], types[METRICS_INDEXES_MAX + 1][16];
	struct metrics_store m;
	MDB_txn *txn;

	for (size_t i = 0; i <= METRICS_INDEXES_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "i%05zu", i);
		snprintf(types[i], sizeof(types[i]), "t%zu", i % (METRICS_TYPES_MAX + 1));
		task_init(&t[i], names[i], strlen(names[i]), types[i], strlen(types[i]), "{}", 2);
	}
	cr_assert_eq(ops_enqueue(s, t, METRICS_INDEXES_MAX + 1, NULL), 0);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(metrics_read(s, txn, NULL, 0, &m), 0);
	cr_assert_eq(m.nindexes, METRICS_INDEXES_MAX);
	cr_assert_eq(m.ntypes, METRICS_TYPES_MAX);
	cr_assert_eq(m.cut, 1u << METRICS_CUT_INDEXES | 1u << METRICS_CUT_TYPES);
	cr_assert_eq(m.indexes[0].name.len, 6);
	cr_assert_eq(memcmp(m.indexes[METRICS_INDEXES_MAX - 1].name.ptr, "i00999", 6), 0,
	    "the first indexes by name");
	printbuf_reset(pb);
	cr_assert_eq(metrics_render(pb, &m, (const char *const[METRICS_ROUTES]){ NULL }), 0);
	metrics_store_free(&m);
	mdb_txn_abort(txn);
	cr_assert_eq(value("lmtasks_metrics_cut{family=\"indexes\"}"), 1);
	cr_assert_eq(value("lmtasks_metrics_cut{family=\"types\"}"), 1);
	cr_assert_eq(value("lmtasks_metrics_cut{family=\"webhooks\"}"), 0);
	cr_assert_eq(value("lmtasks_store_tasks"), METRICS_INDEXES_MAX + 1, "the totals are whole");
	cr_assert_eq(value("meilisearch_nb_tasks{kind=\"statuses\",value=\"enqueued\"}"),
	    METRICS_INDEXES_MAX + 1);
}

/* Each webhook's lag behind the log's head, what it delivered, and whether it fails. */
Test(metrics, webhooks_against_the_log)
{
	struct webhook w = { .url = { "http://127.0.0.1:9/x", 20 }, .headers = { "{}", 2 },
	    .filter = { "", 0 } };
	struct metrics_store m;
	uint64_t id, at;

	add("movies", "documentAddition");
	cr_assert_eq(ops_webhook_add(s, &w), 0);
	id = w.id;
	at = w.cursor;
	cr_assert_eq(at, 1, "the log's end when it was added");
	add("movies", "documentAddition");
	start(1, 0);
	tmpdb_change(OPS_SUCCEED, 1);
	scrape(&m, 0);
	cr_assert_eq(value("lmtasks_changes_total"), 4);
	char series[128];
	snprintf(series, sizeof(series), "lmtasks_webhook_lag_changes{webhook=\"%" PRIu64 "\"}", id);
	cr_assert_eq(value(series), 3, "three changes after its cursor");
	struct ops_webhook_step fail = { .id = id, .from = at, .error = "connect: refused",
	    .now = 1 };
	cr_assert_eq(ops_webhook_record(s, &fail), 0);
	scrape(&m, 0);
	snprintf(series, sizeof(series), "lmtasks_webhook_failing{webhook=\"%" PRIu64 "\"}", id);
	cr_assert_eq(value(series), 1);
	struct ops_webhook_step ok = { .id = id, .from = at, .to = 4, .delivered = 1, .now = 2 };
	cr_assert_eq(ops_webhook_record(s, &ok), 0);
	scrape(&m, 0);
	cr_assert_eq(value(series), 0, "its last attempt succeeded");
	snprintf(series, sizeof(series), "lmtasks_webhook_lag_changes{webhook=\"%" PRIu64 "\"}", id);
	cr_assert_eq(value(series), 0);
	snprintf(series, sizeof(series), "lmtasks_webhook_delivered_total{webhook=\"%" PRIu64
	    "\"}", id);
	cr_assert_eq(value(series), 1);
	cr_assert_eq(value("lmtasks_metrics_cut{family=\"webhooks\"}"), 0);
}

/* A delay is no latency: an enqueued task counts from when it may be claimed, and one still
 * to come due not at all (SPEC §6: a guard never cries wolf). */
Test(metrics, a_delayed_task_waits_from_its_time)
{
	struct metrics_store m;
	MDB_txn *txn;
	struct task t, got;
	int64_t at;

	task_init(&t, "movies", 6, "documentAddition", 16, "{}", 2);
	t.not_before = INT64_C(4102444800000000);	/* 2100-01-01 */
	cr_assert_eq(ops_enqueue(s, &t, 1, NULL), 0);
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, 0, &got), 0);
	at = got.enqueued_at;
	mdb_txn_abort(txn);
	scrape(&m, at + 3600 * INT64_C(1000000));
	cr_assert_not_null(strstr(pb->buf, "\nmeilisearch_task_queue_latency_seconds 0.000000\n"),
	    "a task delayed to 2100 is not late an hour on: %s", pb->buf);
	cr_assert_not_null(strstr(pb->buf, "\nlmtasks_queue_oldest_age_seconds 0.000000\n"));

	/* A plain task after it is the queue's head; the delayed one, once due, counts from
	 * its notBefore. */
	add("movies", "documentAddition");
	cr_assert_eq(store_txn_begin(s, MDB_RDONLY, &txn), 0);
	cr_assert_eq(store_get(s, txn, 1, &got), 0);
	mdb_txn_abort(txn);
	scrape(&m, got.enqueued_at + 2000000);
	cr_assert_not_null(strstr(pb->buf, "\nlmtasks_queue_oldest_age_seconds 2.000000\n"),
	    "task 1 is the oldest waiting: %s", pb->buf);
	scrape(&m, t.not_before + 5000000);
	cr_assert_not_null(strstr(pb->buf, "\nmeilisearch_task_queue_latency_seconds 5.000000\n"),
	    "task 0 waits from its notBefore: %s", pb->buf);
}
