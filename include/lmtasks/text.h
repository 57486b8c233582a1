/* Text in and out, no I/O and no HTTP: percent-decoding of a request's path and query
 * string alike, and the one decimal writer every answer's numbers go through. */
#ifndef LMTASKS_TEXT_H
#define LMTASKS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The most digits a uint64_t takes. */
#define TEXT_U64_MAX 20

/* Writes v in decimal, no padding and no NUL, so that it ends just before end (with
 * TEXT_U64_MAX bytes before it); returns where it starts.  Inline: it runs for every
 * number of every answer. */
static inline char *
text_u64(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

/*
 * Decodes %XX escapes (and '+' as a space when plus is set) from len bytes at s
 * into out (at least len bytes; the caller's).  Returns the decoded length, or -1
 * for a malformed escape.
 */
long text_unescape(const char *s, size_t len, int plus, char *out);

#endif
