/* Reading a file or standard input whole, for the CLI (cli_read_input() in cli.h is the
 * form that prints its own message). */
#ifndef LMTASKS_CLI_INPUT_H
#define LMTASKS_CLI_INPUT_H

#include <stddef.h>
#include <stdio.h>

/*
 * Reads all of f into a NUL-terminated buffer (*out, malloc'd, the caller frees it;
 * *outlen its length without the NUL), telling p (may be NULL) the bytes read of the
 * file's size (0 for a pipe) once past the first MiB.  0, ENOMEM, or the errno of the
 * read (EIO when there is none); on failure *out is not set.
 */
struct progress;
int cli_input_read(FILE *f, char **out, size_t *outlen, const struct progress *p);

#endif
