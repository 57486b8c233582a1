/*
 * The skeleton lmtasks-fcgi and lmtasks-writer share: their common options, the master key,
 * the listening socket, and one request adapter that turns a FastCGI request (loop.c's
 * workers) or the process's one CGI request (its environment, standard output) into an
 * api_request, has the program answer it, and sends the answer back the same way.
 */
#ifndef LMTASKS_SERVER_H
#define LMTASKS_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include <json-c/printbuf.h>

#include "lmtasks/api.h"
#include "lmtasks/loop.h"
#include "lmtasks/stream.h"

/* server_listen: standard input is no socket, so this process answers one CGI request. */
#define SERVER_CGI (-1)

/* What the program lends the skeleton; lives as long as the process serves. */
struct server_app {
	const char *name;	/* the program: its log lines' prefix, --version */
	const char *usage;	/* --help */
	/* each worker's own state (*ctx), made when it starts (0 or an error), and the CGI
	 * request's (cgi 1); freed by free */
	int (*init)(void **ctx, int cgi);
	void (*free)(void *ctx);
	/* answers rq into body (which holds the last answer: emptied by the handler) and rs,
	 * logging what it must; db_param is the LMTASKS_DB request parameter (NULL: none) */
	void (*handle)(void *ctx, const struct api_request *rq, const char *db_param,
	    struct printbuf *body, struct api_response *rs);
	/* holds the stream an answer opened (NULL: no answer opens one): cl is out of the
	 * workers' set (loop_detach); 0 with both taken over, else an error (the caller
	 * closes cl and frees sub) */
	int (*stream)(loop_client *cl, stream_sub *sub);
	/* CGI: writes sub's events to standard output until it ends (takes sub over);
	 * the exit status */
	int (*cgi_stream)(stream_sub *sub);
	void (*tick)(void);	/* once a second, from a worker */
	void (*stopping)(void);	/* after the workers left (loop_ops.stopping) */
};

/* One option of a program's own, with an argument. */
struct server_option {
	const char *name;	/* --name */
	int (*parse)(const char *arg);	/* 0, or the value is refused */
	const char *refused;	/* what "PROG: " is followed by when it is */
};

/* What the common options said, with their environment fallbacks. */
struct server_opts {
	const char *db;		/* --db, else $LMTASKS_DB; NULL when neither */
	const char *listen;	/* --listen; NULL: the inherited socket */
	const char *key_file;	/* --master-key-file, else $LMTASKS_MASTER_KEY_FILE; or NULL */
	unsigned sock_mode;	/* --socket-mode, else LISTEN_MODE_DEFAULT */
	gid_t sock_gid;		/* --socket-group, else the process's group */
	int sock_opts;		/* --socket-group or --socket-mode was given */
};

/*
 * Parses argv: --db, --listen, --master-key-file, --socket-group, --socket-mode, --help
 * (app->usage), --version, and the n_extra options of the program's own.
 * @return -1 with *o filled, to go on; else the exit status (0 after --help or
 *         --version, 2 after a usage error, said on standard error)
 */
int server_options(const struct server_app *app, const struct server_option *extra,
    size_t n_extra, int argc, char **argv, struct server_opts *o);

/* Loads the master key of file into hash (AUTH_HASH_BYTES), libsodium started first.
 * @return 0, or 1 after logging why */
int server_master_key(const char *prog, const char *file, unsigned char *hash);

/*
 * Ignores SIGPIPE (a peer that left shows as a failed write) and finds the FastCGI socket:
 * the one --listen names, opened, else the one the process inherited.
 * @return 0 with *fd; SERVER_CGI when there is none; 1 after logging a failure
 */
int server_listen(const char *prog, const struct server_opts *o, int *fd);

/* Serves FastCGI on fd with threads workers until SIGTERM or SIGINT (loop_run), then
 * removes the unix: socket --listen made.  Returns loop_run's status. */
int server_run(const struct server_app *app, const struct server_opts *o, int fd,
    int threads);

/* Answers the one CGI request of the process's environment on standard output.
 * Returns the exit status: 0, or 1 when the answer could not be written. */
int server_cgi(const struct server_app *app);

#endif
