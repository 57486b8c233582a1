/* FastCGI's name-value pairs, every length checked (see conn_pairs.h). */
#include "config.h"

#include <string.h>

#include <fastcgi.h>

#include "conn_pairs.h"

/* Reads one name-value length (1 or 4 bytes) at p[*i] of n bytes. */
static int
nv_len(const unsigned char *p, size_t n, size_t *i, size_t *len)
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

int
conn_pairs_next(const unsigned char *p, size_t n, size_t *i, const unsigned char **name,
    size_t *nl, const unsigned char **val, size_t *vl)
{
	if (nv_len(p, n, i, nl) != 0 || nv_len(p, n, i, vl) != 0 || *nl > n - *i ||
	    *vl > n - *i - *nl)
		return -1;
	*name = p + *i;
	*val = p + *i + *nl;
	*i += *nl + *vl;
	return 0;
}

/* The names we know, as the protocol asks a responder to answer them. */
long
conn_pairs_values(const unsigned char *p, size_t n, unsigned char *out, size_t cap)
{
	static const struct {
		const char *name, *val;
	} known[] = {
		{ FCGI_MAX_CONNS, "1024" }, { FCGI_MAX_REQS, "1024" }, { FCGI_MPXS_CONNS, "0" },
	};
	size_t len = 0, i = 0;

	while (i < n) {
		const unsigned char *name, *val;
		size_t nl, vl;
		if (conn_pairs_next(p, n, &i, &name, &nl, &val, &vl) != 0)
			return -1;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			size_t kl = strlen(known[k].name), vlen = strlen(known[k].val);
			if (kl != nl || memcmp(name, known[k].name, nl) != 0 ||
			    len + 2 + kl + vlen > cap)
				continue;
			out[len++] = (unsigned char)kl;
			out[len++] = (unsigned char)vlen;
			memcpy(out + len, known[k].name, kl);
			memcpy(out + len + kl, known[k].val, vlen);
			len += kl + vlen;
		}
	}
	return (long)len;
}
