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
  /** The file it was read from (as given to the parser). */
  file?: string;
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
      const d: NginxDirective = { name: t.value, args: [], line: t.line, file };
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

// ---------------------------------------------------------------------------------------------
// The configuration nginx loads: includes expanded in place, as ngx_conf_include does.

/** Where the loader reads files: the view of the file system nginx itself has. */
export interface NginxFileSource {
  /** Text of the file at an absolute path, or null when nothing is there. */
  read(path: string): Promise<string | null>;
  /** Absolute paths matching a glob(3) pattern, sorted in byte order (glob without GLOB_NOSORT, C locale). */
  glob(pattern: string): Promise<string[]>;
}

export interface LoadedNginxConfig {
  /** The directives of `-g` and of the main file, every `include` replaced by what it names. */
  directives: NginxDirective[];
  /** Every file read, in the order nginx reads them (the main file first). */
  files: string[];
}

/** nginx's own limit is the open-file limit; a loop of includes is refused long before that here. */
export const MAX_INCLUDE_DEPTH = 16;
/** The name `-g` directives carry in evidence. */
export const PARAMS_FILE = '(-g)';

/** Relative include paths resolve against the main file's folder (ngx_process_options sets conf_prefix so). */
export function confPrefix(main: string): string {
  const i = main.lastIndexOf('/');
  return i < 0 ? '' : main.slice(0, i + 1);
}

function missing(path: string, by: NginxDirective | null): DeploylabError {
  const from = by ? `（${by.file ?? '?'} 第 ${by.line} 行的 include）` : '';
  const fromEn = by ? ` (include at ${by.file ?? '?'} line ${by.line})` : '';
  return new DeploylabError({
    code: 'NGINX_CONF_MISSING',
    fault: 'candidate',
    message: { zh: `nginx 配置文件不存在：${path}${from}`, en: `nginx configuration file not found: ${path}${fromEn}` },
    details: { path, ...(by ? { file: by.file, line: by.line } : {}) },
  });
}

/**
 * Read `main` (and `-g` text given as `params`, parsed first as nginx does) with every include
 * expanded where it stands: a pattern with * ? [ expands to its matches (none is fine), a plain
 * path must exist; relative paths are relative to the main file's folder.
 */
export async function loadNginxConfig(main: string, src: NginxFileSource, opts: { params?: string } = {}): Promise<LoadedNginxConfig> {
  const prefix = confPrefix(main);
  const files: string[] = [];
  const expand = async (list: NginxDirective[], depth: number): Promise<NginxDirective[]> => {
    const out: NginxDirective[] = [];
    for (const d of list) {
      if (d.name !== 'include' || d.block) {
        out.push(d.block ? { ...d, block: await expand(d.block, depth) } : d);
        continue;
      }
      if (d.args.length !== 1) throw bad(d.line, 'include takes exactly one file or pattern', d.file ?? main);
      if (depth >= MAX_INCLUDE_DEPTH) throw bad(d.line, `includes nested more than ${MAX_INCLUDE_DEPTH} deep (an include loop?)`, d.file ?? main);
      const arg = d.args[0]!;
      const path = arg.startsWith('/') ? arg : prefix + arg;
      const paths = /[*?[]/.test(path) ? await src.glob(path) : [path];
      for (const p of paths) {
        const text = await src.read(p);
        if (text === null) throw missing(p, d);
        files.push(p);
        out.push(...(await expand(parseNginxConfig(text, p), depth + 1)));
      }
    }
    return out;
  };
  const text = await src.read(main);
  if (text === null) throw missing(main, null);
  files.push(main);
  const params = opts.params ? await expand(parseNginxConfig(opts.params, PARAMS_FILE), 1) : [];
  const body = await expand(parseNginxConfig(text, main), 0);
  return { directives: [...params, ...body], files };
}

// ---------------------------------------------------------------------------------------------
// Following one request through a loaded configuration, as nginx's http core module does:
// the listening socket, the virtual server, the server-level rewrite phase, the location
// (exact, longest prefix, ^~, regexes in order, nested locations), the location's rewrite
// phase (return, rewrite ... last|break, if), and the limit_req directives in force there with
// nginx's inheritance (a level with any limit_req replaces the outer ones).

/** A directive's place, for evidence. */
export interface Where {
  file: string;
  line: number;
  text: string;
}

export function whereOf(d: NginxDirective): Where {
  const text = `${d.name} ${d.args.map((a) => (/[\s;{}"']/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' ')}`.trim();
  return { file: d.file ?? '?', line: d.line, text: text.length > 200 ? text.slice(0, 200) + '…' : text };
}

export interface NginxRequest {
  /** The local port and IPv4 address the harness's connection reaches (the container's address). */
  port: number;
  address: string;
  /** Host header name, without a port. */
  host: string;
  method: string;
  /** Path, without the query string. */
  uri: string;
  /** Query string, without "?". */
  args: string;
  /** nginx run by root listens on *:80 by default (a server without listen), otherwise on *:8000. */
  superuser: boolean;
}

export type LimitLevel = 'http' | 'server' | 'location';

export interface EffectiveLimit {
  use: LimitReqUse;
  at: Where;
  level: LimitLevel;
  /** The limit_req_zone it names (null: none of that name, nginx would refuse the file). */
  zone: (LimitReqZone & { at: Where }) | null;
}

export interface RouteResult {
  server: Where;
  listen: Where;
  serverWhy: string;
  /** Outermost first; empty when no location matches (the server's own configuration serves). */
  locations: Where[];
  /** The URI after rewrites. */
  uri: string;
  /** Set when a rewrite phase answers the request (return, redirect) before limit_req runs. */
  answeredBy?: Where;
  limits: EffectiveLimit[];
  status: { value: number; at?: Where };
  dryRun: { value: boolean; at?: Where };
  /** Whether the serving location proxies (proxy_pass in it, or an if block in it). */
  proxyPass: Where | null;
}

/** A request nginx would send somewhere this follower cannot (yet) reason about: an `error`, not a verdict. */
export function unfollowed(what: string, d?: NginxDirective): DeploylabError {
  const at = d ? ` (${d.file ?? '?'} line ${d.line}: ${whereOf(d).text})` : '';
  const atZh = d ? `（${d.file ?? '?'} 第 ${d.line} 行：${whereOf(d).text}）` : '';
  return new DeploylabError({
    code: 'PROBE_NGINX_UNFOLLOWED',
    fault: 'bug',
    message: { zh: `评分程序无法沿配置跟踪该请求：${what}${atZh}`, en: `the grader cannot follow the request through the configuration: ${what}${at}` },
    hint: { zh: '请考评员人工核对该配置', en: 'an examiner should review this configuration by hand' },
  });
}

interface Listen {
  d: NginxDirective;
  /** IPv4 address, '*' for any IPv4, '[::]' any IPv6 (dual-stack when ipv6only=off), an IPv6 literal, or unix. */
  addr: string;
  port: number;
  defaultServer: boolean;
  ssl: boolean;
  proxyProtocol: boolean;
  quic: boolean;
  dualStack: boolean;
}

function parseListen(d: NginxDirective): Listen {
  const a = d.args[0] ?? '';
  const opts = d.args.slice(1);
  const l: Listen = {
    d,
    addr: '*',
    port: 80,
    defaultServer: opts.includes('default_server') || opts.includes('default'),
    ssl: opts.includes('ssl'),
    proxyProtocol: opts.includes('proxy_protocol'),
    quic: opts.includes('quic'),
    dualStack: opts.includes('ipv6only=off'),
  };
  let m: RegExpExecArray | null;
  if (a.startsWith('unix:')) {
    l.addr = 'unix';
    l.port = 0;
  } else if ((m = /^\[([^\]]*)\](?::(\d+))?$/.exec(a))) {
    l.addr = m[1] === '::' ? '[::]' : `[${m[1]}]`;
    l.port = m[2] ? Number(m[2]) : 80;
  } else if (/^\d+$/.test(a)) {
    l.port = Number(a);
  } else if ((m = /^([^:]+):(\d+)$/.exec(a))) {
    l.addr = m[1]!;
    l.port = Number(m[2]);
  } else {
    l.addr = a;
  }
  if (l.addr === '0.0.0.0') l.addr = '*';
  if (l.addr === 'localhost') l.addr = '127.0.0.1';
  if (l.addr !== '*' && l.addr !== 'unix' && !l.addr.startsWith('[') && !/^\d+\.\d+\.\d+\.\d+$/.test(l.addr)) {
    throw unfollowed(`listen on a host name (${l.addr}) that nginx resolved when it loaded`, d);
  }
  return l;
}

/** PCRE as nginx uses it, in JavaScript: (?P<n>...) groups and a leading (?i) are translated. */
export function pcre(source: string, caseless: boolean, d?: NginxDirective): RegExp {
  let flags = caseless ? 'i' : '';
  let s = source.replace(/\(\?P</g, '(?<');
  if (s.startsWith('(?i)')) {
    s = s.slice(4);
    flags = 'i';
  }
  try {
    return new RegExp(s, flags);
  } catch {
    throw unfollowed(`a regular expression JavaScript cannot read (${source})`, d);
  }
}

function serverNameMatches(name: string, host: string, d: NginxDirective): boolean {
  if (name.startsWith('~')) return pcre(name.slice(1), false, d).test(host);
  const n = name.toLowerCase();
  if (n.startsWith('.')) return host === n.slice(1) || host.endsWith(n);
  if (n.startsWith('*.')) return host.endsWith(n.slice(1));
  if (n.endsWith('.*')) return host.startsWith(n.slice(0, -1));
  return host === n;
}

function selectServer(http: NginxDirective[], req: NginxRequest): { server: NginxDirective; listen: Listen; why: string } | { none: string } {
  const servers = find(http, 'server');
  const all: { server: NginxDirective; listen: Listen }[] = [];
  for (const s of servers) {
    const listens = find(s.block, 'listen');
    if (listens.length === 0) {
      const implicit: NginxDirective = { name: 'listen', args: [req.superuser ? '*:80' : '*:8000'], line: s.line, ...(s.file ? { file: s.file } : {}) };
      all.push({ server: s, listen: parseListen(implicit) });
    }
    for (const l of listens) all.push({ server: s, listen: parseListen(l) });
  }
  const onPort = all.filter((x) => x.listen.port === req.port && !x.listen.quic && x.listen.addr !== 'unix');
  // The socket the connection lands on: an exact address:port listen wins over the wildcard.
  let group = onPort.filter((x) => x.listen.addr === req.address);
  let socket = `${req.address}:${req.port}`;
  if (group.length === 0) {
    group = onPort.filter((x) => x.listen.addr === '*');
    socket = `*:${req.port}`;
  }
  if (group.length === 0) {
    group = onPort.filter((x) => x.listen.addr === '[::]' && x.listen.dualStack);
    socket = `[::]:${req.port} (ipv6only=off)`;
  }
  if (group.length === 0) {
    const elsewhere = onPort.map((x) => x.listen.addr).filter((a, i, arr) => arr.indexOf(a) === i);
    return {
      none:
        elsewhere.length > 0
          ? `no server listens on ${req.address}:${req.port} or *:${req.port} (only on ${elsewhere.join(', ')}:${req.port}, which the harness does not reach)`
          : `no server block listens on port ${req.port}`,
    };
  }
  const first = group[0]!;
  if (first.listen.ssl || first.listen.proxyProtocol) {
    return { none: `the listener on ${socket} expects ${first.listen.ssl ? 'TLS' : 'the PROXY protocol'}, not the plain HTTP the harness sends` };
  }
  const inGroup = [...new Set(group.map((x) => x.server))];
  const host = req.host.toLowerCase();
  const names = (s: NginxDirective): { name: string; d: NginxDirective }[] => find(s.block, 'server_name').flatMap((d) => d.args.map((name) => ({ name, d })));
  // nginx's order: exact names, then the longest leading wildcard, the longest trailing wildcard, then regexes in order.
  const candidates = inGroup.flatMap((s) => names(s).map((n) => ({ s, ...n })));
  const exact = candidates.find((c) => !/^[~.*]/.test(c.name) && !c.name.endsWith('.*') && c.name.toLowerCase() === host);
  if (exact) return { server: exact.s, listen: group.find((x) => x.server === exact.s)!.listen, why: `server_name ${exact.name} matches the Host ${host} on ${socket}` };
  const wild = (lead: boolean) =>
    candidates
      .filter((c) => (lead ? c.name.startsWith('*.') || c.name.startsWith('.') : c.name.endsWith('.*')) && serverNameMatches(c.name, host, c.d))
      .sort((a, b) => b.name.length - a.name.length)[0];
  const w = wild(true) ?? wild(false) ?? candidates.find((c) => c.name.startsWith('~') && serverNameMatches(c.name, host, c.d));
  if (w) return { server: w.s, listen: group.find((x) => x.server === w.s)!.listen, why: `server_name ${w.name} matches the Host ${host} on ${socket}` };
  const def = group.find((x) => x.listen.defaultServer) ?? first;
  return {
    server: def.server,
    listen: def.listen,
    why: `no server_name on ${socket} matches the Host ${host}: the ${def.listen.defaultServer ? 'default_server' : 'first server'} for ${socket} serves it`,
  };
}

interface Loc {
  d: NginxDirective;
  kind: 'exact' | 'prefix' | 'noregex' | 'regex' | 'named';
  name: string;
  re?: RegExp;
  children: Loc[];
}

function locationsOf(block: NginxDirective[] | undefined): Loc[] {
  return find(block, 'location').map((d) => {
    let mod = '';
    let name = d.args[0] ?? '';
    if (d.args.length >= 2) {
      mod = d.args[0]!;
      name = d.args[1]!;
    } else if (name.startsWith('=')) {
      mod = '=';
      name = name.slice(1);
    } else if (name.startsWith('~*')) {
      mod = '~*';
      name = name.slice(2);
    } else if (name.startsWith('~')) {
      mod = '~';
      name = name.slice(1);
    }
    const children = locationsOf(d.block);
    if (name.startsWith('@')) return { d, kind: 'named' as const, name, children };
    if (mod === '=') return { d, kind: 'exact' as const, name, children };
    if (mod === '^~') return { d, kind: 'noregex' as const, name, children };
    if (mod === '~' || mod === '~*') return { d, kind: 'regex' as const, name, re: pcre(name, mod === '~*', d), children };
    if (mod !== '') throw bad(d.line, `location: unknown modifier "${mod}"`, d.file ?? '?');
    return { d, kind: 'prefix' as const, name, children };
  });
}

/** ngx_http_core_find_location, recursively: 'ok' ends the search, 'again' is a prefix that regexes may override. */
function findLocation(level: Loc[], uri: string): { chain: Loc[]; rc: 'ok' | 'again' | 'declined' } {
  const exact = level.find((l) => l.kind === 'exact' && l.name === uri);
  if (exact) return { chain: [exact], rc: 'ok' };
  let chain: Loc[] = [];
  let rc: 'again' | 'declined' = 'declined';
  let noregex = false;
  const longest = level
    .filter((l) => (l.kind === 'prefix' || l.kind === 'noregex') && uri.startsWith(l.name))
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (longest) {
    noregex = longest.kind === 'noregex';
    const inner = findLocation(longest.children, uri);
    chain = [longest, ...inner.chain];
    if (inner.rc === 'ok') return { chain, rc: 'ok' };
    rc = 'again';
  }
  if (!noregex) {
    for (const r of level) {
      if (r.kind !== 'regex' || !r.re!.test(uri)) continue;
      const inner = findLocation(r.children, uri);
      return { chain: [r, ...inner.chain], rc: 'ok' };
    }
  }
  return { chain, rc };
}

function argValue(args: string, name: string): string {
  for (const part of args.split('&')) {
    const i = part.indexOf('=');
    const k = i < 0 ? part : part.slice(0, i);
    if (k.toLowerCase() === name.toLowerCase()) return i < 0 ? '' : part.slice(i + 1);
  }
  return '';
}

/** Value of a variable the harness's request determines, or undefined when it is not one of those. */
function variable(name: string, req: NginxRequest, uri: string): string | undefined {
  const n = name.replace(/^\$\{?/, '').replace(/\}$/, '');
  if (n.startsWith('arg_')) return argValue(req.args, n.slice(4));
  const known: Record<string, string> = {
    request_method: req.method,
    uri,
    document_uri: uri,
    request_uri: req.uri + (req.args ? `?${req.args}` : ''),
    args: req.args,
    query_string: req.args,
    is_args: req.args ? '?' : '',
    scheme: 'http',
    https: '',
    server_port: String(req.port),
    server_addr: req.address,
    host: req.host.toLowerCase(),
    server_protocol: 'HTTP/1.1',
  };
  return known[n];
}

/** One rewrite-module `if` condition, or undefined when it depends on something the harness does not set. */
function condition(d: NginxDirective, req: NginxRequest, uri: string): boolean | undefined {
  const args = [...d.args];
  if (args.length === 0) return undefined;
  args[0] = args[0]!.replace(/^\(/, '');
  args[args.length - 1] = args[args.length - 1]!.replace(/\)$/, '');
  const parts = args.filter((a, i) => !(a === '' && (i === 0 || i === args.length - 1)));
  const [lhs, op, rhs] = parts;
  if (!lhs || !lhs.startsWith('$') || /^[!-]/.test(lhs)) return undefined; // -f, -d, -e, -x: the file system
  const v = variable(lhs, req, uri);
  if (v === undefined) return undefined;
  if (parts.length === 1) return v !== '' && v !== '0';
  if (parts.length !== 3 || rhs === undefined) return undefined;
  switch (op) {
    // A string operand may hold variables; a regex is compiled as written ($ is an anchor there).
    case '=':
      return rhs.includes('$') ? undefined : v === rhs;
    case '!=':
      return rhs.includes('$') ? undefined : v !== rhs;
    case '~':
    case '~*':
      return pcre(rhs, op === '~*', d).test(v);
    case '!~':
    case '!~*':
      return !pcre(rhs, op === '!~*', d).test(v);
    default:
      return undefined;
  }
}

const REWRITE_ENDS = new Set(['return', 'rewrite', 'break']);
const hasRewriteEnd = (list: NginxDirective[] | undefined): boolean =>
  (list ?? []).some((d) => REWRITE_ENDS.has(d.name) || (d.name === 'if' && hasRewriteEnd(d.block)));

type RewriteOutcome = { kind: 'continue' | 'break' | 'last'; uri: string } | { kind: 'answered'; at: NginxDirective };

/** The rewrite module's directives of one level, in order, for this request. */
function rewritePhase(list: NginxDirective[] | undefined, req: NginxRequest, uri0: string): RewriteOutcome {
  let uri = uri0;
  for (const d of list ?? []) {
    if (d.name === 'return') return { kind: 'answered', at: d };
    if (d.name === 'break') return { kind: 'break', uri };
    if (d.name === 'if') {
      if (!hasRewriteEnd(d.block)) continue; // only set/proxy settings inside: no change of route or limits
      const c = condition(d, req, uri);
      if (c === undefined) throw unfollowed('an if condition that depends on more than the request line', d);
      if (!c) continue;
      const inner = rewritePhase(d.block, req, uri);
      if (inner.kind !== 'continue') return inner;
      uri = inner.uri;
      continue;
    }
    if (d.name !== 'rewrite') continue;
    const [re, replacement, flag] = d.args;
    if (!re || replacement === undefined) throw bad(d.line, 'rewrite needs a regex and a replacement', d.file ?? '?');
    const m = pcre(re, false, d).exec(uri);
    if (!m) continue;
    if (/^(https?:\/\/|\$scheme)/.test(replacement) || flag === 'redirect' || flag === 'permanent') return { kind: 'answered', at: d };
    const next = replacement.replace(/\$(\d)/g, (_, i: string) => m[Number(i)] ?? '');
    if (next.includes('$')) throw unfollowed('a rewrite whose replacement uses variables', d);
    uri = next.split('?')[0]!;
    if (flag === 'last') return { kind: 'last', uri };
    if (flag === 'break') return { kind: 'break', uri };
  }
  return { kind: 'continue', uri };
}

function zoneKey(key: string): string {
  return key.replace(/^\$\{([A-Za-z0-9_]+)\}$/, '$$$1');
}

/**
 * Follow `req` through a loaded configuration (main context). Returns where it is served and the
 * limits in force there, or `{ none }` when no server of the configuration serves it.
 */
export function followRequest(directives: NginxDirective[], req: NginxRequest): RouteResult | { none: string } {
  const https = find(directives, 'http');
  if (https.length === 0) return { none: 'the configuration has no http block' };
  if (https.length > 1) throw bad(https[1]!.line, '"http" directive is duplicate', https[1]!.file ?? '?');
  const http = https[0]!.block ?? [];
  const picked = selectServer(http, req);
  if ('none' in picked) return picked;
  const { server } = picked;

  const zones = new Map<string, LimitReqZone & { at: Where }>();
  for (const d of find(http, 'limit_req_zone')) {
    const z = parseZone(d, d.file ?? '?');
    zones.set(z.name, { ...z, key: zoneKey(z.key), at: whereOf(d) });
  }

  // Server-level rewrite directives run once, before the location is chosen.
  let uri = req.uri;
  const srv = rewritePhase(server.block, req, uri);
  const base = (): Omit<RouteResult, 'locations' | 'uri' | 'limits' | 'status' | 'dryRun' | 'proxyPass'> => ({
    server: whereOf(server),
    listen: whereOf(picked.listen.d),
    serverWhy: picked.why,
  });
  let chain: Loc[] = [];
  let answeredBy: NginxDirective | undefined;
  if (srv.kind === 'answered') answeredBy = srv.at;
  else {
    uri = srv.uri;
    const top = locationsOf(server.block);
    for (let cycle = 0; ; cycle++) {
      if (cycle > 10) throw unfollowed('rewrite ... last loops more than 10 times (nginx answers 500)');
      chain = findLocation(top, uri).chain;
      const inner = chain.at(-1);
      if (!inner) break;
      const r = rewritePhase(inner.d.block, req, uri);
      if (r.kind === 'answered') {
        answeredBy = r.at;
        break;
      }
      uri = r.uri;
      if (r.kind !== 'last') break;
    }
  }

  // limit_req, limit_req_status, limit_req_dry_run: http, then server, then each location outwards in.
  const levels: { level: LimitLevel; block: NginxDirective[] }[] = [
    { level: 'http', block: http },
    { level: 'server', block: server.block ?? [] },
    ...chain.map((l) => ({ level: 'location' as const, block: l.d.block ?? [] })),
  ];
  let limits: EffectiveLimit[] = [];
  let status: RouteResult['status'] = { value: 503 };
  let dryRun: RouteResult['dryRun'] = { value: false };
  for (const { level, block } of levels) {
    const uses = find(block, 'limit_req');
    if (uses.length > 0) {
      limits = uses.map((d) => {
        const use = parseUse(d, d.file ?? '?');
        return { use, at: whereOf(d), level, zone: zones.get(use.zone) ?? null };
      });
    }
    const st = find(block, 'limit_req_status').at(-1);
    if (st) {
      const value = Number(st.args[0]);
      if (!Number.isInteger(value) || value < 400 || value > 599) throw bad(st.line, `limit_req_status must be 400..599, not "${st.args[0]}"`, st.file ?? '?');
      status = { value, at: whereOf(st) };
    }
    const dr = find(block, 'limit_req_dry_run').at(-1);
    if (dr) dryRun = { value: dr.args[0] === 'on', at: whereOf(dr) };
  }
  const inner = chain.at(-1);
  const pp = inner ? (find(inner.d.block, 'proxy_pass').at(-1) ?? null) : null;
  return {
    ...base(),
    locations: chain.map((l) => whereOf(l.d)),
    uri,
    ...(answeredBy ? { answeredBy: whereOf(answeredBy) } : {}),
    limits,
    status,
    dryRun,
    proxyPass: pp ? whereOf(pp) : null,
  };
}

/** Requests per second of a zone's rate (120r/m is 2r/s, as nginx stores it). */
export function ratePerSecond(rate: LimitReqSpec['rate']): number {
  return rate.per === 's' ? rate.count : rate.count / 60;
}

/** Parse "2r/s" / "120r/m". */
export function parseRate(text: string): LimitReqSpec['rate'] | null {
  const m = /^(\d+)r\/([sm])$/.exec(text);
  return m ? { count: Number(m[1]), per: m[2] as 's' | 'm' } : null;
}
