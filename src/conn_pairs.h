/* FastCGI's name-value pairs (FCGI_PARAMS, FCGI_GET_VALUES), read with every length
 * checked against the bytes there are: conn.c's, kept apart to keep that file short. */
#ifndef LMTASKS_CONN_PAIRS_H
#define LMTASKS_CONN_PAIRS_H

#include <stddef.h>

/* The pair at p[*i] of n bytes: its name and value (pointers into p) and lengths, *i moved
 * past it.  Returns 0, or -1 when a length runs past the end. */
int conn_pairs_next(const unsigned char *p, size_t n, size_t *i, const unsigned char **name,
    size_t *nl, const unsigned char **val, size_t *vl);

/* The content of an FCGI_GET_VALUES_RESULT answering the names asked in p (n bytes) that
 * the responder knows, written to out (cap bytes).  Returns its length, or -1 when p is
 * malformed. */
long conn_pairs_values(const unsigned char *p, size_t n, unsigned char *out, size_t cap);

#endif
