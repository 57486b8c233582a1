// What the dashboard draws from the API's answers: the rows of the tables and the record.
// Everything from the store is put in the page as text (textContent), never as markup.

import { count, duration, time } from "./format.js";

// el("td", {class: "x"}, "text", child...): a new element.
export function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		if (k === "class")
			e.className = v;
		else if (k === "dataset")
			Object.assign(e.dataset, v);
		else
			e.setAttribute(k, v === true ? "" : v);
	}
	for (const k of kids) {
		if (k !== null && k !== undefined)
			e.append(k instanceof Node ? k : String(k));
	}
	return e;
}

function cell(label, ...kids) {
	return el("td", { "data-label": label }, ...kids);
}

function badge(status) {
	return el("span", { class: `badge status-${status}` }, status);
}

function timeCell(label, iso) {
	return cell(label, iso ? el("time", { datetime: iso }, time(iso)) : "–");
}

// One row of the tasks table; onOpen(uid, button) opens its record.
export function taskRow(t, v1, onOpen) {
	const open = el("button", { type: "button", class: "link", "aria-label": `Task ${t.uid}, open its record` },
		String(t.uid));
	open.addEventListener("click", () => onOpen(t.uid, open));
	const tr = el("tr", { dataset: { uid: String(t.uid), status: t.status } },
		el("th", { scope: "row", "data-label": "uid" }, open),
		cell("index", t.indexUid === null ? el("span", { class: "muted" }, "(store)") : t.indexUid),
		cell("type", t.type),
		cell("status", badge(t.status)),
		v1 ? cell("batch", t.batchUid === null || t.batchUid === undefined ? "–" : String(t.batchUid)) : null,
		timeCell("enqueued", t.enqueuedAt),
		timeCell("started", t.startedAt),
		timeCell("finished", t.finishedAt),
		cell("duration", duration(t.duration)),
		cell("error", t.error ? el("code", {}, t.error.code) : "–"));
	return tr;
}

// Replaces the table's body with rows.
export function fill(tbody, rows) {
	tbody.replaceChildren(...rows);
}

// One row of the errors table (a group of groupErrors); onShow(group) filters the tasks.
export function errorRow(g, onShow) {
	const show = el("button", { type: "button", class: "small" }, "Show these tasks");
	show.setAttribute("aria-label", `Show the failed tasks with code ${g.code}`);
	show.addEventListener("click", () => onShow(g));
	return el("tr", { dataset: { code: g.code } },
		el("th", { scope: "row", "data-label": "code" }, el("code", {}, g.code)),
		cell("tasks", count(g.uids.length)),
		cell("latest", String(g.uids[0])),
		cell("latest message", g.message),
		cell("filter", show));
}

function tally(obj) {
	return Object.entries(obj || {}).map(([k, n]) => `${k} ${n}`).join(", ") || "–";
}

// One row of the batches table; onOpen(uid, button) opens its record.
export function batchRow(b, onOpen) {
	const open = el("button", { type: "button", class: "link", "aria-label": `Batch ${b.uid}, open its record` },
		String(b.uid));
	open.addEventListener("click", () => onOpen(b.uid, open));
	const st = b.stats || {};
	return el("tr", { dataset: { uid: String(b.uid) } },
		el("th", { scope: "row", "data-label": "uid" }, open),
		cell("tasks", count(st.totalNbTasks)),
		cell("statuses", tally(st.status)),
		cell("types", tally(st.types)),
		cell("indexes", tally(st.indexUids)),
		timeCell("started", b.startedAt),
		cell("duration", duration(b.duration)),
		cell("strategy", b.batchStrategy || "–"));
}

// Groups failed tasks by their error's code: [{code, uids (newest first), message}],
// the most frequent first.
export function groupErrors(tasks) {
	const by = new Map();
	for (const t of tasks) {
		const code = t.error && t.error.code ? t.error.code : "(no error)";
		let g = by.get(code);
		if (!g) {
			g = { code, uids: [], message: t.error ? t.error.message : "" };
			by.set(code, g);
		}
		g.uids.push(t.uid);
	}
	return [...by.values()].sort((a, b) => b.uids.length - a.uids.length || a.code.localeCompare(b.code));
}
