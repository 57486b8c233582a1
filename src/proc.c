/* A command on the event loop: posix_spawn() with three pipes, stdin fed, stdout and
 * stderr read, its exit a descriptor (a pidfd, or a SIGCHLD where the kernel has none). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lmtasks/proc.h"

#define DRAIN_TURN (64u << 10)	/* bytes read from a pipe in one turn of the loop */
#define DRAIN_EXIT (2u << 20)	/* ... after the exit: what the pipe holds (a writer left
				 * behind, a grandchild, may not hold the exit up) */

extern char **environ;

/* The loop forgets fd before it is closed: a number reused at once is not confused. */
static void
close_fd(struct proc *p, int *fd)
{
	if (*fd < 0)
		return;
	event_fd_del(p->el, *fd);
	close(*fd);
	*fd = -1;
}

/* Tried once on the calling process's own pid. */
int
proc_pidfds(void)
{
	int probe = pidfd_open(getpid(), 0);

	if (probe < 0)
		return 0;
	close(probe);
	return 1;
}

/* Every descriptor -1, so that proc_free() closes none. */
void
proc_init(struct proc *p)
{
	memset(p, 0, sizeof(*p));
	p->pidfd = p->in = p->out = p->err = -1;
}

/* Nothing is left open or allocated. */
void
proc_free(struct proc *p)
{
	if (p->running) {
		kill(-p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	close_fd(p, &p->pidfd);
	close_fd(p, &p->in);
	close_fd(p, &p->out);
	close_fd(p, &p->err);
	free(p->input);
	free(p->output);
	proc_init(p);
}

/* A stop's SIGTERM or SIGKILL reaches what the command started too. */
void
proc_signal(const struct proc *p, int sig)
{
	if (p->running)
		kill(-p->pid, sig);
}

/* ---- the command's pipes ---- */

/* Writes what the pipe takes of the input; closed once written, or refused. */
static void
on_stdin(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct proc *p = ctx;
	ssize_t n;

	(void)el;
	(void)what;
	while (p->inoff < p->inlen && (n = write(fd, p->input + p->inoff, p->inlen - p->inoff)) > 0)
		p->inoff += (size_t)n;
	if (p->inoff < p->inlen && (errno == EAGAIN || errno == EINTR))
		return;
	close_fd(p, &p->in);	/* all written, or the command closed its stdin */
}

/* Appends n bytes to the stdout buffer, or marks it over when they do not fit. */
static void
keep_output(struct proc *p, const char *buf, size_t n)
{
	if (p->output_over || p->outlen + n > p->output_max) {
		p->output_over = 1;
		return;
	}
	if (p->outlen + n > p->outcap) {
		size_t cap = p->outcap ? p->outcap * 2 : 4096;
		while (cap < p->outlen + n)
			cap *= 2;
		char *q = realloc(p->output, cap);
		if (q == NULL) {
			p->output_over = 1;	/* partial: the caller does not take it */
			return;
		}
		p->output = q;
		p->outcap = cap;
	}
	memcpy(p->output + p->outlen, buf, n);
	p->outlen += n;
}

/* Reads what fd has now, up to max bytes, into the stdout buffer or the stderr ring; 1 at
 * its end.  The bound keeps a command that writes without pause from holding the loop:
 * the descriptor is still readable at the next turn. */
static int
drain(struct proc *p, int fd, size_t max)
{
	char buf[8192];
	size_t got = 0;
	ssize_t n = 0;

	while (got < max && (n = read(fd, buf, sizeof(buf))) > 0) {
		got += (size_t)n;
		if (fd == p->err) {
			/* Only the chunk's last bytes can stay in the ring. */
			size_t skip = (size_t)n > PROC_STDERR_TAIL ? (size_t)n - PROC_STDERR_TAIL : 0;
			p->tailn += skip;
			for (size_t i = skip; i < (size_t)n; i++)
				p->tail[p->tailn++ % PROC_STDERR_TAIL] = buf[i];
			continue;
		}
		keep_output(p, buf, (size_t)n);
	}
	if (got >= max)
		return 0;
	return n == 0 || (errno != EAGAIN && errno != EINTR);
}

/* stdout or stderr readable: read, and closed at its end. */
static void
on_output(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct proc *p = ctx;

	(void)el;
	(void)what;
	if (drain(p, fd, DRAIN_TURN))
		close_fd(p, fd == p->out ? &p->out : &p->err);
}

/* The command exited (its status in p->status): what it wrote before is read, then the
 * caller hears of it. */
static void
exited(struct proc *p)
{
	if (p->out >= 0)
		drain(p, p->out, DRAIN_EXIT);
	if (p->err >= 0)
		drain(p, p->err, DRAIN_EXIT);
	close_fd(p, &p->pidfd);
	close_fd(p, &p->in);
	close_fd(p, &p->out);
	close_fd(p, &p->err);
	p->running = 0;
	p->exit_fn(p, p->ctx);	/* last: it may free p */
}

/* The command exited but is no child to wait for (SIGCHLD ignored: the system reaped it). */
static void
lost(struct proc *p)
{
	p->status = 0;
	p->status_unknown = 1;
	exited(p);
}

/* The pidfd is readable: the command exited. */
static void
on_exit_fd(event_loop *el, int fd, unsigned what, void *ctx)
{
	struct proc *p = ctx;

	(void)el;
	(void)fd;
	(void)what;
	pid_t r = waitpid(p->pid, &p->status, WNOHANG);
	if (r == p->pid)
		exited(p);
	else if (r < 0 && errno == ECHILD)
		lost(p);
}

/* Only a command that runs without a pidfd is asked. */
int
proc_reap(struct proc *p)
{
	pid_t r;

	if (!p->running || p->pidfd >= 0)
		return 0;
	if ((r = waitpid(p->pid, &p->status, WNOHANG)) == p->pid)
		exited(p);
	else if (r < 0 && errno == ECHILD)
		lost(p);
	else
		return 0;
	return 1;
}

/* ---- starting a command ---- */

/* The command's environment: the caller's, with spec's variables in place of its own of
 * those names.  *envp is freed by the caller (its strings are environ's and spec's). */
static int
make_env(const struct proc_spec *spec, char ***envp)
{
	size_t n = 0, nset = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	while (spec->env && spec->env[nset])
		nset++;
	if ((env = malloc((n + nset + 1) * sizeof(*env))) == NULL)
		return ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t m = 0;
		while (m < nset && strncmp(environ[i], spec->env[m],
		    (size_t)(strchrnul(spec->env[m], '=') - spec->env[m]) + 1) != 0)
			m++;
		if (m == nset)
			env[k++] = environ[i];
	}
	for (size_t m = 0; m < nset; m++)
		env[k++] = (char *)spec->env[m];
	env[k] = NULL;
	*envp = env;
	return 0;
}

/* posix_spawn's attributes: no signal blocked or ignored (the caller may block and ignore
 * some), and a process group of its own, which proc_signal() signals whole. */
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

/* Forks the command with its three pipes: fds[0..1] stdin, [2..3] stdout, [4..5] stderr. */
static int
spawn(struct proc *p, const struct proc_spec *spec, int fds[6])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char **env = NULL;
	int rc;

	if ((rc = make_env(spec, &env)) != 0)
		return rc;
	if ((rc = spawn_attr(&attr)) != 0) {
		free(env);
		return rc;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) == 0) {
		if ((rc = posix_spawn_file_actions_adddup2(&fa, fds[0], 0)) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&fa, fds[3], 1)) == 0 &&
		    (rc = posix_spawn_file_actions_adddup2(&fa, fds[5], 2)) == 0 &&
		    /* Nothing else: the caller's descriptors are not the command's. */
		    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0)
			rc = spec->path ?
			    posix_spawn(&p->pid, spec->path, &fa, &attr, spec->argv, env) :
			    posix_spawnp(&p->pid, spec->argv[0], &fa, &attr, spec->argv, env);
		posix_spawn_file_actions_destroy(&fa);
	}
	posix_spawnattr_destroy(&attr);
	free(env);
	return rc;
}

/* The pipes' ends kept here become nonblocking and the loop's, with the exit's pidfd. */
static int
watch(struct proc *p, int pidfd)
{
	fcntl(p->in, F_SETFL, O_NONBLOCK);
	fcntl(p->out, F_SETFL, O_NONBLOCK);
	fcntl(p->err, F_SETFL, O_NONBLOCK);
	/* The child is a zombie until it is waited for here, so its pid names it until then. */
	if (pidfd && (p->pidfd = pidfd_open(p->pid, 0)) < 0)
		return errno;
	if ((p->pidfd >= 0 && event_fd_add(p->el, p->pidfd, EVENT_READ, on_exit_fd, p) != 0) ||
	    event_fd_add(p->el, p->out, EVENT_READ, on_output, p) != 0 ||
	    event_fd_add(p->el, p->err, EVENT_READ, on_output, p) != 0 ||
	    event_fd_add(p->el, p->in, EVENT_WRITE, on_stdin, p) != 0)
		return ENOMEM;
	return 0;
}

/* A command that started but cannot be watched is killed and waited for at once. */
int
proc_start(struct proc *p, event_loop *el, const struct proc_spec *spec,
    proc_exit_fn *exit_fn, void *ctx)
{
	int fds[6] = { -1, -1, -1, -1, -1, -1 }, rc = 0;

	p->el = el;
	p->exit_fn = exit_fn;
	p->ctx = ctx;
	p->input = spec->input;
	p->inlen = spec->inlen;
	p->output_max = spec->output_max;
	for (int i = 0; i < 6; i += 2)
		if (pipe2(fds + i, O_CLOEXEC) != 0) {
			rc = errno;
			goto out;
		}
	if ((rc = spawn(p, spec, fds)) != 0)
		goto out;
	p->in = fds[1], p->out = fds[2], p->err = fds[4];
	fds[1] = fds[2] = fds[4] = -1;
	if ((rc = watch(p, spec->pidfd)) != 0) {
		kill(-p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
out:
	for (int i = 0; i < 6; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	p->running = rc == 0;
	return rc;
}
