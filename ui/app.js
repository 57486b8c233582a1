// The dashboard: reads the tasks API page by page (never the whole store), and stays
// live on GET /tasks/stream: each event updates what shows that task at once, and asks
// again, at most four times a second, for the counts and the page on screen.

import { ApiError, apiBase, apiGet, keyGet, keySet, readEvents, streamOpen } from "./api.js";
import { chartsCounts, chartsInit, chartsThroughput, chartsTick } from "./charts.js";
import { count, span } from "./format.js";
import { batchRow, el, errorRow, fill, groupErrors, taskRow } from "./views.js";

const $ = (id) => document.getElementById(id);
const STATUSES = ["enqueued", "processing", "succeeded", "failed", "canceled"];
const FINISHED = new Set(["succeeded", "failed", "canceled"]);
const ERRORS_PAGE = 200;	// failed tasks grouped by code
const FINISHED_PAGE = 200;	// finished tasks the throughput starts from
const BATCHES_PAGE = 10;
const THROTTLE_MS = 250;

const state = {
	v1: false,		// the store answers as Meilisearch v1 (GET /batches exists)
	authFailed: false,
	filters: {},
	from: null,		// the page on screen: null for the first
	next: null,
	limit: 20,
	oldest: null,		// the oldest enqueued task {uid, enqueuedAt}
	finishedIn: new Map(),	// the start of a 10 s slice (ms) -> the tasks finished in it
	firstPage: new Set(),	// the uids of loadFinished's page (the stream may repeat them)
	finishedSince: null,	// before this, the throughput knows nothing (ms), or null
	lastId: null,		// the last event's id, to resume the stream
	stream: null,		// its AbortController
	record: null,		// {kind, uid} of the open record
	batches: [],		// the uids of the batches on screen, newest first
	batchTotal: 0,
	touched: new Set(),	// batches to ask for again
};

// ---- messages ----

function alertShow(text) {
	const a = $("alert");
	a.textContent = text;
	a.hidden = false;
}

function alertClear() {
	const a = $("alert");
	a.textContent = "";
	a.hidden = true;
}

// Says what went wrong, in words a person can act on; true for a key problem.
function report(e, what) {
	if (e instanceof ApiError && e.status === 401) {
		state.authFailed = true;
		alertShow("This server needs an API key: type it in “API key” above and choose “Use key”. " +
			`(${e.message})`);
		return true;
	}
	if (e instanceof ApiError && e.status === 403) {
		state.authFailed = true;
		alertShow(`The server refused this API key: ${e.message} Type another one in “API key” above.`);
		return true;
	}
	if (e instanceof ApiError)
		alertShow(`${what}: ${e.message}${e.code ? ` (${e.code})` : ""}`);
	else if (e && e.name !== "AbortError")
		alertShow(`${what}: cannot reach the API at ${apiBase.href} (${e && e.message ? e.message : e}).`);
	return false;
}

function setLive(s, text) {
	const p = $("live");
	p.dataset.state = s;
	p.textContent = text;
}

// ---- the overview ----

async function refreshCounts() {
	const totals = await Promise.all([
		apiGet("tasks", { limit: 0 }),
		...STATUSES.map((s) => apiGet("tasks", { statuses: s, limit: 0 })),
		apiGet("tasks", { statuses: "enqueued", reverse: "true", limit: 1 }),
	]);
	const by = {};
	$("count-total").textContent = count(totals[0].total);
	STATUSES.forEach((s, i) => {
		by[s] = totals[i + 1].total;
		$(`count-${s}`).textContent = count(by[s]);
	});
	const oldest = totals[STATUSES.length + 1].results[0];
	state.oldest = oldest ? { uid: oldest.uid, at: Date.parse(oldest.enqueuedAt) } : null;
	showAge();
	chartsCounts(Date.now(), by);
}

function showAge() {
	const o = state.oldest;
	$("queue-age").textContent = o ? `${span(Date.now() - o.at)} (task ${o.uid})` : "empty queue";
}

const MINUTE = 60000;
const SLICE = 10000;

// Counts a finished task in the minute it finished (a task finishes once: each is counted
// once, but for the first page's, which the stream may bring again).
function noteFinished(t, first) {
	if (!FINISHED.has(t.status) || !t.finishedAt)
		return;
	if (!first && state.firstPage.has(t.uid))
		return;
	const at = Date.parse(t.finishedAt);
	const slice = Math.floor(at / SLICE) * SLICE;
	state.finishedIn.set(slice, (state.finishedIn.get(slice) || 0) + 1);
	if (first)
		state.firstPage.add(t.uid);
	if (first && (state.finishedSince === null || at < state.finishedSince))
		state.finishedSince = at;
}

// The newest finished tasks: where the throughput starts when the page opens.
async function loadFinished() {
	const page = await apiGet("tasks", { statuses: [...FINISHED].join(","), limit: FINISHED_PAGE });
	state.finishedIn.clear();
	state.firstPage.clear();
	state.finishedSince = null;
	page.results.forEach((t) => noteFinished(t, true));
	// A full page may not reach back far: before its oldest task, nothing is known.
	if (page.results.length < FINISHED_PAGE)
		state.finishedSince = null;
	showThroughput();
}

// The throughput: the tasks finished in the last 10 minutes (to 10 s), and per minute
// over the last 30.
function showThroughput() {
	const now = Date.now();
	const start = Math.floor(now / MINUTE) * MINUTE - 29 * MINUTE;
	const minutes = Array.from({ length: 30 }, (_, i) => ({ start: start + i * MINUTE, n: 0 }));
	let recent = 0;
	for (const [slice, n] of state.finishedIn) {
		const i = Math.floor((slice - start) / MINUTE);
		if (i < 0) {
			state.finishedIn.delete(slice);
			continue;
		}
		if (i < 30)
			minutes[i].n += n;
		if (slice + SLICE > now - 10 * MINUTE)
			recent += n;
	}
	const partial = state.finishedSince !== null && state.finishedSince > now - 10 * MINUTE;
	$("throughput").textContent = `${partial ? "at least " : ""}${count(recent)} ` +
		`(${(recent / 10).toFixed(1)} a minute)`;
	$("throughput-caption").textContent = "Tasks finished per minute, last 30 minutes" +
		(state.finishedSince !== null && state.finishedSince > start ?
			` (known from the ${FINISHED_PAGE} most recent finished tasks and the live stream)` : "");
	chartsThroughput(minutes);
}

// ---- the tasks table ----

function filtersRead() {
	const f = new FormData($("filters"));
	const q = {};
	const statuses = f.getAll("statuses");
	if (statuses.length)
		q.statuses = statuses.join(",");
	for (const name of ["types", "indexUids", "uids", "canceledBy", "batchUids", ...DATES]) {
		const v = String(f.get(name) || "").replace(/\s+/g, "");
		if (v && (name !== "batchUids" || state.v1))
			q[name] = v;
	}
	if (f.get("reverse"))
		q.reverse = "true";
	state.limit = Number(f.get("limit")) || 20;
	return q;
}

const DATES = ["afterEnqueuedAt", "beforeEnqueuedAt", "afterStartedAt", "beforeStartedAt",
	"afterFinishedAt", "beforeFinishedAt"];

// Whether the API counts the table's matches by reading the tasks (a date filter): then
// a change does not make the page ask again by itself.
function filtersWalk() {
	return DATES.some((k) => k in state.filters);
}

function filtersActive() {
	return Object.keys(state.filters).filter((k) => k !== "reverse").length > 0;
}

async function refreshTasks() {
	const page = await apiGet("tasks", { ...state.filters, limit: state.limit, from: state.from });
	const focused = document.activeElement && document.activeElement.closest("#tasks tr[data-uid]");
	const focusUid = focused ? focused.dataset.uid : null;
	fill($("tasks").tBodies[0], page.results.map((t) => taskRow(t, state.v1, openTask)));
	if (focusUid) {
		const b = $("tasks").querySelector(`tr[data-uid="${focusUid}"] button`);
		if (b)
			b.focus();
	}
	state.next = page.next;
	const first = page.results.length ? page.results[0].uid : null;
	const last = page.results.length ? page.results[page.results.length - 1].uid : null;
	$("tasks-summary").textContent = page.total === 0 ?
		(filtersActive() ? "No task matches these filters." : "No task yet.") :
		`${count(page.total)} ${page.total === 1 ? "task" : "tasks"}` +
		(filtersActive() ? " match these filters" : "") +
		(first !== null ? `; showing ${page.results.length}, uids ${first} to ${last}.` : ".");
	$("page-next").disabled = page.next === null;
	$("page-first").disabled = state.from === null;
	$("tasks-stale").hidden = true;
}

// A task seen in the stream: its row, if on screen, shows it at once.
function updateRow(t) {
	const row = $("tasks").querySelector(`tr[data-uid="${t.uid}"]`);
	if (!row)
		return;
	const had = row.contains(document.activeElement);
	const fresh = taskRow(t, state.v1, openTask);
	fresh.classList.add("changed");
	row.replaceWith(fresh);
	if (had)
		fresh.querySelector("button").focus();
}

// ---- errors and batches ----

async function refreshErrors() {
	const page = await apiGet("tasks", { statuses: "failed", limit: ERRORS_PAGE });
	const groups = groupErrors(page.results);
	fill($("errors").tBodies[0], groups.map((g) => errorRow(g, showErrorTasks)));
	$("errors-summary").textContent = page.total === 0 ? "No failed task." :
		`${count(page.total)} failed ${page.total === 1 ? "task" : "tasks"}` +
		(page.total > page.results.length ? `; the ${page.results.length} most recent, by code:` : ", by code:");
}

function showErrorTasks(g) {
	const form = $("filters");
	form.reset();
	form.querySelector('input[name=statuses][value=failed]').checked = true;
	form.elements.uids.value = g.uids.slice(0, 256).join(",");
	form.requestSubmit();
	$("tasks-title").scrollIntoView();
}

// The list of batches, asked for when the page opens (and after the stream was away):
// GET /batches counts its total by reading every batch, so the stream's events update the
// batches on screen one by one instead (batchesTouch).
async function refreshBatches() {
	let page;
	try {
		page = await apiGet("batches", { limit: BATCHES_PAGE });
	} catch (e) {
		if (!(e instanceof ApiError) || e.status !== 404 || e.code === "batch_not_found")
			throw e;
		state.v1 = false;
		$("batches-wrap").hidden = true;
		$("batches-summary").textContent = "This store answers as Meilisearch v0.25, which has no " +
			"batches (GET /batches is not found). `lmtasks config compat v1` serves them.";
		showV1();
		return;
	}
	state.v1 = true;
	showV1();
	$("batches-wrap").hidden = false;
	state.batches = page.results.map((b) => b.uid);
	state.batchTotal = page.total;
	fill($("batches").tBodies[0], page.results.map((b) => batchRow(b, openBatch)));
	batchesSummary();
}

function batchesSummary() {
	const n = state.batchTotal;
	$("batches-summary").textContent = n === 0 ? "No batch yet." :
		`${count(n)} ${n === 1 ? "batch" : "batches"}; the ${state.batches.length} newest:`;
}

// A task of batch uid changed: that batch is asked for again (GET /batches/UID).
function batchesTouch(uid) {
	const newest = state.batches.length ? state.batches[0] : -1;
	if (uid > newest || state.batches.includes(uid)) {
		state.touched.add(uid);
		soon("batch");
	}
}

async function refreshTouched() {
	const uids = [...state.touched].sort((a, b) => a - b);
	state.touched.clear();
	const body = $("batches").tBodies[0];
	for (const uid of uids) {
		let b;
		try {
			b = await apiGet(`batches/${uid}`);
		} catch (e) {
			if (e instanceof ApiError && e.status === 404)
				continue;
			throw e;
		}
		const row = batchRow(b, openBatch);
		const old = body.querySelector(`tr[data-uid="${uid}"]`);
		if (old) {
			old.replaceWith(row);
			continue;
		}
		if (state.batches.length && uid < state.batches[0])
			continue;
		body.prepend(row);
		state.batches.unshift(uid);
		state.batchTotal++;
		while (state.batches.length > BATCHES_PAGE) {
			const gone = body.querySelector(`tr[data-uid="${state.batches.pop()}"]`);
			if (gone)
				gone.remove();
		}
	}
	batchesSummary();
}

function showV1() {
	for (const e of document.querySelectorAll("[data-v1]"))
		e.hidden = !state.v1;
}

// ---- the record of a task or a batch ----

function recordShow(kind, obj, note) {
	$("record-json").textContent = JSON.stringify(obj, null, 2);
	$("record-note").textContent = note || "";
	const actions = $("record-actions");
	actions.replaceChildren();
	const button = (text, fn) => {
		const b = el("button", { type: "button" }, text);
		b.addEventListener("click", fn);
		actions.append(b);
	};
	if (kind === "task") {
		if (obj.batchUid !== null && obj.batchUid !== undefined && state.v1)
			button(`Open batch ${obj.batchUid}`, () => openBatch(obj.batchUid));
		if (obj.canceledBy !== null && obj.canceledBy !== undefined)
			button(`Open task ${obj.canceledBy} (its cancelation)`, () => openTask(obj.canceledBy));
	} else {
		button("Show its tasks in the table", () => {
			$("record").close();
			const form = $("filters");
			form.reset();
			form.elements.batchUids.value = String(obj.uid);
			form.requestSubmit();
		});
	}
}

async function openRecord(kind, uid) {
	state.record = { kind, uid };
	$("record-title").textContent = `${kind === "task" ? "Task" : "Batch"} ${uid}`;
	$("record-json").textContent = "Loading…";
	$("record-note").textContent = "";
	$("record-actions").replaceChildren();
	const d = $("record");
	if (!d.open)
		d.showModal();
	try {
		const obj = await apiGet(`${kind === "task" ? "tasks" : "batches"}/${uid}`);
		// Unless another record was opened meanwhile.
		if (state.record && state.record.kind === kind && state.record.uid === uid)
			recordShow(kind, obj);
	} catch (e) {
		$("record-json").textContent = e.message;
		report(e, `Reading ${kind} ${uid}`);
	}
}

function openTask(uid) {
	openRecord("task", uid);
}

function openBatch(uid) {
	openRecord("batch", uid);
}

// ---- keeping it live ----

const dirty = new Set();
let timer = null;
let running = false;

const refreshers = {
	batches: refreshBatches,
	batch: refreshTouched,
	counts: refreshCounts,
	tasks: refreshTasks,
	errors: refreshErrors,
	finished: loadFinished,
};

// Marks parts to ask again for; they are, together, within THROTTLE_MS.
function soon(...parts) {
	for (const p of parts)
		dirty.add(p);
	if (!timer)
		timer = setTimeout(flush, THROTTLE_MS);
}

async function flush() {
	timer = null;
	if (running) {
		timer = setTimeout(flush, THROTTLE_MS);
		return;
	}
	running = true;
	const parts = Object.keys(refreshers).filter((p) => dirty.has(p));
	dirty.clear();
	let ok = true;
	for (const p of parts) {
		try {
			await refreshers[p]();
		} catch (e) {
			ok = false;
			report(e, p === "tasks" ? "The tasks" : `Reading the ${p}`);
			if (state.authFailed)
				break;
		}
	}
	if (ok && parts.length && !state.authFailed)
		alertClear();
	running = false;
}

function onEvent(ev) {
	if (ev.id)
		state.lastId = ev.id;
	if (ev.event !== "task")
		return;
	let t;
	try {
		t = JSON.parse(ev.data);
	} catch {
		return;
	}
	updateRow(t);
	if (state.record && state.record.kind === "task" && state.record.uid === t.uid && $("record").open)
		recordShow("task", t, `Updated live: ${t.status}.`);
	noteFinished(t);
	showThroughput();
	soon("counts");
	if (!filtersWalk())
		soon("tasks");
	else
		$("tasks-stale").hidden = false;
	if (t.status === "failed")
		soon("errors");
	if (state.v1 && t.batchUid !== null && t.batchUid !== undefined)
		batchesTouch(t.batchUid);
}

const sleep = (ms, signal) => new Promise((resolve) => {
	const id = setTimeout(resolve, ms);
	signal.addEventListener("abort", () => { clearTimeout(id); resolve(); }, { once: true });
});

// Reads the stream until it is stopped, reconnecting (with Last-Event-ID) when it ends.
async function streamRun(ctrl) {
	let delay = 1000;
	let retry = 10000;
	let first = true;
	while (!ctrl.signal.aborted) {
		setLive("connecting", first ? "Connecting…" : "Reconnecting…");
		try {
			const r = await streamOpen(state.lastId, ctrl.signal);
			if (r) {
				setLive("live", "Live");
				if (!first)
					soon("counts", "tasks", "errors", "batches");
				first = false;
				delay = 1000;
				await readEvents(r.body, onEvent, (ms) => { retry = ms; });
			}
		} catch (e) {
			if (ctrl.signal.aborted)
				return;
			if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
				report(e, "The live stream");
				setLive("off", "Not connected");
				return;
			}
			if (e instanceof ApiError && e.status === 410) {
				// Away for longer than the change log holds: start again from now.
				state.lastId = null;
				soon("counts", "tasks", "errors", "batches", "finished");
				continue;
			}
		}
		if (ctrl.signal.aborted)
			return;
		setLive("connecting", `Reconnecting in ${Math.round(delay / 1000)} s…`);
		await sleep(delay, ctrl.signal);
		delay = Math.min(delay * 2, retry);
	}
}

function streamStart() {
	if (state.stream)
		state.stream.abort();
	state.stream = new AbortController();
	state.lastId = null;
	streamRun(state.stream);
}

// Reads everything on screen again, then follows the stream.
async function start() {
	if (state.stream)
		state.stream.abort();
	state.authFailed = false;
	alertClear();
	setLive("connecting", "Connecting…");
	for (const p of ["batches", "counts", "tasks", "errors", "finished"]) {
		try {
			await refreshers[p]();
		} catch (e) {
			report(e, p === "tasks" ? "The tasks" : `Reading the ${p}`);
			if (state.authFailed) {
				setLive("off", "Not connected");
				return;
			}
		}
	}
	streamStart();
}

// ---- the controls ----

function keyShow() {
	$("key-state").textContent = keyGet() ? "A key is set for this tab." : "No key set.";
}

function wire() {
	$("key-form").addEventListener("submit", (e) => {
		e.preventDefault();
		const input = $("key-input");
		keySet(input.value.trim());
		input.value = "";
		keyShow();
		start();
	});
	$("key-forget").addEventListener("click", () => {
		keySet("");
		keyShow();
		start();
	});
	$("filters").addEventListener("submit", (e) => {
		e.preventDefault();
		state.filters = filtersRead();
		state.from = null;
		soon("tasks");
	});
	$("filters").addEventListener("reset", () => setTimeout(() => {
		state.filters = filtersRead();
		state.from = null;
		soon("tasks");
	}));
	$("page-next").addEventListener("click", () => {
		if (state.next === null)
			return;
		state.from = state.next;
		soon("tasks");
	});
	$("tasks-reload").addEventListener("click", () => soon("tasks"));
	$("page-first").addEventListener("click", () => {
		state.from = null;
		soon("tasks");
	});
	$("record-close").addEventListener("click", () => $("record").close());
	// (The event comes after close() returns: a record opened since stays.)
	$("record").addEventListener("close", () => {
		if ($("record").open)
			return;
		// The button that opened it may have been redrawn since: once the browser has
		// put the focus back (on nothing, then), focus the one on screen.
		const r = state.record;
		state.record = null;
		setTimeout(() => {
			const a = document.activeElement;
			if (!r || (a && a !== document.body && a.isConnected))
				return;
			const b = document.querySelector(`#${r.kind === "task" ? "tasks" : "batches"} tr[data-uid="${r.uid}"] button`);
			if (b)
				b.focus();
		});
	});
	setInterval(showAge, 1000);
	setInterval(() => chartsTick(Date.now()), 5000);
	setInterval(showThroughput, 30000);
}

async function main() {
	wire();
	keyShow();
	state.filters = filtersRead();
	const charts = chartsInit($("chart-counts"), $("chart-throughput"));
	await start();
	const c = await charts;
	if (!c.ok) {
		$("charts-note").hidden = false;
		$("charts-note").textContent = "The charts need Chart.js at vendor/chart.js/ " +
			"(Debian's libjs-chart.js; see the web server's configuration): " + c.why;
	} else {
		showThroughput();
		chartsTick(Date.now());
	}
}

main();
