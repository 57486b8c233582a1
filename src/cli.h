/* What the CLI's command files share: parsed arguments, exit codes, messages. */
#ifndef LMTASKS_CLI_H
#define LMTASKS_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/printbuf.h>

#include "lmtasks/store.h"

enum exit_code {
	EXIT_DONE = 0,
	EXIT_NOTFOUND = 1,
	EXIT_USAGE = 2,
	EXIT_REFUSED = 3,
	EXIT_STORE = 4,
	EXIT_TIMEOUT = 124,
	EXIT_NOEXEC = 126,	/* notify: lmtasks-notify is there but could not be run */
	EXIT_NOPROGRAM = 127,	/* notify: no lmtasks-notify */
};

/* A command's arguments after getopt: its options in the order given, then the rest. */
struct cli_args {
	const char *cmd;		/* the command's first word, for messages */
	const char *hint;		/* a subcommand's group: what its usage is */
	size_t nopts;
	struct cli_opt {
		int id;			/* the option's val in the command's table */
		const char *value;	/* NULL for a flag */
	} *opts;
	int argc;			/* the positional arguments */
	char **argv;
};

/* The list filters as flags, each named like its URL parameter or in kebab-case; the
 * option's id is CLI_FILTER + its index in cli_filter_names. */
#define CLI_FILTER 0x100
#define CLI_FILTER_PAGING 3	/* limit, from and reverse come first */
extern const char *const cli_filter_names[];
#define CLI_FILTER_OPTIONS \
	{ "limit", required_argument, NULL, CLI_FILTER + 0 }, \
	{ "from", required_argument, NULL, CLI_FILTER + 1 }, \
	{ "reverse", optional_argument, NULL, CLI_FILTER + 2 }, \
	{ "uids", required_argument, NULL, CLI_FILTER + 3 }, \
	{ "statuses", required_argument, NULL, CLI_FILTER + 4 }, \
	{ "types", required_argument, NULL, CLI_FILTER + 5 }, \
	{ "indexUids", required_argument, NULL, CLI_FILTER + 6 }, \
	{ "canceledBy", required_argument, NULL, CLI_FILTER + 7 }, \
	{ "beforeEnqueuedAt", required_argument, NULL, CLI_FILTER + 8 }, \
	{ "afterEnqueuedAt", required_argument, NULL, CLI_FILTER + 9 }, \
	{ "beforeStartedAt", required_argument, NULL, CLI_FILTER + 10 }, \
	{ "afterStartedAt", required_argument, NULL, CLI_FILTER + 11 }, \
	{ "beforeFinishedAt", required_argument, NULL, CLI_FILTER + 12 }, \
	{ "afterFinishedAt", required_argument, NULL, CLI_FILTER + 13 }, \
	{ "batchUids", required_argument, NULL, CLI_FILTER + 14 }, \
	{ "batch-uids", required_argument, NULL, CLI_FILTER + 14 }, \
	{ "index-uids", required_argument, NULL, CLI_FILTER + 6 }, \
	{ "canceled-by", required_argument, NULL, CLI_FILTER + 7 }, \
	{ "before-enqueued-at", required_argument, NULL, CLI_FILTER + 8 }, \
	{ "after-enqueued-at", required_argument, NULL, CLI_FILTER + 9 }, \
	{ "before-started-at", required_argument, NULL, CLI_FILTER + 10 }, \
	{ "after-started-at", required_argument, NULL, CLI_FILTER + 11 }, \
	{ "before-finished-at", required_argument, NULL, CLI_FILTER + 12 }, \
	{ "after-finished-at", required_argument, NULL, CLI_FILTER + 13 }

/* The store's path: --db, else $LMTASKS_DB, else the configured default. */
extern const char *cli_db;

/* 1 when the store opened by cli_open() is at compat v1: tasks print in v1's layout. */
extern int cli_v1;

/* Prints "lmtasks: " and the message to stderr. */
__attribute__((format(printf, 1, 2)))
void cli_warn(const char *fmt, ...);

/* Says what is wrong and returns the exit code it deserves. */
__attribute__((format(printf, 2, 3)))
int cli_fail(int code, const char *fmt, ...);

/* A usage error of cmd: exit 2, pointing at the command's --help. */
int cli_usage(const char *cmd, const char *what);

/* cli_usage() with what formatted (a line at most: it is cut at 255 bytes), so that a
 * limit is said from its constant. */
__attribute__((format(printf, 2, 3)))
int cli_usagef(const char *cmd, const char *fmt, ...);

/* Maps a library result to exit 4 with a message that names the store and what to do. */
int cli_store_failure(int rc, const char *doing);

/* Opens the store at cli_db; returns 0 or the exit status, the message given. */
int cli_open(unsigned flags, store **s);

/* Opens the store read-only and a buffer to render into; returns 0 or the exit status
 * (then *s is NULL or closed, *pb not made). */
int cli_open_reader(store **s, struct printbuf **pb);

/* A read command's store, read transaction and output buffer, made together. */
struct cli_reader {
	store *s;
	MDB_txn *txn;
	struct printbuf *pb;
};

/* cli_open_reader() and a read transaction; doing names the reading in a failure
 * ("reading").  Returns 0 or the exit status (then r is zeroed: nothing is held). */
int cli_reader_open(struct cli_reader *r, const char *doing);

/* Ends what cli_reader_open() made: the transaction, the buffer, the store. */
void cli_reader_close(struct cli_reader *r);

/*
 * Opens the store read-only and prints the {"results":[...]} list that walk appends to pb
 * in one read transaction; doing names the reading in a failure ("reading the keys of").
 * Returns the exit status.
 */
int cli_print_list(int (*walk)(store *s, MDB_txn *txn, struct printbuf *pb, void *ctx),
    void *ctx, const char *doing);

/* Prints pb and a newline to stdout; returns the exit status. */
int cli_emit(struct printbuf *pb);

/* Renders with fn(pb, ctx) and prints it; returns the exit status. */
int cli_print(int (*fn)(struct printbuf *pb, const void *ctx), const void *ctx);

/*
 * One filter flag (id: its val in CLI_FILTER_OPTIONS) into q with the HTTP API's checks;
 * paging (--limit, --from, --reverse) is refused: the command's filters select, they do
 * not page.  *name (may be NULL) gets the URL parameter's name.  Returns the exit status.
 */
struct query;
int cli_filter_set(const char *cmd, struct query *q, int id, const char *value,
    const char **name);

/* Every option of a (all filters, paging too, as list takes them) into q; an exit status. */
int cli_filters(const struct cli_args *a, struct query *q);

/* For cli_print() of an ops result's task (a struct ops_task), in the store's layout. */
int cli_render_task(struct printbuf *pb, const void *ctx);

/* For cli_print() after a delete (key delete, webhook delete): report_deleted(). */
int cli_render_deleted(struct printbuf *pb, const void *ctx);

/* Argument checks that print their own message and return an exit status (0: fine). */
int cli_parse_uid(const char *s, uint64_t *uid);
int cli_parse_seconds(const char *opt, const char *s, int64_t *us);
int cli_check_index(const char *s);
int cli_check_type(const char *s);

/* Reads the whole input named by arg ("-": standard input) into a malloc'd buffer,
 * NUL-terminated, telling p (may be NULL) of the bytes read; an exit status. */
struct progress;
int cli_read_input(const char *arg, char **text, size_t *len, const struct progress *p);

/* --details JSON | @FILE | - : the normalised object text, malloc'd. */
int cli_details(const char *arg, char **out, size_t *outlen);

/* A cli_wait_for() check's answer besides an exit status: not yet, look again. */
#define CLI_AGAIN (-1)

/*
 * Runs check(ctx) now, again whenever the store may have changed, and a last time when
 * timeout_us (-1: none; 0: no wait, one look) has passed, until it returns an exit status
 * rather than CLI_AGAIN.  Returns that status, or CLI_AGAIN when the time ran out (the
 * caller says what it was waiting for), or an exit status with the message given.
 */
int cli_wait_for(int (*check)(void *ctx), void *ctx, int64_t timeout_us);

/* As cli_wait_for(), with check setting *wake (wall clock µs; 0, as it comes: none) to when
 * the store's answer changes with no commit (a delayed task's time): it runs again then,
 * on a timer, rather than at the next poll. */
int cli_wait_for_timed(int (*check)(void *ctx, int64_t *wake), void *ctx, int64_t timeout_us);

/*
 * One command: its name ("key create" for a subcommand), its getopt long options (each
 * option's val is the id its handler sees), its lines in --help, and its handler, which
 * gets the parsed arguments and returns the exit status.  A group ("index", "key") has
 * no handler: its usage says which subcommands there are.
 */
struct cli_command {
	const char *name;
	const struct option *options;
	const char *usage;
	int (*exec)(const struct cli_args *a);
};

/* A program made of commands: lmtasks, and lmtasks-notify (notify alone). */
struct cli_program {
	const char *name;				/* in --version and the messages */
	const struct cli_command *const *commands;	/* in the order --help lists them */
	size_t ncommands;
	const char *usage_head, *usage_tail;		/* around the entries' lines in --help */
};

/* Reads the global options (--db, --help, --version) into cli_db, then finds argv's
 * command in p's table and runs it; returns the exit status (cli_table.c). */
int cli_main(const struct cli_program *p, int argc, char **argv);

/* The program's arguments as given (argv[0] too, NULL-terminated), set by cli_main. */
extern char **cli_argv;

/* The commands, each defined next to its handler; lmtasks.c's table orders them. */
extern const struct cli_command cli_cmd_init, cli_cmd_enqueue, cli_cmd_start, cli_cmd_claim,
    cli_cmd_heartbeat, cli_cmd_succeed, cli_cmd_fail, cli_cmd_reap, cli_cmd_cancel,
    cli_cmd_get, cli_cmd_list, cli_cmd_wait, cli_cmd_delete, cli_cmd_index,
    cli_cmd_index_list, cli_cmd_index_delete, cli_cmd_key, cli_cmd_key_create,
    cli_cmd_key_list, cli_cmd_key_delete, cli_cmd_config, cli_cmd_stats, cli_cmd_check,
    cli_cmd_watch, cli_cmd_batch, cli_cmd_batch_get, cli_cmd_batch_list, cli_cmd_webhook,
    cli_cmd_webhook_add, cli_cmd_webhook_list, cli_cmd_webhook_delete, cli_cmd_notify,
    cli_cmd_backup, cli_cmd_restore, cli_cmd_work;
extern const struct cli_command cli_cmd_retry;
extern const struct cli_command cli_cmd_compact;

/* notify's option ids, shared by its entry (cli_webhook.c) and its deliverer. */
enum { CLI_NOTIFY_ONCE = 1, CLI_NOTIFY_INTERVAL, CLI_NOTIFY_BATCH };

/* notify's handler in lmtasks-notify, the deliverer (cli_notify.c): lmtasks's own entry
 * for notify checks the options and execs that program. */
int cli_notify_deliver(const struct cli_args *a);

#endif
