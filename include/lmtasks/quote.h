/* Values quoted in error messages, for every module that names a caller's input. */
#ifndef LMTASKS_QUOTE_H
#define LMTASKS_QUOTE_H

#include <stddef.h>

/*
 * Writes a printable form of len bytes at s into out (outsz bytes), for messages:
 * control bytes and invalid UTF-8 become U+FFFD, long values are cut with "...".
 * Returns out.
 */
const char *quote_text(const char *s, size_t len, char *out, size_t outsz);

#endif
