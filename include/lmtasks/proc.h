/* A command run on an event loop (event.h): started by posix_spawn() in a process group of
 * its own with three pipes, a buffer fed to its stdin, its stdout kept up to a limit and
 * the last bytes of its stderr in a ring, its exit seen as a pidfd (or, where the kernel
 * has none, by proc_reap() when a SIGCHLD came).  The caller learns of the exit through a
 * callback and reads the outcome from the struct; it knows nothing of what the command is
 * for.  In the write library (lmtasks work runs its commands with it). */
#ifndef LMTASKS_PROC_H
#define LMTASKS_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "lmtasks/event.h"

#define PROC_STDERR_TAIL 2048	/* the bytes of stderr kept: the last ones */

struct proc;

/* The command exited: its status, stdout and stderr's tail are in p, its pipes closed.
 * The callback may proc_free() p. */
typedef void proc_exit_fn(struct proc *p, void *ctx);

/* How to start one command. */
struct proc_spec {
	const char *path;		/* the file to run; NULL: argv[0] looked up in PATH */
	char *const *argv;		/* the command and its arguments, NULL-terminated */
	const char *const *env;		/* "NAME=value" strings, NULL-terminated: they replace
					 * the caller's variables of those names */
	char *input;			/* written to stdin, then stdin is closed; malloc'd, the
					 * proc's from proc_start() on (even when it fails) */
	size_t inlen;
	size_t output_max;		/* stdout beyond this is not kept: output_over is set */
	int pidfd;			/* 1: the exit as a pidfd (see proc_pidfds()); 0: the
					 * caller calls proc_reap() on each SIGCHLD */
};

/* One command; the caller reads the fields, proc_*() write them. */
struct proc {
	event_loop *el;
	proc_exit_fn *exit_fn;
	void *ctx;
	pid_t pid;
	int running;			/* started and not yet seen to exit */
	int pidfd, in, out, err;	/* -1: closed */
	char *input;
	size_t inlen, inoff;
	char *output;			/* stdout, up to output_max bytes (not NUL-terminated) */
	size_t outlen, outcap, output_max;
	int output_over;		/* stdout was longer, or memory ran out: partial */
	char tail[PROC_STDERR_TAIL];	/* stderr's last bytes, a ring ... */
	size_t tailn;			/* ... and the bytes ever written to it */
	int status;			/* waitpid()'s, once it exited ... */
	int status_unknown;		/* ... unless the system reaped it first (the caller's
					 * parent left SIGCHLD ignored): it exited, how is not
					 * known */
};

/* Whether the kernel has pidfd_open() (else the exits come as SIGCHLD: proc_reap()). */
int proc_pidfds(void);

/* An idle proc: nothing open, nothing allocated; proc_free() is harmless on it. */
void proc_init(struct proc *p);

/*
 * Starts spec's command on el; exit_fn(p, ctx) is called once when it has exited and its
 * pipes are read to their end.  Returns 0, or an errno (nothing runs then; the spec's
 * input is still p's to free).
 */
int proc_start(struct proc *p, event_loop *el, const struct proc_spec *spec,
    proc_exit_fn *exit_fn, void *ctx);

/* Where there are no pidfds: if p's command has exited, it is finished here (exit_fn is
 * called).  Returns 1 if it was, else 0. */
int proc_reap(struct proc *p);

/* Sends sig to the running command's process group; nothing when none runs. */
void proc_signal(const struct proc *p, int sig);

/* Closes and frees what p holds; a command still running is killed and waited for.  p is
 * left as proc_init() leaves it. */
void proc_free(struct proc *p);

#endif
