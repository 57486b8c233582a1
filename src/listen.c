/* The listening socket (see listen.h), one piece of code for both web-facing programs. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lmtasks/error.h"
#include "lmtasks/listen.h"

#define BACKLOG 1024

/* A Unix socket at path, 0600 until it has its group and mode, then listening. */
static int
open_unix(const char *spec, const char *path, unsigned mode, gid_t gid, int *out, char *why,
    size_t why_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path) || *path == '\0') {
		snprintf(why, why_len, "--listen %s: the socket path is empty or too long", spec);
		return LMT_EINVAL;
	}
	strcpy(sa.sun_path, path);
	/* A socket left by an earlier run is replaced; anything else is not touched. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	/* Made 0600, so nobody else can connect before its group and mode are set. */
	mode_t um = umask(0177);
	rc = (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ? -1 :
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(um);
	if (rc != 0 || chown(path, (uid_t)-1, gid) != 0 || chmod(path, mode) != 0 ||
	    listen(fd, BACKLOG) != 0) {
		rc = errno;
		snprintf(why, why_len, "--listen %s: %s", spec, strerror(rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* A unix: path or a TCP address, parsed as the man pages say. */
int
listen_open(const char *spec, unsigned mode, gid_t gid, int *out, char *why, size_t why_len)
{
	const char *path = listen_unix_path(spec);
	char host[256];
	int fd, rc;

	if (path)
		return open_unix(spec, path, mode, gid, out, why, why_len);
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(host) || !colon[1]) {
		snprintf(why, why_len, "--listen %s: expected unix:PATH or HOST:PORT (like "
		    "127.0.0.1:9000)", spec);
		return LMT_EINVAL;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	int gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai != 0) {
		snprintf(why, why_len, "--listen %s: %s", spec, gai_strerror(gai));
		return LMT_EINVAL;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, BACKLOG) != 0) {
		rc = errno;
		snprintf(why, why_len, "--listen %s: %s", spec, strerror(rc));
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	freeaddrinfo(ai);
	*out = fd;
	return 0;
}

/* /etc/group first: a group named by digits is still a name. */
int
listen_group(const char *name, gid_t *gid)
{
	FILE *f = fopen("/etc/group", "re");
	struct group *gr;
	char *end;

	if (f) {
		while ((gr = fgetgrent(f)) != NULL) {
			if (strcmp(gr->gr_name, name) == 0) {
				*gid = gr->gr_gid;
				fclose(f);
				return 0;
			}
		}
		fclose(f);
	}
	errno = 0;
	unsigned long g = strtoul(name, &end, 10);
	if (*name >= '0' && *name <= '9' && *end == '\0' && errno == 0 && g < (gid_t)-1) {
		*gid = (gid_t)g;
		return 0;
	}
	return LMT_EINVAL;
}

/* Octal, as chmod takes it. */
int
listen_mode(const char *text, unsigned *mode)
{
	char *end;
	unsigned long m = strtoul(text, &end, 8);

	if (*text == '\0' || *end || m > 0777)
		return LMT_EINVAL;
	*mode = (unsigned)m;
	return 0;
}

/* systemd first: its socket is descriptor 3, standard input may be anything. */
int
listen_inherited(int *out)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	int fd = 0, acc = 0;
	socklen_t len = sizeof(acc);

	if (fds && pid && atoi(fds) >= 1 && (pid_t)atol(pid) == getpid())
		fd = 3;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc) {
		*out = fd;
		return 0;
	}
	return LMT_EINVAL;
}

/* The one place that knows the prefix. */
const char *
listen_unix_path(const char *spec)
{
	return strncmp(spec, "unix:", 5) == 0 ? spec + 5 : NULL;
}
