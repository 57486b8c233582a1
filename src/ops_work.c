/* A worker's transaction (ops_step): the results of the tasks it ran, the heartbeats of
 * those it holds, the releases of those it hands back, and its next claim, committed
 * together, so that a worker pays one commit for a group of transitions. */
#include "config.h"

#include <string.h>

#include "lmtasks/error.h"
#include "ops_internal.h"

/* The step changed nothing: the transaction is aborted rather than committed. */
#define NOTHING_WRITTEN MDB_NOTFOUND

/* A change's own refusal, which leaves the others to go on; anything else is the store's. */
static int
refusal(int rc)
{
	return rc == MDB_NOTFOUND || rc == LMT_ETRANSITION || rc == LMT_ELEASE ||
	    rc == LMT_ECLAIMED || rc == LMT_ENOLEASE;
}

/* Frees what a run of the step made: a replay (the map grew) or a failure starts clean. */
static void
step_clear(struct ops_step *st)
{
	for (size_t i = 0; st->results && i < st->n; i++)
		ops_task_free(&st->results[i].out);
	for (size_t i = 0; i < st->nclaimed; i++)
		ops_task_free(&st->claimed[i]);
	st->nclaimed = 0;
}

/* The changes in order, then the claim; a refusal is checked before the change writes. */
static int
step_txn(store *s, MDB_txn *txn, void *ctx)
{
	struct ops_step *st = ctx;
	struct ops_change_result mine;
	size_t changed = 0;
	int rc;

	step_clear(st);
	for (size_t i = 0; i < st->n; i++) {
		struct ops_change_result *r = st->results ? &st->results[i] : &mine;
		memset(r, 0, sizeof(*r));
		rc = ops_change_in(s, txn, &st->changes[i], r);
		if (r == &mine)
			ops_task_free(&mine.out);
		if (rc != 0 && !refusal(rc))
			return rc;
		st->rcs[i] = rc;
		changed += rc == 0;
	}
	if (st->claim) {
		rc = ops_claim_in(s, txn, st->claim, st->claim_max, st->claimed, &st->nclaimed);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	return changed + st->nclaimed > 0 ? 0 : NOTHING_WRITTEN;
}

/* One commit for what a worker has to say: its finishes, heartbeats, releases, claim. */
int
ops_step(store *s, struct ops_step *st)
{
	int rc;

	st->nclaimed = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (st->results)
			memset(&st->results[i], 0, sizeof(st->results[i]));
		if (st->changes[i].kind == OPS_CLAIM ||
		    (unsigned)st->changes[i].kind > OPS_RELEASE)
			return LMT_EINVAL;
	}
	if (st->claim && (st->claim->kind != OPS_CLAIM || st->claim_max == 0 ||
	    st->claim_max > OPS_CLAIM_MAX))
		return LMT_EINVAL;
	if (st->claim)
		memset(st->claimed, 0, st->claim_max * sizeof(*st->claimed));
	rc = ops_write(s, step_txn, st);
	if (rc == NOTHING_WRITTEN)
		return 0;	/* every change refused (their rcs say why), nothing claimed */
	if (rc != 0) {
		step_clear(st);
		for (size_t i = 0; i < st->n; i++)
			st->rcs[i] = rc;
	}
	return rc;
}
