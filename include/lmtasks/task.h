/* The task model: statuses, allowed transitions, and validation of names. */
#ifndef LMTASKS_TASK_H
#define LMTASKS_TASK_H

#include <stddef.h>
#include <stdint.h>

enum task_status {
	TASK_ENQUEUED = 0,
	TASK_PROCESSING,
	TASK_SUCCEEDED,
	TASK_FAILED,
	TASK_CANCELED,
	TASK_NSTATUS
};

/* The `type` of a failed task's error object. */
enum task_error_type {
	TASK_ERR_INVALID_REQUEST = 0,
	TASK_ERR_INTERNAL,
	TASK_ERR_AUTH,
	TASK_NERRTYPE
};

#define TASK_NO_UID UINT64_MAX
#define TASK_INDEX_MAX 400
#define TASK_TYPE_MAX 64
#define TASK_CODE_MAX 255
#define TASK_DETAILS_MAX (16u << 20)
#define TASK_MESSAGE_MAX (64u << 10)
#define TASK_METADATA_MAX (64u << 10)
#define TASK_STEP_MAX 255
#define TASK_ATTEMPTS_MAX 1000
/* A priority given at enqueue: higher is claimed first, 0 the default. */
#define TASK_PRIORITY_MIN (-1000000)
#define TASK_PRIORITY_MAX 1000000
/* The longest delay an enqueue takes: 3650 days. */
#define TASK_DELAY_MAX_DAYS 3650
#define TASK_DELAY_MAX ((int64_t)TASK_DELAY_MAX_DAYS * 86400 * 1000000)
/* The last µs a record's times may hold: 9999-12-31T23:59:59.999999Z. */
#define TASK_TIME_MAX INT64_C(253402300799999999)

/* A byte string that need not be NUL-terminated; ptr NULL means JSON null. */
struct task_str {
	const char *ptr;
	size_t len;
};

/*
 * One task.  The strings are borrowed: from a decoded record they point into
 * an LMDB page and live only until that transaction ends.
 * Timestamps are microseconds since the epoch, 0 meaning not set.
 */
struct task {
	uint64_t uid;
	enum task_status status;
	int64_t enqueued_at;
	int64_t started_at;
	int64_t finished_at;
	uint64_t canceled_by;		/* TASK_NO_UID unless canceled */
	int64_t lease_until;		/* 0: no lease */
	uint32_t lease_ms;		/* the lease's length, for heartbeats */
	unsigned requeue : 1;		/* an expired lease puts it back in the queue */
	unsigned lease_expired : 1;	/* it was put back because its lease expired */
	unsigned has_batch : 1;		/* batch_uid is set: it left `enqueued` in that batch */
	uint64_t batch_uid;		/* the batch that moved it out of `enqueued` */
	struct task_str index_uid;	/* ptr NULL for the store's own tasks */
	struct task_str type;
	struct task_str details;	/* compact JSON object text, "{}" at least */
	struct task_str error_code;	/* set on failed tasks only */
	struct task_str error_message;
	enum task_error_type error_type;
	struct task_str custom_metadata;	/* given at enqueue (UTF-8); ptr NULL: none */
	/* Scheduling (all 0 for a task enqueued plainly, as every task of 0.2.0 reads). */
	int64_t not_before;		/* µs: not claimable before; 0: at once */
	int32_t priority;		/* higher is claimed first; 0 the default */
	uint16_t attempts;		/* how many times it was claimed */
	uint16_t max_attempts;		/* claims allowed before a failure is final; 0: 1 */
	uint32_t backoff_ms;		/* the first retry's delay; 0: the store's default */
	/* A processing task's progress as its worker last reported it; total 0: none. */
	uint32_t progress_done, progress_total;
	struct task_str progress_step;	/* the step's name (UTF-8, up to TASK_STEP_MAX) */
	uint32_t record_sum;		/* the stored record's checksum (codec_decode): it
					 * changes whenever the record does */
};

/* Makes t a new enqueued task (index NULL: the store's own); the strings are borrowed. */
void task_init(struct task *t, const char *index, size_t ilen, const char *type, size_t tlen,
    const char *details, size_t dlen);

/* Returns 1 when t carries scheduling fields (a delay, a priority, attempts or a retry
 * policy), which a record keeps in its X_SCHED extension. */
static inline int
task_has_sched(const struct task *t)
{
	return t->not_before != 0 || t->priority != 0 || t->attempts != 0 ||
	    t->max_attempts != 0 || t->backoff_ms != 0;
}

/* Returns the status' JSON name ("enqueued", ...), or NULL when out of range. */
const char *task_status_name(enum task_status s);

/* Parses a status name; returns 0, or LMT_EINVAL. */
int task_status_parse(const char *s, size_t len, enum task_status *out);

/* Returns the error type's JSON name ("internal", ...), or NULL when out of range. */
const char *task_error_type_name(enum task_error_type t);

/* Parses an error type name; returns 0, or LMT_EINVAL. */
int task_error_type_parse(const char *s, enum task_error_type *out);

/* Returns 1 when a task may move from one status to the other, else 0. */
int task_transition_allowed(enum task_status from, enum task_status to);

/* Returns 1 for a terminal status (succeeded, failed, canceled). */
int task_status_terminal(enum task_status s);

/* Returns 1 for 1-400 bytes of [A-Za-z0-9_-]. */
int task_index_uid_valid(const char *s, size_t len);

/* Returns 1 when index (ptr NULL: none) matches pattern: `*`, a prefix `mov*`, or the
 * exact name. */
int task_index_match(struct task_str pattern, struct task_str index);

/* Returns 1 for a camelCase word, [a-z][A-Za-z0-9]{0,63}. */
int task_type_valid(const char *s, size_t len);

/* Returns 1 when len bytes at s are well-formed UTF-8 with no NUL. */
int task_utf8_valid(const char *s, size_t len);

/* Returns 1 for an error code: 1-255 bytes of [a-z0-9_]. */
int task_error_code_valid(const char *s, size_t len);

#endif
