/**
 * Minimal nginx configuration reading: enough to find the rate limits, listeners and upstreams a
 * candidate configured, so a probe knows what to expect and can say what it read. Whether nginx
 * accepts the file is judged by `nginx -t` in the toolbox image, not here.
 *
 * A small tokenizer of our own: nginx syntax is directives ended by `;`, blocks in `{}`, quotes,
 * `#` comments; the npm parsers for it are unmaintained or built for editing files.
 */
import { DeploylabError } from '../../runner/core/errors.js';
import type { LimitReqSpec } from './leaky-bucket.js';

export interface NginxDirective {
  name: string;
  args: string[];
  line: number;
  /** Present for block directives (http, server, location, upstream, ...). */
  block?: NginxDirective[];
}

function bad(line: number, what: string, file: string): DeploylabError {
  return new DeploylabError({
    code: 'NGINX_CONF_INVALID',
    fault: 'candidate',
    message: { zh: `${file} 第 ${line} 行：nginx 配置无法解析：${what}`, en: `${file} line ${line}: cannot parse nginx config: ${what}` },
    details: { file, line },
  });
}

/** nginx's unescaping (ngx_conf_read_token): \" \' \\ \t \r \n; other backslashes stay. */
function unescape(n: string): string {
  if (n === '"' || n === "'" || n === '\\') return n;
  if (n === 't') return '\t';
  if (n === 'r') return '\r';
  if (n === 'n') return '\n';
  return '\\' + n;
}

type Token = { kind: 'word'; value: string; line: number } | { kind: ';' | '{' | '}'; line: number };

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === ';' || c === '{' || c === '}') {
      out.push({ kind: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      const start = line;
      let value = '';
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < text.length) {
          value += unescape(text[i + 1]!);
          i += 2;
          continue;
        }
        if (text[i] === '\n') line++;
        value += text[i];
        i++;
      }
      if (i >= text.length) throw bad(start, 'unterminated quoted string', file);
      i++;
      out.push({ kind: 'word', value, line: start });
    } else {
      let value = '';
      while (i < text.length) {
        const d = text[i]!;
        if (d === '\\' && i + 1 < text.length) {
          value += unescape(text[i + 1]!);
          i += 2;
          continue;
        }
        // `${name}` is part of a word, not a block.
        if (d === '$' && text[i + 1] === '{') {
          const close = text.indexOf('}', i);
          if (close < 0) throw bad(line, 'unterminated ${variable}', file);
          value += text.slice(i, close + 1);
          i = close + 1;
          continue;
        }
        if (/[\s;{}"']/.test(d) && !(/["']/.test(d) && value.length > 0)) break;
        value += d;
        i++;
      }
      out.push({ kind: 'word', value, line });
    }
  }
  return out;
}

/** Parse nginx configuration text into directives; `file` names it in errors. */
export function parseNginxConfig(text: string, file = 'nginx.conf'): NginxDirective[] {
  const tokens = tokenize(text, file);
  let pos = 0;
  const parseBlock = (depth: number, openLine: number): NginxDirective[] => {
    const list: NginxDirective[] = [];
    for (;;) {
      const t = tokens[pos];
      if (!t) {
        if (depth > 0) throw bad(openLine, 'block opened here is never closed', file);
        return list;
      }
      if (t.kind === '}') {
        if (depth === 0) throw bad(t.line, 'unexpected "}"', file);
        pos++;
        return list;
      }
      if (t.kind !== 'word') throw bad(t.line, `unexpected "${t.kind}"`, file);
      const d: NginxDirective = { name: t.value, args: [], line: t.line };
      pos++;
      for (;;) {
        const a = tokens[pos];
        if (!a) throw bad(d.line, `directive "${d.name}" is not terminated by ";" or "}"`, file);
        pos++;
        if (a.kind === 'word') d.args.push(a.value);
        else if (a.kind === ';') break;
        else if (a.kind === '{') {
          d.block = parseBlock(depth + 1, a.line);
          break;
        } else throw bad(a.line, `unexpected "}" in directive "${d.name}"`, file);
      }
      list.push(d);
    }
  };
  return parseBlock(0, 1);
}

// ---------------------------------------------------------------------------------------------

export interface LimitReqZone {
  name: string;
  key: string;
  size: string;
  rate: LimitReqSpec['rate'];
  line: number;
}

export interface LimitReqUse {
  zone: string;
  burst: number;
  nodelay: boolean;
  delay?: number;
  line: number;
}

export interface NginxLocation {
  /** `location` arguments as written, e.g. ['/v1/'] or ['~', '^/api/']. */
  match: string[];
  proxyPass: string | null;
  /** Effective limit_req after nginx's inheritance (inner level wins when it has any). */
  limitReq: LimitReqUse[];
  limitReqStatus: number;
  line: number;
}

export interface NginxServer {
  listen: string[];
  serverNames: string[];
  locations: NginxLocation[];
  line: number;
}

export interface NginxSummary {
  zones: LimitReqZone[];
  servers: NginxServer[];
  /** `include` arguments, in order: files the probe must read to see the whole config. */
  includes: string[];
}

function find(list: NginxDirective[] | undefined, name: string): NginxDirective[] {
  return (list ?? []).filter((d) => d.name === name);
}

function parseZone(d: NginxDirective, file: string): LimitReqZone {
  const [key, ...opts] = d.args;
  let name: string | undefined;
  let size = '';
  let rate: LimitReqSpec['rate'] | undefined;
  for (const o of opts) {
    const z = /^zone=([^:]+):(.+)$/.exec(o);
    const r = /^rate=(\d+)r\/([sm])$/.exec(o);
    if (z) [name, size] = [z[1]!, z[2]!];
    else if (r) rate = { count: Number(r[1]), per: r[2] as 's' | 'm' };
    else if (o !== 'sync') throw bad(d.line, `limit_req_zone: unknown parameter "${o}"`, file);
  }
  if (!key || !name || !rate) throw bad(d.line, 'limit_req_zone needs a key, zone=name:size and rate=Nr/s|Nr/m', file);
  return { name, key, size, rate, line: d.line };
}

function parseUse(d: NginxDirective, file: string): LimitReqUse {
  const use: LimitReqUse = { zone: '', burst: 0, nodelay: false, line: d.line };
  for (const a of d.args) {
    let m: RegExpExecArray | null;
    if ((m = /^zone=(.+)$/.exec(a))) use.zone = m[1]!;
    else if ((m = /^burst=(\d+)$/.exec(a))) use.burst = Number(m[1]);
    else if ((m = /^delay=(\d+)$/.exec(a))) use.delay = Number(m[1]);
    else if (a === 'nodelay') use.nodelay = true;
    else throw bad(d.line, `limit_req: unknown parameter "${a}"`, file);
  }
  if (!use.zone) throw bad(d.line, 'limit_req needs zone=name', file);
  return use;
}

interface Inherited {
  limitReq: LimitReqUse[];
  status: number;
}

function inherit(parent: Inherited, block: NginxDirective[] | undefined, file: string): Inherited {
  const uses = find(block, 'limit_req').map((d) => parseUse(d, file));
  const st = find(block, 'limit_req_status').at(-1);
  let status = parent.status;
  if (st) {
    status = Number(st.args[0]);
    if (!Number.isInteger(status) || status < 400 || status > 599) throw bad(st.line, `limit_req_status must be 400..599, not "${st.args[0]}"`, file);
  }
  return { limitReq: uses.length > 0 ? uses : parent.limitReq, status };
}

function collectLocations(block: NginxDirective[] | undefined, ctx: Inherited, file: string, out: NginxLocation[]): void {
  for (const loc of find(block, 'location')) {
    const here = inherit(ctx, loc.block, file);
    out.push({
      match: loc.args,
      proxyPass: find(loc.block, 'proxy_pass').at(-1)?.args[0] ?? null,
      limitReq: here.limitReq,
      limitReqStatus: here.status,
      line: loc.line,
    });
    collectLocations(loc.block, here, file, out); // nested locations
  }
}

/**
 * Summarize a parsed config. Accepts a whole nginx.conf (with `http {}`) or a file meant for
 * conf.d/ or sites-enabled/ (server blocks and zones at top level, as included inside http).
 */
export function summarizeNginxConfig(directives: NginxDirective[], file = 'nginx.conf'): NginxSummary {
  const includes: string[] = [];
  const walk = (list: NginxDirective[]): void => {
    for (const d of list) {
      if (d.name === 'include' && d.args[0]) includes.push(d.args[0]);
      if (d.block) walk(d.block);
    }
  };
  walk(directives);

  const http = find(directives, 'http');
  const httpBlocks = http.length > 0 ? http.map((h) => h.block ?? []) : [directives];
  const zones: LimitReqZone[] = [];
  const servers: NginxServer[] = [];
  const base: Inherited = { limitReq: [], status: 503 };
  for (const hb of httpBlocks) {
    zones.push(...find(hb, 'limit_req_zone').map((d) => parseZone(d, file)));
    const httpCtx = inherit(base, hb, file);
    for (const s of find(hb, 'server')) {
      const serverCtx = inherit(httpCtx, s.block, file);
      const locations: NginxLocation[] = [];
      collectLocations(s.block, serverCtx, file, locations);
      servers.push({
        listen: find(s.block, 'listen').map((d) => d.args.join(' ')),
        serverNames: find(s.block, 'server_name').flatMap((d) => d.args),
        locations,
        line: s.line,
      });
    }
  }
  return { zones, servers, includes };
}

/** The leaky-bucket parameters that apply to a location's first limit_req, or null. */
export function limitSpecFor(summary: NginxSummary, location: NginxLocation): LimitReqSpec | null {
  const use = location.limitReq[0];
  if (!use) return null;
  const zone = summary.zones.find((z) => z.name === use.zone);
  if (!zone) return null;
  const spec: LimitReqSpec = { rate: zone.rate, burst: use.burst, nodelay: use.nodelay };
  if (use.delay !== undefined) spec.delay = use.delay;
  return spec;
}
