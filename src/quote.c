/* Values shown inside error messages: printable, valid UTF-8, bounded. */
#include "config.h"

#include <string.h>

#include "lmtasks/quote.h"
#include "lmtasks/task.h"

const char *
quote_text(const char *s, size_t len, char *out, size_t outsz)
{
	size_t n = 0, i = 0;

	while (i < len && n + 8 < outsz) {
		unsigned char c = (unsigned char)s[i];
		size_t w = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (c >= 0x20 && c != 0x7f && (w == 1 || (i + w <= len && task_utf8_valid(s + i, w)))) {
			memcpy(out + n, s + i, w);
			n += w;
			i += w;
		} else {
			memcpy(out + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		}
	}
	if (i < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}
