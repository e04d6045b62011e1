'use strict';
/**
 * The grader's newman driver, run with `node` in the trusted toolbox: it runs the candidate's
 * collection with the newman library (no reporters: the collection's console output goes nowhere)
 * against the seat's live service (`live`) or, one run each, against the grader's own servers
 * (servers.py: control and mutants, same port, a fresh token per run), and reads every result
 * from newman's run summary. It prints one line: the run's marker, then the observations as JSON.
 * The marker comes in the config file, which the driver deletes before any collection script
 * runs, so no script can print a line the probe would take for the driver's.
 *
 * Usage: node driver.cjs CONFIG.json
 */
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const MAX_EXECUTIONS = 100;
const MAX_TEXT = 300;

const configPath = process.argv[2];
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
fs.unlinkSync(configPath);
const marker = config.marker;
delete config.marker;

const newman = require(path.join(process.env.GRADER_NODE_MODULES || config.modules, 'newman'));

const clip = (s) => {
  const t = String(s ?? '');
  return t.length > MAX_TEXT ? t.slice(0, MAX_TEXT) + '…' : t;
};

function environmentOf(baseUrl, token) {
  return {
    id: 'grader',
    name: 'grader',
    values: [
      { key: 'baseUrl', value: baseUrl, type: 'default', enabled: true },
      { key: 'token', value: token, type: 'secret', enabled: true },
    ],
  };
}

/** What one executed request was, from newman's own objects (never from a script's output). */
function execution(ex, token) {
  const req = ex.request;
  let method = null;
  let urlPath = null;
  let auth = 'none';
  try {
    method = String(req.method || '').toUpperCase();
    urlPath = '/' + (req.url.path || []).join('/');
    const h = req.headers && req.headers.one && req.headers.one('authorization');
    const value = h && !h.disabled ? String(h.value) : null;
    if (value !== null) auth = value === 'Bearer ' + token ? 'right' : 'wrong';
  } catch {
    // A request newman could not describe is classified as nothing.
  }
  const res = ex.response;
  return {
    name: clip(ex.item && ex.item.name),
    method,
    path: urlPath,
    auth,
    code: res && typeof res.code === 'number' ? res.code : null,
    requestError: ex.requestError ? clip(ex.requestError.message || ex.requestError) : null,
    assertions: (ex.assertions || []).map((a) => ({ name: clip(a.assertion), passed: !a.error && !a.skipped, skipped: !!a.skipped, error: a.error ? clip(a.error.message) : null })),
  };
}

function runOnce(collection, baseUrl, token) {
  const workingDir = fs.mkdtempSync('/tmp/newman-');
  return new Promise((resolve) => {
    const started = Date.now();
    newman.run(
      {
        collection,
        environment: environmentOf(baseUrl, token),
        reporters: [],
        timeout: config.runTimeoutMs,
        timeoutRequest: config.requestTimeoutMs,
        timeoutScript: config.requestTimeoutMs,
        workingDir,
        insecureFileRead: false,
        ignoreRedirects: true,
      },
      (err, summary) => {
        const run = summary && summary.run;
        const executions = run ? run.executions : [];
        resolve({
          error: err ? clip(err.message || err) : null,
          executions: executions.slice(0, MAX_EXECUTIONS).map((ex) => execution(ex, token)),
          executionsOmitted: Math.max(0, executions.length - MAX_EXECUTIONS),
          failures: run ? run.failures.slice(0, 20).map((f) => ({ source: clip(f.source && f.source.name), name: clip(f.error && f.error.name), message: clip(f.error && f.error.message) })) : [],
          failureCount: run ? run.failures.length : 0,
          durationMs: Date.now() - started,
        });
      },
    );
  });
}

/** Start servers.py for one variant on 127.0.0.1:port; resolves once it says ready. */
function startServer(variant, token) {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [config.servers, variant, String(config.port), token], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server ${variant} not ready: ${err.slice(-500)}`));
    }, 10_000);
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server ${variant} exited (${code}): ${err.slice(-500)}`));
    });
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function main() {
  let collection;
  try {
    collection = JSON.parse(fs.readFileSync(config.collection, 'utf8'));
  } catch (e) {
    return { collectionError: clip(e.message) };
  }
  if (config.mode === 'live') {
    return { mode: 'live', runs: [{ variant: 'live', run: 1, ...(await runOnce(collection, config.baseUrl, config.token)) }] };
  }
  const runs = [];
  // Round by round, every variant once a round: the same collection must give the same verdict each time.
  for (let i = 1; i <= config.rounds; i++) {
    for (const name of config.variants) {
      // A fresh token per run: a collection must send the environment's {{token}}, not one of its own.
      const token = randomBytes(16).toString('hex');
      const server = await startServer(name, token);
      try {
        runs.push({ variant: name, run: i, ...(await runOnce(collection, config.baseUrl, token)) });
      } finally {
        await stopServer(server);
      }
    }
  }
  return { mode: 'variants', runs };
}

main().then(
  (obs) => {
    process.stdout.write('\n' + marker + JSON.stringify(obs) + '\n', () => process.exit(0));
  },
  (e) => {
    process.stderr.write(`driver failed: ${e && e.stack ? e.stack : e}\n`);
    process.exit(2);
  },
);
