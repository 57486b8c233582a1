#!/usr/bin/env python3
"""The dashboard (ui/) in a real browser: Debian's headless Chromium, driven by Selenium
through chromedriver, loads BASE/ui/ and checks what a person sees against the CLI.

    dashboard.py --base http://127.0.0.1:PORT --lmtasks build/lmtasks --db STORE \
        --key KEY --shots DIR

Prints one line per check, "ok - NAME" or "not ok - NAME: WHY" (tests/e2e/dashboard.sh
counts them), and saves screenshots DIR/dashboard-*.png.  Every wait is a hang guard
(WAIT seconds) that ends as soon as the page shows what is awaited.  Exits 0 when it ran
to its end (failed checks included), 1 when it could not.
"""
import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

WAIT = 20.0
STATUSES = ["enqueued", "processing", "succeeded", "failed", "canceled"]
failures = 0


def ok(name):
    print("ok - " + name, flush=True)


def not_ok(name, why):
    global failures
    failures += 1
    print("not ok - %s" % name, flush=True)
    print("#   %s" % " ".join(str(why).split())[:600], flush=True)


def check(name, cond, why=""):
    (ok if cond else lambda n: not_ok(n, why))(name)
    return cond


class Page:
    """The browser and the page, with the waits the checks use."""

    def __init__(self, args):
        self.args = args
        o = webdriver.ChromeOptions()
        o.binary_location = args.chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,1000", "--lang=en-US", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-extensions", "--user-data-dir=" + args.profile):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(args.chromedriver, log_path=args.driver_log),
                                  options=o)
        self.d.set_page_load_timeout(WAIT)
        self.d.set_script_timeout(WAIT)
        self.log = []

    def js(self, script, *a):
        return self.d.execute_script(script, *a)

    # The wait runs in the page: the script is tried again at each change of the document
    # (a MutationObserver) and every 50 ms (for what no mutation shows), and the answer
    # comes back once, not a WebDriver round trip (Python, chromedriver, the browser) per
    # try.  A slice lasts at most 5 s, well inside the script timeout.
    WAIT_JS = """
        const [src, args, ms, done] = arguments;
        const f = new Function(src);
        const t0 = performance.now();
        let over = false, timer = null, obs = null;
        const finish = v => {
            over = true;
            clearTimeout(timer);
            if (obs) obs.disconnect();
            done(v);
        };
        // True as Python takes it: an empty list or object is not.
        const truthy = v => Array.isArray(v) ? v.length > 0 :
            v !== null && typeof v === "object" && !(v instanceof Node) ? Object.keys(v).length > 0 : !!v;
        const test = () => {
            if (over) return;
            let v = null;
            try { v = f.apply(null, args); } catch (e) { v = null; }
            if (truthy(v)) finish(v);
            else if (performance.now() - t0 > ms) finish(null);
        };
        const tick = () => { test(); if (!over) timer = setTimeout(tick, 50); };
        obs = new MutationObserver(test);
        obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
        tick();
    """

    def wait(self, what, script, *a, timeout=WAIT):
        """Runs the script until it returns something true (a hang guard): that value,
        or None once timeout passes."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                v = self.d.execute_async_script(self.WAIT_JS, script, list(a),
                                                max(0, min(left, 5.0)) * 1000)
            except WebDriverException:
                # (A navigation ends the script: it is started again in the new page.)
                v = None
                time.sleep(0.05)
            if v:
                return v
            if time.monotonic() > end:
                return None
            time.sleep(0.05)

    def text(self, id_):
        return self.js("const e = document.getElementById(arguments[0]); return e ? e.textContent.trim() : null;", id_)

    def alert(self):
        return self.js("const a = document.getElementById('alert'); return a.hidden ? '' : a.textContent.trim();")

    def shot(self, name):
        path = os.path.join(self.args.shots, "dashboard-%s.png" % name)
        self.d.save_screenshot(path)
        print("# screenshot: " + path, flush=True)

    def drain_log(self):
        self.log += self.d.get_log("browser")

    def field(self, label):
        """The control a <label> names: how a person (and a screen reader) finds it."""
        return self.js("""
            for (const l of document.querySelectorAll('label')) {
                const t = [...l.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
                if (t === arguments[0] || l.textContent.trim() === arguments[0])
                    return l.control;
            }
            return null;""", label)


def cli(args, *argv, db=None):
    r = subprocess.run([args.lmtasks, "--db", db or args.db] + list(argv), capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("lmtasks %s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr))
    return r.stdout


def stats(args, db=None):
    return json.loads(cli(args, "stats", db=db))


def rows(p):
    """The task rows on screen: [(uid, status, index)]."""
    return p.js("""return [...document.querySelectorAll('#tasks tbody tr')].map(r =>
        [Number(r.dataset.uid), r.dataset.status, r.children[1].textContent.trim()]);""")


def finished_recent(args):
    """The tasks finished in the last 10 minutes, by the CLI (the suite's are all recent)."""
    st = stats(args)["statuses"]
    return st["succeeded"] + st["failed"] + st["canceled"]


def table_uids(p):
    return p.js("return [...document.querySelectorAll('#tasks tbody tr')].map(r => Number(r.dataset.uid));")


def wait_uids(p, want):
    return p.wait("the rows", "return JSON.stringify([...document.querySelectorAll('#tasks tbody tr')]"
                  ".map(r => Number(r.dataset.uid))) === arguments[0];", json.dumps(want, separators=(",", ":")))


def record_json(p, title):
    """Waits for the open record titled title; its JSON, parsed."""
    t = p.wait(title, "const d = document.getElementById('record');"
               "const t = document.getElementById('record-json').textContent;"
               "return d.open && document.getElementById('record-title').textContent === arguments[0] &&"
               " t.startsWith('{') && t;", title)
    return json.loads(t) if t else None


def click_text(p, selector, text):
    """Clicks the element of selector whose text is text; false when there is none."""
    return p.js("""for (const e of document.querySelectorAll(arguments[0]))
        if (e.textContent.trim() === arguments[1]) { e.click(); return true; }
        return false;""", selector, text)


def row_is(p, uid, status):
    """Waits until the table shows task uid with that status."""
    return p.wait(status, "const r = document.querySelector('#tasks tr[data-uid=\"' + arguments[0] + '\"]');"
                  "return r !== null && r.dataset.status === arguments[1];", uid, status)


def counts_shown(p):
    return {s: p.text("count-" + s) for s in STATUSES + ["total"]}


def counts_cli(args, db=None):
    st = stats(args, db)
    want = {s: format(st["statuses"][s], ",") for s in STATUSES}
    want["total"] = format(st["tasks"], ",")
    return want


def open_steps(p, args):
    """The quick start's case: a responder without a key, a store at compat v0.25."""
    p.d.get(args.open_base + "/ui/")
    want = counts_cli(args, args.open_db)
    got = p.wait("the counts", "return document.getElementById('count-total').textContent === arguments[0];",
                 want["total"])
    check("no key on the server: the counts come with none typed, and match `lmtasks stats`",
          got and counts_shown(p) == want, (counts_shown(p), want, p.alert()))
    check("... and the page shows no error", p.alert() == "", p.alert())
    note = p.wait("the batches note", "const t = document.getElementById('batches-summary').textContent;"
                  "return t.includes('v0.25') && t;")
    check("at compat v0.25 the batches section says why there are none, and how to get them",
          note and "compat v1" in note, note)
    check("... and neither a batch column nor a batch filter shows",
          p.js("return [...document.querySelectorAll('[data-v1]')].every(e => e.offsetParent === null);"))
    p.shot("demo")


def apache_steps(p, args):
    """The page under a prefix through Apache (lmtasks-conf.conf): the API above it, live."""
    p.d.get(args.apache_base + "/ui/")
    box = p.field("API key")
    box.send_keys(args.key)
    box.send_keys(Keys.ENTER)
    want = counts_cli(args)
    got = p.wait("the counts", "return document.getElementById('count-total').textContent === arguments[0];",
                 want["total"])
    check("Apache, under /lmtasks/ui/: the page reads the API at /lmtasks/ (counts as `lmtasks stats`)",
          got and counts_shown(p) == want, (counts_shown(p), want, p.alert()))
    live = p.wait("the stream", "return document.getElementById('live').dataset.state === 'live';")
    check("... and follows /lmtasks/tasks/stream", live, p.text("live"))
    uid = json.loads(cli(args, "enqueue", "books", "documentAddition"))["uid"]
    check("... a task the CLI enqueues appears, through Apache's stream", row_is(p, uid, "enqueued"), rows(p)[:3])
    cli(args, "start", str(uid))
    cli(args, "succeed", str(uid))
    check("... and shows succeeded once the CLI finishes it", row_is(p, uid, "succeeded"), rows(p)[:3])
    p.shot("apache")


def gone(pid):
    """True once pid has exited (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def accepts(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(1)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def reconnect_steps(p, args, started):
    """The responder stops and comes back: the page says so, reconnects by itself, and
    shows what changed meanwhile."""
    os.kill(args.fcgi_pid, signal.SIGTERM)
    end = time.monotonic() + WAIT
    while not gone(args.fcgi_pid) and time.monotonic() < end:
        time.sleep(0.05)
    check("the responder stops (SIGTERM)", gone(args.fcgi_pid))
    state = p.wait("reconnecting", "const s = document.getElementById('live'); return s.dataset.state !== 'live' && s.textContent;")
    check("the page says it is reconnecting", state and "Reconnecting" in state, state)
    uid = json.loads(cli(args, "enqueue", "movies", "settingsUpdate"))["uid"]
    argv = shlex.split(args.fcgi_argv)
    sock = argv[argv.index("--listen") + 1][len("unix:"):]
    started.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL))
    end = time.monotonic() + WAIT
    while not accepts(sock) and time.monotonic() < end:
        time.sleep(0.05)
    live = p.wait("live again", "return document.getElementById('live').dataset.state === 'live';")
    check("once the responder is back, the page is live again, without a reload",
          live and p.js("return window.__lmtasksNoReload;") == 42, p.text("live"))
    check("... and shows the task enqueued while it was away", row_is(p, uid, "enqueued"), rows(p)[:3])
    want = counts_cli(args)
    got = p.wait("the counts", "return document.getElementById('count-total').textContent === arguments[0];",
                 want["total"])
    check("... and the counts of `lmtasks stats`", got and counts_shown(p) == want, (counts_shown(p), want))
    p.js("document.querySelector('input[name=statuses][value=enqueued]').click();"
         "document.querySelector('#filters button[type=submit]').click();")
    cli(args, "start", str(uid))
    check("... and follows the stream again (a task started)", p.wait("gone from enqueued",
          "return !document.querySelector('#tasks tr[data-uid=\"' + arguments[0] + '\"][data-status=enqueued]');", uid))
    p.js("document.querySelector('#filters button[type=reset]').click();")


def nochart_steps(p, args):
    """Without Chart.js the page still works, and says the charts are off."""
    p.d.get(args.nochart_base + "/ui/")
    note = p.wait("the note", "const n = document.getElementById('charts-note'); return !n.hidden && n.textContent;")
    check("without Chart.js the page says the charts need libjs-chart.js", note and "libjs-chart.js" in note, note)
    want = counts_cli(args, args.open_db)
    check("... and still shows the counts", p.wait("the counts",
          "return document.getElementById('count-total').textContent === arguments[0];", want["total"]),
          counts_shown(p))


def quiet_steps(p):
    """Nothing changes for 2 s: the page asks nothing (the stream says when to ask)."""
    before = p.js("return performance.getEntriesByType('resource').length;")
    time.sleep(2)
    after = p.js("return performance.getEntriesByType('resource').map(e => e.name);")
    check("with nothing changing, the page sends no request for 2 s (no polling)",
          len(after) == before, after[before:][:5])


def key_steps(p, args):
    """No key, a wrong key, then the right one typed into the page."""
    p.d.get(args.base + "/ui/")
    msg = p.wait("the key message", "const a = document.getElementById('alert'); return !a.hidden && a.textContent;")
    check("without a key: the page says the server needs one", msg and "needs an API key" in msg, msg)
    check("... and shows no counts", p.text("count-total") == "–", p.text("count-total"))
    box = p.field("API key")
    check("the key field is found by its label", box is not None)
    box.send_keys("not-the-key-0123456789")
    box.send_keys(Keys.ENTER)
    msg = p.wait("the refusal", "const a = document.getElementById('alert');"
                 "return !a.hidden && a.textContent.includes('refused') && a.textContent;")
    check("a wrong key (typed, then Enter): the page says the server refused it", msg and "refused this API key" in msg, p.alert())
    check("... with the API's words", msg and "invalid" in msg.lower(), msg)
    p.shot("wrongkey")
    box = p.field("API key")
    box.clear()
    box.send_keys(args.key)
    p.js("document.querySelector('#key-form button[type=submit]').click();")
    want = counts_cli(args)
    got = p.wait("the counts", "return document.getElementById('alert').hidden &&"
                 " document.getElementById('count-total').textContent === arguments[0];", want["total"])
    check("the right key: the error goes and the counts come", got, (p.alert(), counts_shown(p)))
    check("the key is kept in sessionStorage, for this tab",
          p.js("return sessionStorage.getItem('lmtasks.apiKey')") == args.key)
    check("the key is not in the page's URL", args.key not in p.d.current_url, p.d.current_url)
    check("the key field is emptied", p.field("API key").get_attribute("value") == "")


def overview_steps(p, args):
    want = counts_cli(args)
    check("counts by status and the total match `lmtasks stats`", counts_shown(p) == want,
          "page %r, stats %r" % (counts_shown(p), want))
    oldest = json.loads(cli(args, "list", "--statuses", "enqueued", "--reverse", "--limit", "1"))["results"]
    age = p.text("queue-age")
    check("the queue's age names the oldest enqueued task",
          oldest and ("(task %d)" % oldest[0]["uid"]) in age, "%r, oldest %r" % (age, oldest[:1]))
    live = p.wait("the stream", "return document.getElementById('live').dataset.state === 'live';")
    check("the live stream is connected", live, p.text("live"))
    failed = json.loads(cli(args, "list", "--statuses", "failed", "--limit", "1000"))["results"]
    by = {}
    for t in failed:
        by[t["error"]["code"]] = by.get(t["error"]["code"], 0) + 1
    shown = p.js("""return Object.fromEntries([...document.querySelectorAll('#errors tbody tr')].map(r =>
        [r.dataset.code, Number(r.children[1].textContent.replace(/,/g, ''))]));""")
    check("errors of failed tasks grouped by code, as the CLI's failed tasks are", shown == by,
          "page %r, cli %r" % (shown, by))
    batches = json.loads(cli(args, "batch", "list", "--limit", "10"))["results"]
    shown = p.js("return [...document.querySelectorAll('#batches tbody tr')].map(r => Number(r.dataset.uid));")
    check("the batches: the newest, as `lmtasks batch list` gives them",
          shown == [b["uid"] for b in batches] and len(shown) > 0, "page %r" % shown)
    n = finished_recent(args)
    tp = p.text("throughput")
    check("throughput: the tasks finished in the last 10 minutes, as the CLI counts them",
          tp.startswith("%d (" % n), "%r, cli %d" % (tp, n))
    drawn = p.wait("the charts", """return ['chart-counts', 'chart-throughput'].every(id => {
        const c = document.getElementById(id);
        if (!c.width || !c.height) return false;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
        return false; });""")
    check("both charts are drawn (Chart.js from vendor/chart.js/)", drawn and p.js(
        "return document.getElementById('charts-note').hidden;"), p.text("charts-note"))
    want = "now " + ", ".join("%s %d" % (k, stats(args)["statuses"][k]) for k in STATUSES)
    label = p.wait("the chart's counts", "const l = document.getElementById('chart-counts').getAttribute('aria-label');"
                   "return l.endsWith(arguments[0]) && l;", want)
    check("the counts chart holds the counts of `lmtasks stats` (its text for screen readers)", label,
          p.js("return document.getElementById('chart-counts').getAttribute('aria-label');"))
    label = p.js("return document.getElementById('chart-throughput').getAttribute('aria-label');")
    check("the throughput chart holds those finished tasks", (": %d in all" % n) in label, label)


def live_steps(p, args):
    """A task enqueued, started and finished by the CLI changes on screen, no reload."""
    p.js("window.__lmtasksNoReload = 42;")
    uid = json.loads(cli(args, "enqueue", "movies", "documentAddition",
                         "--details", '{"receivedDocuments":7}'))["uid"]
    st = row_is(p, uid, "enqueued")
    check("a task enqueued by the CLI appears in the table, enqueued", st, rows(p)[:3])
    want = counts_cli(args)
    got = p.wait("the counts", "return document.getElementById('count-enqueued').textContent === arguments[0];",
                 want["enqueued"])
    check("... and the enqueued count follows", got, (counts_shown(p), want))
    # Its record, opened from the keyboard.
    p.js("document.querySelector('#tasks tr[data-uid=\"' + arguments[0] + '\"] button').focus();", uid)
    p.d.switch_to.active_element.send_keys(Keys.ENTER)
    rec = p.wait("the record", "const d = document.getElementById('record');"
                 "const t = document.getElementById('record-json').textContent;"
                 "return d.open && t.startsWith('{') && t;")
    check("Enter on its uid opens its full record, as `lmtasks get` prints it",
          rec and json.loads(rec) == json.loads(cli(args, "get", str(uid))), rec)
    cli(args, "start", str(uid))
    st = row_is(p, uid, "processing")
    check("`lmtasks start`: the row shows processing, without a reload", st, rows(p)[:3])
    cli(args, "succeed", str(uid), "--details", '{"indexedDocuments":7}')
    st = row_is(p, uid, "succeeded")
    check("`lmtasks succeed`: the row shows succeeded, without a reload", st, rows(p)[:3])
    rec = p.wait("the record follows", "const t = document.getElementById('record-json').textContent;"
                 "return t.includes('\"succeeded\"') && t;")
    check("... and the open record follows it live",
          rec and json.loads(rec) == json.loads(cli(args, "get", str(uid))), rec)
    p.d.switch_to.active_element.send_keys(Keys.ESCAPE)
    closed = p.wait("closed", "return !document.getElementById('record').open;")
    check("Escape closes the record", closed)
    check("... and the focus is back on the task's uid (its row was redrawn meanwhile)",
          p.wait("the focus", "const a = document.activeElement; const r = a && a.closest('#tasks tr');"
                 "return r !== null && Number(r.dataset.uid) === arguments[0];", uid),
          p.js("return document.activeElement.outerHTML.slice(0, 80);"))
    want = counts_cli(args)
    got = p.wait("the counts", "return document.getElementById('count-succeeded').textContent === arguments[0] &&"
                 " document.getElementById('count-processing').textContent === arguments[1];",
                 want["succeeded"], want["processing"])
    check("the counts follow, and match `lmtasks stats`", got and counts_shown(p) == want,
          (counts_shown(p), want))
    check("the page was not reloaded meanwhile", p.js("return window.__lmtasksNoReload;") == 42)
    tp = p.text("throughput")
    check("the throughput counts the task that finished", tp.startswith("%d (" % finished_recent(args)), tp)
    batches = [[b["uid"], ", ".join("%s %d" % kv for kv in b["stats"]["status"].items())]
               for b in json.loads(cli(args, "batch", "list", "--limit", "10"))["results"]]
    shown = "return JSON.stringify([...document.querySelectorAll('#batches tbody tr')]" \
        ".map(r => [Number(r.dataset.uid), r.children[2].textContent]))"
    got = p.wait("the batches", shown + " === arguments[0];", json.dumps(batches, separators=(",", ":")))
    check("the batch that `lmtasks start` made appears in the batches, live, and shows its task "
          "succeeded (as `lmtasks batch list`)", got, (p.js(shown + ";"), batches))
    p.js("window.scrollTo(0, 0);")
    p.shot("overview")


def record_steps(p, args):
    """A task's record leads to its cancelation and its batch; a batch's, to its tasks."""
    p.js("document.querySelector('#tasks tr[data-uid=\"5\"] button').click();")
    rec = record_json(p, "Task 5")
    check("the record of task 5 (canceled) is `lmtasks get 5`", rec == json.loads(cli(args, "get", "5")), rec)
    check("... and opens task 6, its cancelation", click_text(p, "#record-actions button", "Open task 6 (its cancelation)")
          and record_json(p, "Task 6") == json.loads(cli(args, "get", "6")))
    p.js("document.getElementById('record').close();")
    p.js("document.querySelector('#tasks tr[data-uid=\"2\"] button').click();")
    rec = record_json(p, "Task 2")
    b = rec and rec["batchUid"]
    check("the record of task 2 opens its batch, as `lmtasks batch get` prints it",
          b is not None and click_text(p, "#record-actions button", "Open batch %s" % b) and
          record_json(p, "Batch %s" % b) == json.loads(cli(args, "batch", "get", str(b))),
          (rec, p.text("record-title"), p.text("record-actions")))
    check("... whose \"Show its tasks\" filters the table to them",
          click_text(p, "#record-actions button", "Show its tasks in the table") and wait_uids(p, [3, 2, 1]),
          table_uids(p))
    p.js("document.querySelector('#batches tr[data-uid=\"0\"] button').click();")
    check("a batch's uid in the batches table opens its record",
          record_json(p, "Batch 0") == json.loads(cli(args, "batch", "get", "0")))
    p.js("document.getElementById('record').close();")
    p.js("document.querySelector('#filters button[type=reset]').click();")


def filter_steps(p, args):
    st = stats(args)
    p.js("document.querySelector('input[name=statuses][value=failed]').click();")
    p.js("document.querySelector('#filters button[type=submit]').click();")
    got = p.wait("failed only", "const r = [...document.querySelectorAll('#tasks tbody tr')];"
                 "return r.length > 0 && r.every(x => x.dataset.status === 'failed');")
    n = st["statuses"]["failed"]
    check("the statuses filter narrows the table to failed tasks", got and len(rows(p)) == min(n, 20), rows(p))
    summary = p.text("tasks-summary")
    check("... and says how many match", summary.startswith("%s " % format(n, ",")), summary)
    box = p.field("Indexes")
    box.send_keys("books")
    box.send_keys(Keys.ENTER)
    want = [t["uid"] for t in json.loads(cli(args, "list", "--statuses", "failed", "--indexUids", "books"))["results"]]
    got = p.wait("books", "return JSON.stringify([...document.querySelectorAll('#tasks tbody tr')].map(r => Number(r.dataset.uid))) === arguments[0];",
                 json.dumps(want, separators=(",", ":")))
    check("statuses and indexes together: the CLI's `list --statuses failed --indexUids books`", got,
          "page %r, cli %r" % (rows(p), want))
    p.shot("filtered")
    p.js("document.querySelector('#filters button[type=reset]').click();")
    wait_uids(p, [t["uid"] for t in json.loads(cli(args, "list"))["results"]])
    p.js("document.querySelector('#errors tr[data-code=\"missing_document_id\"] button').click();")
    check("errors: \"Show these tasks\" shows the failed tasks with that code", wait_uids(p, [2, 1]), table_uids(p))
    p.js("document.querySelector('#filters button[type=reset]').click();")
    every = [t["uid"] for t in json.loads(cli(args, "list", "--limit", "1000"))["results"]]
    p.js("const s = document.querySelector('select[name=limit]'); s.value = '10';"
         "document.querySelector('#filters button[type=submit]').click();")
    got1 = wait_uids(p, every[:10])
    p.js("document.getElementById('page-next').click();")
    got2 = wait_uids(p, every[10:20])
    check("10 a page, then \"Next page\": the next ten, as `lmtasks list` pages them", got1 and got2, table_uids(p))
    p.js("document.getElementById('page-first').click();")
    check("... and \"First page\" goes back", wait_uids(p, every[:10]), table_uids(p))
    p.js("document.querySelector('details.dates').open = true;")
    box = p.field("Enqueued after")
    box.send_keys("yesterday")
    box.send_keys(Keys.ENTER)
    msg = p.wait("the date error", "const a = document.getElementById('alert'); return !a.hidden && a.textContent;")
    check("a bad date: the page shows the API's error, naming the code",
          msg and "invalid_task_after_enqueued_at" in msg, msg)
    box = p.field("Enqueued after")
    box.clear()
    box.send_keys("2000-01-01")
    box.send_keys(Keys.ENTER)
    limit = p.js("return document.querySelector('select[name=limit]').value;")
    every = [t["uid"] for t in json.loads(cli(args, "list", "--afterEnqueuedAt", "2000-01-01",
                                              "--limit", limit))["results"]]
    got = p.wait("the dated table", "return document.getElementById('alert').hidden && JSON.stringify("
                 "[...document.querySelectorAll('#tasks tbody tr')].map(r => Number(r.dataset.uid))) === arguments[0];",
                 json.dumps(every, separators=(",", ":")))
    check("a date filter gives the table of `lmtasks list --afterEnqueuedAt`, and the error goes",
          got, (table_uids(p), p.alert()))
    uid = json.loads(cli(args, "enqueue", "movies", "documentAddition"))["uid"]
    stale = p.wait("the notice", "return !document.getElementById('tasks-stale').hidden;")
    check("... a change then shows a notice, and the table waits to be asked (the API walks for dates)",
          stale and uid not in table_uids(p), table_uids(p))
    p.js("document.getElementById('tasks-reload').click();")
    check("... \"Read the table again\" shows the change",
          p.wait("the row", "return !!document.querySelector('#tasks tr[data-uid=\"' + arguments[0] + '\"]');", uid)
          and p.js("return document.getElementById('tasks-stale').hidden;"), table_uids(p))
    p.js("document.querySelector('#filters button[type=reset]').click();")
    got = p.wait("cleared", "return document.getElementById('alert').hidden &&"
                 " document.querySelectorAll('#tasks tbody tr').length === Math.min(20, arguments[0]);", stats(args)["tasks"])
    p.js("window.scrollTo(0, 0);")
    check("Clear: the error goes, the table shows every task again", got, (p.alert(), len(rows(p))))


def a11y_steps(p):
    unnamed = p.js("""return [...document.querySelectorAll('input, select, button, textarea')].filter(e => {
        if (e.closest('[hidden]')) return false;
        const name = (e.labels && [...e.labels].map(l => l.textContent).join('')) ||
            e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent);
        return !name || !name.trim();
    }).map(e => e.outerHTML.slice(0, 80));""")
    check("every control has a name (a label, its text or aria-label)", not unnamed, unnamed)
    low = p.js("""
        function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : m.concat(1); }
        function lum(c) { const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
            return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); }
        function bg(e) { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
            if (c[3] > 0) return c; } return [255, 255, 255, 1]; }
        const bad = [];
        for (const e of document.querySelectorAll('body *')) {
            if (!e.offsetParent || e.closest('[hidden], dialog:not([open])')) continue;
            const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
            if (!own) continue;
            const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg(e));
            const r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            if (r < 4.5) bad.push(e.tagName + '.' + e.className + ' ' + r.toFixed(2) + ' ' + e.textContent.trim().slice(0, 20));
        }
        return bad;""")
    check("text contrast is at least 4.5:1 everywhere on the page (WCAG AA)", not low, low[:5])
    p.d.set_window_size(390, 844)
    p.js("window.scrollTo(0, 0);")
    fits = p.wait("the phone layout", "return document.documentElement.scrollWidth <= window.innerWidth;")
    check("on a phone-sized window (390 px) nothing is wider than the screen", fits,
          p.js("return [document.documentElement.scrollWidth, window.innerWidth];"))
    p.shot("phone")
    p.js("document.getElementById('tasks-title').scrollIntoView();")
    p.shot("phone-tasks")
    p.d.set_window_size(1280, 1000)


def log_steps(p, args):
    p.drain_log()
    bad = [e for e in p.log if e.get("source") in ("javascript", "security", "console-api")
           and e.get("level") in ("SEVERE", "WARNING")]
    check("the browser's log has no JavaScript exception, console error or security warning", not bad,
          [e["message"] for e in bad][:5])
    net = [e["message"] for e in p.log if e.get("source") == "network"]
    expected = [m for m in net if " 401 " in m or " 403 " in m or " 400 " in m or
                (("/batches?" in m or args.nochart_base + "/ui/vendor/" in m) and " 404 " in m)]
    check("the only failed requests are the refused keys, the bad date, /batches at v0.25 and "
          "the missing Chart.js",
          len(expected) == len(net),
          [m for m in net if m not in expected][:5])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--lmtasks", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--open-base", required=True)
    ap.add_argument("--open-db", required=True)
    ap.add_argument("--apache-base")
    ap.add_argument("--nochart-base", required=True)
    ap.add_argument("--fcgi-pid", type=int)
    ap.add_argument("--fcgi-argv")
    ap.add_argument("--shots", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--driver-log", default=os.devnull)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = ap.parse_args()
    started = []
    try:
        p = Page(args)
    except WebDriverException as e:
        print("# cannot start Chromium: %s" % e, file=sys.stderr)
        return 1
    try:
        steps = [(open_steps, args), (nochart_steps, args), (key_steps, args), (overview_steps, args), (live_steps, args),
                 (record_steps, args), (filter_steps, args), (quiet_steps,)]
        if args.fcgi_pid:
            steps.append((reconnect_steps, args, started))
        if args.apache_base:
            steps.append((apache_steps, args))
        steps += [(a11y_steps,), (log_steps, args)]
        for step, *a in steps:
            t0 = time.monotonic()
            step(p, *a)
            if step is not log_steps:
                p.drain_log()
            print("# %s: %.1f s" % (step.__name__, time.monotonic() - t0), flush=True)
    except Exception as e:  # a step that could not go on: counted, with the page as it was
        not_ok("the checks ran to their end", repr(e))
        try:
            p.shot("failure")
        except WebDriverException:
            pass
    finally:
        p.d.quit()
        for proc in started:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
