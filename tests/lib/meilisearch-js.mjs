// The official Meilisearch JavaScript client, unchanged, against lmtasks behind nginx.
// Driven by tests/e2e/meilisearch-js.sh, which sets the environment:
//   MJS_MODULE    path of the client's dist/index.js (meilisearch 0.62.0 from npm)
//   MJS_BASE      http://127.0.0.1:PORT (nginx: the responder, and the writer's two routes)
//   MJS_MASTER    the master key; MJS_READ_KEY a key with tasks.get only;
//   MJS_WRITE_KEY a key with tasks.* ; MJS_COMPAT v1 or v0.25
//   MJS_LMTASKS   the CLI with --db, as a shell word list (for the expected answers and
//                 the worker)
//   MJS_ENQUEUED  uid of an enqueued task the worker finishes while waitForTask waits
//   MJS_CANCEL    uid of an enqueued task cancelTasks cancels
//   MJS_BATCHED   (v1) uids of the processing tasks of one batch, canceled by batchUids
//   MJS_RETRY     uids of two enqueued tasks with a retry policy of 2 attempts: the worker
//                 fails the first once, then succeeds it; it fails the second twice
//   MJS_QUEUE     uids of a task of priority 5, one delayed a day, and one processing
//                 that reported 40/100 "indexing" (the store is compacted before the run)
// Prints one line per check: "ok - NAME" or "not ok - NAME: WHY"; exits 0 unless it
// could not run at all.
import { execFileSync, spawn } from "node:child_process";
import { deepStrictEqual } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = process.env;
const { Meilisearch, MeilisearchApiError } = await import(env.MJS_MODULE);
const v1 = env.MJS_COMPAT === "v1";
const cli = env.MJS_LMTASKS.split(" ");
const lmtasks = (...args) => JSON.parse(execFileSync(cli[0], [...cli.slice(1), ...args]));

const master = new Meilisearch({ host: env.MJS_BASE, apiKey: env.MJS_MASTER });
const reader = new Meilisearch({ host: env.MJS_BASE, apiKey: env.MJS_READ_KEY });
const writer = new Meilisearch({ host: env.MJS_BASE, apiKey: env.MJS_WRITE_KEY });

async function check(name, fn) {
	try {
		await fn();
		console.log(`ok - ${name}`);
	} catch (e) {
		const why = (e && (e.stack || e.message)) || String(e);
		console.log(`not ok - ${name}: ${why.split("\n").slice(0, 6).join(" | ")}`);
	}
}
function same(got, want, what) {
	deepStrictEqual(got, want, what);
}
async function apiError(promise, status, code) {
	try {
		await promise;
	} catch (e) {
		if (!(e instanceof MeilisearchApiError))
			throw new Error(`expected a MeilisearchApiError, got ${e && e.name}: ${e && e.message}`);
		same(e.response.status, status, "HTTP status");
		same(e.cause && e.cause.code, code, "error code");
		return e;
	}
	throw new Error(`expected ${status} ${code}, the call succeeded`);
}

const enq = Number(env.MJS_ENQUEUED);
const toCancel = Number(env.MJS_CANCEL);

await check("tasks.getTask(0) is the task `lmtasks get 0` prints", async () => {
	same(await reader.tasks.getTask(0), lmtasks("get", "0"));
});
if (v1) {
	await check("v1 task: batchUid, canceledBy and error present, null when unset", async () => {
		const t = await reader.tasks.getTask(enq);
		same(t.status, "enqueued");
		same([t.batchUid, t.canceledBy, t.error], [null, null, null]);
		same(Object.keys(t), ["uid", "batchUid", "indexUid", "status", "type", "canceledBy",
			"details", "error", "duration", "enqueuedAt", "startedAt", "finishedAt"]);
	});
}
await check("tasks.getTasks({ indexUids, reverse }) is `lmtasks list --indexUids movies --reverse`", async () => {
	const got = await reader.tasks.getTasks({ indexUids: ["movies"], reverse: true });
	same(got, lmtasks("list", "--indexUids", "movies", "--reverse"));
	if (got.results.length < 2)
		throw new Error("too few tasks to tell the order");
});
await check("tasks.getTasks({ statuses, limit }) pages as `lmtasks list`", async () => {
	const got = await reader.tasks.getTasks({ statuses: ["succeeded", "failed"], limit: 1 });
	same(got, lmtasks("list", "--statuses", "succeeded,failed", "--limit", "1"));
});

// A store that uses every queue feature (customMetadata, a priority, a delay, a retry
// policy, progress), compacted: each task is still a Meilisearch task the client reads.
const [prio, delayed, busy] = env.MJS_QUEUE.split(",").map(Number);
await check("tasks.getTasks() of a compacted store using every queue feature is `lmtasks list`", async () => {
	same(await reader.tasks.getTasks({ limit: 1000 }), lmtasks("list", "--limit", "1000"));
});
await check("a priority, a delay and progress are in details; status stays Meilisearch's", async () => {
	const p = await reader.tasks.getTask(prio);
	same([p.status, p.details.priority], ["enqueued", 5]);
	const d = await reader.tasks.getTask(delayed);
	same(d.status, "enqueued");
	if (!(Date.parse(d.details.notBefore) > Date.now() + 3600e3))
		throw new Error(`notBefore ${d.details.notBefore} is not a day on`);
	const b = await reader.tasks.getTask(busy);
	same([b.status, b.details.progress], ["processing", { steps: [{ currentStep: "indexing",
		finished: 40, total: 100 }], percentage: 40 }]);
	const r = await reader.tasks.getTasks({ statuses: ["enqueued"], indexUids: ["queue"] });
	same(r.results.map((t) => t.uid).sort((x, y) => x - y), [prio, delayed]);
});
await check("waitForTask on a delayed task times out while it waits: it never ends early", async () => {
	try {
		await reader.tasks.waitForTask(delayed, { timeout: 600, interval: 100 });
	} catch (e) {
		if (e && /timeout|timed out/i.test(String(e.message)))
			return;
		throw e;
	}
	throw new Error("waitForTask ended on a task delayed a day");
});

if (v1) {
	const t0 = await master.tasks.getTask(0);
	await check("a started task has a batchUid", async () => {
		if (typeof t0.batchUid !== "number")
			throw new Error(`batchUid ${t0.batchUid}`);
	});
	await check("tasks.getTasks({ batchUids }) gives the batch's tasks", async () => {
		const got = await reader.tasks.getTasks({ batchUids: [t0.batchUid] });
		if (!got.results.some((t) => t.uid === 0))
			throw new Error(`task 0 not among ${JSON.stringify(got.results.map((t) => t.uid))}`);
		for (const t of got.results)
			same(t.batchUid, t0.batchUid, `task ${t.uid}'s batch`);
		same(got, lmtasks("list", "--batchUids", String(t0.batchUid)));
	});
	await check("batches.getBatch(uid): Meilisearch v1's batch object", async () => {
		const b = await reader.batches.getBatch(t0.batchUid);
		same(b.uid, t0.batchUid);
		same(Object.keys(b), ["uid", "progress", "details", "stats", "duration", "startedAt",
			"finishedAt", "batchStrategy"]);
		if (!(b.stats.totalNbTasks >= 1) || !b.stats.indexUids.movies)
			throw new Error(`stats ${JSON.stringify(b.stats)}`);
		same(b, lmtasks("batch", "get", String(t0.batchUid)));
	});
	await check("batches.getBatches(): the list envelope, newest first", async () => {
		const got = await reader.batches.getBatches();
		same(Object.keys(got), ["results", "total", "limit", "from", "next"]);
		if (got.results.length < 1 || got.total !== got.results.length)
			throw new Error(JSON.stringify(got).slice(0, 300));
		same(got, lmtasks("batch", "list"));
		const rev = await reader.batches.getBatches({ reverse: true, limit: 1 });
		same(rev.results[0].uid, Math.min(...got.results.map((b) => b.uid)));
	});
	await check("batches.getBatch(999999): MeilisearchApiError batch_not_found", async () => {
		await apiError(reader.batches.getBatch(999999), 404, "batch_not_found");
	});
} else {
	await check("v0.25 store: batches.getBatches() is a 404 (no batches in v0.25)", async () => {
		await apiError(reader.batches.getBatches(), 404, "not_found");
	});
}
await check("tasks.getTask(999999): MeilisearchApiError task_not_found", async () => {
	const e = await apiError(reader.tasks.getTask(999999), 404, "task_not_found");
	same(e.cause.message, "Task `999999` not found.");
});

await check("tasks.waitForTask while a worker (lmtasks start, succeed) finishes the task", async () => {
	same((await reader.tasks.getTask(enq)).status, "enqueued", "before the worker");
	const worker = spawn("sh", ["-c", `sleep 0.3; ${env.MJS_LMTASKS} start ${enq} >/dev/null && ` +
		`sleep 0.3 && ${env.MJS_LMTASKS} succeed ${enq} --details '{"indexedDocuments":1}' >/dev/null`],
		{ stdio: "inherit" });
	const exited = new Promise((res) => worker.on("exit", res));
	const started = Date.now();
	const t = await reader.tasks.waitForTask(enq, { timeout: 10000, interval: 50 });
	const code = await exited;
	same(code, 0, "the worker's exit status");
	same(t.status, "succeeded");
	same(t.details.indexedDocuments, 1);
	if (Date.now() - started < 500)
		throw new Error("waitForTask returned before the worker could have finished");
	if (v1) {
		same(t.error, null, "task.error === null after waitForTask");
		if (typeof t.batchUid !== "number")
			throw new Error(`batchUid ${t.batchUid}`);
	}
	same(t, lmtasks("get", String(enq)));
});

// A failed attempt with attempts left puts the task back as enqueued (its lastError and
// attempts in details): waitForTask must go on to the last attempt's outcome.
async function waitThroughRetries(uid, script, want) {
	same((await reader.tasks.getTask(uid)).status, "enqueued", "before the worker");
	// After a failed attempt the worker waits (30 s at most) until the watch below has seen
	// the task back in the queue and says so in a file: however slow the machine, the
	// state between the attempts is seen before the next one starts.
	const dir = mkdtempSync(join(tmpdir(), "mjs-retry-"));
	const seen = join(dir, "seen-back");
	const await_seen = `i=0; while [ ! -e '${seen}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done`;
	const cmd = script.map((step) => `${env.MJS_LMTASKS} ${step} >/dev/null 2>&1` +
		(step.startsWith("fail ") ? ` && ${await_seen}` : "")).join(" && sleep 0.4 && ");
	const worker = spawn("sh", ["-c", `sleep 0.2; ${cmd} && echo done >&2`], { stdio: ["ignore", "inherit", "pipe"] });
	let said = "";
	worker.stderr.on("data", (d) => { said += d; });
	const exited = new Promise((res) => worker.on("exit", res));
	let seenBack = false;
	const watch = setInterval(async () => {
		try {
			const t = await reader.tasks.getTask(uid);
			if (t.status === "enqueued" && t.details.lastError && !seenBack) {
				seenBack = true;
				writeFileSync(seen, "");
			}
		} catch (e) { /* the check below says what matters */ }
	}, 30);
	const t = await reader.tasks.waitForTask(uid, { timeout: 60000, interval: 50 });
	clearInterval(watch);
	const code = await exited;
	rmSync(dir, { recursive: true, force: true });
	same(code, 0, "the worker's exit status");
	if (!said.includes("done"))
		throw new Error(`waitForTask returned before the worker's last step: ${said}`);
	if (!seenBack)
		throw new Error("the task was never seen back in the queue between its attempts");
	same(t.status, want, "the final status");
	same(t.details.attempts, 2, "details.attempts");
	same(t.details.maxAttempts, 2, "details.maxAttempts");
	return t;
}
if (env.MJS_RETRY) {
	const [once, always] = env.MJS_RETRY.split(",").map(Number);
	await check("tasks.waitForTask ends at success, not at the failed attempt before it", async () => {
		const t = await waitThroughRetries(once, [`start ${once}`,
			`fail ${once} --code flaky --message 'first try'`, `start ${once}`,
			`succeed ${once} --details '{"indexedDocuments":1}'`], "succeeded");
		same(t.details.lastError.code, "flaky", "details.lastError");
		same(t.details.indexedDocuments, 1);
		if (v1)
			same(t.error, null, "task.error");
		same(t, lmtasks("get", String(once)));
	});
	await check("tasks.waitForTask ends at the last attempt's failure", async () => {
		const t = await waitThroughRetries(always, [`start ${always}`,
			`fail ${always} --code broken --message 'try 1'`, `start ${always}`,
			`fail ${always} --code broken --message 'try 2'`], "failed");
		same(t.error.message, "try 2", "the last attempt's error");
		same(t.details.lastError, undefined, "no lastError beside the error");
		same(t, lmtasks("get", String(always)));
	});
}

await check("tasks.cancelTasks with a key without tasks.cancel: MeilisearchApiError invalid_api_key", async () => {
	const e = await apiError(reader.tasks.cancelTasks({ uids: [toCancel] }), 403, "invalid_api_key");
	same(e.cause.message, "The provided API key is invalid.");
	same((await reader.tasks.getTask(toCancel)).status, "enqueued", "nothing canceled");
});
await check("tasks.deleteTasks with a key without tasks.delete: MeilisearchApiError invalid_api_key", async () => {
	await apiError(reader.tasks.deleteTasks({ uids: [0] }), 403, "invalid_api_key");
	same((await reader.tasks.getTask(0)).uid, 0, "nothing deleted");
});
await check("tasks.cancelTasks({}) : missing_task_filters", async () => {
	await apiError(writer.tasks.cancelTasks({}), 400, "missing_task_filters");
});
let cancelUid;
await check("tasks.cancelTasks({ uids }) through the writer, then .waitTask()", async () => {
	const p = writer.tasks.cancelTasks({ uids: [toCancel] });
	const summary = await p;
	same(Object.keys(summary), ["taskUid", "indexUid", "status", "type", "enqueuedAt"]);
	same(summary.type, "taskCancelation");
	same(summary.indexUid, null);
	cancelUid = summary.taskUid;
	const done = await p.waitTask({ timeout: 5000 });
	same(done.status, "succeeded");
	same(done.details.canceledTasks, 1);
	same(done.details.originalFilter, `?uids=${toCancel}`);
	const t = await reader.tasks.getTask(toCancel);
	same([t.status, t.canceledBy], ["canceled", cancelUid]);
	if (v1 && typeof t.batchUid !== "number")
		throw new Error(`the canceled task's batchUid: ${t.batchUid}`);
});
await check("tasks.getTasks({ canceledBy }) finds it", async () => {
	const got = await reader.tasks.getTasks({ canceledBy: [cancelUid] });
	same(got.results.map((t) => t.uid), [toCancel]);
});
if (v1) {
	const batched = env.MJS_BATCHED.split(",").map(Number);
	await check("tasks.cancelTasks({ batchUids }) cancels the batch's processing tasks", async () => {
		const b = (await reader.tasks.getTask(batched[0])).batchUid;
		same((await reader.tasks.getTask(batched[1])).batchUid, b, "claimed in one batch");
		const done = await writer.tasks.cancelTasks({ batchUids: [b] }).waitTask();
		same(done.details.originalFilter, `?batchUids=${b}`);
		for (const u of batched)
			same((await reader.tasks.getTask(u)).status, "canceled", `task ${u}`);
	});
	await check("tasks.deleteTasks({ types: ['doggo'] }): MeilisearchApiError invalid_task_types", async () => {
		await apiError(writer.tasks.deleteTasks({ types: ["doggo"] }), 400, "invalid_task_types");
	});
}
await check("tasks.deleteTasks({ statuses: ['canceled'] }) through the writer", async () => {
	const summary = await writer.tasks.deleteTasks({ statuses: ["canceled"] });
	same(summary.type, "taskDeletion");
	const done = await writer.tasks.waitForTask(summary, { timeout: 5000 });
	if (!(done.details.deletedTasks >= 1))
		throw new Error(JSON.stringify(done.details));
	await apiError(reader.tasks.getTask(toCancel), 404, "task_not_found");
	same((await reader.tasks.getTasks({ statuses: ["canceled"] })).total, 0);
});
