/* libFuzzer target: query strings and single parameters, and the lists they select.
 *
 * The first input byte holds flags; the rest is a query string (cut at its first
 * NUL) for query_parse(), and also NAME NUL VALUE (or, without a NUL, VALUE for a
 * parameter the flags choose) for query_set().  A parsed query must keep its limits
 * (limit <= 1000, lists <= 256, uids sorted and unique, valid names); a refusal must be
 * a 400 with a UTF-8 message that renders to JSON json-c reads back.  Every accepted
 * query is also run on a small store built once, and the page, total and next it
 * gives are compared with a brute-force walk over every task through query_match().
 */
#include "config.h"

#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"

#include "lmtasks/api_error.h"
#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/store.h"

#define NTASKS 96

static const char *const names[] = { "limit", "from", "reverse", "uids", "statuses", "types",
    "indexUids", "canceledBy", "beforeEnqueuedAt", "afterEnqueuedAt", "beforeStartedAt",
    "afterStartedAt", "beforeFinishedAt", "afterFinishedAt" };
static const char *const indexes[] = { "movies", "books", "mov", "a-b_c", NULL };
static const char *const types[] = { "documentAddition", "indexCreation", "settingsUpdate",
    "documentDeletion" };

static char dir[PATH_MAX];
static store *S;
static uint64_t next_uid;

static struct task_str
str_of(const char *s)
{
	return (struct task_str){ s, s ? strlen(s) : 0 };
}

/* Tasks of every status, five indexes (one null), four types, dates over a few days. */
static int
add_tasks(store *s, MDB_txn *txn, void *ctx)
{
	const int64_t t0 = INT64_C(1628553600000000);	/* 2021-08-10T00:00:00Z */
	char det[32];
	int rc;

	(void)ctx;
	for (unsigned i = 0; i < NTASKS; i++) {
		struct task t;
		unsigned st = (i * 7 + i / 5) % TASK_NSTATUS;
		memset(&t, 0, sizeof(t));
		snprintf(det, sizeof(det), "{\"n\":%u}", i);
		t.index_uid = str_of(indexes[(i * 3 + i / 7) % 5]);
		t.type = str_of(types[(i + i / 3) % 4]);
		t.details = i % 2 ? str_of("{}") : str_of(det);
		t.status = (enum task_status)st;
		t.enqueued_at = t0 + (int64_t)i * 3600000000;
		t.started_at = st != TASK_ENQUEUED && !(st == TASK_CANCELED && i % 2) ?
		    t.enqueued_at + 1000000 * (i % 4) + 1 : 0;
		t.finished_at = st >= TASK_SUCCEEDED ? t.enqueued_at + 86400000000 * (i % 3) + 5 : 0;
		t.canceled_by = st == TASK_CANCELED ? (uint64_t)(i % 3 ? i + 1 : i + 2) : TASK_NO_UID;
		if (st == TASK_FAILED) {
			t.error_code = str_of("internal");
			t.error_message = str_of("it broke");
			t.error_type = TASK_ERR_INTERNAL;
		}
		if ((rc = store_add(s, txn, &t)) != 0)
			return rc;
	}
	/* Holes in the uids: deleted tasks. */
	for (uint64_t uid = 5; uid < NTASKS; uid += 11) {
		struct task t;
		if ((rc = store_get(s, txn, uid, &t)) != 0 || (rc = store_remove(s, txn, &t)) != 0)
			return rc;
	}
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
cleanup(void)
{
	store_close(S);
	S = NULL;
	if (dir[0])
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = getenv("TMPDIR");
	MDB_txn *txn;
	int rc;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/fuzz_query-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	atexit(cleanup);
	if ((rc = store_open(dir, STORE_CREATE, 0600, &S)) != 0 ||
	    (mdb_env_set_flags(store_env(S), MDB_NOSYNC, 1), 0) ||
	    (rc = store_write(S, add_tasks, NULL)) != 0 ||
	    (rc = store_txn_begin(S, MDB_RDONLY, &txn)) != 0) {
		fprintf(stderr, "fuzz_query: cannot build the store in %s: %s\n", dir,
		    lmt_strerror(rc));
		abort();
	}
	store_next_uid(S, txn, &next_uid);
	mdb_txn_abort(txn);
	/* The open environment keeps its files: remove their names now, so that a crash
	 * (no atexit) leaves nothing behind. */
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
	fuzz_json_init();
	return 0;
}

static void
check_refusal(int rc, const struct query_error *why)
{
	struct printbuf *pb = printbuf_new();
	struct api_error err, *e = &err;
	json_object *o, *v;

	CHECK(pb != NULL);
	/* The HTTP side's 400 of it, as api.c answers. */
	CHECK(rc == LMT_EINVAL && api_error_query(e, why) == 400);
	CHECK(strcmp(e->message, why->message) == 0);
	CHECK(e->code != NULL && e->code[0] != '\0' && strcmp(e->type, "invalid_request") == 0);
	CHECK(task_utf8_valid(e->message, strlen(e->message)));
	CHECK(api_error_render(pb, e) == 0);
	o = parse_json(pb->buf, (size_t)pb->bpos);
	CHECK(o != NULL);
	CHECK(json_object_object_get_ex(o, "message", &v) &&
	    strcmp(json_object_get_string(v), e->message) == 0);
	CHECK(json_object_object_get_ex(o, "code", &v) &&
	    strcmp(json_object_get_string(v), e->code) == 0);
	json_object_put(o);
	printbuf_free(pb);
}

static int
in_text(const struct query *q, struct task_str s)
{
	return s.ptr >= q->text && s.ptr + s.len <= q->text + q->text_used;
}

static void
check_query(const struct query *q)
{
	CHECK(q->limit <= QUERY_LIMIT_MAX);
	CHECK(q->nuids <= QUERY_LIST_MAX && q->ncanceled <= QUERY_LIST_MAX);
	CHECK(q->ntypes <= QUERY_LIST_MAX && q->nindexes <= QUERY_LIST_MAX);
	CHECK(q->text_used <= QUERY_TEXT_MAX);
	CHECK(q->statuses < (1u << TASK_NSTATUS));
	CHECK(q->reverse == 0 || q->reverse == 1);
	for (size_t i = 0; i < q->nuids; i++) {
		CHECK(q->uids[i] != TASK_NO_UID);
		CHECK(i == 0 || q->uids[i - 1] < q->uids[i]);
	}
	for (size_t i = 0; i < q->ncanceled; i++) {
		CHECK(q->canceled[i] != TASK_NO_UID);
		CHECK(i == 0 || q->canceled[i - 1] < q->canceled[i]);
	}
	for (size_t i = 0; i < q->ntypes; i++)
		CHECK(in_text(q, q->types[i]) && task_type_valid(q->types[i].ptr, q->types[i].len));
	for (size_t i = 0; i < q->nindexes; i++)
		CHECK(in_text(q, q->indexes[i]) &&
		    task_index_uid_valid(q->indexes[i].ptr, q->indexes[i].len));
}

/* Runs q through render_task_page() and compares with every task filtered by query_match(). */
static void
check_run(const struct query *q)
{
	uint64_t match[NTASKS + 8], want_total = 0, want_next = TASK_NO_UID, bad = 0;
	size_t nm = 0, page = 0;
	struct printbuf *pb = printbuf_new();
	store_iter *it;
	MDB_txn *txn;
	json_object *o, *v;

	CHECK(pb != NULL);
	CHECK(store_txn_begin(S, MDB_RDONLY, &txn) == 0);
	CHECK(store_iter_open(S, txn, &it) == 0);
	for (uint64_t k = 0; k < next_uid; k++) {
		uint64_t uid = q->reverse ? k : next_uid - 1 - k;
		struct task t;
		int rc = store_get(S, txn, uid, &t);
		CHECK(rc == 0 || rc == MDB_NOTFOUND);
		if (rc != 0)
			continue;
		t.uid = uid;
		if (!query_match(q, &t))
			continue;
		want_total++;
		if (q->from != TASK_NO_UID && (q->reverse ? uid < q->from : uid > q->from))
			continue;
		if (page < q->limit)
			match[nm++] = uid, page++;
		else if (want_next == TASK_NO_UID)
			want_next = uid;
	}
	int rc = render_task_page(pb, S, txn, it, q, &bad);
	CHECK(rc == 0);
	o = parse_json(pb->buf, (size_t)pb->bpos);
	CHECK(o != NULL);
	CHECK(json_object_object_get_ex(o, "results", &v) && json_object_is_type(v, json_type_array));
	CHECK(json_object_array_length(v) == nm);
	for (size_t i = 0; i < nm; i++) {
		json_object *t = json_object_array_get_idx(v, i), *u;
		CHECK(json_object_object_get_ex(t, "uid", &u));
		CHECK((uint64_t)json_object_get_int64(u) == match[i]);
	}
	CHECK(json_object_object_get_ex(o, "total", &v) &&
	    (uint64_t)json_object_get_int64(v) == want_total);
	CHECK(json_object_object_get_ex(o, "limit", &v) &&
	    (unsigned)json_object_get_int64(v) == q->limit);
	CHECK(json_object_object_get_ex(o, "from", &v));
	if (nm == 0)
		CHECK(json_object_is_type(v, json_type_null));
	else
		CHECK((uint64_t)json_object_get_int64(v) == match[0]);
	CHECK(json_object_object_get_ex(o, "next", &v));
	if (want_next == TASK_NO_UID)
		CHECK(json_object_is_type(v, json_type_null));
	else
		CHECK((uint64_t)json_object_get_int64(v) == want_next);
	json_object_put(o);
	store_iter_close(it);
	mdb_txn_abort(txn);
	printbuf_free(pb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct query q;	/* 50 KB: not on the stack */
	static const struct task_str allowed[] = { { "movies", 6 }, { "mov", 3 }, { "zzz", 3 } };
	struct query_error err;
	char *qs;
	unsigned flags;
	int rc;

	if (size < 1 || size > 80000)
		return 0;
	flags = data[0];
	qs = malloc(size);
	CHECK(qs != NULL);
	memcpy(qs, data + 1, size - 1);
	qs[size - 1] = '\0';

	/* The query string, as the responder gets it. */
	query_init(&q);
	rc = query_parse(qs, &q, &err);
	if (rc != 0) {
		check_refusal(rc, &err);
	} else {
		check_query(&q);
		/* The routes and keys that narrow a query, as api.c applies them. */
		if (flags & 1)
			query_scope(&q, flags & 2 ? "movies" : "books", flags & 2 ? 6 : 5);
		if (flags & 4)
			query_restrict(&q, allowed, flags & 8 ? 3 : 1);
		check_run(&q);
	}

	/* One parameter: NAME NUL VALUE, or VALUE for the parameter the flags pick. */
	const char *nul = memchr(data + 1, '\0', size - 1);
	const char *name = nul ? qs : names[(flags >> 4) % (sizeof(names) / sizeof(names[0]))];
	const char *value = nul ? nul + 1 : (const char *)data + 1;
	size_t vlen = nul ? (size_t)((const char *)data + size - value) : size - 1;
	if (vlen <= QUERY_TEXT_MAX) {
		query_init(&q);
		rc = query_set(&q, name, value, vlen, &err);
		if (rc != 0) {
			check_refusal(rc, &err);
		} else {
			check_query(&q);
			/* A repeat is refused. */
			rc = query_set(&q, name, value, vlen, &err);
			CHECK(rc == LMT_EINVAL && strcmp(err.code, "bad_request") == 0);
			check_refusal(rc, &err);
			if (flags & 1)
				check_run(&q);
		}
	}
	free(qs);
	return 0;
}
