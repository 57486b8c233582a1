/* The list queries of SPEC §2 against a brute-force model: a random store of 10,000 tasks
 * built through the library, random filter combinations given as query strings, totals,
 * every page in both orders, pages while tasks are added, the count-only plan and the
 * per-index scope.
 *
 * The model below (struct rt, model_match) is written from SPEC §2, not from query.c:
 * filters ANDed, `*` = any, afterX strictly later (a date-only value: from the next day's
 * 00:00 UTC on), beforeX strictly earlier (a date-only value: before that day's 00:00 UTC),
 * a date filter on a time that is not set never matches.
 *
 * LMTASKS_TEST_SEED=N replays a run; the seed is in every failure message, and each
 * randomized test prints it with its rounds (fewer under the sanitizers: rounds.h). */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <lmdb.h>

#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/render.h"
#include "lmtasks/store.h"
#include "lmtasks/task.h"
#include "rounds.h"
#include "tmpstore.h"

#define NTASKS 10000
#define SEC INT64_C(1000000)
#define HOUR (3600 * SEC)
#define DAY (86400 * SEC)
#define NONE UINT64_MAX
#define MAXREF (NTASKS + 2000)

TestSuite(query, .init = tmpstore_setup, .fini = tmpstore_teardown);

/* ---- a deterministic generator ---- */

static uint64_t seed, rng_state;

static void
rng_init(uint64_t salt)
{
	const char *e = getenv("LMTASKS_TEST_SEED");

	seed = e && *e ? strtoull(e, NULL, 10) : UINT64_C(20210810);
	rng_state = seed * UINT64_C(0x9E3779B97F4A7C15) + salt * UINT64_C(0xD1B54A32D192ED03) + 1;
}

static uint64_t
rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static unsigned
below(unsigned n)
{
	return n ? (unsigned)(rnd() % n) : 0;
}

static int
chance(unsigned percent)
{
	return below(100) < percent;
}

/* ---- calendar, written here so that the model owes nothing to timefmt.c ---- */

static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* us as RFC 3339 with an offset of off_min minutes (0: Z) and digits fraction digits
 * (0, 3, 6 or 9; fewer than 6 only when the value allows). */
static void
fmt_rfc3339(int64_t us, int off_min, int digits, int lower, char *out, size_t cap)
{
	int64_t local = us + (int64_t)off_min * 60 * SEC;
	int64_t day = floor_div(local, DAY), rest = local - day * DAY;
	int64_t secs = rest / SEC, frac = rest % SEC;
	int y, m, d;
	char fr[16] = "", tz[16];

	civil_from_days(day, &y, &m, &d);
	if (digits == 3)
		snprintf(fr, sizeof(fr), ".%03d", (int)(frac / 1000));
	else if (digits == 6)
		snprintf(fr, sizeof(fr), ".%06d", (int)frac);
	else if (digits == 9)
		snprintf(fr, sizeof(fr), ".%06d000", (int)frac);
	if (off_min == 0)
		snprintf(tz, sizeof(tz), "%c", lower ? 'z' : 'Z');
	else
		snprintf(tz, sizeof(tz), "%c%02d:%02d", off_min < 0 ? '-' : '+', abs(off_min) / 60,
		    abs(off_min) % 60);
	snprintf(out, cap, "%04d-%02d-%02d%c%02d:%02d:%02d%s%s", y, m, d, lower ? 't' : 'T',
	    (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), fr, tz);
}

static void
fmt_date(int64_t day, char *out, size_t cap)
{
	int y, m, d;

	civil_from_days(day, &y, &m, &d);
	snprintf(out, cap, "%04d-%02d-%02d", y, m, d);
}

/* ---- the model ---- */

static const char *const INDEXES[] = { "movies", "books", "songs", "user-data", "logs_2021", "A1",
	"nosuchIndex" };
#define NIDX 6		/* the ones tasks use; the 7th names no task */
static const char *const TYPES[] = { "documentAddition", "settingsUpdate", "indexCreation",
	"myCustomType", "reindexAll", "taskCancelation", "neverUsed" };
#define NTYPE 6
#define TYPE_CANCEL 5
static const char *const STATUSES[] = { "enqueued", "processing", "succeeded", "failed",
	"canceled" };

/* One stored task as the test knows it; uid is its position in ref. */
struct rt {
	int status;		/* enum task_status values, written out in STATUSES order */
	int index;		/* into INDEXES; -1: null (the store's own tasks) */
	int type;		/* into TYPES */
	uint64_t canceled_by;
	int64_t at[3];		/* enqueued, started, finished; 0: not set */
	int from_enqueued;	/* canceled before it was started */
};

static struct rt ref[MAXREF];
static size_t nref;
static uint64_t cancels[MAXREF];
static size_t ncancels;
static int64_t T0;
static store *S;

static int64_t
gen_time(int64_t base, int64_t span)
{
	int64_t t = base + (int64_t)(rnd() % (uint64_t)span);
	unsigned r = below(100);

	if (r < 10)
		t = floor_div(t, SEC) * SEC;
	else if (r < 13)
		t = floor_div(t, HOUR) * HOUR;
	else if (r < 16)
		t = floor_div(t, DAY) * DAY;	/* midnight exactly: the date-only edges */
	return t;
}

/* Fills ref[first .. first+n) with random tasks; cancelation tasks among them. */
static void
gen_tasks(size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		struct rt *r = &ref[i];
		memset(r, 0, sizeof(*r));
		r->canceled_by = NONE;
		if (below(50) == 0) {
			r->index = -1;
			r->type = TYPE_CANCEL;
			r->status = TASK_SUCCEEDED;
			r->at[0] = r->at[1] = r->at[2] = gen_time(T0, 4 * DAY);
			cancels[ncancels++] = i;
			continue;
		}
		r->index = (int)below(NIDX);
		r->type = (int)below(NTYPE - 1);
		r->at[0] = gen_time(T0, 4 * DAY);
		unsigned w = below(100);
		r->status = w < 15 ? TASK_ENQUEUED : w < 25 ? TASK_PROCESSING : w < 60 ?
		    TASK_SUCCEEDED : w < 80 ? TASK_FAILED : TASK_CANCELED;
		if (r->status == TASK_CANCELED)
			r->from_enqueued = chance(50);
		if (r->status != TASK_ENQUEUED && !r->from_enqueued)
			r->at[1] = gen_time(r->at[0], 8 * HOUR);
		if (r->status >= TASK_SUCCEEDED)
			r->at[2] = gen_time(r->at[1] ? r->at[1] : r->at[0], 4 * HOUR);
	}
	/* A canceled task points at a real cancelation task, a later one when there is one. */
	for (size_t i = first; i < first + n; i++) {
		struct rt *r = &ref[i];
		if (r->status != TASK_CANCELED)
			continue;
		if (ncancels == 0) {
			r->status = TASK_FAILED;
			continue;
		}
		uint64_t pick = cancels[below((unsigned)ncancels)];
		for (unsigned tries = 0; pick < i && tries < 8; tries++)
			pick = cancels[below((unsigned)ncancels)];
		r->canceled_by = pick;
	}
	nref = first + n;
}

static struct task_str
s_of(const char *s)
{
	return (struct task_str){ s, s ? strlen(s) : 0 };
}

struct range {
	size_t a, b;
	int direct;	/* store final states at once, no transitions */
};

/* Phase 1: every task as it was enqueued (cancelation tasks as they are recorded). */
static int
add_range(store *s, MDB_txn *txn, void *ctx)
{
	struct range *rg = ctx;
	char det[64];

	for (size_t i = rg->a; i < rg->b; i++) {
		const struct rt *r = &ref[i];
		struct task t;
		memset(&t, 0, sizeof(t));
		int whole = r->type == TYPE_CANCEL || rg->direct;
		t.status = whole ? (enum task_status)r->status : TASK_ENQUEUED;
		t.enqueued_at = r->at[0];
		t.started_at = whole ? r->at[1] : 0;
		t.finished_at = whole ? r->at[2] : 0;
		t.canceled_by = whole ? r->canceled_by : TASK_NO_UID;
		t.index_uid = r->index < 0 ? (struct task_str){ NULL, 0 } : s_of(INDEXES[r->index]);
		t.type = s_of(TYPES[r->type]);
		snprintf(det, sizeof(det), "{\"n\":%zu}", i);
		t.details = i % 3 ? s_of("{}") : s_of(det);
		if (whole && r->status == TASK_FAILED) {
			t.error_code = s_of("internal");
			t.error_message = s_of("it broke");
			t.error_type = TASK_ERR_INTERNAL;
		}
		int rc = store_add(s, txn, &t);
		if (rc)
			return rc;
		if (t.uid != i)
			return LMT_ECORRUPT;
	}
	return 0;
}

/* Phase 2: enqueued -> processing -> terminal, each a legal transition through store_replace. */
static int
move_range(store *s, MDB_txn *txn, void *ctx)
{
	struct range *rg = ctx;
	int rc;

	for (size_t i = rg->a; i < rg->b; i++) {
		const struct rt *r = &ref[i];
		struct task old, next;
		if (r->type == TYPE_CANCEL || r->status == TASK_ENQUEUED)
			continue;
		if (!r->from_enqueued) {
			if ((rc = store_get(s, txn, i, &old)) != 0)
				return rc;
			if (!task_transition_allowed(old.status, TASK_PROCESSING))
				return LMT_ETRANSITION;
			next = old;
			next.status = TASK_PROCESSING;
			next.started_at = r->at[1];
			if ((rc = store_replace(s, txn, &old, &next)) != 0)
				return rc;
		}
		if (r->status == TASK_PROCESSING)
			continue;
		if ((rc = store_get(s, txn, i, &old)) != 0)
			return rc;
		if (!task_transition_allowed(old.status, (enum task_status)r->status))
			return LMT_ETRANSITION;
		next = old;
		next.status = (enum task_status)r->status;
		next.finished_at = r->at[2];
		if (r->status == TASK_CANCELED)
			next.canceled_by = r->canceled_by;
		if (r->status == TASK_FAILED) {
			next.error_code = s_of("internal");
			next.error_message = s_of("it broke");
			next.error_type = TASK_ERR_INTERNAL;
		}
		if ((rc = store_replace(s, txn, &old, &next)) != 0)
			return rc;
	}
	return 0;
}

/* A fresh store of n random tasks, in S and ref. */
static void
build(size_t n, uint64_t salt)
{
	int rc;

	rng_init(salt);
	T0 = days_from_civil(2021, 8, 10) * DAY;
	nref = ncancels = 0;
	gen_tasks(0, n);
	rc = store_open(tmpstore_path("db"), STORE_CREATE, 0600, &S);
	cr_assert_eq(rc, 0, "store_open: %s", lmt_strerror(rc));
	/* A throw-away store: no fsync per commit. */
	mdb_env_set_flags(store_env(S), MDB_NOSYNC, 1);
	for (size_t a = 0; a < n; a += 2500) {
		struct range rg = { a, a + 2500 < n ? a + 2500 : n, 0 };
		rc = store_write(S, add_range, &rg);
		cr_assert_eq(rc, 0, "adding tasks %zu..%zu: %s", rg.a, rg.b, lmt_strerror(rc));
	}
	for (size_t a = 0; a < n; a += 2500) {
		struct range rg = { a, a + 2500 < n ? a + 2500 : n, 0 };
		rc = store_write(S, move_range, &rg);
		cr_assert_eq(rc, 0, "moving tasks %zu..%zu: %s", rg.a, rg.b, lmt_strerror(rc));
	}
}

/* Appends tasks to the store with their final state; ref grows by n. */
static void
append_tasks(size_t n, int64_t enq_base)
{
	size_t first = nref;
	int rc;

	cr_assert(first + n <= MAXREF);
	gen_tasks(first, n);
	for (size_t i = first; i < first + n; i++) {
		/* Newer than everything before: enqueued after the rest. */
		ref[i].at[0] = enq_base + (int64_t)i * SEC;
		if (ref[i].at[1])
			ref[i].at[1] = ref[i].at[0] + SEC;
		if (ref[i].at[2])
			ref[i].at[2] = ref[i].at[0] + 2 * SEC;
		if (ref[i].type == TYPE_CANCEL)
			ref[i].at[1] = ref[i].at[2] = ref[i].at[0];
	}
	struct range rg = { first, first + n, 1 };
	rc = store_write(S, add_range, &rg);
	cr_assert_eq(rc, 0, "appending tasks: %s", lmt_strerror(rc));
}

static void
teardown_store(void)
{
	store_close(S);
	S = NULL;
}

/* ---- random filters: a query string and what it means ---- */

static int in_int(const int *v, size_t n, int x);

struct dfilt {
	int on;		/* given and not `*` */
	int date_only;
	int64_t v;	/* µs: the instant, or the day's 00:00 UTC */
};

struct spec {
	int has_uids, has_statuses, has_types, has_indexes, has_canceled;
	uint64_t uids[64];
	size_t nuids;
	unsigned statuses;
	int types[16], indexes[16];
	size_t ntypes, nindexes;
	uint64_t canceled[16];
	size_t ncanceled;
	struct dfilt after[3], before[3];
	char qs[8192];		/* the filter parameters, percent-encoded, '&'-joined */
};

static const char *const AFTER[3] = { "afterEnqueuedAt", "afterStartedAt", "afterFinishedAt" };
static const char *const BEFORE[3] = { "beforeEnqueuedAt", "beforeStartedAt", "beforeFinishedAt" };

/* Percent-encodes some characters at random, '+' always (in a query string it is a space). */
static void
encode(const char *v, char *out, size_t cap)
{
	size_t n = 0;

	for (; *v && n + 4 < cap; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '+' || chance(5))
			n += (size_t)snprintf(out + n, cap - n, chance(50) ? "%%%02X" : "%%%02x", c);
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
}

struct parts {
	char p[16][4096];
	size_t n;
};

static void
part_add(struct parts *ps, const char *name, const char *raw)
{
	char enc[4096 - 64];

	cr_assert(ps->n < 16);
	encode(raw, enc, sizeof(enc));
	snprintf(ps->p[ps->n++], sizeof(ps->p[0]), "%s=%s", name, enc);
}

/* A comma list of n items produced by item(i); maybe with `*` among them (then *any = 1). */
static void
list_text(char *out, size_t cap, size_t n, int star, void (*item)(size_t i, char *buf, size_t cap,
    void *ctx), void *ctx)
{
	size_t len = 0, at = star ? below((unsigned)n + 1) : SIZE_MAX;
	char buf[128];

	out[0] = '\0';
	for (size_t i = 0; i <= n; i++) {
		if (i == at)
			len += (size_t)snprintf(out + len, cap - len, "%s*", len ? "," : "");
		if (i == n)
			break;
		item(i, buf, sizeof(buf), ctx);
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", buf);
	}
}

static void
item_u64(size_t i, char *buf, size_t cap, void *ctx)
{
	const uint64_t *v = ctx;

	/* Now and then with leading zeros: still the same number. */
	snprintf(buf, cap, chance(3) ? "00%" PRIu64 : "%" PRIu64, v[i]);
}

static void
item_status(size_t i, char *buf, size_t cap, void *ctx)
{
	snprintf(buf, cap, "%s", STATUSES[((const int *)ctx)[i]]);
}

static void
item_index(size_t i, char *buf, size_t cap, void *ctx)
{
	snprintf(buf, cap, "%s", INDEXES[((const int *)ctx)[i]]);
}

static void
item_type(size_t i, char *buf, size_t cap, void *ctx)
{
	snprintf(buf, cap, "%s", TYPES[((const int *)ctx)[i]]);
}

/* A random value for a date filter on time w; returns the text, fills f. */
static void
gen_date(int w, struct dfilt *f, char *out, size_t cap)
{
	unsigned r = below(100);
	int64_t v;

	f->on = 1;
	f->date_only = 0;
	if (r < 5) {
		f->on = 0;
		snprintf(out, cap, "*");
		return;
	}
	if (r < 30) {
		int64_t day = T0 / DAY - 1 + below(7);
		f->date_only = 1;
		f->v = day * DAY;
		fmt_date(day, out, cap);
		return;
	}
	if (r < 80) {
		/* A time some task has, exactly or a microsecond off: the strictness edges. */
		v = 0;
		for (int tries = 0; tries < 20 && v == 0; tries++)
			v = ref[below((unsigned)nref)].at[w];
		if (v == 0)
			v = T0;
		if (r >= 65)
			v += chance(50) ? 1 : -1;
	} else {
		v = T0 - DAY + (int64_t)(rnd() % (uint64_t)(6 * DAY));
	}
	f->v = v;
	unsigned form = below(100);
	int digits = 6, off = 0, lower = chance(3);
	if (form < 10 && v % SEC == 0)
		digits = 0;
	else if (form < 20 && v % 1000 == 0)
		digits = 3;
	else if (form < 30)
		digits = 9;
	if (chance(15))
		off = ((int)below(105) - 48) * 15;	/* -12:00 ... +14:00 */
	fmt_rfc3339(v, off, digits, lower, out, cap);
}

/*
 * n distinct values below m.  The same index or type twice in one list is covered by
 * duplicate_values_in_lists on its own, so that the random tests here look past it.
 */
static void
pick_distinct(int *v, size_t n, unsigned m)
{
	for (size_t i = 0; i < n; i++) {
		do
			v[i] = (int)below(m);
		while (in_int(v, i, v[i]));
	}
}

static void
gen_spec(struct spec *sp, int with_dates)
{
	struct parts ps = { .n = 0 };
	char text[4096];

	memset(sp, 0, sizeof(*sp));
	if (chance(30)) {
		size_t n = 1 + below(14);
		for (size_t i = 0; i < n; i++) {
			unsigned r = below(100);
			sp->uids[i] = r < 70 ? below((unsigned)nref) : r < 90 ?
			    nref + below(40) : i ? sp->uids[i - 1] : 0;
		}
		sp->nuids = n;
		int star = chance(8);
		sp->has_uids = !star;
		list_text(text, sizeof(text), n, star, item_u64, sp->uids);
		part_add(&ps, "uids", text);
	}
	if (chance(35)) {
		int st[8];
		size_t n = 1 + below(4);
		for (size_t i = 0; i < n; i++) {
			st[i] = (int)below(5);
			sp->statuses |= 1u << st[i];
		}
		int star = chance(8);
		sp->has_statuses = !star;
		list_text(text, sizeof(text), n, star, item_status, st);
		part_add(&ps, "statuses", text);
	}
	if (chance(30)) {
		sp->ntypes = 1 + below(3);
		pick_distinct(sp->types, sp->ntypes, NTYPE + 1);
		int star = chance(8);
		sp->has_types = !star;
		list_text(text, sizeof(text), sp->ntypes, star, item_type, sp->types);
		part_add(&ps, "types", text);
	}
	if (chance(35)) {
		sp->nindexes = 1 + below(3);
		pick_distinct(sp->indexes, sp->nindexes, NIDX + 1);
		int star = chance(8);
		sp->has_indexes = !star;
		list_text(text, sizeof(text), sp->nindexes, star, item_index, sp->indexes);
		part_add(&ps, "indexUids", text);
	}
	if (chance(15) && ncancels) {
		sp->ncanceled = 1 + below(4);
		for (size_t i = 0; i < sp->ncanceled; i++)
			sp->canceled[i] = chance(75) ? cancels[below((unsigned)ncancels)] :
			    below((unsigned)nref + 10);
		int star = chance(8);
		sp->has_canceled = !star;
		list_text(text, sizeof(text), sp->ncanceled, star, item_u64, sp->canceled);
		part_add(&ps, "canceledBy", text);
	}
	for (int w = 0; with_dates && w < 3; w++) {
		if (chance(15)) {
			gen_date(w, &sp->after[w], text, sizeof(text));
			part_add(&ps, AFTER[w], text);
		}
		if (chance(15)) {
			gen_date(w, &sp->before[w], text, sizeof(text));
			part_add(&ps, BEFORE[w], text);
		}
	}
	/* The parameters in a random order. */
	for (size_t i = ps.n; i > 1; i--) {
		size_t j = below((unsigned)i);
		char tmp[4096];
		memcpy(tmp, ps.p[i - 1], sizeof(tmp));
		memcpy(ps.p[i - 1], ps.p[j], sizeof(tmp));
		memcpy(ps.p[j], tmp, sizeof(tmp));
	}
	size_t len = 0;
	sp->qs[0] = '\0';
	for (size_t i = 0; i < ps.n; i++)
		len += (size_t)snprintf(sp->qs + len, sizeof(sp->qs) - len, "%s%s", i ? "&" : "", ps.p[i]);
}

static int
in_u64(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static int
in_int(const int *v, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

/* SPEC §2, independently of query_match(). */
static int
model_match(const struct spec *sp, uint64_t uid)
{
	const struct rt *r = &ref[uid];

	if (sp->has_uids && !in_u64(sp->uids, sp->nuids, uid))
		return 0;
	if (sp->has_statuses && !(sp->statuses & (1u << r->status)))
		return 0;
	if (sp->has_types && !in_int(sp->types, sp->ntypes, r->type))
		return 0;
	if (sp->has_indexes && (r->index < 0 || !in_int(sp->indexes, sp->nindexes, r->index)))
		return 0;
	if (sp->has_canceled && (r->status != TASK_CANCELED ||
	    !in_u64(sp->canceled, sp->ncanceled, r->canceled_by)))
		return 0;
	for (int w = 0; w < 3; w++) {
		const struct dfilt *a = &sp->after[w], *b = &sp->before[w];
		int64_t t = r->at[w];
		if (!a->on && !b->on)
			continue;
		if (t == 0)
			return 0;
		if (a->on && !(a->date_only ? t >= a->v + DAY : t > a->v))
			return 0;
		if (b->on && !(t < b->v))
			return 0;
	}
	return 1;
}

/* The matching uids, ascending; scope -1: none, else also that index. */
static size_t
model_list(const struct spec *sp, int scope, uint64_t *out)
{
	size_t n = 0;

	for (uint64_t u = 0; u < nref; u++) {
		if (model_match(sp, u) && (scope < 0 || ref[u].index == scope))
			out[n++] = u;
	}
	return n;
}

/* ---- the library side ---- */

static struct query Q;

static void
parse_ok(const char *qs, struct query *q)
{
	struct query_error err;
	int rc;

	query_init(q);
	rc = query_parse(qs, q, &err);
	cr_assert_eq(rc, 0, "seed %" PRIu64 ": query_parse(%.300s) failed: %d %s: %s", seed, qs, rc,
	    err.code, err.message);
}

static uint64_t
lib_total(const struct query *q)
{
	MDB_txn *txn;
	store_iter *it;
	uint64_t total = 0, bad = 0;
	int rc = store_txn_begin(S, MDB_RDONLY, &txn);

	cr_assert_eq(rc, 0, "txn: %s", lmt_strerror(rc));
	rc = store_iter_open(S, txn, &it);
	cr_assert_eq(rc, 0);
	rc = query_total(S, txn, it, q, &total, &bad);
	cr_assert_eq(rc, 0, "query_total: %s (bad %" PRIu64 ")", lmt_strerror(rc), bad);
	store_iter_close(it);
	mdb_txn_abort(txn);
	return total;
}

static int
count_fn(void *ctx, const struct task *t)
{
	(void)t;
	++*(uint64_t *)ctx;
	return 0;
}

static uint64_t
lib_walk_count(const struct query *q)
{
	MDB_txn *txn;
	store_iter *it;
	uint64_t n = 0, bad = 0;
	int rc = store_txn_begin(S, MDB_RDONLY, &txn);

	cr_assert_eq(rc, 0);
	cr_assert_eq(store_iter_open(S, txn, &it), 0);
	rc = query_walk(S, txn, it, q, count_fn, &n, &bad);
	cr_assert_eq(rc, 0, "query_walk: %s", lmt_strerror(rc));
	store_iter_close(it);
	mdb_txn_abort(txn);
	return n;
}

/* One page: the envelope, parsed. */
struct page {
	json_object *root;
	uint64_t uids[QUERY_LIMIT_MAX];
	size_t n;
	uint64_t total, limit, from, next;	/* from, next: NONE for null */
};

static uint64_t
opt_u64(json_object *o, const char *key, const char *qs)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "seed %" PRIu64 ": no `%s` in the "
	    "envelope of ?%.300s", seed, key, qs);
	if (v == NULL || json_object_is_type(v, json_type_null))
		return NONE;
	cr_assert(json_object_is_type(v, json_type_int), "`%s` is not a number", key);
	return (uint64_t)json_object_get_int64(v);
}

static void
run_page(const struct query *q, const char *qs, struct page *pg)
{
	MDB_txn *txn;
	store_iter *it;
	uint64_t bad = 0;
	struct printbuf *pb = printbuf_new();
	json_object *res;
	int rc = store_txn_begin(S, MDB_RDONLY, &txn);

	cr_assert_eq(rc, 0);
	cr_assert_eq(store_iter_open(S, txn, &it), 0);
	rc = render_task_page(pb, S, txn, it, q, &bad);
	cr_assert_eq(rc, 0, "render_task_page(?%.300s): %s", qs, lmt_strerror(rc));
	store_iter_close(it);
	mdb_txn_abort(txn);
	pg->root = json_tokener_parse(pb->buf);
	cr_assert_not_null(pg->root, "seed %" PRIu64 ": the envelope of ?%.300s is not JSON: %.300s",
	    seed, qs, pb->buf);
	printbuf_free(pb);
	cr_assert(json_object_object_get_ex(pg->root, "results", &res) &&
	    json_object_is_type(res, json_type_array));
	pg->n = json_object_array_length(res);
	cr_assert_leq(pg->n, QUERY_LIMIT_MAX);
	for (size_t i = 0; i < pg->n; i++) {
		json_object *t = json_object_array_get_idx(res, i), *v;
		cr_assert(json_object_object_get_ex(t, "uid", &v));
		uint64_t u = (uint64_t)json_object_get_int64(v);
		pg->uids[i] = u;
		cr_assert_lt(u, nref, "seed %" PRIu64 ": ?%.300s gave uid %" PRIu64 ", never stored",
		    seed, qs, u);
		/* The task is the one the test stored. */
		cr_assert(json_object_object_get_ex(t, "status", &v));
		cr_assert_str_eq(json_object_get_string(v), STATUSES[ref[u].status],
		    "task %" PRIu64 "'s status", u);
		cr_assert(json_object_object_get_ex(t, "type", &v));
		cr_assert_str_eq(json_object_get_string(v), TYPES[ref[u].type]);
		cr_assert(json_object_object_get_ex(t, "indexUid", &v));
		if (ref[u].index < 0)
			cr_assert(v == NULL || json_object_is_type(v, json_type_null));
		else
			cr_assert_str_eq(json_object_get_string(v), INDEXES[ref[u].index]);
	}
	pg->total = opt_u64(pg->root, "total", qs);
	pg->limit = opt_u64(pg->root, "limit", qs);
	pg->from = opt_u64(pg->root, "from", qs);
	pg->next = opt_u64(pg->root, "next", qs);
	json_object_put(pg->root);
}

static struct page PG;

/*
 * Walks every page of filters (a query string, maybe empty) in one order from start
 * (NONE: the newest or oldest), each page parsed from its own query string, and checks
 * it against exp (the matches in the walk's order, from start on) and total.
 */
static void
walk_pages(const char *filters, int scope, int reverse, unsigned limit, uint64_t start,
    const uint64_t *exp, size_t nexp, uint64_t total)
{
	char qs[9000];
	uint64_t from = start;
	size_t pos = 0, pages = 0;

	for (;;) {
		size_t len = 0;
		/* limit, reverse and from in different places and spellings. */
		if (chance(50))
			len += (size_t)snprintf(qs + len, sizeof(qs) - len, "limit=%u&", limit);
		len += (size_t)snprintf(qs + len, sizeof(qs) - len, "%s", filters);
		if (reverse || chance(30))
			len += (size_t)snprintf(qs + len, sizeof(qs) - len, "&reverse=%s",
			    reverse ? "true" : "false");
		if (from != NONE)
			len += (size_t)snprintf(qs + len, sizeof(qs) - len, "&from=%" PRIu64, from);
		if (!strstr(qs, "limit="))
			len += (size_t)snprintf(qs + len, sizeof(qs) - len, "&limit=%u", limit);
		const char *q = qs[0] == '&' ? qs + 1 : qs;
		parse_ok(q, &Q);
		if (scope >= 0)
			query_scope(&Q, INDEXES[scope], strlen(INDEXES[scope]));
		run_page(&Q, q, &PG);

		size_t want = nexp - pos < limit ? nexp - pos : limit;
		cr_assert_eq(PG.total, total, "seed %" PRIu64 ": ?%.400s (scope %d): total %" PRIu64
		    ", expected %" PRIu64, seed, q, scope, PG.total, total);
		cr_assert_eq(PG.limit, limit);
		cr_assert_eq(PG.n, want, "seed %" PRIu64 ": ?%.400s (scope %d): %zu results on page "
		    "%zu, expected %zu", seed, q, scope, PG.n, pages, want);
		for (size_t i = 0; i < want; i++)
			cr_assert_eq(PG.uids[i], exp[pos + i], "seed %" PRIu64 ": ?%.400s (scope %d): "
			    "result %zu is uid %" PRIu64 ", expected %" PRIu64, seed, q, scope, i,
			    PG.uids[i], exp[pos + i]);
		cr_assert_eq(PG.from, want ? exp[pos] : NONE, "seed %" PRIu64 ": ?%.400s: from %"
		    PRIu64, seed, q, PG.from);
		uint64_t next = pos + want < nexp ? exp[pos + want] : NONE;
		cr_assert_eq(PG.next, next, "seed %" PRIu64 ": ?%.400s (scope %d): next %" PRIu64
		    ", expected %" PRIu64, seed, q, scope, PG.next, next);
		pos += want;
		pages++;
		if (PG.next == NONE)
			break;
		from = PG.next;
		cr_assert_lt(pages, 20000);
	}
	cr_assert_eq(pos, nexp);
}

/* A limit that keeps the walk to a few dozen pages at most. */
static unsigned
pick_limit(size_t n)
{
	unsigned l = 1 + below(7);
	size_t pages = 4 + below(10);

	if (n / l > pages)
		l = (unsigned)((n + pages - 1) / pages);
	return l > QUERY_LIMIT_MAX ? QUERY_LIMIT_MAX : l;
}

static uint64_t M[MAXREF], R[MAXREF];

/* Totals, then every page both ways, then a walk from a random uid; returns the matches. */
static size_t
check_spec(const struct spec *sp, int scope)
{
	size_t n = model_list(sp, scope, M);

	parse_ok(sp->qs, &Q);
	if (scope >= 0)
		query_scope(&Q, INDEXES[scope], strlen(INDEXES[scope]));
	uint64_t got = lib_total(&Q);
	cr_assert_eq(got, n, "seed %" PRIu64 ": query_total(?%.500s) (scope %d) = %" PRIu64
	    ", expected %zu", seed, sp->qs, scope, got, n);

	for (size_t i = 0; i < n; i++)
		R[i] = M[n - 1 - i];
	walk_pages(sp->qs, scope, 0, pick_limit(n), NONE, R, n, n);
	walk_pages(sp->qs, scope, 1, pick_limit(n), NONE, M, n, n);

	/* From a random uid, which need not match. */
	uint64_t start = below((unsigned)nref + 5);
	size_t k = 0;
	int rev = chance(50);
	if (rev) {
		for (size_t i = 0; i < n; i++)
			if (M[i] >= start)
				R[k++] = M[i];
	} else {
		for (size_t i = n; i-- > 0;)
			if (M[i] <= start)
				R[k++] = M[i];
	}
	walk_pages(sp->qs, scope, rev, pick_limit(k), start, R, k, n);
	return n;
}

static struct spec SP;

Test(query, random_filters_totals_and_pages, .timeout = 600)
{
	size_t matched = 0, empty = 0;
	unsigned rounds = test_rounds(320);

	build(NTASKS, 1);
	for (unsigned i = 0; i < rounds; i++) {
		gen_spec(&SP, 1);
		matched += check_spec(&SP, -1) > 0;
	}
	empty = rounds - matched;
	fprintf(stderr, "query/random_filters_totals_and_pages: seed %" PRIu64 ", %u rounds, "
	    "%zu matched something, %zu nothing\n", seed, rounds, matched, empty);
	/* The generator must give both kinds, or the test proves little. */
	cr_expect_gt(matched, test_share(100, rounds, 320), "seed %" PRIu64 ": only %zu of %u "
	    "queries matched anything", seed, matched, rounds);
	cr_expect_gt(empty, test_share(10, rounds, 320), "seed %" PRIu64 ": only %zu of %u "
	    "queries matched nothing", seed, empty, rounds);
	teardown_store();
}

Test(query, scope_ands_with_index_uids, .timeout = 600)
{
	unsigned rounds = test_rounds(120);

	build(NTASKS, 2);
	fprintf(stderr, "query/scope_ands_with_index_uids: seed %" PRIu64 ", %u rounds\n", seed,
	    rounds);
	for (unsigned i = 0; i < rounds; i++) {
		gen_spec(&SP, chance(50));
		check_spec(&SP, (int)below(NIDX));
	}
	/* Scoped to an index the filter does not list: nothing. */
	parse_ok("indexUids=movies,books", &Q);
	query_scope(&Q, "songs", 5);
	cr_assert_eq(lib_total(&Q), 0);
	parse_ok("indexUids=movies,books", &Q);
	query_scope(&Q, "books", 5);
	memset(&SP, 0, sizeof(SP));
	SP.has_indexes = 1;
	SP.indexes[0] = 1;
	SP.nindexes = 1;
	cr_assert_eq(lib_total(&Q), model_list(&SP, -1, M));
	/* `*` in the list: the scope alone. */
	parse_ok("indexUids=movies,*", &Q);
	query_scope(&Q, "songs", 5);
	SP.indexes[0] = 2;
	cr_assert_eq(lib_total(&Q), model_list(&SP, -1, M));
	teardown_store();
}

/* Only statuses, indexUids and types: totals come from the maintained counts. */
Test(query, count_plan_totals, .timeout = 600)
{
	build(NTASKS, 3);
	/* Every single status x index x type, and none of each. */
	for (int st = -1; st < 5; st++) {
		for (int ix = -1; ix <= NIDX; ix++) {
			for (int ty = -1; ty <= NTYPE; ty++) {
				char qs[256];
				size_t len = 0;
				memset(&SP, 0, sizeof(SP));
				if (st >= 0) {
					SP.has_statuses = 1;
					SP.statuses = 1u << st;
					len += (size_t)snprintf(qs + len, sizeof(qs) - len, "statuses=%s&",
					    STATUSES[st]);
				}
				if (ix >= 0) {
					SP.has_indexes = 1;
					SP.indexes[0] = ix;
					SP.nindexes = 1;
					len += (size_t)snprintf(qs + len, sizeof(qs) - len, "indexUids=%s&",
					    INDEXES[ix]);
				}
				if (ty >= 0) {
					SP.has_types = 1;
					SP.types[0] = ty;
					SP.ntypes = 1;
					len += (size_t)snprintf(qs + len, sizeof(qs) - len, "types=%s&",
					    TYPES[ty]);
				}
				qs[len ? len - 1 : 0] = '\0';
				parse_ok(qs, &Q);
				size_t want = model_list(&SP, -1, M);
				cr_assert_eq(lib_total(&Q), want, "?%s: total", qs);
				cr_assert_eq(lib_walk_count(&Q), want, "?%s: walked", qs);
			}
		}
	}
	/* Random sets of them, duplicates and `*` included; pages too. */
	unsigned rounds = test_rounds(200);
	fprintf(stderr, "query/count_plan_totals: seed %" PRIu64 ", %u rounds\n", seed, rounds);
	for (unsigned i = 0; i < rounds; i++) {
		struct spec *sp = &SP;
		do
			gen_spec(sp, 0);
		while (sp->has_uids || sp->has_canceled || strstr(sp->qs, "uids=") ||
		    strstr(sp->qs, "canceledBy="));
		size_t want = model_list(sp, -1, M);
		parse_ok(sp->qs, &Q);
		cr_assert_eq(lib_total(&Q), want, "seed %" PRIu64 ": ?%s: total", seed, sp->qs);
		cr_assert_eq(lib_walk_count(&Q), want, "seed %" PRIu64 ": ?%s: walked", seed, sp->qs);
		if (i % 4 == 0)
			check_spec(sp, -1);
	}
	/* Everything, and the whole store's count. */
	parse_ok("statuses=enqueued,processing,succeeded,failed,canceled", &Q);
	cr_assert_eq(lib_total(&Q), nref);
	parse_ok(NULL, &Q);
	cr_assert_eq(lib_total(&Q), nref);
	teardown_store();
}

/* The same value twice in a list is the same filter as once: totals and pages. */
Test(query, duplicate_values_in_lists, .timeout = 300)
{
	static const char *const qs[] = {
		"indexUids=movies,movies",
		"indexUids=movies,movies&afterEnqueuedAt=2021-08-09",
		"indexUids=movies,books,movies&beforeFinishedAt=2021-08-20",
		"types=settingsUpdate,settingsUpdate",
		"types=settingsUpdate,settingsUpdate&afterEnqueuedAt=2021-08-09",
		"statuses=failed,failed,succeeded&afterStartedAt=2021-08-09",
		"uids=5,5,7,7,7&indexUids=movies,movies",
		"canceledBy=CANCEL,CANCEL",
	};

	build(NTASKS, 4);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		struct spec *sp = &SP;
		memset(sp, 0, sizeof(*sp));
		char text[256];
		snprintf(text, sizeof(text), "%s", qs[i]);
		char *c = strstr(text, "CANCEL");
		if (c) {
			snprintf(text, sizeof(text), "canceledBy=%" PRIu64 ",%" PRIu64, cancels[0],
			    cancels[0]);
			sp->has_canceled = 1;
			sp->canceled[0] = cancels[0];
			sp->ncanceled = 1;
		}
		if (strstr(text, "indexUids=movies")) {
			sp->has_indexes = 1;
			sp->indexes[sp->nindexes++] = 0;
			if (strstr(text, "books"))
				sp->indexes[sp->nindexes++] = 1;
		}
		if (strstr(text, "types=settingsUpdate")) {
			sp->has_types = 1;
			sp->types[sp->ntypes++] = 1;
		}
		if (strstr(text, "statuses=")) {
			sp->has_statuses = 1;
			sp->statuses = 1u << TASK_FAILED | 1u << TASK_SUCCEEDED;
		}
		if (strstr(text, "uids=5")) {
			sp->has_uids = 1;
			sp->uids[0] = 5;
			sp->uids[1] = 7;
			sp->nuids = 2;
		}
		int64_t d9 = days_from_civil(2021, 8, 9) * DAY, d20 = days_from_civil(2021, 8, 20) * DAY;
		if (strstr(text, "afterEnqueuedAt"))
			sp->after[0] = (struct dfilt){ 1, 1, d9 };
		if (strstr(text, "afterStartedAt"))
			sp->after[1] = (struct dfilt){ 1, 1, d9 };
		if (strstr(text, "beforeFinishedAt"))
			sp->before[2] = (struct dfilt){ 1, 1, d20 };
		snprintf(sp->qs, sizeof(sp->qs), "%s", text);
		size_t want = model_list(sp, -1, M);
		parse_ok(sp->qs, &Q);
		cr_expect_eq(lib_total(&Q), want, "?%s: total %" PRIu64 ", expected %zu", sp->qs,
		    lib_total(&Q), want);
		cr_expect_eq(lib_walk_count(&Q), want, "?%s: query_walk gave %" PRIu64 " tasks, "
		    "expected %zu (each matching task once)", sp->qs, lib_walk_count(&Q), want);
		/* The first page: each task once, newest first. */
		char qs2[sizeof(sp->qs) + 16];
		snprintf(qs2, sizeof(qs2), "%s&limit=50", sp->qs);
		parse_ok(qs2, &Q);
		run_page(&Q, qs2, &PG);
		size_t w = want < 50 ? want : 50;
		cr_expect_eq(PG.n, w, "?%s: %zu results, expected %zu", qs2, PG.n, w);
		for (size_t k = 0; k < PG.n && k < w; k++) {
			if (PG.uids[k] != M[want - 1 - k]) {
				cr_expect_fail("?%s: result %zu is uid %" PRIu64 ", expected %" PRIu64
				    " (results %" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "...)", qs2, k,
				    PG.uids[k], M[want - 1 - k], PG.uids[0], PG.uids[1], PG.uids[2],
				    PG.uids[3]);
				break;
			}
		}
	}
	teardown_store();
}

/* The edges of the date filters, on tasks with known times. */
Test(query, date_edges)
{
	static const int64_t H = HOUR;
	int64_t d10, d11;
	int rc;

	rng_init(5);
	T0 = days_from_civil(2021, 8, 10) * DAY;
	d10 = T0;
	d11 = T0 + DAY;
	nref = ncancels = 0;
	/* 0: midnight of the 11th exactly; 1: a µs before; 2: a µs after; 3: noon on the 10th;
	 * 4: enqueued only (no start, no finish); 5: midnight of the 10th. */
	const int64_t enq[] = { d11, d11 - 1, d11 + 1, d10 + 12 * H, d10 + 13 * H, d10 };
	for (size_t i = 0; i < 6; i++) {
		memset(&ref[i], 0, sizeof(ref[i]));
		ref[i].index = 0;
		ref[i].type = 0;
		ref[i].canceled_by = NONE;
		ref[i].status = i == 4 ? TASK_ENQUEUED : TASK_SUCCEEDED;
		ref[i].at[0] = enq[i];
		if (i != 4)
			ref[i].at[1] = ref[i].at[2] = enq[i];
	}
	nref = 6;
	rc = store_open(tmpstore_path("db"), STORE_CREATE, 0600, &S);
	cr_assert_eq(rc, 0);
	struct range rg = { 0, 6, 1 };
	cr_assert_eq(store_write(S, add_range, &rg), 0);

	static const struct {
		const char *qs;
		const char *uids;	/* the expected matches, ascending */
	} cases[] = {
		/* after a date: from the next day's 00:00 on */
		{ "afterEnqueuedAt=2021-08-10", "0,2" },
		{ "afterEnqueuedAt=2021-08-09", "0,1,2,3,4,5" },
		{ "afterEnqueuedAt=2021-08-11", "" },
		/* before a date: before that day's 00:00 */
		{ "beforeEnqueuedAt=2021-08-11", "1,3,4,5" },
		{ "beforeEnqueuedAt=2021-08-10", "" },
		{ "beforeEnqueuedAt=2021-08-12", "0,1,2,3,4,5" },
		/* an instant: strictly */
		{ "afterEnqueuedAt=2021-08-11T00:00:00Z", "2" },
		{ "afterEnqueuedAt=2021-08-11T00:00:00.000000Z", "2" },
		{ "afterEnqueuedAt=2021-08-10T23:59:59.999999Z", "0,2" },
		{ "beforeEnqueuedAt=2021-08-11T00:00:00Z", "1,3,4,5" },
		{ "beforeEnqueuedAt=2021-08-11T00:00:00.000001Z", "0,1,3,4,5" },
		{ "afterEnqueuedAt=2021-08-10T00:00:00Z&beforeEnqueuedAt=2021-08-11T00:00:00Z", "1,3,4" },
		/* offsets: 02:00+02:00 is midnight UTC */
		{ "afterEnqueuedAt=2021-08-11T02:00:00%2B02:00", "2" },
		{ "beforeEnqueuedAt=2021-08-10T19:00:00-05:00", "1,3,4,5" },
		{ "afterEnqueuedAt=2021-08-10T23:59:59.999999999Z", "0,2" },
		/* an unset time never matches a date filter, `*` is no filter */
		{ "afterStartedAt=2021-08-01", "0,1,2,3,5" },
		{ "beforeFinishedAt=2030-01-01", "0,1,2,3,5" },
		{ "afterStartedAt=*&beforeFinishedAt=*", "0,1,2,3,4,5" },
		{ "beforeStartedAt=*&afterEnqueuedAt=2021-08-10", "0,2" },
		/* ANDed */
		{ "afterEnqueuedAt=2021-08-10&statuses=succeeded&uids=0,1,2,3,4,5", "0,2" },
		{ "afterEnqueuedAt=2021-08-10&statuses=enqueued", "" },
		{ "beforeEnqueuedAt=2021-08-11&statuses=enqueued,*", "1,3,4,5" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[64] = "", got[64] = "";
		size_t wl = 0, gl = 0;
		/* Through render_task_page, ascending: the uids it gives. */
		char qs[512];
		snprintf(qs, sizeof(qs), "%s&reverse=true&limit=100", cases[i].qs);
		parse_ok(qs, &Q);
		run_page(&Q, qs, &PG);
		for (size_t k = 0; k < PG.n; k++)
			gl += (size_t)snprintf(got + gl, sizeof(got) - gl, "%s%" PRIu64, k ? "," : "",
			    PG.uids[k]);
		wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s", cases[i].uids);
		cr_expect_str_eq(got, want, "?%s gave [%s], expected [%s]", cases[i].qs, got, want);
		size_t nw = 0;
		for (const char *p = want; *p; p++)
			nw += *p == ',';
		nw += want[0] != '\0';
		cr_expect_eq(PG.total, nw, "?%s: total %" PRIu64 ", expected %zu", cases[i].qs,
		    PG.total, nw);
	}
	teardown_store();
}

/* One page read in its own read transaction, tasks added between pages. */
static void
adding_walk(const char *filters, const struct spec *sp, int reverse)
{
	char qs[1024];
	uint64_t from = NONE, first_from = NONE, seen[MAXREF];
	size_t nseen = 0, pages = 0;
	unsigned limit = 1 + below(9);

	for (;;) {
		snprintf(qs, sizeof(qs), "%s%slimit=%u&reverse=%s", filters, *filters ? "&" : "",
		    limit, reverse ? "true" : "false");
		if (from != NONE)
			snprintf(qs + strlen(qs), sizeof(qs) - strlen(qs), "&from=%" PRIu64, from);
		parse_ok(qs, &Q);
		run_page(&Q, qs, &PG);
		size_t now_total = model_list(sp, -1, M);
		cr_assert_eq(PG.total, now_total, "?%s with %zu tasks: total %" PRIu64 ", expected %zu",
		    qs, nref, PG.total, now_total);
		if (pages == 0)
			first_from = PG.from;
		for (size_t i = 0; i < PG.n; i++)
			seen[nseen++] = PG.uids[i];
		pages++;
		if (PG.next == NONE)
			break;
		from = PG.next;
		/* Between pages: a few new tasks, some of which match. */
		append_tasks(1 + below(4), T0 + 6 * DAY);
		cr_assert_lt(pages, 5000);
	}
	size_t n = model_list(sp, -1, M), k = 0;
	if (reverse) {
		/* Oldest first: every match, the ones added during the walk at the end. */
		cr_assert_eq(nseen, n, "?%s (reverse): %zu tasks seen, %zu match", filters, nseen, n);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(seen[i], M[i], "?%s (reverse): task %zu is %" PRIu64 ", expected %"
			    PRIu64, filters, i, seen[i], M[i]);
	} else {
		/* Newest first from the first page's from: each older match once, no newer one. */
		for (size_t i = n; i-- > 0;)
			if (first_from != NONE && M[i] <= first_from)
				R[k++] = M[i];
		cr_assert_eq(nseen, k, "?%s: %zu tasks seen, %zu match up to from %" PRIu64, filters,
		    nseen, k, first_from);
		for (size_t i = 0; i < k; i++)
			cr_assert_eq(seen[i], R[i], "?%s: task %zu is %" PRIu64 ", expected %" PRIu64,
			    filters, i, seen[i], R[i]);
	}
}

Test(query, next_while_tasks_are_added, .timeout = 300)
{
	build(300, 6);
	for (int round = 0; round < 12; round++) {
		struct spec *sp = &SP;
		const char *f;
		memset(sp, 0, sizeof(*sp));
		switch (round % 6) {
		case 0:
			f = "";
			break;
		case 1:
			f = "statuses=enqueued,succeeded&indexUids=movies,books";
			sp->has_statuses = 1;
			sp->statuses = 1u << TASK_ENQUEUED | 1u << TASK_SUCCEEDED;
			sp->has_indexes = 1;
			sp->indexes[0] = 0;
			sp->indexes[1] = 1;
			sp->nindexes = 2;
			break;
		case 2:
			f = "afterEnqueuedAt=2021-08-12";
			sp->after[0] = (struct dfilt){ 1, 1, days_from_civil(2021, 8, 12) * DAY };
			break;
		case 3:
			/* uids that do not exist yet when the walk starts */
			f = "uids=3,50,299,300,305,310,320,2000";
			sp->has_uids = 1;
			{
				static const uint64_t u[] = { 3, 50, 299, 300, 305, 310, 320, 2000 };
				memcpy(sp->uids, u, sizeof(u));
				sp->nuids = 8;
			}
			break;
		case 4:
			f = "types=documentAddition";
			sp->has_types = 1;
			sp->types[0] = 0;
			sp->ntypes = 1;
			break;
		default:
			f = "indexUids=songs";
			sp->has_indexes = 1;
			sp->indexes[0] = 2;
			sp->nindexes = 1;
			break;
		}
		adding_walk(f, sp, round % 2);
	}
	teardown_store();
}

/* Each parameter's error code, through query_parse. */
Test(query, parse_errors)
{
	static const struct {
		const char *qs, *code;
	} cases[] = {
		{ "limit=abc", "invalid_task_limit" },
		{ "limit=1001", "invalid_task_limit" },
		{ "limit=-1", "invalid_task_limit" },
		{ "from=x", "invalid_task_from" },
		{ "reverse=yes", "invalid_task_reverse" },
		{ "uids=1,x", "invalid_task_uids" },
		{ "uids=18446744073709551616", "invalid_task_uids" },
		{ "statuses=done", "invalid_task_statuses" },
		{ "types=Bad-Type", "invalid_task_types" },
		{ "indexUids=bad%20index", "invalid_index_uid" },
		{ "canceledBy=-3", "invalid_task_canceled_by" },
		{ "beforeEnqueuedAt=yesterday", "invalid_task_before_enqueued_at" },
		{ "afterEnqueuedAt=2021-13-01", "invalid_task_after_enqueued_at" },
		{ "beforeStartedAt=2021-08-10T25:00:00Z", "invalid_task_before_started_at" },
		{ "afterStartedAt=2021-02-30", "invalid_task_after_started_at" },
		{ "beforeFinishedAt=2021-08-10T10:00:00", "invalid_task_before_finished_at" },
		{ "afterFinishedAt=1628605757", "invalid_task_after_finished_at" },
		{ "nope=1", "bad_request" },
		{ "limit=1&limit=2", "bad_request" },
		{ "statuses=succeeded,,failed", "invalid_task_statuses" },
		{ "statuses=", "invalid_task_statuses" },
		{ "uids=%zz", "bad_request" },
	};
	struct query_error err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		query_init(&Q);
		memset(&err, 0, sizeof(err));
		int rc = query_parse(cases[i].qs, &Q, &err);
		cr_expect_eq(rc, LMT_EINVAL, "?%s: %d", cases[i].qs, rc);
		if (rc == LMT_EINVAL)
			cr_expect_str_eq(err.code, cases[i].code, "?%s: code %s, expected %s (%s)",
			    cases[i].qs, err.code, cases[i].code, err.message);
	}
	/* 257 values in one list, and 256. */
	char qs[4096];
	size_t len = (size_t)snprintf(qs, sizeof(qs), "uids=0");
	for (int i = 1; i < 257; i++)
		len += (size_t)snprintf(qs + len, sizeof(qs) - len, ",%d", i);
	query_init(&Q);
	cr_expect_eq(query_parse(qs, &Q, &err), LMT_EINVAL);
	cr_expect_str_eq(err.code, "invalid_task_uids");
	*strrchr(qs, ',') = '\0';
	query_init(&Q);
	cr_expect_eq(query_parse(qs, &Q, &err), 0, "256 uids: %s", err.message);
	cr_expect_eq(Q.nuids, 256);
}
