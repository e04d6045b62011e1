/**
 * `http` probe: one request from the harness to a port of the seat, then expectations on the
 * status, headers, body, JSON fields and latency. No answer at all is judged by whose path is
 * broken (see judgeUnreachable); an answer slower than the candidate's allowance is a fail; the
 * harness's own deadline passing first is an error.
 */
import type { ErrorCode } from '../../runner/core/error-codes.js';
import { createHmac, randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { buildTar } from '../../runner/sandbox/tar.js';
import type { z } from 'zod';
import { judge, jsonPointer, show, type Assertion } from '../shared/assertions.js';
import { HttpParamsSchema } from './params.js';
import { matchesContainer } from '../shared/container-match.js';
import { httpRequest, noResponseOutcome, type HttpExchange } from '../shared/http-request.js';
import { innerDocker } from '../shared/inner-docker.js';
import { defineProbe, failed, note, type Deadline, type Evidence, type ProbeOutcome, type SeatHandle } from '../probe.js';
import { DeploylabError } from '../../runner/core/errors.js';

export type HttpParams = z.output<typeof HttpParamsSchema>;

export function checkExchange(x: HttpExchange, e: HttpParams['expect']): Assertion[] {
  const a: Assertion[] = [];
  const statuses = Array.isArray(e.status) ? e.status : [e.status];
  a.push({ id: 'status', ok: statuses.includes(x.status), expected: statuses.join(' | '), actual: String(x.status) });
  for (const [name, re] of Object.entries(e.headers ?? {})) {
    const v = x.headers.get(name);
    a.push({ id: `header:${name}`, ok: v !== null && new RegExp(re).test(v), expected: `/${re}/`, actual: v ?? '(absent)' });
  }
  const text = x.body.toString('utf8');
  for (const needle of e.bodyContains ?? []) {
    a.push({ id: `bodyContains:${needle}`, ok: text.includes(needle), expected: `contains ${show(needle)}`, actual: x.complete ? show(text) : `${show(text)} (cut at the read limit)` });
  }
  if (e.bodyMatches !== undefined) {
    const m = new RegExp(e.bodyMatches, 'm').exec(text);
    a.push({ id: 'bodyMatches', ok: m !== null, expected: `matches /${e.bodyMatches}/`, actual: m ? show(m[0]) : 'no match' });
  }
  if (e.json && e.json.length > 0) {
    let doc: unknown;
    let parsed = true;
    try {
      doc = JSON.parse(text);
    } catch {
      parsed = false;
    }
    for (const j of e.json) {
      const id = `json:${j.pointer || '(root)'}`;
      if (!parsed) {
        a.push({ id, ok: false, expected: 'a JSON body', actual: x.complete ? show(text) : 'body larger than the read limit' });
        continue;
      }
      const v = jsonPointer(doc, j.pointer);
      let ok: boolean;
      let expected: string;
      if (!j.exists) {
        ok = v === undefined;
        expected = 'absent';
      } else if ('equals' in j) {
        ok = v !== undefined && JSON.stringify(v) === JSON.stringify(j.equals);
        expected = `= ${show(j.equals)}`;
      } else {
        ok = v !== undefined;
        expected = 'present';
      }
      a.push({ id, ok, expected, actual: v === undefined ? '(absent)' : show(v) });
    }
  }
  return a;
}

/** Replaced, wherever it appears in a check's request and expectations, by a fresh value per request. */
export const NONCE = '{nonce}';

/** `value` with every `{nonce}` in its strings replaced (objects and arrays deeply). */
export function withNonce<T>(value: T, nonce: string): T {
  if (typeof value === 'string') return value.replaceAll(NONCE, nonce) as T;
  if (Array.isArray(value)) return value.map((v) => withNonce(v, nonce)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withNonce(v, nonce)])) as T;
  }
  return value;
}

type Signature = NonNullable<HttpParams['expect']['signature']>;

function keyProblem(code: ErrorCode, zh: string, en: string): DeploylabError {
  return new DeploylabError({ code, fault: 'config', message: { zh: `签名密钥：${zh}`, en: `signature key: ${en}` } });
}

/** A tar of one root-owned file (and its folder) for the engine's archive API. */
function keyTar(path: string, content: string): Promise<Buffer> {
  const dir = path.slice(0, path.lastIndexOf('/'));
  return buildTar([{ path, content, mode: 0o644, uid: 0, gid: 0 }], dir ? [dir] : [], { uid: 0, gid: 0 });
}

/**
 * The signing key: read from a root-only seat file (the task's own service signs with it), or a
 * fresh one the harness writes into the one inner container meant to answer. A candidate-side
 * reason it cannot be placed (no such container, two of them, a read-only root file system) is a
 * failed outcome; a missing seat key file is the task's error.
 */
async function signatureKey(seat: SeatHandle, s: Signature, deadline: Deadline): Promise<{ key: Buffer; evidence: Evidence } | { fail: ProbeOutcome }> {
  if ('seatFile' in s.key) {
    const f = await seat.readFile(s.key.seatFile, { container: s.key.container, maxBytes: 4096 });
    const text = f?.data.toString('utf8').trim() ?? '';
    if (!f) throw keyProblem('PROBE_KEY_MISSING', `考位中没有密钥文件 ${s.key.seatFile}`, `no key file ${s.key.seatFile} in the seat`);
    if (text === '') throw keyProblem('PROBE_KEY_EMPTY', `密钥文件 ${s.key.seatFile} 为空`, `key file ${s.key.seatFile} is empty`);
    return { key: Buffer.from(text), evidence: note('签名密钥来自考位中仅 root 可读的文件', "the signing key comes from a root-only seat file", { file: s.key.seatFile, container: s.key.container }) };
  }
  const docker = await innerDocker(seat, deadline);
  const m = s.key.innerContainer;
  const found: Docker.ContainerInspectInfo[] = [];
  for (const c of await docker.listContainers({ all: false })) {
    try {
      const info = await docker.getContainer(c.Id).inspect();
      if (info.State.Running && matchesContainer(info, m)) found.push(info);
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
  }
  const where = { match: m, path: s.key.path, containers: found.map((c) => c.Name.replace(/^\//, '')) };
  if (found.length !== 1) {
    return {
      fail: failed(
        { zh: `应有且只有一个运行中的容器接收签名密钥，实际 ${found.length} 个`, en: `exactly one running container must receive the signing key; found ${found.length}` },
        [note('接收签名密钥的容器', 'containers to receive the signing key', where)],
      ),
    };
  }
  const key = randomBytes(32).toString('hex');
  try {
    await docker.getContainer(found[0]!.Id).putArchive(await keyTar(s.key.path, key + '\n'), { path: '/' });
  } catch (e) {
    // The engine answered and refused (a read-only root file system): the container's doing.
    if ((e as { statusCode?: number }).statusCode === undefined) throw e;
    return {
      fail: failed(
        { zh: `无法把签名密钥写入容器 ${where.containers[0]} 的 ${s.key.path}（只读文件系统？）`, en: `cannot write the signing key to ${s.key.path} in container ${where.containers[0]} (read-only file system?)` },
        [note('写入签名密钥失败', 'placing the signing key failed', { ...where, error: show(String((e as Error).message), 300) })],
      ),
    };
  }
  return { key: Buffer.from(key), evidence: note('评分程序写入容器的新签名密钥', 'a fresh signing key the harness placed in the container', where) };
}

export function checkSignature(x: HttpExchange, s: Signature, key: Buffer): Assertion {
  const want = createHmac('sha256', key).update(s.message).digest('hex');
  let v: unknown;
  try {
    v = jsonPointer(JSON.parse(x.body.toString('utf8')), s.pointer);
  } catch {
    v = undefined;
  }
  const ok = typeof v === 'string' && v.toLowerCase() === want;
  return {
    id: `signature:${s.pointer}`,
    ok,
    expected: `HMAC-SHA256 of ${show(s.message, 80)} under the service's key`,
    actual: v === undefined ? '(absent)' : ok ? 'valid' : `${show(v, 80)} (not the signature)`,
  };
}

export const httpProbe = defineProbe({
  kind: 'http',
  params: HttpParamsSchema,
  async run(seat, raw, deadline) {
    // A fresh nonce for this request: nothing prepared in advance answers it.
    const nonce = `dl${randomBytes(8).toString('hex')}`;
    const p = withNonce(raw, nonce);
    const extra: Evidence[] = [];
    let key: Buffer | undefined;
    if (p.expect.signature) {
      const k = await signatureKey(seat, raw.expect.signature!, deadline);
      if ('fail' in k) return k.fail;
      key = k.key;
      extra.push(k.evidence);
    }
    const attempt = await httpRequest(seat, p, deadline);
    const early = await noResponseOutcome(seat, attempt, p.timeoutMs);
    if (early || attempt.kind !== 'response') return early!;
    const a = checkExchange(attempt.exchange, p.expect);
    if (p.expect.signature && key) a.push(checkSignature(attempt.exchange, p.expect.signature, key));
    return judge(a, 'all', { zh: `HTTP ${p.method} ${raw.path}`, en: `HTTP ${p.method} ${raw.path}` }, [attempt.evidence, ...extra]);
  },
});
