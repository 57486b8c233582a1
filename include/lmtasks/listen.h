/* The FastCGI listening socket of lmtasks-fcgi and lmtasks-writer: the one --listen opens
 * (unix:PATH, given a group and a mode, or HOST:PORT), or the one the process inherits. */
#ifndef LMTASKS_LISTEN_H
#define LMTASKS_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

/* The unix: socket's mode when --socket-mode does not say: its owner and group connect. */
#define LISTEN_MODE_DEFAULT 0660

/*
 * Opens spec as a listening socket (close-on-exec): unix:PATH, made 0600 and changed to
 * gid and mode before listen(), so nobody else can connect first (a socket left at PATH by
 * an earlier run is replaced, any other file is not touched); or HOST:PORT, IPv6 in
 * brackets.  gid (gid_t)-1 leaves the socket's group alone.
 * @return 0 with *fd; or an errno value / LMT_EINVAL with why (NUL-ended, for the log)
 *         saying what, "--listen SPEC: ..."
 */
int listen_open(const char *spec, unsigned mode, gid_t gid, int *fd, char *why, size_t why_len);

/*
 * A --socket-group: a group name looked up in /etc/group itself (the responder is linked
 * statically, where glibc's getgrnam, through NSS, cannot be relied on), else a number.
 * @return 0 with *gid, or LMT_EINVAL when there is no such group
 */
int listen_group(const char *name, gid_t *gid);

/* A --socket-mode: octal, 0 to 0777.  @return 0 with *mode, or LMT_EINVAL */
int listen_mode(const char *text, unsigned *mode);

/*
 * The listening socket the process inherited: systemd's (LISTEN_FDS for this LISTEN_PID:
 * descriptor 3), else standard input (spawn-fcgi, StandardInput=socket, mod_fcgid).
 * @return 0 with *fd, or LMT_EINVAL when that descriptor is no listening socket (CGI)
 */
int listen_inherited(int *fd);

/* The path a unix: spec names (to remove at exit), or NULL for HOST:PORT; points into spec. */
const char *listen_unix_path(const char *spec);

#endif
