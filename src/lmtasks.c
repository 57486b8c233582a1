/* lmtasks: the companion CLI and the only writer of the task store (SPEC §3).  Each
 * command is an entry of the table below, defined next to its handler in cli_*.c. */
#include "config.h"

#include "cli.h"

#ifndef LMTASKS_DEFAULT_DB
#define LMTASKS_DEFAULT_DB "/var/lib/lmtasks"
#endif

/* Every command, in the order --help lists them. */
static const struct cli_command *const commands[] = {
	&cli_cmd_init, &cli_cmd_enqueue, &cli_cmd_start, &cli_cmd_claim, &cli_cmd_heartbeat,
	&cli_cmd_succeed, &cli_cmd_fail, &cli_cmd_work, &cli_cmd_reap, &cli_cmd_retry,
	&cli_cmd_cancel, &cli_cmd_get,
	&cli_cmd_list, &cli_cmd_wait, &cli_cmd_watch, &cli_cmd_batch, &cli_cmd_batch_get,
	&cli_cmd_batch_list, &cli_cmd_delete, &cli_cmd_index, &cli_cmd_index_list,
	&cli_cmd_index_delete, &cli_cmd_key, &cli_cmd_key_create, &cli_cmd_key_list,
	&cli_cmd_key_delete, &cli_cmd_webhook, &cli_cmd_webhook_add, &cli_cmd_webhook_list,
	&cli_cmd_webhook_delete, &cli_cmd_notify, &cli_cmd_config, &cli_cmd_stats, &cli_cmd_check,
	&cli_cmd_backup, &cli_cmd_restore,
	&cli_cmd_compact,
};

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
"webhook's receiver did not take its tasks; 124 wait timed out; 126 or 127\n"
"notify: its program, lmtasks-notify, could not be run or was not found (work:\n"
"its COMMAND).\n"
"A store past 40% of maxBytes, or on a disk too full for its reserve, refuses new\n"
"tasks (exit 4) and goes on finishing and deleting them: delete finished tasks\n"
"(lmtasks delete --statuses succeeded,failed,canceled) or raise `config maxBytes`.\n";

int
main(int argc, char **argv)
{
	static const struct cli_program lmtasks = {
		"lmtasks", commands, sizeof(commands) / sizeof(commands[0]), usage_head, usage_tail
	};

	return cli_main(&lmtasks, argc, argv);
}
