/* Reading what the user hands the CLI in a file or on standard input, whole, before
 * anything is written. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli_input.h"
#include "lmtasks/progress.h"

/* Past the first MiB a reading tells its progress: a large --batch file takes a moment. */
#define READ_PROGRESS_FROM (1 << 20)

/* Grows the buffer as it goes: the size of a pipe is not known. */
int
cli_input_read(FILE *f, char **out, size_t *outlen, const struct progress *p)
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
