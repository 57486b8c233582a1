// The two charts, drawn by Chart.js (Debian's libjs-chart.js, served at vendor/chart.js/ by
// the web server's configuration).  Without it the page works and says the charts are off.

import { clock } from "./format.js";

export const STATUS_COLORS = {
	enqueued: "#1d4ed8",
	processing: "#a16207",
	succeeded: "#15803d",
	failed: "#b91c1c",
	canceled: "#4b5563",
};

// One point a second at most, for an hour.
const MAX_POINTS = 3600;

let Chart = null;
let counts = null;
let throughput = null;

// Loads Chart.js and makes the charts; false (and the reason) when it cannot be loaded.
export async function chartsInit(countsCanvas, throughputCanvas) {
	try {
		const mod = await import("./vendor/chart.js/chart.esm.js");
		Chart = mod.Chart;
		Chart.register(...mod.registerables);
	} catch (e) {
		return { ok: false, why: String(e && e.message ? e.message : e) };
	}
	Chart.defaults.animation = false;
	Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
	Chart.defaults.color = "#1f2937";
	counts = new Chart(countsCanvas, {
		type: "line",
		data: {
			datasets: Object.entries(STATUS_COLORS).map(([status, color]) => ({
				label: status,
				data: [],
				borderColor: color,
				backgroundColor: color,
				// Points while they are few; a line alone once they are many.
				pointRadius: (ctx) => (ctx.dataset.data.length < 60 ? 3 : 0),
				borderWidth: 2,
				stepped: true,
			})),
		},
		options: {
			maintainAspectRatio: false,
			parsing: false,
			scales: {
				x: {
					type: "linear",
					ticks: { callback: (v) => clock(v, true), maxTicksLimit: 6 },
					title: { display: true, text: "time (UTC)" },
				},
				y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "tasks" } },
			},
		},
	});
	throughput = new Chart(throughputCanvas, {
		type: "bar",
		data: { labels: [], datasets: [{ label: "finished per minute", data: [], backgroundColor: "#15803d" }] },
		options: {
			maintainAspectRatio: false,
			scales: {
				x: { title: { display: true, text: "minute (UTC)" }, ticks: { maxTicksLimit: 8 } },
				y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "tasks" } },
			},
			plugins: { legend: { display: false } },
		},
	});
	return { ok: true };
}

let last = null;

// Adds one sample of the counts by status (at time ms); within a second of the previous
// one, it replaces it.
export function chartsCounts(ms, byStatus) {
	last = byStatus;
	if (!counts)
		return;
	// The axis spans a minute at least, from the first sample on.
	if (counts.options.scales.x.suggestedMax === undefined)
		counts.options.scales.x.suggestedMax = ms + 60000;
	for (const ds of counts.data.datasets) {
		const v = byStatus[ds.label];
		if (v === undefined || v === null)
			continue;
		const prev = ds.data[ds.data.length - 1];
		if (prev && ms - prev.x < 1000 && ds.data.length > 1)
			ds.data.pop();
		ds.data.push({ x: ms, y: v });
		if (ds.data.length > MAX_POINTS)
			ds.data.shift();
	}
	counts.update("none");
	// What the chart shows now, for a screen reader (and the tests).
	counts.canvas.setAttribute("aria-label", "Counts by status since this page opened; now " +
		Object.keys(STATUS_COLORS).map((k) => `${k} ${byStatus[k]}`).join(", "));
}

// Carries the last counts on to now (nothing is asked of the server: they have not
// changed, or the stream would have said so).
export function chartsTick(ms) {
	if (last)
		chartsCounts(ms, last);
}

// Shows the finished tasks per minute: minutes [{start, n}], oldest first.
export function chartsThroughput(minutes) {
	if (!throughput)
		return;
	throughput.data.labels = minutes.map((m) => clock(m.start));
	throughput.data.datasets[0].data = minutes.map((m) => m.n);
	throughput.update("none");
	const all = minutes.reduce((a, m) => a + m.n, 0);
	throughput.canvas.setAttribute("aria-label", `Tasks finished per minute, last 30 minutes: ${all} in all, ` +
		`at most ${Math.max(...minutes.map((m) => m.n))} in one minute`);
}
