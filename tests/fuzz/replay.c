/* A driver for the fuzz targets without libFuzzer: feeds each file named (or each file
 * in a directory named) to LLVMFuzzerTestOneInput once, so `make check` replays every
 * seed through the same entry points the fuzzer uses.  An invariant that fails aborts. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long replayed;

/* Runs the target on the whole of one file. */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, len = 0, n;
	uint8_t *buf = malloc(cap), *nbuf;

	if (f == NULL || buf == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		free(buf);
		if (f)
			fclose(f);
		return 1;
	}
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			if ((nbuf = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				fclose(f);
				return 1;
			}
			buf = nbuf;
			cap *= 2;
		}
	}
	fclose(f);
	/* An exact-size copy, so that a read past the input is caught under ASan. */
	uint8_t *exact = malloc(len ? len : 1);
	if (exact == NULL) {
		free(buf);
		return 1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	replayed++;
	return 0;
}

/* A directory's regular files, each once. */
static int
replay_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char file[PATH_MAX];
	struct stat st;
	int bad = 0;

	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
			bad |= replay_file(file);
	}
	closedir(d);
	return bad;
}

int
main(int argc, char **argv)
{
	struct stat st;
	int bad = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			bad |= replay_dir(argv[i]);
		else
			bad |= replay_file(argv[i]);
	}
	printf("%lu inputs replayed\n", replayed);
	return bad;
}
