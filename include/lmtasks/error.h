/* lmtasks' own result codes and the one function that explains any code. */
#ifndef LMTASKS_ERROR_H
#define LMTASKS_ERROR_H

/*
 * Functions return int: 0 on success, an LMDB code (MDB_NOTFOUND, MDB_MAP_FULL, ...)
 * passed through unchanged, a positive errno value, or one of these.  The range
 * sits below LMDB's (-30800 ... -30780) so the three never collide.
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
