/**
 * The browser probe for real: the grader's driver in the real toolbox (its Node.js, playwright-core
 * and Chromium), in the network namespace of a real seat that serves a tiny Vue page and a stand-in
 * model backend (CORS, an answer derived from the request body, so the grader's replay agrees).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../../runner/sandbox/driver.js';
import { seatHandleFor } from '../../runner/grading/seat-handle.js';
import { newVerifySession } from '../../runner/grading/verify.js';
import { sweepToolboxes } from '../../runner/sandbox/docker-toolbox.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import Docker from 'dockerode';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle } from '../probe.js';
import { browserProbe } from './browser.js';

const VUE = readFileSync(fileURLToPath(new URL('../../tasks/junior/panel/setup/vue.global.prod.js', import.meta.url)));
const VUE_SHA = 'c459ba7cc8db65c982589fa5d64c7ff478877e8e5b0fd75683207cec6a4e89e8';

const BACKEND_PY = `
import hashlib, http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def cors(self):
        self.send_header('Access-Control-Allow-Origin', self.headers.get('Origin') or '*')
        self.send_header('Access-Control-Allow-Headers', '*')
        self.send_header('Access-Control-Allow-Methods', 'POST, OPTIONS')
    def do_OPTIONS(self):
        self.send_response(200); self.cors(); self.send_header('content-length', '0'); self.end_headers()
    def do_POST(self):
        raw = self.rfile.read(int(self.headers['content-length']))
        out = json.dumps({'choices': [{'message': {'role': 'assistant', 'content': 'answer ' + hashlib.sha256(raw).hexdigest()[:16]}}]}).encode()
        self.send_response(200); self.cors(); self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(out))); self.end_headers(); self.wfile.write(out)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', 8081), H).serve_forever()
`;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body>
<div id="app">
  <input data-testid="temperature" type="number" v-model.number="t">
  <input data-testid="top-p" type="number" v-model.number="p">
  <input data-testid="max-tokens" type="number" v-model.number="m">
  <textarea data-testid="prompt" v-model="q"></textarea>
  <button data-testid="send" @click="send">send</button>
  <pre data-testid="output">{{ out }}</pre><p data-testid="error">{{ err }}</p>
</div>
<script src="vue.global.prod.js"></script>
<script>
Vue.createApp({
  data: () => ({ t: 0.7, p: 0.9, m: 64, q: '', out: '', err: '' }),
  methods: {
    async send() {
      this.err = '';
      if (!(this.t >= 0 && this.t <= 2) || !(this.p >= 0 && this.p <= 1) || !(this.m >= 1 && this.m <= 256)) { this.err = 'out of range'; return; }
      const r = await fetch('http://127.0.0.1:8081/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: this.q }], temperature: this.t, top_p: this.p, max_tokens: this.m }) });
      this.out = (await r.json()).choices[0].message.content;
    },
  },
}).mount('#app');
</script></body></html>`;

/** The same controls in plain JS, with a hand-set data-v-app and a look-alike window.Vue. */
const FAKE = PAGE.replace('<div id="app">', '<div id="app" data-v-app="">').replace(
  /<script>[\s\S]*<\/script>/,
  '<script>window.Vue = { version: "3.5.13", createApp: () => ({ mount() {} }) }; document.getElementById("app").__vue_app__ = {};</script>',
);

/** A page that stops answering once send is clicked (a busy loop). */
const BUSY = PAGE.replace('async send() {', 'async send() { for (;;) {}');

describe.skipIf(!hasEngine)('browser probe in the real toolbox, in a real seat', () => {
  const driver = new DockerDriver();
  const ref = { session: newVerifySession(), seat: 'browser' };
  let seat: SeatHandle;

  beforeAll(async () => {
    const [ws, tb] = [await requireImage('workspace-cpu'), await requireImage('toolbox')];
    await driver.provision(parseSeatPlan({ ...ref, task: 'browser-test', workspace: { image: ws } }));
    seat = seatHandleFor({ driver, ref, task: 'browser-test', toolboxImage: tb });
    await driver.writeFiles(ref, [
      { path: '/tmp/www/vue.global.prod.js', content: VUE, mode: 0o644 },
      { path: '/tmp/fake/vue.global.prod.js', content: VUE, mode: 0o644 },
      { path: '/tmp/www/index.html', content: PAGE, mode: 0o644 },
      { path: '/tmp/fake/index.html', content: FAKE, mode: 0o644 },
      { path: '/tmp/busy/vue.global.prod.js', content: VUE, mode: 0o644 },
      { path: '/tmp/busy/index.html', content: BUSY, mode: 0o644 },
      { path: '/tmp/backend.py', content: BACKEND_PY, mode: 0o644 },
    ]);
    const script = [
      'setsid nohup python3 /tmp/backend.py >/dev/null 2>&1 </dev/null &',
      'setsid nohup python3 -m http.server 8080 --bind 127.0.0.1 --directory /tmp/www >/dev/null 2>&1 </dev/null &',
      'setsid nohup python3 -m http.server 8090 --bind 127.0.0.1 --directory /tmp/fake >/dev/null 2>&1 </dev/null &',
      'setsid nohup python3 -m http.server 8091 --bind 127.0.0.1 --directory /tmp/busy >/dev/null 2>&1 </dev/null &',
      'for i in $(seq 50); do curl -sf http://127.0.0.1:8080/ >/dev/null && curl -sf http://127.0.0.1:8090/ >/dev/null && curl -sf http://127.0.0.1:8091/ >/dev/null && break; sleep 0.2; done',
    ].join('\n');
    await driver.exec(ref, { cmd: ['bash', '-c', script] });
  }, 120_000);
  afterAll(async () => {
    await driver.sweep({ session: ref.session });
    await sweepToolboxes(new Docker(), { session: ref.session });
  });

  const run = (extra: object): Promise<ProbeOutcome> => runProbe(browserProbe, seat, { kind: 'browser', vueBuilds: [VUE_SHA], ...extra }, Deadline.after(100_000));
  const failedIds = (o: ProbeOutcome): string[] => {
    const n = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'expectations checked');
    const as = (n && n.kind === 'note' ? (n.data?.['assertions'] as { id: string; ok: boolean }[]) : []) ?? [];
    return as.filter((a) => !a.ok).map((a) => a.id);
  };

  it('judges a Vue page: identity, reactivity, defaults, the request with its replay, the output, validation', async () => {
    for (const aspect of ['vue', 'defaults', 'request', 'output', 'validation']) {
      const o = await run({ aspect });
      expect({ aspect, status: o.status, failed: failedIds(o), error: o.error, summary: o.summary.en }).toMatchObject({ aspect, status: 'pass', failed: [], error: undefined });
    }
  }, 300_000);

  it('fails a plain-JS page with a fake Vue, and a page that is not there', async () => {
    const fake = await run({ aspect: 'vue', port: 8090 });
    expect(fake.status).toBe('fail');
    expect(failedIds(fake)).toEqual(expect.arrayContaining(['app-mounted', 'controls-inside', 'input-to-state']));
    const none = await run({ aspect: 'defaults', port: 8095 });
    expect(none.status).toBe('fail');
  }, 120_000);

  it('fails a page that stops answering the grader’s steps: the page’s doing, never an error', async () => {
    const o = await run({ aspect: 'request', port: 8091, timeoutMs: 25_000 });
    expect(o.status).toBe('fail');
    expect(failedIds(o)).toContain('page-steps');
  }, 60_000);
});
