// How the dashboard writes numbers, times and durations.

const nf = new Intl.NumberFormat("en");

export function count(n) {
	return n === null || n === undefined ? "–" : nf.format(n);
}

// "2026-12-06 23:31:19" (UTC, as the API and the CLI give times), or "–".
export function time(iso) {
	if (!iso)
		return "–";
	return iso.replace("T", " ").replace(/\.\d+/, "").replace(/Z$/, "");
}

// A span of milliseconds as "3 s", "4 min 12 s", "2 h 5 min", "3 d 4 h".
export function span(ms) {
	if (ms === null || ms === undefined || !Number.isFinite(ms))
		return "–";
	let s = Math.max(0, Math.floor(ms / 1000));
	if (s < 60)
		return `${s} s`;
	let m = Math.floor(s / 60);
	s %= 60;
	if (m < 60)
		return `${m} min ${s} s`;
	let h = Math.floor(m / 60);
	m %= 60;
	if (h < 24)
		return `${h} h ${m} min`;
	const d = Math.floor(h / 24);
	h %= 24;
	return `${d} d ${h} h`;
}

// An ISO 8601 duration as the API writes it ("PT1.5S", "P1DT2H3M4.5S") in short words.
export function duration(iso) {
	if (!iso)
		return "–";
	const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$/.exec(iso);
	if (!m)
		return iso;
	const ms = ((+(m[1] || 0) * 24 + +(m[2] || 0)) * 60 + +(m[3] || 0)) * 60000 +
		parseFloat(m[4] || "0") * 1000;
	if (ms < 1000)
		return `${Math.round(ms)} ms`;
	if (ms < 60000)
		return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
	return span(ms);
}

// "HH:MM" or "HH:MM:SS" of a time in milliseconds, in UTC.
export function clock(ms, seconds) {
	const t = new Date(ms).toISOString();
	return seconds ? t.slice(11, 19) : t.slice(11, 16);
}
