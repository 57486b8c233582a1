/* The words of a failed task (work_fail.c): its message and why a change was refused. */
#ifndef LMTASKS_WORK_FAIL_H
#define LMTASKS_WORK_FAIL_H

#include <stddef.h>

#include "lmtasks/proc.h"

#define WORK_STDERR_TAIL 2048		/* the bytes of stderr a failure's message quotes */
#define WORK_STDERR_LINES 10		/* ... at most this many of its last lines */

/* The failure's message for p's command into message (size bytes, NUL-terminated): how it
 * ended (exit status, signal, or unknown), then the last lines of its stderr. */
void work_fail_message(const struct proc *p, char *message, size_t size);

/* Why a change about a held task was refused (its rc): for the worker's log. */
const char *work_gone_why(int rc);

#endif
