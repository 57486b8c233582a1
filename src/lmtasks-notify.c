/* lmtasks-notify: the webhook deliverer behind `lmtasks notify`, which execs it with its
 * own arguments.  A program of its own so that only it links libcurl (and zlib): the CLI
 * that scripts start thousands of times maps none of curl's libraries.  Its table holds
 * notify alone, with lmtasks's entry (options, help) and the deliverer as handler. */
#include "config.h"

#include "cli.h"

static const char usage_head[] =
"usage: lmtasks-notify [--db PATH] notify [--once] [--interval SECONDS] [--batch-size N]\n"
"\n"
"The webhook deliverer of the lmtasks store, run as `lmtasks notify`.\n"
"\n"
"Commands:\n";

static const char usage_tail[] =
"\n"
"See lmtasks(1): `lmtasks notify --help`, `lmtasks --help`.\n";

int
main(int argc, char **argv)
{
	struct cli_command notify = cli_cmd_notify;
	const struct cli_command *const commands[] = { &notify };
	const struct cli_program deliverer = {
		"lmtasks-notify", commands, 1, usage_head, usage_tail
	};

	notify.exec = cli_notify_deliver;	/* not lmtasks's, which would exec this again */
	return cli_main(&deliverer, argc, argv);
}
