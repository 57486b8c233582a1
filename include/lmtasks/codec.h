/* Task <-> record bytes: versioned, little-endian, every length checked on decode. */
#ifndef LMTASKS_CODEC_H
#define LMTASKS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "lmtasks/task.h"

/* Version 1 (lmtasks 0.1.0) has no batch uid; version 2 is version 1 with one; versions 3
 * and 4 are 1 and 2 with custom metadata; versions 5 to 16 add scheduling (a delay, a
 * priority, attempts, a retry policy) and a worker's progress (codec.c has the layout).
 * All are read; a record is written in the smallest that holds its task (a task with
 * none of them is still version 1, as lmtasks 0.1.0 wrote it). */
#define CODEC_VERSION 1
#define CODEC_VERSION_BATCH 2
#define CODEC_VERSION_META 3
#define CODEC_VERSION_BATCH_META 4

/* Returns the number of bytes codec_encode() writes for t. */
size_t codec_size(const struct task *t);

/* Writes t's record into buf, which holds at least codec_size(t) bytes. The uid is
 * not part of the record (it is the key). Returns the number of bytes written. */
size_t codec_encode(const struct task *t, void *buf);

/*
 * Decodes a record into t (t->uid is left alone).  t's strings point into buf,
 * so they live as long as buf does.  Returns 0, or LMT_ECORRUPT for a record that
 * is short, too long, of an unknown version, or holds an impossible value.
 */
int codec_decode(const void *buf, size_t len, struct task *t);

#endif
