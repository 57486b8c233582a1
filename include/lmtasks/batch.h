/* NDJSON batches for `enqueue --batch`: every line checked before anything is stored. */
#ifndef LMTASKS_BATCH_H
#define LMTASKS_BATCH_H

#include <stddef.h>

#include "lmtasks/task.h"

struct batch;

/*
 * Parses len bytes of NDJSON, one {"indexUid","type","details"} object a line
 * (blank lines skipped; "customMetadata", "priority", and "delay" or "notBefore"
 * optional, a delay counted from the call; a retry policy: "maxAttempts" 1 to
 * TASK_ATTEMPTS_MAX, "backoff" a duration as retry_parse_duration() reads it or a number
 * of seconds), into new enqueued tasks whose strings the batch owns.
 * Returns 0 with *out to be freed by batch_free(); or LMT_EINVAL with *line the
 * 1-based number of the first bad line and why (whylen bytes) saying what is
 * wrong with it; or ENOMEM.
 */
int batch_parse(const char *text, size_t len, struct batch **out, size_t *line, char *why,
    size_t whylen);

/* The tasks, in input order, and their number. */
struct task *batch_tasks(struct batch *b);
size_t batch_count(const struct batch *b);

/* Frees the batch and every string its tasks point to; NULL is fine. */
void batch_free(struct batch *b);

#endif
