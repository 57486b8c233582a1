/* lmtasks work's commands: each one started with its task's JSON on stdin, its pipes
 * read, its exit seen as a descriptor (a pidfd, or a SIGCHLD where the kernel has none),
 * all on the worker's loop. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/printbuf.h>

#include "lmtasks/render.h"
#include "work_internal.h"

extern char **environ;

/* The loop forgets fd before it is closed: a number reused at once is not confused. */
void
work_close_fd(struct worker *w, int *fd)
{
	if (*fd < 0)
		return;
	event_fd_del(w->el, *fd);
	close(*fd);
	*fd = -1;
}

/* Nothing is left open or allocated; the slot is zeroed for the next task. */
void
work_job_free(struct job *j)
{
	struct worker *w = j->w;

	work_close_fd(w, &j->pidfd);
	work_close_fd(w, &j->in);
	work_close_fd(w, &j->out);
	work_close_fd(w, &j->err);
	ops_task_free(&j->task);
	free(j->input);
	free(j->output);
	free(j->details);
	memset(j, 0, sizeof(*j));
	j->w = w;
	j->pidfd = j->in = j->out = j->err = -1;
	w->held--;
}

/* ---- the command's pipes ---- */

/* Writes what the pipe takes of the task's JSON; closed once written, or refused. */
static void
on_stdin(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct job *j = ctx;
	ssize_t n;

	(void)el;
	(void)what;
	while (j->inoff < j->inlen && (n = write(fd, j->input + j->inoff, j->inlen - j->inoff)) > 0)
		j->inoff += (size_t)n;
	if (j->inoff < j->inlen && (errno == EAGAIN || errno == EINTR))
		return;
	work_close_fd(j->w, &j->in);	/* all written, or the command closed its stdin */
}

/* Reads what fd has now into the job's stdout buffer or stderr ring; 1 at its end. */
static int
drain(struct job *j, int fd)
{
	char buf[8192];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (fd == j->err) {
			for (ssize_t i = 0; i < n; i++)
				j->tail[j->tailn++ % WORK_STDERR_TAIL] = buf[i];
			continue;
		}
		if (j->output_over || j->outlen + (size_t)n > WORK_OUTPUT_MAX) {
			j->output_over = 1;
			continue;
		}
		if (j->outlen + (size_t)n > j->outcap) {
			size_t cap = j->outcap ? j->outcap * 2 : 4096;
			while (cap < j->outlen + (size_t)n)
				cap *= 2;
			char *p = realloc(j->output, cap);
			if (p == NULL) {
				j->output_over = 1;	/* not taken as details; the task goes on */
				continue;
			}
			j->output = p;
			j->outcap = cap;
		}
		memcpy(j->output + j->outlen, buf, (size_t)n);
		j->outlen += (size_t)n;
	}
	return n == 0 || (errno != EAGAIN && errno != EINTR);
}

/* stdout or stderr readable: read, and closed at its end. */
static void
on_output(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct job *j = ctx;

	(void)el;
	(void)what;
	if (drain(j, fd))
		work_close_fd(j->w, fd == j->out ? &j->out : &j->err);
}

/* j's command exited (its status in j->status): what it wrote before is read, then its
 * task waits for the commit. */
static void
exited(struct job *j)
{
	struct worker *w = j->w;

	if (j->out >= 0)
		drain(j, j->out);
	if (j->err >= 0)
		drain(j, j->err);
	work_close_fd(w, &j->pidfd);
	work_close_fd(w, &j->in);
	work_close_fd(w, &j->out);
	work_close_fd(w, &j->err);
	j->stopped = w->stopping > 0;
	j->state = JOB_DONE;
	w->running--;
	if (j->abandoned) {
		work_job_free(j);
		return;
	}
	if (!w->stopping)
		work_start_waiting(w);
	/* Results wait while no slot is free for a claim: they share the commit that claims
	 * (or the next heartbeat's). */
	if (w->stopping || (w->running < w->o->concurrency && !work_any_waiting(w)))
		work_flush_soon(w);
}

/* The pidfd is readable: the command exited. */
static void
on_exit_fd(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct job *j = ctx;

	(void)el;
	(void)fd;
	(void)what;
	if (waitpid(j->pid, &j->status, WNOHANG) == j->pid)
		exited(j);
}

/* Without pidfds a SIGCHLD says that some command ended: each running one is asked. */
void
work_reap_children(struct worker *w)
{
	for (size_t i = 0; i < w->cap; i++) {
		struct job *j = &w->jobs[i];
		if (j->state == JOB_RUNNING && j->pidfd < 0 &&
		    waitpid(j->pid, &j->status, WNOHANG) == j->pid)
			exited(j);
	}
}

/* ---- starting a command ---- */

/* The environment of j's command: the worker's, with the task's uid, index and type and
 * the store.  *envp is freed by the caller (its strings are the job's and environ's). */
static int
job_env(struct worker *w, struct job *j, char ***envp)
{
	static const char *const ours[] = { "LMTASKS_TASK_UID=", "LMTASKS_TASK_INDEX=",
	    "LMTASKS_TASK_TYPE=", "LMTASKS_DB=" };
	const struct task *t = &j->task.t;
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	if ((env = malloc((n + 5) * sizeof(*env))) == NULL)
		return ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t m = 0;
		while (m < 4 && strncmp(environ[i], ours[m], strlen(ours[m])) != 0)
			m++;
		if (m == 4)
			env[k++] = environ[i];
	}
	snprintf(j->env[0], sizeof(j->env[0]), "LMTASKS_TASK_UID=%" PRIu64, t->uid);
	snprintf(j->env[1], sizeof(j->env[1]), "LMTASKS_TASK_INDEX=%.*s", (int)t->index_uid.len,
	    t->index_uid.ptr ? t->index_uid.ptr : "");
	snprintf(j->env[2], sizeof(j->env[2]), "LMTASKS_TASK_TYPE=%.*s", (int)t->type.len,
	    t->type.ptr);
	env[k++] = j->env[0];
	env[k++] = j->env[1];
	env[k++] = j->env[2];
	env[k++] = w->env_db;
	env[k] = NULL;
	*envp = env;
	return 0;
}

/* posix_spawn's attributes: no signal blocked or ignored (the worker blocks and ignores
 * some), and a process group of its own, which a stop signals whole. */
static int
spawn_attr(posix_spawnattr_t *a)
{
	sigset_t none, dfl;
	int rc;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	if ((rc = posix_spawnattr_init(a)) != 0)
		return rc;
	if ((rc = posix_spawnattr_setsigmask(a, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(a, &dfl)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(a, 0)) != 0 ||
	    (rc = posix_spawnattr_setflags(a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETPGROUP)) != 0)
		posix_spawnattr_destroy(a);
	return rc;
}

/* Forks the command with its three pipes: p[0..1] stdin, p[2..3] stdout, p[4..5] stderr. */
static int
spawn(struct worker *w, struct job *j, int p[6])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char **env = NULL;
	int rc;

	if ((rc = job_env(w, j, &env)) != 0)
		return rc;
	if ((rc = spawn_attr(&attr)) != 0) {
		free(env);
		return rc;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) == 0) {
		if ((rc = posix_spawn_file_actions_adddup2(&fa, p[0], 0)) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&fa, p[3], 1)) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&fa, p[5], 2)) == 0 &&
		    /* Nothing else: the store's descriptors are not the command's. */
		    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0)
			rc = w->o->path ? posix_spawn(&j->pid, w->o->path, &fa, &attr, w->o->argv, env)
			    : posix_spawnp(&j->pid, w->o->argv[0], &fa, &attr, w->o->argv, env);
		posix_spawn_file_actions_destroy(&fa);
	}
	posix_spawnattr_destroy(&attr);
	free(env);
	return rc;
}

/* Runs j's command: the task's JSON and a newline on its stdin. */
static int
job_start(struct worker *w, struct job *j)
{
	struct printbuf *pb = printbuf_new();
	int p[6] = { -1, -1, -1, -1, -1, -1 }, rc;

	if (pb == NULL)
		return ENOMEM;
	if ((rc = render_task_as(pb, &j->task.t, w->o->v1)) != 0 ||
	    printbuf_memappend(pb, "\n", 1) < 0 || (j->input = strdup(pb->buf)) == NULL) {
		printbuf_free(pb);
		return rc ? rc : ENOMEM;
	}
	j->inlen = (size_t)pb->bpos;
	printbuf_free(pb);
	for (int i = 0; i < 6; i += 2)
		if (pipe2(p + i, O_CLOEXEC) != 0) {
			rc = errno;
			goto out;
		}
	if ((rc = spawn(w, j, p)) != 0)
		goto out;
	j->in = p[1], j->out = p[2], j->err = p[4];
	p[1] = p[2] = p[4] = -1;
	fcntl(j->in, F_SETFL, O_NONBLOCK);
	fcntl(j->out, F_SETFL, O_NONBLOCK);
	fcntl(j->err, F_SETFL, O_NONBLOCK);
	/* The exit is a descriptor too (else a SIGCHLD: work_reap_children()); the child is a
	 * zombie until it is waited for here, so its pid names it until then. */
	if (w->pidfds && (j->pidfd = pidfd_open(j->pid, 0)) < 0)
		rc = errno;
	else if ((j->pidfd >= 0 && event_fd_add(w->el, j->pidfd, EVENT_READ, on_exit_fd, j) != 0) ||
	    event_fd_add(w->el, j->out, EVENT_READ, on_output, j) != 0 ||
	    event_fd_add(w->el, j->err, EVENT_READ, on_output, j) != 0 ||
	    event_fd_add(w->el, j->in, EVENT_WRITE, on_stdin, j) != 0)
		rc = ENOMEM;
	if (rc) {
		kill(-j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
	}
out:
	for (int i = 0; i < 6; i++)
		if (p[i] >= 0)
			close(p[i]);
	if (rc == 0) {
		j->state = JOB_RUNNING;
		w->running++;
	}
	return rc;
}

/* A task whose command cannot start goes back to the queue, and the worker stops. */
void
work_start_waiting(struct worker *w)
{
	for (size_t i = 0; i < w->cap && w->running < w->o->concurrency; i++) {
		struct job *j = &w->jobs[i];
		if (j->state != JOB_WAITING)
			continue;
		int rc = job_start(w, j);
		if (rc == 0)
			continue;
		/* The task goes back to the queue at the next commit, and the worker stops:
		 * a command that cannot start would only hand every task back. */
		work_say(w, "task %" PRIu64 ": the command could not be started: %s", j->task.t.uid,
		    strerror(rc));
		j->state = JOB_DONE;
		j->stopped = 1;
		j->status = -1;
		if (w->rc == 0)
			w->rc = rc;
		work_stop(w);
	}
	/* With a batch larger than the slots, the next one is claimed as the last task waiting
	 * starts: its commit overlaps the commands that run. */
	if (!w->stopping && w->o->batch > w->o->concurrency && !work_any_waiting(w))
		work_flush_soon(w);
}

