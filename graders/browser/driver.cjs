'use strict';
/**
 * The `browser` probe's driver: the grader's own script, put into the trusted toolbox (which has
 * joined the seat's network namespace) and run there with Node.js and the toolbox's Chromium. It
 * opens the candidate's page, performs one aspect's steps and prints one JSON line of what it saw;
 * the TypeScript side judges. Nothing here decides a score.
 *
 * Before any of the page's scripts run, an init script watches the global `Vue`: each object
 * assigned to it is noted with the script that assigned it (document.currentScript), and its
 * createApp is wrapped so that every app it makes is handed to the driver as a handle. The page
 * cannot replace what the driver holds: the app judged is the one the real createApp returned.
 *
 * Usage: node driver.cjs '<config JSON>'   (exit 0 with {"ok":true,...}; a failure of the driver
 * or Chromium itself prints {"ok":false,"driverError":...} and exits 2)
 */
const { createHash, randomBytes } = require('node:crypto');
const { join } = require('node:path');

const modules = process.env.GRADER_NODE_MODULES || '/opt/grader-node/node_modules';
const config = JSON.parse(process.argv[2] || '{}');

/** The name of the init script's window property, fresh for each run. */
const SECRET = `__deploylab_${randomBytes(12).toString('hex')}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clipText = (s, n = 4000) => (typeof s === 'string' && s.length > n ? s.slice(0, n) : s);

/**
 * Runs in the page before its own scripts. What it records stays in its closure, reachable only
 * through a non-configurable window property under a name chosen for this run (the page can
 * neither replace it nor add to what it returns); the built-ins it relies on are taken before the
 * page could change them.
 */
function initScript(secret) {
  return `(() => {
  const apply = Reflect.apply;
  const currentScript = Object.getOwnPropertyDescriptor(Document.prototype, 'currentScript').get;
  const scriptSrc = Object.getOwnPropertyDescriptor(HTMLScriptElement.prototype, 'src').get;
  const vues = [];
  const apps = [];
  const seen = [];
  let current;
  Object.defineProperty(window, ${JSON.stringify(secret)}, {
    configurable: false, enumerable: false, writable: false,
    value: () => ({ vues: vues.map((v) => ({ src: v.src, version: v.version })), apps: apps.slice() }),
  });
  Object.defineProperty(window, 'Vue', {
    configurable: true,
    enumerable: true,
    get() { return current; },
    set(v) {
      current = v;
      try {
        if (!v || (typeof v !== 'object' && typeof v !== 'function') || seen.includes(v) || typeof v.createApp !== 'function') return;
        seen.push(v);
        const s = apply(currentScript, document, []);
        const src = s ? (apply(scriptSrc, s, []) || '(inline)') : '(no script)';
        vues.push({ src, version: String(v.version) });
        const create = v.createApp;
        v.createApp = function () {
          const app = apply(create, this, arguments);
          apps.push({ app, src });
          return app;
        };
      } catch (e) {}
    },
  });
})();`;
}

async function main() {
  const { chromium } = require(join(modules, 'playwright-core'));
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: config.chromium || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check'],
    });
  } catch (e) {
    return fail(`chromium did not start: ${e && e.message}`);
  }
  try {
    const out = await run(browser);
    process.stdout.write(JSON.stringify({ ok: true, ...out }) + '\n');
  } finally {
    await browser.close().catch(() => undefined);
  }
}

function fail(message) {
  process.stdout.write(JSON.stringify({ ok: false, driverError: String(message).slice(0, 2000) }) + '\n');
  process.exitCode = 2;
}

async function run(browser) {
  const context = await browser.newContext({ serviceWorkers: 'block', bypassCSP: false });
  await context.addInitScript({ content: initScript(SECRET) });
  const page = await context.newPage();
  page.setDefaultTimeout(config.actionTimeoutMs || 5000);

  // Every request the page makes, and the bodies of its scripts and chat responses.
  const requests = [];
  const pending = [];
  const scripts = [];
  const chatPath = config.chatPath;
  const isChat = (req) => {
    try {
      return new URL(req.url()).pathname === chatPath && req.method() !== 'OPTIONS';
    } catch {
      return false;
    }
  };
  page.on('request', (req) => {
    if (!isChat(req)) return;
    const entry = { url: req.url(), method: req.method(), postData: clipText(req.postData(), 20000), at: Date.now(), response: null, failure: null };
    requests.push(entry);
    req._deploylab = entry;
  });
  page.on('requestfailed', (req) => {
    if (req._deploylab) req._deploylab.failure = (req.failure() && req.failure().errorText) || 'failed';
  });
  page.on('response', (res) => {
    const req = res.request();
    if (req.resourceType() === 'script') {
      pending.push(
        res.body().then(
          (b) => scripts.push({ url: res.url(), status: res.status(), size: b.length, sha256: createHash('sha256').update(b).digest('hex'), vueVersion: vueMarker(b) }),
          () => scripts.push({ url: res.url(), status: res.status(), size: null, sha256: null, vueVersion: null }),
        ),
      );
    }
    if (req._deploylab) {
      const entry = req._deploylab;
      pending.push(
        res.text().then(
          (t) => void (entry.response = { status: res.status(), body: clipText(t, 20000) }),
          (e) => void (entry.response = { status: res.status(), body: null, error: String(e && e.message) }),
        ),
      );
    }
  });

  const load = await openPage(page);
  const result = { load, scripts, requestsBeforeSend: 0 };
  partial = result;
  if (!load.ok) return result;
  try {
    result.vues = await page.evaluate((secret) => window[secret]().vues, SECRET);
    await steps(page, requests, pending, result);
  } catch (e) {
    // The page broke a step (navigated away, closed, crashed): what it did, not the driver's failure.
    result.stepError = String(e && e.message).split('\n')[0].slice(0, 300);
  }
  await Promise.allSettled(pending);
  return result;
}

async function steps(page, requests, pending, result) {
  result.controls = await readControls(page);
  result.apps = await describeApps(page);

  if (config.aspect === 'vue') result.reactivity = await reactivity(page);
  if (config.aspect === 'request' || config.aspect === 'output') {
    result.requestsBeforeSend = requests.length;
    result.rounds = [];
    for (const round of config.rounds) result.rounds.push(await sendRound(page, round, requests, pending));
  }
  if (config.aspect === 'validation') {
    result.cases = [];
    for (const c of config.cases) {
      result.cases.push(await validationCase(page, c, requests));
    }
  }
}

/** Vue's own version banner at the head of its builds ("vue v3.5.13"), or null. */
function vueMarker(buf) {
  const m = /^\/\*\*?\s*\n?\s*\*?\s*vue v(3\.\d+\.\d+)/.exec(buf.subarray(0, 200).toString('latin1'));
  return m ? m[1] : null;
}

async function openPage(page) {
  let status = null;
  try {
    const res = await page.goto(config.url, { waitUntil: 'load', timeout: config.loadTimeoutMs || 15000 });
    status = res ? res.status() : null;
  } catch (e) {
    return { ok: false, status, error: String(e && e.message).split('\n')[0].slice(0, 300) };
  }
  // The controls may be rendered a moment after load (the app mounts): wait for the send button.
  const send = await page.waitForSelector(tid('send'), { state: 'attached', timeout: config.renderTimeoutMs || 8000 }).then(() => true, () => false);
  await sleep(200);
  return { ok: status !== null && status >= 200 && status < 300, status, rendered: send };
}

function tid(name) {
  return `[data-testid="${config.testids[name]}"]`;
}

async function readControls(page) {
  const out = {};
  for (const name of Object.keys(config.testids)) {
    out[name] = await page.evaluate((sel) => {
      const all = document.querySelectorAll(sel);
      const el = all[0];
      if (!el) return { found: 0 };
      const tag = el.tagName.toLowerCase();
      const value = 'value' in el && (tag === 'input' || tag === 'textarea' || tag === 'select') ? String(el.value) : null;
      return { found: all.length, tag, type: el.getAttribute('type'), value, text: (el.textContent || '').slice(0, 2000) };
    }, tid(name));
  }
  return out;
}

/** Each app the real createApp made: where it is mounted, and whether the controls are inside it. */
async function describeApps(page) {
  return page.evaluate(
    ({ secret, sels }) =>
      window[secret]()
        .apps.slice(0, 5)
        .map(({ app, src }) => {
          const c = app && app._container;
          // Production builds keep no app._instance: the root instance is the container's rendered vnode's.
          const mounted = !!(c && c.nodeType === 1 && c._vnode && c._vnode.component);
          const inside = {};
          for (const [name, sel] of Object.entries(sels)) {
            const el = document.querySelector(sel);
            inside[name] = !!(mounted && el && c.contains(el));
          }
          return { src, version: String(app && app.version), mounted, dataVApp: mounted && c.hasAttribute('data-v-app'), ownApp: mounted && c.__vue_app__ === app, inside };
        }),
    { secret: SECRET, sels: Object.fromEntries(Object.keys(config.testids).map((n) => [n, tid(n)])) },
  );
}

/**
 * Vue's reactivity, both ways: a value the grader types reaches the app's state, and a value the
 * grader writes into that state reaches the input.
 */
async function reactivity(page) {
  const r = config.reactivity;
  const out = {};
  try {
    await setField(page, 'temperature', r.typed);
    await page.fill(tid('prompt'), r.prompt);
  } catch (e) {
    out.fillError = String(e && e.message).split('\n')[0];
    return out;
  }
  await sleep(150);
  const found = await page.evaluate(
    ({ secret, send, typed, prompt, written }) => {
      // The mounted app the real createApp made that holds the send button.
      const sendEl = document.querySelector(send);
      const entry = window[secret]().apps.find(({ app }) => app && app._container && app._container._vnode && sendEl && app._container.contains(sendEl));
      const res = { app: !!entry, typedAt: null, promptAt: null, wrote: false };
      if (!entry) return res;
      const app = entry.app;
      // The app's state objects (setup state, data, of every component instance), depth-limited.
      const seen = new Set();
      const skip = (k) => k.startsWith('$') || k.startsWith('_') || k.startsWith('__v');
      const visit = (obj, k, v, path) => {
        if (res.promptAt === null && v === prompt) res.promptAt = path;
        if (res.typedAt === null && (v === typed || v === String(typed))) {
          res.typedAt = path;
          // Write the grader's second value into that very place, as the same type.
          try {
            obj[k] = typeof v === 'number' ? written : String(written);
            res.wrote = true;
          } catch (e) {
            res.writeError = String(e);
          }
        }
        return res.typedAt !== null && res.promptAt !== null;
      };
      const state = (obj, path, depth) => {
        if (!obj || typeof obj !== 'object' || depth > 3 || seen.has(obj) || obj instanceof Node) return false;
        seen.add(obj);
        for (const k of Object.keys(obj)) {
          if (skip(k)) continue;
          let v;
          try {
            v = obj[k];
          } catch {
            continue;
          }
          if (visit(obj, k, v, `${path}.${k}`)) return true;
          if (v && typeof v === 'object' && !Array.isArray(v) && state(v, `${path}.${k}`, depth + 1)) return true;
        }
        return false;
      };
      const vnode = (v, depth) => {
        if (!v || typeof v !== 'object' || depth > 60) return false;
        if (v.component && inst(v.component, depth + 1)) return true;
        if (Array.isArray(v.children)) for (const c of v.children) if (vnode(c, depth + 1)) return true;
        return false;
      };
      const inst = (i, depth) => {
        if (!i || depth > 30 || seen.has(i)) return false;
        seen.add(i);
        if (state(i.setupState, 'setupState', 0) || state(i.data, 'data', 0)) return true;
        return vnode(i.subTree, depth + 1);
      };
      inst(app._container._vnode.component, 0);
      return res;
    },
    { secret: SECRET, send: tid('send'), typed: r.typed, prompt: r.prompt, written: r.written },
  );
  Object.assign(out, found);
  await sleep(300);
  out.shownAfterWrite = await page.$eval(tid('temperature'), (el) => String(el.value)).catch(() => null);
  return out;
}

/**
 * Enter a value as a user would: typed into an input, or the slider moved (Playwright's fill
 * refuses a range input's value that the slider itself keeps in range; a user cannot move it
 * there either, and the control shows where it stopped).
 */
async function setField(page, name, value) {
  const type = await page.$eval(tid(name), (el) => (el.getAttribute('type') || '').toLowerCase());
  if (type !== 'range') return page.fill(tid(name), String(value));
  await page.$eval(
    tid(name),
    (el, v) => {
      el.focus();
      el.value = v;
      el.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    },
    String(value),
  );
}

async function fillValues(page, v) {
  await setField(page, 'temperature', v.temperature);
  await setField(page, 'topP', v.topP);
  await setField(page, 'maxTokens', v.maxTokens);
  await page.fill(tid('prompt'), v.prompt);
}

async function outputText(page) {
  return page
    .$eval(tid('output'), (el) => (el.tagName === 'TEXTAREA' || el.tagName === 'INPUT' ? el.value : el.textContent || ''))
    .catch(() => null);
}

async function errorText(page) {
  return page.$eval(tid('error'), (el) => (el.textContent || '').trim()).catch(() => null);
}

/** One send with the grader's values: the requests it caused, their responses, what the page shows, and the grader's own replay. */
async function sendRound(page, values, requests, pending) {
  const before = requests.length;
  const shownBefore = await outputText(page);
  const round = { values, shownBefore };
  try {
    await fillValues(page, values);
    await page.click(tid('send'));
  } catch (e) {
    round.actionError = String(e && e.message).split('\n')[0].slice(0, 300);
    return round;
  }
  const clickedAt = Date.now();
  const deadline = clickedAt + (config.replyTimeoutMs || 30000);
  // Wait for the page's request to be answered (or, when none left within a few seconds, stop
  // waiting), then for the output to settle.
  while (Date.now() < deadline) {
    const mine = requests.slice(before);
    if (mine.length > 0 && mine.every((q) => q.response || q.failure)) break;
    if (mine.length === 0 && Date.now() - clickedAt > 5000) break;
    await sleep(100);
  }
  await Promise.allSettled(pending);
  let shown = await outputText(page);
  const settleUntil = Math.min(deadline, Date.now() + 3000);
  let stableSince = Date.now();
  while (Date.now() < settleUntil) {
    await sleep(150);
    const now = await outputText(page);
    if (now !== shown) {
      shown = now;
      stableSince = Date.now();
    } else if (shown !== shownBefore && shown && Date.now() - stableSince >= 400) break;
  }
  await sleep(300);
  round.requests = requests.slice(before).map((q) => ({ ...q }));
  round.shown = clipText(await outputText(page), 20000);
  round.error = await errorText(page);
  // The grader's own replay of the page's first request body, straight to the model backend.
  const first = round.requests[0];
  if (first && typeof first.postData === 'string') {
    try {
      const res = await fetch(config.backend + config.chatPath, { method: 'POST', headers: { 'content-type': 'application/json' }, body: first.postData, signal: AbortSignal.timeout(config.replyTimeoutMs || 30000) });
      round.replay = { status: res.status, body: clipText(await res.text(), 20000) };
    } catch (e) {
      round.replay = { status: null, error: String(e && e.message) };
    }
  }
  return round;
}

/** An out-of-range value in one field: what the control then holds, what was sent, what the error area says. */
async function validationCase(page, c, requests) {
  await page.reload({ waitUntil: 'load' }).catch(() => undefined);
  await page.waitForSelector(tid('send'), { state: 'attached', timeout: 8000 }).catch(() => undefined);
  await sleep(200);
  const out = { field: c.field, typed: c.value };
  try {
    await page.fill(tid('prompt'), c.prompt);
    await setField(page, c.field, c.value);
    out.shown = await page.$eval(tid(c.field), (el) => String(el.value));
    out.controlType = await page.$eval(tid(c.field), (el) => (el.getAttribute('type') || el.tagName).toLowerCase());
    const before = requests.length;
    await page.click(tid('send'));
    await sleep(config.validationWaitMs || 1500);
    out.requests = requests.slice(before).map((q) => ({ url: q.url, method: q.method, postData: q.postData }));
  } catch (e) {
    out.actionError = String(e && e.message).split('\n')[0].slice(0, 300);
  }
  out.error = await errorText(page);
  return out;
}

/** What the steps saw so far, for the watchdog. */
let partial = null;

// A page that stops answering (a busy loop in its scripts) holds up the steps: what it did by
// then is reported as the page's doing; before the page loaded, it is the driver's failure.
const watchdog = setTimeout(() => {
  if (partial && partial.load && partial.load.ok) {
    process.stdout.write(JSON.stringify({ ok: true, ...partial, stepError: 'the page stopped answering the grader’s steps within the time limit' }) + '\n');
    process.exit(0);
  }
  fail('the driver overran its own time limit');
  process.exit(2);
}, config.driverTimeoutMs || 100000);
watchdog.unref();

main().catch((e) => fail(e && e.stack ? e.stack : e));
