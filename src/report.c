/* The CLI's reports, through the renderer the responder uses: no JSON is printed by hand. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmtasks/render.h"
#include "lmtasks/report.h"
#include "lmtasks/timefmt.h"

#include <json-c/json.h>
#include <strings.h>

/* Appends a formatted piece of JSON made only of numbers and fixed names. */
__attribute__((format(printf, 2, 3)))
static int
append(struct printbuf *pb, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return ENOMEM;
	return printbuf_memappend(pb, buf, n) < 0 ? ENOMEM : 0;
}

static int
time_string(struct printbuf *pb, int64_t us)
{
	char when[TIMEFMT_BUFSZ];

	return render_string(pb, when, timefmt_rfc3339(us, when));
}

/* enqueue --batch answers with the range of uids it gave. */
int
report_batch(struct printbuf *pb, size_t n, uint64_t first, uint64_t last)
{
	if (n == 0)
		return append(pb, "{\"enqueued\":0,\"firstUid\":null,\"lastUid\":null}");
	return append(pb, "{\"enqueued\":%zu,\"firstUid\":%" PRIu64 ",\"lastUid\":%" PRIu64 "}",
	    n, first, last);
}

/* reap says how many leases it ended. */
int
report_reaped(struct printbuf *pb, uint64_t n)
{
	return append(pb, "{\"reaped\":%" PRIu64 "}", n);
}

/* One index as `index list` shows it. */
int
report_index(struct printbuf *pb, struct task_str name, int64_t created_at)
{
	int rc = append(pb, "{\"uid\":");

	if (rc == 0)
		rc = render_string(pb, name.ptr, name.len);
	if (rc == 0)
		rc = append(pb, ",\"createdAt\":");
	if (rc == 0)
		rc = time_string(pb, created_at);
	return rc ? rc : append(pb, "}");
}

/* index list closes with its total, as the task lists do. */
int
report_list_end(struct printbuf *pb, uint64_t total)
{
	return append(pb, "],\"total\":%" PRIu64 "}", total);
}

/* key list has no total. */
int
report_results_end(struct printbuf *pb)
{
	return append(pb, "]}");
}

/* index delete confirms the name it removed. */
int
report_index_deleted(struct printbuf *pb, struct task_str name)
{
	int rc = append(pb, "{\"uid\":");

	if (rc == 0)
		rc = render_string(pb, name.ptr, name.len);
	return rc ? rc : append(pb, ",\"deleted\":true}");
}

/* A key's public fields; the secret only once, at creation. */
int
report_key(struct printbuf *pb, const struct auth_key *k, const char *secret)
{
	char uid[37];
	int rc = append(pb, "{");

	auth_uid_format(k->uid, uid);
	if (secret && rc == 0 && (rc = append(pb, "\"key\":")) == 0 &&
	    (rc = render_string(pb, secret, AUTH_KEY_CHARS)) == 0)
		rc = append(pb, ",");
	if (rc == 0 && (rc = append(pb, "\"uid\":\"%s\",\"description\":", uid)) == 0)
		rc = k->description.ptr ? render_string(pb, k->description.ptr, k->description.len)
		    : append(pb, "null");
	const char *names[AUTH_ACTIONS_MAX];
	size_t na = auth_actions_list(k->actions ? k->actions : AUTH_ACTIONS_DEFAULT, names);
	if (rc == 0)
		rc = append(pb, ",\"actions\":[");
	for (size_t i = 0; rc == 0 && i < na; i++)
		rc = append(pb, "%s\"%s\"", i ? "," : "", names[i]);
	if (rc == 0)
		rc = append(pb, "],\"indexes\":[%s", k->all ? "\"*\"" : "");
	for (size_t i = 0; rc == 0 && i < k->nindexes; i++) {
		if (i)
			rc = append(pb, ",");
		if (rc == 0)
			rc = render_string(pb, k->indexes[i].ptr, k->indexes[i].len);
	}
	if (rc == 0)
		rc = append(pb, "],\"expiresAt\":");
	if (rc == 0)
		rc = k->expires_at ? time_string(pb, k->expires_at) : append(pb, "null");
	if (rc == 0)
		rc = append(pb, ",\"createdAt\":");
	if (rc == 0)
		rc = time_string(pb, k->created_at);
	return rc ? rc : append(pb, "}");
}

/* key delete confirms. */
int
report_deleted(struct printbuf *pb)
{
	return append(pb, "{\"deleted\":true}");
}

/* Each setting's name and value as settings_format() spells it. */
int
report_settings(struct printbuf *pb, const struct settings *st)
{
	int rc = append(pb, "{");

	for (unsigned i = 0; rc == 0 && i < SETTING_COUNT; i++) {
		char text[SETTINGS_TEXT_MAX];
		int word = settings_format((enum setting_id)i, st->v[i], text);
		rc = append(pb, word ? "%s\"%s\":\"%s\"" : "%s\"%s\":%s", i ? "," : "",
		    settings_name((enum setting_id)i), text);
	}
	return rc ? rc : append(pb, "}");
}

/* stats: the counts, the sizes and the settings that bound them. */
int
report_stats(struct printbuf *pb, const struct store_stats *st, uint64_t live_bytes,
    const struct settings *set)
{
	int rc = append(pb, "{\"tasks\":%" PRIu64 ",\"nextUid\":%" PRIu64 ",\"statuses\":{",
	    st->tasks, st->next_uid);

	for (int i = 0; rc == 0 && i < TASK_NSTATUS; i++)
		rc = append(pb, "%s\"%s\":%" PRIu64, i ? "," : "",
		    task_status_name((enum task_status)i), st->by_status[i]);
	if (rc == 0)
		rc = append(pb, "},\"indexes\":%" PRIu64 ",\"pageSize\":%u,\"usedBytes\":%" PRIu64
		    ",\"mapSize\":%" PRIu64 ",\"liveBytes\":%" PRIu64 ",\"newTasksUntilBytes\":%"
		    PRIu64 ",\"settings\":", st->indexes, st->page_size, st->used_bytes,
		    st->map_size, live_bytes,
		    set->v[SETTING_MAX_BYTES] / 100 * SETTINGS_ENQUEUE_PERCENT);
	if (rc == 0)
		rc = report_settings(pb, set);
	return rc ? rc : append(pb, "}");
}

/* check: the verdict and the numbers behind it. */
int
report_check(struct printbuf *pb, uint64_t checked, uint64_t problems)
{
	return append(pb, "{\"ok\":%s,\"tasks\":%" PRIu64 ",\"problems\":%" PRIu64 "}",
	    problems ? "false" : "true", checked, problems);
}

/* A time, or null for 0. */
static int
time_or_null(struct printbuf *pb, int64_t us)
{
	return us ? time_string(pb, us) : append(pb, "null");
}

/* The headers object, the values of Authorization hidden past "Bearer ". */
static int
webhook_headers(struct printbuf *pb, struct task_str text)
{
	json_tokener *tok = json_tokener_new();
	json_object *obj = tok ? json_tokener_parse_ex(tok, text.ptr, (int)text.len) : NULL;
	int rc = append(pb, "{"), n = 0;

	if (tok)
		json_tokener_free(tok);
	if (obj && json_object_is_type(obj, json_type_object)) {
		json_object_object_foreach(obj, name, val) {
			/* null (NULL here) only in a damaged store: shown as it is. */
			const char *v = json_object_get_string(val);
			if (v == NULL) {
				if (rc == 0 && n++)
					rc = append(pb, ",");
				if (rc == 0)
					rc = render_string(pb, name, strlen(name));
				if (rc == 0)
					rc = append(pb, ":null");
				continue;
			}
			size_t keep = strlen(v);
			if (strcasecmp(name, "authorization") == 0)
				keep = strncmp(v, "Bearer ", 7) == 0 ? 7 : 0;
			if (rc == 0 && n++)
				rc = append(pb, ",");
			if (rc == 0)
				rc = render_string(pb, name, strlen(name));
			if (rc == 0)
				rc = append(pb, ":");
			if (rc == 0 && keep == strlen(v)) {
				rc = render_string(pb, v, keep);
			} else if (rc == 0) {
				char hidden[16];
				snprintf(hidden, sizeof(hidden), "%.*sXXX...", (int)keep, v);
				rc = render_string(pb, hidden, strlen(hidden));
			}
		}
	}
	json_object_put(obj);
	return rc ? rc : append(pb, "}");
}

/* text as a JSON string, the password of w's URL masked (webhook_mask()). */
static int
masked_string(struct printbuf *pb, const struct webhook *w, struct task_str text)
{
	char *shown;
	size_t len;
	int rc = webhook_mask(w->url.ptr, w->url.len, text.ptr, text.len, &shown, &len);

	if (rc == 0)
		rc = render_string(pb, shown, len);
	free(shown);
	return rc;
}

/* webhook add and webhook list: where its deliveries stand; a password in the URL is
 * shown as "***", in the URL and in the last error (0.2.0 kept it there in clear). */
int
report_webhook(struct printbuf *pb, const struct webhook *w, uint64_t first, uint64_t last)
{
	int pruned = w->cursor + 1 < first && w->cursor < last;
	int rc = append(pb, "{\"id\":%" PRIu64 ",\"url\":", w->id);

	if (rc == 0)
		rc = masked_string(pb, w, w->url);
	if (rc == 0)
		rc = append(pb, ",\"headers\":");
	if (rc == 0)
		rc = webhook_headers(pb, w->headers);
	if (rc == 0)
		rc = append(pb, ",\"filters\":");
	if (rc == 0)
		rc = render_string(pb, w->filter.ptr, w->filter.len);
	if (rc == 0)
		rc = append(pb, ",\"cursor\":%" PRIu64 ",\"pending\":%" PRIu64 ",\"pruned\":%s"
		    ",\"missedChanges\":%" PRIu64 ",\"missedAt\":", w->cursor,
		    last > w->cursor ? last - w->cursor : 0, pruned ? "true" : "false", w->missed);
	if (rc == 0)
		rc = time_or_null(pb, w->missed_at);
	if (rc == 0)
		rc = append(pb, ",\"delivered\":%" PRIu64 ",\"deliveredAt\":", w->delivered);
	if (rc == 0)
		rc = time_or_null(pb, w->delivered_at);
	if (rc == 0)
		rc = append(pb, ",\"lastError\":");
	if (rc == 0)
		rc = w->error.ptr ? masked_string(pb, w, w->error) : append(pb, "null");
	if (rc == 0)
		rc = append(pb, ",\"failingSince\":");
	if (rc == 0)
		rc = time_or_null(pb, w->failing_since);
	if (rc == 0)
		rc = append(pb, ",\"createdAt\":");
	if (rc == 0)
		rc = time_string(pb, w->created_at);
	return rc ? rc : append(pb, "}");
}

int
report_backup(struct printbuf *pb, const char *dir, uint64_t tasks, uint64_t next_uid)
{
	int rc = append(pb, "{\"backup\":");

	if (rc == 0)
		rc = render_string(pb, dir, strlen(dir));
	return rc ? rc : append(pb, ",\"tasks\":%" PRIu64 ",\"nextUid\":%" PRIu64 "}", tasks,
	    next_uid);
}

int
report_restore(struct printbuf *pb, const char *dir, uint64_t tasks, uint64_t changed,
    uint64_t next_uid)
{
	int rc = append(pb, "{\"restored\":");

	if (rc == 0)
		rc = render_string(pb, dir, strlen(dir));
	return rc ? rc : append(pb, ",\"tasks\":%" PRIu64 ",\"changedTasks\":%" PRIu64
	    ",\"nextUid\":%" PRIu64 "}", tasks, changed, next_uid);
}

size_t
report_size_text(uint64_t size, char out[32])
{
	static const struct {
		const char *name;
		uint64_t bytes;
	} units[] = {
		{ "EiB", UINT64_C(1) << 60 }, { "EB", UINT64_C(1000000000000000000) },
		{ "PiB", UINT64_C(1) << 50 }, { "PB", UINT64_C(1000000000000000) },
		{ "TiB", UINT64_C(1) << 40 }, { "TB", UINT64_C(1000000000000) },
		{ "GiB", UINT64_C(1) << 30 }, { "GB", UINT64_C(1000000000) },
		{ "MiB", UINT64_C(1) << 20 }, { "MB", UINT64_C(1000000) },
		{ "KiB", UINT64_C(1) << 10 }, { "KB", UINT64_C(1000) },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t u = units[i].bytes;
		/* Exact in thousandths: the rest times 1000 a multiple of the unit. */
		unsigned __int128 milli = (unsigned __int128)(size % u) * 1000;
		if (size < u || milli % u != 0)
			continue;
		unsigned frac = (unsigned)(milli / u);
		int n = snprintf(out, 32, "%" PRIu64, size / u);
		if (frac) {
			n += snprintf(out + n, (size_t)(32 - n), ".%03u", frac);
			while (out[n - 1] == '0')
				n--;
		}
		n += snprintf(out + n, (size_t)(32 - n), " %s", units[i].name);
		return (size_t)n;
	}
	return (size_t)snprintf(out, 32, "%" PRIu64 " B", size);
}

int
report_compaction(struct printbuf *pb, uint64_t pre, uint64_t post)
{
	char a[32], b[32];

	report_size_text(pre, a);
	report_size_text(post, b);
	return append(pb, "{\"preSize\":\"%s\",\"postSize\":\"%s\",\"status\":\"succeeded\","
	    "\"preBytes\":%" PRIu64 ",\"postBytes\":%" PRIu64 "}", a, b, pre, post);
}
