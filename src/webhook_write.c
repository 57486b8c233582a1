/* Webhook records stored and removed: the write side of webhook.c, linked by the writers
 * alone. */
#include "config.h"

#include "lmtasks/error.h"
#include "lmtasks/webhook.h"
#include "store_internal.h"

int
webhook_put(store *s, MDB_txn *txn, const struct webhook *w)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	/* Every writer opens the database (store_open): absent here means a read-only store. */
	if (!s->has_webhooks)
		return LMT_EINVAL;
	store_key_uid(kb, w->id);
	v.mv_size = webhook_encode(w, NULL);
	if ((rc = mdb_put(txn, s->webhooks, &k, &v, MDB_RESERVE)) != 0)
		return rc;
	webhook_encode(w, v.mv_data);
	return 0;
}

int
webhook_del(store *s, MDB_txn *txn, uint64_t id)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };

	if (!s->has_webhooks)
		return MDB_NOTFOUND;
	store_key_uid(kb, id);
	return mdb_del(txn, s->webhooks, &k, NULL);
}
