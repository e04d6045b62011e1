/**
 * The engine settings a vLLM server runs with, read from its own start-up log.
 *
 * Why the log and not argv: a command line can be a wrapper's, a shell alias, or rewritten by a
 * config file (`--config`), and a process title can be set to anything. The grader never trusts
 * argv; it reads what vLLM itself logged while starting, in this order of authority:
 * 1. `engine-config`: the engine's own line, "Initializing an LLM engine (v0.6.4) with config:
 *    k=v, …" (V0) or "Initializing a V1 LLM engine (v0.20.2) with config: …" (V1): the values
 *    after vLLM resolved defaults, so they are the ones in force.
 * 2. `engine-log`: other lines where vLLM states a resolved value ("Chunked prefill is enabled
 *    with max_num_batched_tokens=512.", "Using max model len 262144").
 * 3. `server-args`: what the API server says it parsed: "non-default args: {…}" (a Python dict
 *    repr, only the options that differ from the defaults) or, before 0.8, "args: Namespace(…)".
 *    This is lower: it is the request, which the engine may still override.
 * A setting that no line shows is null (unknown), never a guessed default.
 *
 * Where the log restarts (several engine lines), the last start is the one in force.
 *
 * Which log: the grader reads the output the container runtime captured from the vLLM process
 * it found serving the port, not a file the candidate can write; this module only reads text.
 */
import { z } from 'zod';
import { DeploylabError } from '../../runner/core/errors.js';

// ---------------------------------------------------------------------------------------------
// Python literals (the repr of dicts, lists, tuples, str, int, float, bool, None)

/** A repr that is not a literal, e.g. `<CompilationMode.VLLM_COMPILE: 3>`: kept as written. */
export class PyRepr {
  constructor(readonly text: string) {}
}

export type PyValue = null | boolean | number | string | PyRepr | PyValue[] | { [key: string]: PyValue };

function invalid(what: string, details: Record<string, unknown> = {}): DeploylabError {
  return new DeploylabError({
    code: 'VLLM_LOG_INVALID',
    fault: 'candidate',
    message: {
      zh: `vLLM 启动日志中的引擎参数无法解析：${what}`,
      en: `the engine settings in the vLLM start-up log cannot be parsed: ${what}`,
    },
    details,
  });
}

const IDENT = /[A-Za-z_][A-Za-z0-9_.]*/y;
const NUMBER = /[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/y;

class LiteralReader {
  i = 0;
  constructor(readonly s: string) {}

  fail(what: string): never {
    throw invalid(`${what} at column ${this.i + 1}`, { column: this.i + 1, text: this.s.slice(0, 200) });
  }

  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  value(): PyValue {
    this.ws();
    const c = this.s[this.i];
    if (c === undefined) this.fail('value expected, text ended');
    if (c === "'" || c === '"') return this.string();
    if (c === '{') return this.dictOrSet();
    if (c === '[') return this.sequence('[', ']');
    if (c === '(') return this.sequence('(', ')');
    if (c === '<') return this.repr();
    NUMBER.lastIndex = this.i;
    const num = NUMBER.exec(this.s);
    if (num && !/[A-Za-z_]/.test(this.s[this.i + num[0].length] ?? '')) {
      this.i += num[0].length;
      return Number(num[0]);
    }
    const neg = c === '-' ? 1 : 0;
    IDENT.lastIndex = this.i + neg;
    const id = IDENT.exec(this.s);
    if (!id) this.fail(`unexpected "${c}"`);
    this.i += neg + id[0].length;
    if (!neg && id[0] === 'True') return true;
    if (!neg && id[0] === 'False') return false;
    if (!neg && id[0] === 'None') return null;
    if (id[0] === 'inf') return neg ? -Infinity : Infinity;
    if (!neg && id[0] === 'nan') return NaN;
    if (neg) this.fail(`unexpected "-${id[0]}"`);
    // A dotted name, maybe called: `LoadFormat.AUTO`, `DecodingConfig(backend='x')`.
    if (this.s[this.i] === '(') {
      const start = this.i - id[0].length;
      this.sequence('(', ')', true);
      return new PyRepr(this.s.slice(start, this.i));
    }
    return new PyRepr(id[0]);
  }

  string(): string {
    const quote = this.s[this.i]!;
    let out = '';
    this.i++;
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) this.fail('unterminated string');
      this.i++;
      if (c === quote) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      if (e === undefined) this.fail('unterminated string');
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v' };
      if (e in simple && !(e === '0' && /[0-7]/.test(this.s[this.i] ?? ''))) {
        out += simple[e];
        continue;
      }
      const hexLen = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
      if (hexLen > 0) {
        const hex = this.s.slice(this.i, this.i + hexLen);
        if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(hex)) this.fail(`bad \\${e} escape`);
        out += String.fromCodePoint(parseInt(hex, 16));
        this.i += hexLen;
        continue;
      }
      const oct = /^[0-7]{1,3}/.exec(this.s.slice(this.i - 1));
      if (oct) {
        out += String.fromCharCode(parseInt(oct[0], 8));
        this.i += oct[0].length - 1;
        continue;
      }
      out += '\\' + e; // Python keeps unknown escapes as written
    }
  }

  /** `[a, b]`, `(a,)`; with `call`, the arguments of a repr call, skipped for their text. */
  sequence(open: string, close: string, call = false): PyValue[] {
    this.i++; // open
    const out: PyValue[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === undefined) this.fail(`"${close}" expected, text ended`);
      if (this.s[this.i] === close) {
        this.i++;
        return out;
      }
      if (call) {
        // keyword arguments in a repr: name=value
        IDENT.lastIndex = this.i;
        const kw = IDENT.exec(this.s);
        if (kw && this.s[this.i + kw[0].length] === '=' && this.s[this.i + kw[0].length + 1] !== '=') this.i += kw[0].length + 1;
      }
      out.push(this.value());
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== close) this.fail(`"," or "${close}" expected`);
    }
  }

  dictOrSet(): PyValue {
    this.i++; // {
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return {};
    }
    const first = this.value();
    this.ws();
    if (this.s[this.i] !== ':') {
      // a set repr: {a, b}
      const out: PyValue[] = [first];
      for (;;) {
        this.ws();
        if (this.s[this.i] === '}') {
          this.i++;
          return out;
        }
        if (this.s[this.i] === undefined) this.fail('"}" expected, text ended');
        if (this.s[this.i] !== ',') this.fail('"," or "}" expected');
        this.i++;
        this.ws();
        if (this.s[this.i] === '}') continue;
        out.push(this.value());
      }
    }
    const out: Record<string, PyValue> = {};
    let key: PyValue = first;
    for (;;) {
      this.ws();
      if (this.s[this.i] !== ':') this.fail('":" expected');
      this.i++;
      const k = typeof key === 'string' ? key : key instanceof PyRepr ? key.text : JSON.stringify(key);
      if (Object.hasOwn(out, k)) this.fail(`key ${k} repeated`);
      out[k] = this.value();
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') this.fail(this.s[this.i] === undefined ? '"}" expected, text ended' : '"," or "}" expected');
      this.ws();
      if (this.s[this.i] === '}') {
        this.i++;
        return out;
      }
      key = this.value();
    }
  }

  /** `<Enum.NAME: 3>`, `<Thing object at 0x…>`: to the matching `>`. */
  repr(): PyRepr {
    const start = this.i;
    let depth = 0;
    for (; this.i < this.s.length; this.i++) {
      const c = this.s[this.i]!;
      if (c === "'" || c === '"') {
        this.string();
        this.i--;
      } else if (c === '<') depth++;
      else if (c === '>' && --depth === 0) {
        this.i++;
        return new PyRepr(this.s.slice(start, this.i));
      }
    }
    return this.fail('unterminated <…> repr');
  }
}

/** Parse one Python literal (the whole text). Throws VLLM_LOG_INVALID when it is not one. */
export function parsePythonLiteral(text: string): PyValue {
  const r = new LiteralReader(text);
  const v = r.value();
  r.ws();
  if (r.i !== text.length) r.fail('text after the value');
  return v;
}

// ---------------------------------------------------------------------------------------------
// `k=v, k=v` lists: the engine's config line and `Namespace(…)`

const NEXT_KEY = /\s+[A-Za-z_][A-Za-z0-9_]*=(?!=)/y;

/**
 * Split `a=1, b='x, y', c=Cfg(d=2)` into raw values. Brackets and (inside brackets, or for a
 * value that starts with one) quotes are balanced; an unquoted top-level value is taken as
 * written, since vLLM prints paths and names there without quotes. Real logs (0.6.x) lack a
 * comma once ("chunked_prefill_enabled=True multi_step_stream_outputs=True"): a space followed
 * by `name=` at the top level also ends a value.
 */
export function splitKeyValues(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  const n = text.length;
  const skipWs = (): void => {
    while (i < n && /[\s,]/.test(text[i]!)) i++;
  };
  for (;;) {
    skipWs();
    if (i >= n) return out;
    if (text[i] === ')' && text.slice(i + 1).trim() === '') return out; // the closing ")" of "…, seed=0)"
    const key = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!key || text[i + key[0].length] !== '=') throw invalid(`"name=" expected at column ${i + 1}`, { column: i + 1 });
    i += key[0].length + 1;
    const start = i;
    const stack: string[] = [];
    const quotedStart = text[i] === "'" || text[i] === '"';
    const pairs: Record<string, string> = { '(': ')', '[': ']', '{': '}', '<': '>' };
    for (; i < n; i++) {
      const c = text[i]!;
      if ((c === "'" || c === '"') && (stack.length > 0 || (quotedStart && i === start))) {
        let j = i + 1;
        while (j < n && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
        if (j >= n) throw invalid(`unterminated string in ${key[0]}`, { key: key[0] });
        i = j;
        continue;
      }
      if (c in pairs && (c !== '<' || stack.length > 0 || i === start)) {
        stack.push(pairs[c]!);
        continue;
      }
      if (stack.length > 0 && c === stack[stack.length - 1]) {
        stack.pop();
        continue;
      }
      if (stack.length > 0) continue;
      if (c === ',') break;
      if (c === ')' && text.slice(i + 1).trim() === '') break;
      if (/\s/.test(c)) {
        NEXT_KEY.lastIndex = i;
        if (NEXT_KEY.test(text)) break;
      }
    }
    if (stack.length > 0) throw invalid(`"${stack[stack.length - 1]}" missing in the value of ${key[0]} (the line is cut short?)`, { key: key[0] });
    out.push([key[0], text.slice(start, i).trim()]);
  }
}

/** A raw `k=v` value: a literal when it is one, else the text (torch.float16, auto, paths). */
function rawValue(raw: string): PyValue {
  if (raw === '') return '';
  try {
    return parsePythonLiteral(raw);
  } catch {
    return raw;
  }
}

// ---------------------------------------------------------------------------------------------
// The log

export type SettingSource = 'engine-config' | 'engine-log' | 'server-args';

export interface Setting<T> {
  value: T;
  source: SettingSource;
  /** 1-based line of the log it was read from. */
  line: number;
}

export interface VllmEngineSettings {
  /** vLLM version as the engine (else the API server banner) states it. */
  version: Setting<string> | null;
  /** 'V1' or 'V0' as the engine line names it (lines before 0.7 name none: V0). */
  engine: 'V0' | 'V1' | null;
  model: Setting<string> | null;
  servedModelName: Setting<string[]> | null;
  tensorParallelSize: Setting<number> | null;
  pipelineParallelSize: Setting<number> | null;
  gpuMemoryUtilization: Setting<number> | null;
  maxModelLen: Setting<number> | null;
  maxNumSeqs: Setting<number> | null;
  maxNumBatchedTokens: Setting<number> | null;
  dtype: Setting<string> | null;
  quantization: Setting<string | null> | null;
  enableChunkedPrefill: Setting<boolean> | null;
  /** How many engine starts the log shows (restarts repeat the line). */
  engineStarts: number;
}

const positiveInt = z.number().int().positive();
const FIELD_SCHEMAS = {
  tensorParallelSize: positiveInt,
  pipelineParallelSize: positiveInt,
  gpuMemoryUtilization: z.number().gt(0).lte(1),
  maxModelLen: positiveInt,
  maxNumSeqs: positiveInt,
  maxNumBatchedTokens: positiveInt,
  enableChunkedPrefill: z.boolean(),
  model: z.string().min(1),
  dtype: z.string().min(1),
  servedModelName: z.array(z.string().min(1)).min(1),
  quantization: z.string().min(1).nullable(),
} as const;
type Field = keyof typeof FIELD_SCHEMAS;

const RANK: Record<SettingSource, number> = { 'engine-config': 3, 'engine-log': 2, 'server-args': 1 };

const ENGINE_LINE = /Initializing an? (?:(V0|V1) )?LLM engine(?: \(v([^)\s]+)\))? with config: (.*)$/;
const NON_DEFAULT = /non-default args: (.*)$/;
const NAMESPACE = /\bargs: Namespace\((.*)$/;
const SERVER_VERSION = /vLLM (?:API )?server version ([^\s,]+)/;
const BANNER_VERSION = /[▀▄█]\s+version\s+(\S+)\s*$/;
const CHUNKED = /Chunked prefill is enabled with max_num_batched_tokens=(\d+)/;
const MAX_LEN = /Using max model len (\d+)/;

/** torch.bfloat16 → bfloat16; 'auto' stays. */
const dtypeName = (v: string): string => v.replace(/^torch\./, '');

function asString(v: PyValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof PyRepr) return v.text;
  return undefined;
}

/** Read the engine settings in force from vLLM start-up log text. */
export function parseVllmStartupLog(text: string): VllmEngineSettings {
  const found: Partial<Record<Field, Setting<unknown>>> = {};
  let version: Setting<string> | null = null;
  let engine: VllmEngineSettings['engine'] = null;
  let engineStarts = 0;
  let maxLenSeen = false;

  const put = (field: Field, value: unknown, source: SettingSource, line: number): void => {
    if (value === undefined) return;
    const parsed = FIELD_SCHEMAS[field].safeParse(value);
    if (!parsed.success) throw invalid(`${field} = ${JSON.stringify(value)} (line ${line})`, { field, line });
    const prev = found[field];
    // Higher authority wins; at equal authority the later line (the latest start) wins.
    if (!prev || RANK[source] >= RANK[prev.source]) found[field] = { value: parsed.data, source, line };
  };
  const setVersion = (v: string, source: SettingSource, line: number): void => {
    if (!version || RANK[source] >= RANK[version.source]) version = { value: v.replace(/^v/, ''), source, line };
  };

  /** Options under their argparse dest names, from either kind of server-args line. */
  const fromArgs = (args: Record<string, PyValue>, line: number): void => {
    const model = asString(args['model']) ?? asString(args['model_tag']);
    put('model', model, 'server-args', line);
    const served = args['served_model_name'];
    if (Array.isArray(served)) put('servedModelName', served, 'server-args', line);
    else if (typeof served === 'string') put('servedModelName', [served], 'server-args', line);
    const num = (k: string): number | undefined => (typeof args[k] === 'number' ? (args[k] as number) : undefined);
    put('tensorParallelSize', num('tensor_parallel_size'), 'server-args', line);
    put('pipelineParallelSize', num('pipeline_parallel_size'), 'server-args', line);
    put('gpuMemoryUtilization', num('gpu_memory_utilization'), 'server-args', line);
    put('maxModelLen', num('max_model_len'), 'server-args', line);
    put('maxNumSeqs', num('max_num_seqs'), 'server-args', line);
    put('maxNumBatchedTokens', num('max_num_batched_tokens'), 'server-args', line);
    const dtype = asString(args['dtype']);
    if (dtype !== undefined && dtype !== 'auto') put('dtype', dtypeName(dtype), 'server-args', line);
    if ('quantization' in args) put('quantization', asString(args['quantization']) ?? null, 'server-args', line);
    if (typeof args['enable_chunked_prefill'] === 'boolean') put('enableChunkedPrefill', args['enable_chunked_prefill'], 'server-args', line);
  };

  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;

    const eng = ENGINE_LINE.exec(l);
    if (eng) {
      engineStarts++;
      engine = eng[1] === 'V1' ? 'V1' : 'V0';
      if (eng[2]) setVersion(eng[2], 'engine-config', line);
      const kv = Object.fromEntries(splitKeyValues(eng[3]!).map(([k, v]) => [k, rawValue(v)]));
      const src = 'engine-config';
      put('model', asString(kv['model']), src, line);
      const served = asString(kv['served_model_name']);
      if (served !== undefined) put('servedModelName', [served], src, line);
      const num = (k: string): number | undefined => (typeof kv[k] === 'number' ? (kv[k] as number) : undefined);
      put('tensorParallelSize', num('tensor_parallel_size'), src, line);
      put('pipelineParallelSize', num('pipeline_parallel_size'), src, line);
      put('maxModelLen', num('max_seq_len'), src, line);
      const dtype = asString(kv['dtype']);
      if (dtype !== undefined) put('dtype', dtypeName(dtype), src, line);
      if ('quantization' in kv) put('quantization', asString(kv['quantization']) ?? null, src, line);
      const chunked = kv['enable_chunked_prefill'] ?? kv['chunked_prefill_enabled'];
      if (typeof chunked === 'boolean') put('enableChunkedPrefill', chunked, src, line);
      return;
    }

    const nd = NON_DEFAULT.exec(l);
    if (nd) {
      const args = parsePythonLiteral(nd[1]!.trim());
      if (args === null || typeof args !== 'object' || Array.isArray(args) || args instanceof PyRepr) {
        throw invalid(`non-default args is not a dict (line ${line})`, { line });
      }
      fromArgs(args, line);
      maxLenSeen = false;
      return;
    }

    const ns = NAMESPACE.exec(l);
    if (ns) {
      fromArgs(Object.fromEntries(splitKeyValues(ns[1]!).map(([k, v]) => [k, rawValue(v)])), line);
      maxLenSeen = false;
      return;
    }

    const chunked = CHUNKED.exec(l);
    if (chunked) {
      put('maxNumBatchedTokens', Number(chunked[1]), 'engine-log', line);
      put('enableChunkedPrefill', true, 'engine-log', line);
    }
    // Printed once per model config: the served model's first, then a draft model's (MTP,
    // EAGLE), which may differ. The first after the server's args line is the served one.
    const maxLen = MAX_LEN.exec(l);
    if (maxLen && !maxLenSeen) {
      maxLenSeen = true;
      put('maxModelLen', Number(maxLen[1]), 'engine-log', line);
    }
    const sv = SERVER_VERSION.exec(l) ?? BANNER_VERSION.exec(l);
    if (sv) setVersion(sv[1]!, 'server-args', line);
  });

  const get = <T>(f: Field): Setting<T> | null => (found[f] as Setting<T> | undefined) ?? null;
  return {
    version,
    engine,
    model: get('model'),
    servedModelName: get('servedModelName'),
    tensorParallelSize: get('tensorParallelSize'),
    pipelineParallelSize: get('pipelineParallelSize'),
    gpuMemoryUtilization: get('gpuMemoryUtilization'),
    maxModelLen: get('maxModelLen'),
    maxNumSeqs: get('maxNumSeqs'),
    maxNumBatchedTokens: get('maxNumBatchedTokens'),
    dtype: get('dtype'),
    quantization: get('quantization'),
    enableChunkedPrefill: get('enableChunkedPrefill'),
    engineStarts,
  };
}
