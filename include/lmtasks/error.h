/* lmtasks' own result codes, the one function that explains any code, and the three
 * ways the programs report an error. */
#ifndef LMTASKS_ERROR_H
#define LMTASKS_ERROR_H

/*
 * Three conventions, each in its own tier; a function speaks one of them, and a value of
 * one is never passed off as another.
 *
 * 1. Result codes (rc), in the core (task, codec, store, feed, batches) and the domain
 *    (query, ops, settings, compat): an int, 0 on success, else an LMDB code passed
 *    through unchanged (MDB_NOTFOUND is an answer, not a failure), a positive errno value
 *    (ENOMEM, ENOSPC, EIO, ...) or an LMT_* code below.  A bad input is LMT_EINVAL with
 *    a reason for the caller to show, never an HTTP status.  lmt_strerror() explains
 *    any rc.
 * 2. HTTP statuses, in the http tier alone (route, auth, api, writer): struct api_error
 *    (api_error.h) carries the status with Meilisearch's code and type; the handlers that
 *    call the domain turn its rc into a status there (MDB_NOTFOUND 404, LMT_EINVAL 400,
 *    the store's troubles 5xx).
 * 3. Exit statuses, in the CLI alone (src/cli*.c; enum exit_code in src/cli.h, the
 *    numbers in SPEC §3): a command's handler returns one, with its message printed by
 *    cli_fail().  cli_store_failure() turns any rc into exit 4 with a message naming
 *    the store; each command first maps the rc its operation documents (MDB_NOTFOUND to
 *    1, LMT_ETRANSITION, LMT_ELEASE and LMT_ECLAIMED to 3, LMT_EINVAL on its input to 2).
 *    In the CLI a variable named rc holds a result code and one named ret an exit status.
 *
 * The LMT_* range sits below LMDB's (-30800 ... -30780) and errno's positive values, so
 * the three kinds of rc never collide.
 */
enum lmt_error {
	LMT_EINVAL = -31000,	/* an argument or input is malformed */
	LMT_ECORRUPT,		/* a stored record or index entry cannot be decoded */
	LMT_ETRANSITION,	/* the task's status does not allow this change */
	LMT_ENOSTORE,		/* the path holds no lmtasks store */
	LMT_ESCHEMA,		/* the store was written by another version of lmtasks */
	LMT_ETOOBIG,		/* a value exceeds the store's limits */
	LMT_ELEASE,		/* the task's lease expired: it failed or went back to the queue */
	LMT_ECLAIMED,		/* the task was claimed again since the claim being finished */
	LMT_ENOLEASE,		/* a heartbeat for a task that holds no lease */
	LMT_EFULL,		/* the store is past its size limit: new tasks are refused */
	LMT_EDISKFULL,		/* the disk cannot hold the store's reserve: new tasks are refused */
	LMT_EPRUNED,		/* the change log no longer holds the changes asked for */
	LMT_EDAMAGED,		/* data.mdb is shorter than its meta pages say (store_damage_text) */
	LMT_EREPLACED,		/* data.mdb was replaced under a running process */
	LMT_ELAST
};

/* Returns a static string that explains rc, whatever its origin (ours, LMDB's, errno). */
const char *lmt_strerror(int rc);

#endif
