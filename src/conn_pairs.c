/* FastCGI's name-value pairs, every length checked (see conn_pairs.h). */
#include "config.h"

#include <string.h>

#include <fastcgi.h>

#include "conn_pairs.h"

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
