/* The compatibility level: read per read transaction, so a change is seen at once. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/printbuf.h>

#include "lmtasks/compat.h"
#include "lmtasks/error.h"
#include "lmtasks/query.h"
#include "lmtasks/quote.h"

const char *
compat_name(uint64_t level)
{
	return level == COMPAT_V025 ? "v0.25" : level == COMPAT_V1 ? "v1" : NULL;
}

int
compat_parse(const char *name, uint64_t *level)
{
	if (strcmp(name, "v0.25") == 0)
		*level = COMPAT_V025;
	else if (strcmp(name, "v1") == 0)
		*level = COMPAT_V1;
	else
		return LMT_EINVAL;
	return 0;
}

int
compat_read(store *s, MDB_txn *txn, enum compat_level *level)
{
	uint64_t v;
	int rc = store_meta_get(s, txn, COMPAT_KEY, &v);

	*level = COMPAT_V025;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (compat_name(v) == NULL)
		return LMT_ECORRUPT;
	*level = (enum compat_level)v;
	return 0;
}

/* Meilisearch v1's task types, in the order its message lists them. */
static const char *const meili_types[] = {
	"documentAdditionOrUpdate", "documentEdition", "documentDeletion", "settingsUpdate",
	"indexCreation", "indexDeletion", "indexUpdate", "indexSwap", "taskCancelation",
	"taskDeletion", "dumpCreation", "snapshotCreation", "export", "upgradeDatabase",
	"indexCompaction", "networkTopologyChange", "dsrUpdate", "dsrClear",
};
#define NMEILI (sizeof(meili_types) / sizeof(meili_types[0]))

static int
is_meili(struct task_str t)
{
	for (size_t i = 0; i < NMEILI; i++) {
		if (strlen(meili_types[i]) == t.len && memcmp(meili_types[i], t.ptr, t.len) == 0)
			return 1;
	}
	return 0;
}

struct held {
	struct task_str want;
	int found;
	struct printbuf *pb;	/* the list of the store's own types, or NULL */
};

static int
find_type(void *ctx, struct task_str type)
{
	struct held *h = ctx;

	if (h->pb) {
		if (is_meili(type))
			return 0;
		if (printbuf_memappend(h->pb, ", `", 3) < 0 ||
		    printbuf_memappend(h->pb, type.ptr, (int)type.len) < 0 ||
		    printbuf_memappend(h->pb, "`", 1) < 0)
			return ENOMEM;
		return 0;
	}
	if (type.len == h->want.len && memcmp(type.ptr, h->want.ptr, type.len) == 0)
		h->found = 1;
	return h->found;
}

int
compat_check_types(store *s, MDB_txn *txn, const struct query *q, struct query_error *why)
{
	struct held h = { { NULL, 0 }, 0, NULL };
	char shown[128];
	int rc;

	for (size_t i = 0; i < q->ntypes; i++) {
		if (is_meili(q->types[i]))
			continue;
		h.want = q->types[i];
		h.found = 0;
		if ((rc = store_type_walk(s, txn, find_type, &h)) != 0 && !h.found)
			return rc;
		if (h.found)
			continue;
		/* Meilisearch's message, with the store's own types after its own. */
		if ((h.pb = printbuf_new()) == NULL)
			return ENOMEM;
		for (size_t k = 0; k < NMEILI; k++) {
			printbuf_memappend(h.pb, k ? ", `" : "`", k ? 3 : 1);
			printbuf_memappend(h.pb, meili_types[k], (int)strlen(meili_types[k]));
			printbuf_memappend(h.pb, "`", 1);
		}
		rc = store_type_walk(s, txn, find_type, &h);
		why->code = "invalid_task_types";
		snprintf(why->message, sizeof(why->message), "Invalid value in parameter `types`: "
		    "`%s` is not a valid task type. Available types are %s.",
		    quote_text(q->types[i].ptr, q->types[i].len, shown, sizeof(shown)), h.pb->buf);
		printbuf_free(h.pb);
		return rc ? rc : LMT_EINVAL;
	}
	return 0;
}
