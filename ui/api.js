// The tasks API as the dashboard reads it: GET requests with the key typed into the page
// (sent as `Authorization: Bearer`, never in a URL), and /tasks/stream read with fetch(),
// since EventSource cannot send a header.

const KEY_ITEM = "lmtasks.apiKey";

// An answer that is not a 2xx, with the API's error body when it has one.
export class ApiError extends Error {
	constructor(status, body, path) {
		const message = body && body.message ? body.message : `HTTP ${status} for ${path}`;
		super(message);
		this.status = status;
		this.code = body && body.code ? body.code : null;
		this.path = path;
	}
}

// The key kept for this tab only (sessionStorage): gone when the tab closes.
export function keyGet() {
	try {
		return sessionStorage.getItem(KEY_ITEM) || "";
	} catch {
		return "";
	}
}

export function keySet(key) {
	try {
		if (key)
			sessionStorage.setItem(KEY_ITEM, key);
		else
			sessionStorage.removeItem(KEY_ITEM);
	} catch {
		// Storage refused (a private mode): the key then lives until the page reloads.
	}
	memoryKey = key;
}

let memoryKey = null;

function currentKey() {
	return memoryKey !== null ? memoryKey : keyGet();
}

// The API's root: the directory above the dashboard's (/ui/ -> /, /lmtasks/ui/ -> /lmtasks/).
export const apiBase = new URL("../", document.baseURI);

// A URL of the API, with the parameters that have a value.
export function apiUrl(path, params) {
	const u = new URL(path.replace(/^\//, ""), apiBase);
	for (const [k, v] of Object.entries(params || {})) {
		if (v !== undefined && v !== null && v !== "")
			u.searchParams.set(k, String(v));
	}
	return u;
}

function headers(extra) {
	const h = { Accept: "application/json", ...extra };
	const key = currentKey();
	if (key)
		h.Authorization = `Bearer ${key}`;
	return h;
}

// GET path?params: the JSON answer, or throws ApiError.
export async function apiGet(path, params, signal) {
	const u = apiUrl(path, params);
	const r = await fetch(u, { headers: headers(), signal, cache: "no-cache" });
	let body = null;
	try {
		body = await r.json();
	} catch {
		body = null;
	}
	if (!r.ok)
		throw new ApiError(r.status, body, u.pathname + u.search);
	return body;
}

// Reads a text/event-stream body, calling onEvent({id, event, data}) for each event and
// onRetry(ms) for a retry field.  Resolves when the body ends.
export async function readEvents(body, onEvent, onRetry) {
	const reader = body.pipeThrough(new TextDecoderStream()).getReader();
	let buf = "";
	let ev = { id: null, event: "message", data: [] };
	for (;;) {
		const { value, done } = await reader.read();
		if (done)
			return;
		buf += value;
		let nl;
		while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
			const line = buf.slice(0, nl);
			buf = buf.slice(nl + (buf[nl] === "\r" && buf[nl + 1] === "\n" ? 2 : 1));
			if (line === "") {
				if (ev.data.length)
					onEvent({ id: ev.id, event: ev.event, data: ev.data.join("\n") });
				ev = { id: null, event: "message", data: [] };
				continue;
			}
			if (line.startsWith(":"))
				continue;
			const colon = line.indexOf(":");
			const field = colon < 0 ? line : line.slice(0, colon);
			let v = colon < 0 ? "" : line.slice(colon + 1);
			if (v.startsWith(" "))
				v = v.slice(1);
			if (field === "data")
				ev.data.push(v);
			else if (field === "id")
				ev.id = v;
			else if (field === "event")
				ev.event = v;
			else if (field === "retry" && /^\d+$/.test(v) && onRetry)
				onRetry(Number(v));
		}
	}
}

// Opens GET /tasks/stream (after lastId when given): the fetch Response, or throws
// ApiError for an answer that is not a stream (401, 403, 410...).
export async function streamOpen(lastId, signal) {
	const extra = { Accept: "text/event-stream" };
	if (lastId)
		extra["Last-Event-ID"] = lastId;
	const u = apiUrl("tasks/stream");
	const r = await fetch(u, { headers: headers(extra), signal, cache: "no-store" });
	if (r.status === 204)
		return null;
	if (!r.ok) {
		let body = null;
		try {
			body = await r.json();
		} catch {
			body = null;
		}
		throw new ApiError(r.status, body, u.pathname);
	}
	return r;
}
