/* Tasks through their lives: enqueue (with maxTasks' trim) and the transitions of SPEC §1;
 * the lease rule lives with the write wrapper (ops_core.c). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/clock.h"
#include "lmtasks/details.h"
#include "lmtasks/error.h"
#include "lmtasks/retry.h"
#include "ops_internal.h"

struct enqueue_ctx {
	struct task *tasks;
	size_t n;
	int64_t now;
	struct ops_enqueue_result *r;
};

/* Deletes the oldest finished tasks down to SETTINGS_TRIM_PERCENT of max and records a
 * taskDeletion; nothing when the store holds no more than max tasks. */
static int
trim(store *s, MDB_txn *txn, uint64_t max, struct ops_enqueue_result *r)
{
	uint64_t total, target = max / 100 * SETTINGS_TRIM_PERCENT +
	    max % 100 * SETTINGS_TRIM_PERCENT / 100, need, uid, *uids = NULL;
	size_t n = 0;
	store_iter *it;
	struct task t;
	char filter[48];
	int rc;

	if ((rc = store_count(s, txn, STORE_SEQ_ALL, NULL, 0, &total)) != 0 || total <= max)
		return rc;
	need = total - target + 1;	/* room for the taskDeletion too */
	if ((uids = malloc((size_t)need * sizeof(*uids))) == NULL)
		return ENOMEM;
	if ((rc = store_iter_open(s, txn, &it)) != 0)
		goto out;
	/* Collect first, remove after: the walk must not see the store change under it. */
	for (rc = store_iter_seek(it, STORE_SEQ_ALL, NULL, 0, 0, 0, &uid); rc == 0 && n < need;
	    rc = store_iter_next(it, &uid)) {
		if ((rc = store_iter_get(it, &t)) != 0)
			break;
		if (task_status_terminal(t.status))
			uids[n++] = uid;
	}
	store_iter_close(it);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto out;
	if ((rc = ops_remove_tasks(s, txn, uids, n, &r->trimmed)) != 0)
		goto out;
	snprintf(filter, sizeof(filter), "?maxTasks=%" PRIu64, max);
	if (rc == 0 && n > 0)
		rc = ops_record(s, txn, "taskDeletion", "deletedTasks", n, n, filter, clock_now(), NULL,
		    &r->deletion);
out:
	free(uids);
	return rc;
}

/* The store's retry policy for a task that gives none, fixed at enqueue: a later
 * `config` changes the tasks enqueued after it.  With no policy at all the task stays as
 * a plain one (no attempts counted, its record as lmtasks 0.1.0 wrote it). */
static void
policy_apply(struct task *t, const struct settings *set)
{
	if (t->max_attempts == 0)
		t->max_attempts = (uint16_t)set->v[SETTING_MAX_ATTEMPTS];
	if (t->max_attempts == 0)
		t->backoff_ms = 0;	/* a backoff with no retry says nothing */
	else if (t->backoff_ms == 0)
		t->backoff_ms = (uint32_t)set->v[SETTING_RETRY_BACKOFF];
}

/* Adds the tasks, applies maxTasks, then measures against maxBytes. */
static int
enqueue_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct enqueue_ctx *e = ctx;
	struct ops_enqueue_result *r = e->r;
	struct settings set;
	int rc;

	r->trimmed = 0;
	ops_task_free(&r->deletion);
	if ((rc = settings_read(s, txn, &set)) != 0)
		return rc;
	for (size_t i = 0; i < e->n; i++) {
		e->tasks[i].enqueued_at = e->now;
		policy_apply(&e->tasks[i], &set);
	}
	if ((rc = store_add_many(s, txn, e->tasks, e->n)) != 0)
		return rc;
	if (set.v[SETTING_MAX_TASKS] && (rc = trim(s, txn, set.v[SETTING_MAX_TASKS], r)) != 0)
		return rc;
	/* Measured after the change, so that a batch cannot carry the store past the limit. */
	if ((rc = store_live_bytes(s, txn, &r->live_bytes)) != 0)
		return rc;
	r->max_bytes = set.v[SETTING_MAX_BYTES];
	r->limit_bytes = r->max_bytes / 100 * SETTINGS_ENQUEUE_PERCENT;
	return r->live_bytes > r->limit_bytes ? LMT_EFULL : 0;
}

/* New tasks only while the store keeps room for the work they bring. */
int
ops_enqueue(store *s, struct task *tasks, size_t n, struct ops_enqueue_result *r)
{
	struct ops_enqueue_result mine;
	struct enqueue_ctx e = { tasks, n, clock_now(), r ? r : &mine };
	int rc;

	memset(e.r, 0, sizeof(*e.r));
	/* New tasks only while the disk can hold the room to finish and delete them. */
	rc = ops_keep_reserve(s, &e.r->reserve_bytes);
	if (rc == ENOSPC || rc == EDQUOT)
		return LMT_EDISKFULL;
	if (rc)
		return rc;
	if ((rc = ops_write(s, enqueue_txn, &e)) != 0 || r == NULL)
		ops_task_free(&e.r->deletion);
	return rc;
}

struct change_ctx {
	const struct ops_change *ch;
	struct ops_change_result *r;
};

/* The task after a heartbeat: the status stays, the lease starts again from now, the
 * progress is the one reported.  A task started without a lease may report progress:
 * it keeps having none. */
static int
heartbeat(const struct ops_change *ch, const struct task *old, struct task *next, int64_t now)
{
	int64_t lease = ch->lease ? ch->lease : (int64_t)old->lease_ms * 1000;

	if (ch->progress_total && !task_progress_valid(ch->progress_done, ch->progress_total,
	    ch->step, ch->step ? ch->step_len : 0))
		return LMT_EINVAL;
	if (lease == 0 && ch->progress_total == 0)
		return LMT_ENOLEASE;
	if (lease) {
		next->lease_until = ops_time_after(now, lease);
		next->lease_ms = (uint32_t)(lease / 1000);
	}
	if (ch->progress_total) {
		next->progress_done = ch->progress_done;
		next->progress_total = ch->progress_total;
		if (ch->step)
			next->progress_step = (struct task_str){ ch->step_len ? ch->step : NULL,
			    ch->step_len };
	}
	return 0;
}

/* The task after a move to processing, succeeded or failed (again: not before again,
 * when a failed attempt is retried; 0: the failure is final); *merged is for the caller
 * to free. */
static int
move(const struct ops_change *ch, const struct task *old, struct task *next, int64_t now,
    int64_t again, char **merged)
{
	const char *why;
	size_t len;
	int rc;

	next->lease_until = 0;	/* a finished task holds no lease */
	task_progress_clear(next);	/* nor progress; a task claimed again starts anew */
	switch (ch->kind) {
	case OPS_START:
	case OPS_CLAIM:
		next->status = TASK_PROCESSING;
		next->started_at = now;
		next->lease_expired = 0;
		next->requeue = (unsigned)ch->requeue;
		next->lease_until = ch->lease ? ops_time_after(now, ch->lease) : 0;
		next->lease_ms = (uint32_t)(ch->lease / 1000);
		/* Only a task with a policy counts: a plain one's record stays as it was. */
		if (old->max_attempts && next->attempts < TASK_ATTEMPTS_MAX)
			next->attempts++;
		return 0;
	case OPS_SUCCEED:
		next->status = TASK_SUCCEEDED;
		next->finished_at = now;
		if (ch->details == NULL)
			return 0;
		if ((rc = details_merge(old->details.ptr, old->details.len, ch->details,
		    ch->details_len, merged, &len, &why)) != 0)
			/* The new details were checked already: the stored ones are bad. */
			return rc == LMT_EINVAL ? LMT_ECORRUPT : rc;
		next->details = (struct task_str){ *merged, len };
		return 0;
	case OPS_RELEASE:
		ops_requeue(next);
		/* Handed back untried: the claim's attempt does not count. */
		if (old->max_attempts && next->attempts > 0)
			next->attempts--;
		return 0;
	case OPS_FAIL:
		next->error_code = (struct task_str){ ch->code, strlen(ch->code) };
		next->error_message = (struct task_str){ ch->message, strlen(ch->message) };
		next->error_type = ch->etype;
		if (again) {	/* the error stays as the last attempt's */
			ops_requeue(next);
			next->not_before = again;
			return 0;
		}
		next->status = TASK_FAILED;
		next->finished_at = now;
		return 0;
	default:
		return LMT_EINVAL;
	}
}

/* A task leaving the queue starts a batch of its own; a task in a batch moves its
 * counts.  A claim is a batch limited to one task (claim --batch N: to N). */
static int
rebatch(store *s, MDB_txn *txn, enum ops_change_kind kind, const struct task *old,
    struct task *next, int64_t now)
{
	struct ops_batch ob;
	int rc;

	if (kind != OPS_START && kind != OPS_CLAIM)	/* a fail put back: its attempt failed */
		return ops_batch_moved(s, txn, old, next, now, kind == OPS_FAIL);
	if ((rc = ops_batch_begin(s, txn, now, &ob)) != 0)
		return rc;
	if ((rc = ops_batch_add(&ob, next)) != 0) {
		ops_batch_free(&ob);
		return rc;
	}
	return ops_batch_put(s, txn, &ob, kind == OPS_CLAIM ?
	    "batched up to configured batch limit of 1 tasks" : NULL);
}

static const enum task_status change_to[] = {
	[OPS_START] = TASK_PROCESSING, [OPS_CLAIM] = TASK_PROCESSING,
	[OPS_HEARTBEAT] = TASK_PROCESSING, [OPS_SUCCEED] = TASK_SUCCEEDED,
	[OPS_FAIL] = TASK_FAILED, [OPS_RELEASE] = TASK_ENQUEUED,
};

/* One task, read and changed in the same transaction: no other writer slips in. */
int
ops_change_in(store *s, MDB_txn *txn, const struct ops_change *ch, struct ops_change_result *r)
{
	struct task old, next;
	char *merged = NULL;
	int64_t now = clock_now();
	int rc, allowed;

	r->uid = ch->uid;
	if (ch->kind == OPS_CLAIM && ((rc = ops_promote_due(s, txn, now)) != 0 ||
	    (rc = store_find_enqueued(s, txn, ch->claim_index, ch->claim_type, &r->uid)) != 0))
		return rc;
	if ((rc = store_get(s, txn, r->uid, &old)) != 0)
		return rc;
	r->was = old.status;
	allowed = ch->kind == OPS_HEARTBEAT || ch->kind == OPS_RELEASE ?
	    old.status == TASK_PROCESSING : task_transition_allowed(old.status, change_to[ch->kind]);
	if (!allowed)
		return ops_lease_ended(&old) ? LMT_ELEASE : LMT_ETRANSITION;
	if (ch->started_at && old.started_at != ch->started_at)
		return LMT_ECLAIMED;
	int64_t again = 0;
	if (ch->kind == OPS_FAIL && !ch->final && ops_retry_left(&old) &&
	    (rc = ops_retry_at(s, txn, &old, now, &again)) != 0)
		return rc;
	next = old;
	rc = ch->kind == OPS_HEARTBEAT ? heartbeat(ch, &old, &next, now)
	    : move(ch, &old, &next, now, again, &merged);
	if (rc == 0)
		rc = rebatch(s, txn, ch->kind, &old, &next, now);
	/* A heartbeat is a change a reader sees only when its progress moved. */
	if (rc == 0 && (rc = ch->kind != OPS_HEARTBEAT || task_progress_moved(&old, &next) ?
	    store_replace(s, txn, &old, &next) : store_replace_quiet(s, txn, &old, &next)) == 0)
		rc = ops_task_copy(&r->out, &next);
	free(merged);
	return rc;
}

static int
change_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct change_ctx *c = ctx;

	return ops_change_in(s, txn, c->ch, c->r);
}

/* Every status or lease change goes through here, so the rules have one home. */
int
ops_change(store *s, const struct ops_change *ch, struct ops_change_result *r)
{
	struct change_ctx c = { ch, r };
	int rc;

	memset(r, 0, sizeof(*r));
	if ((unsigned)ch->kind >= sizeof(change_to) / sizeof(change_to[0]))
		return LMT_EINVAL;
	if ((rc = ops_write(s, change_txn, &c)) != 0)
		ops_task_free(&r->out);
	return rc;
}

struct claim_ctx {
	const struct ops_change *ch;
	size_t max;
	struct ops_task *out;
	size_t n;
};

/* Up to max of the oldest enqueued tasks of the first match's priority, index and type. */
static int
claim_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct claim_ctx *c = ctx;

	return ops_claim_in(s, txn, c->ch, c->max, c->out, &c->n);
}

/* The claim's work in the caller's transaction: a replay frees what a run before made. */
int
ops_claim_in(store *s, MDB_txn *txn, const struct ops_change *ch, size_t max,
    struct ops_task *out, size_t *n)
{
	char index[TASK_INDEX_MAX + 1], type[TASK_TYPE_MAX + 1], why[160];
	struct task_str idx, typ;
	struct ops_batch ob;
	struct task old, next;
	int64_t now = clock_now();
	int32_t priority;
	uint64_t uid;
	int rc;

	for (size_t i = 0; i < *n; i++)
		ops_task_free(&out[i]);
	*n = 0;
	if ((rc = ops_promote_due(s, txn, now)) != 0 ||
	    (rc = store_find_enqueued(s, txn, ch->claim_index, ch->claim_type, &uid)) != 0)
		return rc;
	if ((rc = store_get(s, txn, uid, &old)) != 0)
		return rc;
	/* The first match's names, copied: the pages they lie in move as tasks change. */
	idx = (struct task_str){ old.index_uid.ptr ? index : NULL, old.index_uid.len };
	if (old.index_uid.ptr)
		memcpy(index, old.index_uid.ptr, old.index_uid.len);
	memcpy(type, old.type.ptr, old.type.len);
	typ = (struct task_str){ type, old.type.len };
	priority = old.priority;
	if ((rc = ops_batch_begin(s, txn, now, &ob)) != 0)
		return rc;
	while (*n < max) {
		if (*n > 0) {
			/* One priority, index and type: the batch is one kind of work. */
			if (idx.ptr == NULL || (rc = store_find_enqueued_at(s, txn, priority, idx, typ,
			    &uid)) == MDB_NOTFOUND)
				break;
			if (rc != 0 || (rc = store_get(s, txn, uid, &old)) != 0)
				goto fail;
		}
		next = old;
		/* Copied before the replace: later writes reuse the pages next points into. */
		if ((rc = move(ch, &old, &next, now, 0, NULL)) != 0 ||
		    (rc = ops_batch_add(&ob, &next)) != 0 ||
		    (rc = ops_task_copy(&out[*n], &next)) != 0)
			goto fail;
		++*n;
		if ((rc = store_replace(s, txn, &old, &next)) != 0)
			goto fail;
	}
	if (*n == max)
		snprintf(why, sizeof(why), "batched up to configured batch limit of %zu tasks", max);
	else if (idx.ptr)
		snprintf(why, sizeof(why), "batched all enqueued tasks for index `%.*s`",
		    (int)(idx.len > 100 ? 100 : idx.len), index);
	else
		snprintf(why, sizeof(why), "batched all enqueued tasks");
	return ops_batch_put(s, txn, &ob, why);
fail:
	ops_batch_free(&ob);
	return rc;
}

/* The claim in a write of its own; out's copies are freed when it fails. */
int
ops_claim_batch(store *s, const struct ops_change *ch, size_t max, struct ops_task *out,
    size_t *n)
{
	struct claim_ctx c = { ch, max, out, 0 };
	int rc;

	*n = 0;
	if (ch->kind != OPS_CLAIM || max == 0 || max > OPS_CLAIM_MAX)
		return LMT_EINVAL;
	memset(out, 0, max * sizeof(*out));
	if ((rc = ops_write(s, claim_txn, &c)) != 0) {
		for (size_t i = 0; i < c.n; i++)
			ops_task_free(&out[i]);
		return rc;
	}
	*n = c.n;
	return 0;
}
