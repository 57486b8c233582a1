/* FastCGI's name-value pairs (FCGI_PARAMS, FCGI_GET_VALUES), read with every length
 * checked against the bytes there are: conn.c's, kept apart to keep that file short. */
#ifndef LMTASKS_CONN_PAIRS_H
#define LMTASKS_CONN_PAIRS_H

#include <stddef.h>

/* Reads one name-value length (1 or 4 bytes) at p[*i] of n bytes. */
static inline int
conn_pairs_len(const unsigned char *p, size_t n, size_t *i, size_t *len)
{
	if (*i >= n)
		return -1;
	if (p[*i] < 0x80) {
		*len = p[(*i)++];
		return 0;
	}
	if (n - *i < 4)
		return -1;
	*len = ((size_t)(p[*i] & 0x7f) << 24) | ((size_t)p[*i + 1] << 16) |
	    ((size_t)p[*i + 2] << 8) | p[*i + 3];
	*i += 4;
	return 0;
}

/* The pair at p[*i] of n bytes: its name and value (pointers into p) and lengths, *i moved
 * past it.  Returns 0, or -1 when a length runs past the end.  Inline: it runs for every
 * parameter of every request. */
static inline int
conn_pairs_next(const unsigned char *p, size_t n, size_t *i, const unsigned char **name,
    size_t *nl, const unsigned char **val, size_t *vl)
{
	if (conn_pairs_len(p, n, i, nl) != 0 || conn_pairs_len(p, n, i, vl) != 0 ||
	    *nl > n - *i || *vl > n - *i - *nl)
		return -1;
	*name = p + *i;
	*val = p + *i + *nl;
	*i += *nl + *vl;
	return 0;
}

/* The content of an FCGI_GET_VALUES_RESULT answering the names asked in p (n bytes) that
 * the responder knows, written to out (cap bytes).  Returns its length, or -1 when p is
 * malformed. */
long conn_pairs_values(const unsigned char *p, size_t n, unsigned char *out, size_t cap);

#endif
