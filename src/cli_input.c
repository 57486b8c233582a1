/* What the user hands the CLI in a file or on standard input, read whole before anything
 * is written. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "lmtasks/progress.h"

/* Reads all of a stream into a NUL-terminated malloc'd buffer, telling p (may be NULL)
 * the bytes read of the file's size (not known for a pipe) once past the first MiB. */
#define READ_PROGRESS_FROM (1 << 20)
static int
slurp(FILE *f, char **out, size_t *outlen, const struct progress *p)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *nbuf;
	struct stat st;
	uint64_t total = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;

	if (buf == NULL)
		return ENOMEM;
	for (;;) {
		if (p && p->fn && len >= READ_PROGRESS_FROM)
			p->fn(p->ctx, "read", len, total, 0);
		if (cap - len < 2) {
			if ((nbuf = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return ENOMEM;
			}
			buf = nbuf;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno ? errno : EIO;
		free(buf);
		return e;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* Files and standard input read alike, whole, before anything is written. */
int
cli_read_input(const char *arg, char **text, size_t *len, const struct progress *p)
{
	FILE *f = strcmp(arg, "-") == 0 ? stdin : fopen(arg, "rb");
	int rc;

	if (f == NULL)
		return cli_fail(EXIT_USAGE, "cannot read %s: %s", arg, strerror(errno));
	rc = slurp(f, text, len, p);
	if (f != stdin)
		fclose(f);
	if (rc)
		return cli_fail(EXIT_USAGE, "cannot read %s: %s", arg, strerror(rc));
	return 0;
}
