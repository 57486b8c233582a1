/* lmtasks: the companion CLI and the only writer of the task store (SPEC §3).  Each
 * command is an entry of the table below, defined next to its handler in cli_*.c. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

/* Every command, in the order --help lists them. */
static const struct cli_command *const commands[] = {
	&cli_cmd_init, &cli_cmd_enqueue, &cli_cmd_start, &cli_cmd_claim, &cli_cmd_heartbeat,
	&cli_cmd_succeed, &cli_cmd_fail, &cli_cmd_reap, &cli_cmd_cancel, &cli_cmd_get,
	&cli_cmd_list, &cli_cmd_wait, &cli_cmd_watch, &cli_cmd_batch, &cli_cmd_batch_get,
	&cli_cmd_batch_list, &cli_cmd_delete, &cli_cmd_index, &cli_cmd_index_list,
	&cli_cmd_index_delete, &cli_cmd_key, &cli_cmd_key_create, &cli_cmd_key_list,
	&cli_cmd_key_delete, &cli_cmd_webhook, &cli_cmd_webhook_add, &cli_cmd_webhook_list,
	&cli_cmd_webhook_delete, &cli_cmd_notify, &cli_cmd_config, &cli_cmd_stats, &cli_cmd_check,
	&cli_cmd_backup, &cli_cmd_restore,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char usage_head[] =
"usage: lmtasks [--db PATH] COMMAND [ARGS...]\n"
"\n"
"The companion CLI of the lmtasks store: the only program that writes it.\n"
"The store is --db PATH, else $LMTASKS_DB, else " LMTASKS_DEFAULT_DB ".\n"
"\n"
"Commands:\n";

static const char usage_tail[] =
"\n"
"Every command takes --help.  Exit status: 0 done; 1 no such task (or nothing to\n"
"claim); 2 usage; 3 transition refused; 4 store error; 5 notify --once: a\n"
"webhook's receiver did not take its tasks; 124 wait timed out.\n"
"A store past 40% of maxBytes, or on a disk too full for its reserve, refuses new\n"
"tasks (exit 4) and goes on finishing and deleting them: delete finished tasks\n"
"(lmtasks delete --statuses succeeded,failed,canceled) or raise `config maxBytes`.\n";

/* Returns 1 when entry's first word is word. */
static int
in_group(const struct cli_command *c, const char *word)
{
	size_t n = strlen(word);

	return strncmp(c->name, word, n) == 0 && (c->name[n] == '\0' || c->name[n] == ' ');
}

/* The program's usage: every command's lines, from the table. */
static int
print_usage(void)
{
	fputs(usage_head, stdout);
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i]->exec)
			fputs(commands[i]->usage, stdout);
	fputs(usage_tail, stdout);
	return EXIT_DONE;
}

/* A command's --help: its entries' lines (every subcommand of a group). */
static int
print_command_help(const char *word)
{
	printf("usage: lmtasks [--db PATH] %s\n\n", word);
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i]->exec && in_group(commands[i], word))
			fputs(commands[i]->usage, stdout);
	printf("\nSee `lmtasks --help` for the store, the exit status and the other commands.\n");
	return EXIT_DONE;
}

/* Returns 1 when --help (or -h) comes before any --. */
static int
asked(int argc, char **argv, const char *longopt, const char *shortopt)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], longopt) == 0 || (shortopt && strcmp(argv[i], shortopt) == 0))
			return 1;
	}
	return 0;
}

/* Finds argv's command: a plain one, or a group's subcommand; *group for a group whose
 * subcommand is missing or unknown. */
static const struct cli_command *
find(int argc, char **argv, const struct cli_command **group)
{
	*group = NULL;
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct cli_command *c = commands[i];
		if (!in_group(c, argv[0]))
			continue;
		if (c->exec == NULL) {
			*group = c;
			continue;
		}
		if (*group == NULL)
			return c;
		if (argc > 1 && strcmp(c->name + strlen(argv[0]) + 1, argv[1]) == 0)
			return c;
	}
	return NULL;
}

/* Parses argv with the entry's options, options anywhere among the arguments, and runs
 * its handler. */
static int
run(const struct cli_command *c, const struct cli_command *group, int argc, char **argv)
{
	static const struct option none[] = { { 0 } };
	struct cli_args a = { argv[0], group ? group->usage : NULL, 0, NULL, 0, NULL };
	int ch, idx, ret;

	if (group) {	/* the subcommand's own arguments */
		argc--;
		argv++;
	}
	if ((a.opts = calloc((size_t)argc, sizeof(*a.opts))) == NULL)
		return cli_fail(EXIT_STORE, "out of memory");
	optind = 0;	/* 0, not 1: GNU getopt then starts afresh */
	opterr = 0;	/* the messages are ours, with the lmtasks: prefix */
	while ((ch = getopt_long(argc, argv, ":", c->options ? c->options : none, &idx)) != -1) {
		if (ch == '?' || ch == ':') {
			ret = cli_fail(EXIT_USAGE, "%s: %s `%s`; see `lmtasks %s --help`", a.cmd,
			    ch == ':' ? "a value is missing after" : "unknown option",
			    argv[optind - 1], a.cmd);
			goto out;
		}
		a.opts[a.nopts++] = (struct cli_opt){ ch, optarg };
	}
	a.argc = argc - optind;
	a.argv = argv + optind;
	ret = c->exec(&a);
out:
	free(a.opts);
	return ret;
}

/* A data.mdb shrunk while this command reads it: the store error it is, exit 4, not a
 * crash.  A write transaction in progress is never committed, so nothing is half-written. */
static void
on_sigbus(int sig)
{
	static const char msg[] = "lmtasks: the store's data.mdb shrank while it was read: the "
	    "store is damaged; restore it from a backup\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* Nothing more to say. */
	}
	_exit(EXIT_STORE);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const struct cli_command *c, *group;
	int ch, ret;

	signal(SIGBUS, on_sigbus);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			cli_db = optarg;
			break;
		case 'h':
			return print_usage();
		case 'V':
			printf("lmtasks %s\n", PACKAGE_VERSION);
			return EXIT_DONE;
		default:
			return cli_fail(EXIT_USAGE, "unknown option `%s`; see `lmtasks --help`",
			    argv[optind - 1]);
		}
	}
	if (optind == argc)
		return cli_fail(EXIT_USAGE, "no command given; see `lmtasks --help`");
	if (cli_db == NULL || *cli_db == '\0')
		cli_db = getenv("LMTASKS_DB");
	if (cli_db == NULL || *cli_db == '\0')
		cli_db = LMTASKS_DEFAULT_DB;

	argc -= optind;
	argv += optind;
	c = find(argc, argv, &group);
	if (c == NULL && group == NULL)
		return cli_fail(EXIT_USAGE, "unknown command `%s`; see `lmtasks --help`", argv[0]);
	if (asked(argc, argv, "--help", "-h"))
		return print_command_help(argv[0]);
	if (asked(argc, argv, "--version", NULL)) {
		printf("lmtasks %s\n", PACKAGE_VERSION);
		return EXIT_DONE;
	}
	if (c == NULL)
		return cli_usage(argv[0], group->usage);
	ret = run(c, group, argc, argv);
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_fail(EXIT_STORE, "writing the output: %s", strerror(errno));
	return ret;
}
