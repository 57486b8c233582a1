/* Text of a request as it comes over the wire: percent-decoding for the path and the query
 * string alike, no I/O and no HTTP. */
#ifndef LMTASKS_TEXT_H
#define LMTASKS_TEXT_H

#include <stddef.h>

/*
 * Decodes %XX escapes (and '+' as a space when plus is set) from len bytes at s
 * into out (at least len bytes; the caller's).  Returns the decoded length, or -1
 * for a malformed escape.
 */
long text_unescape(const char *s, size_t len, int plus, char *out);

#endif
