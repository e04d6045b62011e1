import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { DeploylabError } from '../runner/core/errors.js';
import { SEAT_CAPABILITIES, SEAT_CAPABILITY_NAMES, type CapableSeat, type SeatCapability } from './capabilities.js';
import { gradeCheck } from './index.js';
import { capabilitiesFor, LATENCY_SENSITIVE_KINDS, PROBE_KIND_NAMES, PROBE_KINDS, ProbeParamsSchema, type AnyProbeKind } from './kinds.js';
import type { SeatHandle } from './probe.js';

const GRADERS = fileURLToPath(new URL('./', import.meta.url));
const README = fileURLToPath(new URL('../tasks/README.md', import.meta.url));

/** A seat handle every method of which is recorded and fails: whether a probe ran shows in `touched`. */
function recordingSeat(extra: Partial<Record<keyof CapableSeat, unknown>> = {}): SeatHandle & { touched: string[] } {
  const touched: string[] = [];
  const touch =
    (what: string) =>
    async (): Promise<never> => {
      touched.push(what);
      throw new DeploylabError({ code: 'SANDBOX_UNSUPPORTED', fault: 'infrastructure', message: { zh: `探针使用了考位（${what}）`, en: `the probe used the seat (${what})` } });
    };
  const seat = { id: 'seat-x', labels: {}, touched, endpoint: touch('endpoint'), readFile: touch('readFile'), listProcesses: touch('listProcesses'), checkPath: touch('checkPath') };
  for (const k of Object.keys(extra)) Object.assign(seat, { [k]: touch(k) });
  return seat;
}

/** Checks that need a capability, with the code a seat handle without it gives them. */
const NEEDING: [SeatCapability, string, unknown][] = [
  ['reference', 'PROBE_NEEDS_REFERENCE', { kind: 'load', target: { port: 8080 }, requests: 2, concurrency: 1, reference: { command: ['true'], port: 8080 }, expect: { maxP95RatioToReference: 1.5 } }],
  ['toolbox', 'PROBE_NEEDS_TOOLBOX', { kind: 'gguf', path: '/workspace/m.gguf', expect: { loads: {} } }],
  ['toolbox', 'PROBE_NEEDS_TOOLBOX', { kind: 'gguf', path: '/workspace/m.gguf', expect: { sameTensorsAs: { build: [['llama-quantize', '/a', '/b', 'Q8_0']], output: '/b' } } }],
  ['image-files', 'PROBE_NEEDS_ENGINE', { kind: 'process', match: { exe: 'llama-server' }, expect: { executable: '/usr/local/bin/llama-server' } }],
  ['image-files', 'PROBE_NEEDS_ENGINE', { kind: 'nginx-config', master: { executable: '/usr/sbin/nginx', config: '/etc/nginx/nginx.conf' }, request: { port: 8080, path: '/' }, expect: { limitReq: { keys: ['$binary_remote_addr'], rate: '2r/s' } } }],
  ['inspect-containers', 'PROBE_SEAT_UNSUPPORTED', { kind: 'container', scope: 'seat', match: { name: 'api' } }],
  ['restart', 'PROBE_CANNOT_DISRUPT', { kind: 'recovery', disrupt: { action: 'restart-container', container: 'workspace' }, then: { target: { port: 8080 }, withinSeconds: 5 } }],
  ['image-files', 'PROBE_NEEDS_ENGINE', { kind: 'recovery', disrupt: { action: 'kill-process', match: { exe: 'llama-server' } }, then: { target: { port: 8080 }, withinSeconds: 5, identity: { match: { exe: 'llama-server' }, expect: { executable: '/usr/local/bin/llama-server' } } } }],
];

/** Checks of the same kinds that need none. */
const NEEDING_NONE: unknown[] = [
  { kind: 'load', target: { port: 8080 }, requests: 2, concurrency: 1, expect: {} },
  { kind: 'gguf', path: '/workspace/m.gguf', expect: { fileType: 15 } },
  { kind: 'process', match: { exe: 'llama-server' }, expect: { listens: 8080 } },
  { kind: 'container', match: { name: 'api' } },
  { kind: 'recovery', disrupt: { action: 'kill-process', match: { exe: 'llama-server' } }, then: { target: { port: 8080 }, withinSeconds: 5 } },
  { kind: 'http', target: { port: 8080 } },
];

describe('probe kinds: one list', () => {
  it('has a folder with an index.ts for each kind, and a kind for each such folder', () => {
    const folders = readdirSync(GRADERS).filter((f) => statSync(join(GRADERS, f)).isDirectory() && readdirSync(join(GRADERS, f)).includes('index.ts'));
    expect(folders.sort()).toEqual([...PROBE_KIND_NAMES].sort());
    for (const def of PROBE_KINDS) expect(readdirSync(join(GRADERS, def.kind)), def.kind).toEqual(expect.arrayContaining(['index.ts', 'params.ts', `${def.kind}.ts`, `${def.kind}.test.ts`]));
  });

  it('derives the latency-sensitive kinds from the kinds themselves', () => {
    expect([...LATENCY_SENSITIVE_KINDS].sort()).toEqual(['load', 'openai-chat', 'rate-limit', 'recovery', 'resource-samples']);
  });

  it('names the seat capabilities, each with the error a check without it gets', () => {
    expect(Object.fromEntries(SEAT_CAPABILITY_NAMES.map((c) => [c, SEAT_CAPABILITIES[c].missing().code]))).toEqual({
      'inspect-containers': 'PROBE_SEAT_UNSUPPORTED',
      'image-files': 'PROBE_NEEDS_ENGINE',
      restart: 'PROBE_CANNOT_DISRUPT',
      toolbox: 'PROBE_NEEDS_TOOLBOX',
      reference: 'PROBE_NEEDS_REFERENCE',
    });
  });
});

/** Relative module specifiers a TypeScript source imports: static, type-only, re-exported and import(). */
function importsIn(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('.'));
}

describe('kind folders: what several kinds use lives in shared/', () => {
  const kinds: readonly string[] = PROBE_KIND_NAMES;
  /** The kind whose folder holds a path, if any. */
  const kindOf = (path: string): string | undefined => {
    const top = relative(GRADERS, path).split(sep)[0]!;
    return kinds.includes(top) ? top : undefined;
  };

  it('reads every kind of import', () => {
    const text = "import a from '../http/http.js';\nimport type { B } from './b.js';\nexport * from '../c.js';\nconst k = await import('../kinds.js');\nimport { z } from 'zod';";
    expect(importsIn(text)).toEqual(['../http/http.js', './b.js', '../c.js', '../kinds.js']);
  });

  it('no file of a kind folder imports from another kind\'s folder, nor does shared/ or parsers/', () => {
    const crossings: string[] = [];
    for (const folder of [...kinds, 'shared', 'parsers']) {
      const dir = join(GRADERS, folder);
      const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
      expect(files.length, folder).toBeGreaterThan(0);
      for (const f of files) {
        for (const spec of importsIn(readFileSync(join(dir, f), 'utf8'))) {
          const to = kindOf(resolve(dirname(join(dir, f)), spec));
          if (to !== undefined && to !== folder) crossings.push(`${folder}/${f} imports ${spec}`);
        }
      }
    }
    expect(crossings).toEqual([]);
  });
});

describe('seat capabilities: checked before the probe runs', () => {
  it.each(NEEDING.map(([c, code, p]) => [`${(p as { kind: string }).kind} needs ${c}`, c, code, p] as const))('%s', async (_name, capability, code, raw) => {
    const params = ProbeParamsSchema.parse(raw);
    expect(capabilitiesFor(params)).toContain(capability);
    const without = recordingSeat();
    const o = await gradeCheck(without, params);
    expect(o.status).toBe('error');
    expect(o.error).toMatchObject({ code, fault: SEAT_CAPABILITIES[capability].missing().fault });
    expect(without.touched, 'the probe must not run').toEqual([]);
    // With it (and the others the check needs), the probe runs.
    const all = Object.fromEntries(capabilitiesFor(params).map((c) => [SEAT_CAPABILITIES[c].method, true]));
    const withIt = recordingSeat(all);
    const ran = await gradeCheck(withIt, params);
    expect(withIt.touched.length, JSON.stringify(ran.error)).toBeGreaterThan(0);
  });

  it('asks nothing of a check that does not need it', async () => {
    for (const raw of NEEDING_NONE) expect(capabilitiesFor(ProbeParamsSchema.parse(raw)), JSON.stringify(raw)).toEqual([]);
  });

  it('declares, per kind, only capabilities it names in `needs`', () => {
    for (const [, , raw] of NEEDING) {
      const params = ProbeParamsSchema.parse(raw);
      const def = PROBE_KINDS.find((k) => k.kind === params.kind)!;
      for (const c of capabilitiesFor(params)) expect(def.needs as readonly string[]).toContain(c);
    }
  });
});

describe('tasks/README.md', () => {
  const line = (k: AnyProbeKind): string => {
    const latency = k.latencySensitive ? '时延敏感 latency-sensitive' : '非时延敏感 not latency-sensitive';
    const needs = k.needs.length === 0 ? '无需考位能力 needs no seat capability' : `${'needsFor' in k ? '部分检查需要 some checks need' : '需要 needs'} ${k.needs.map((n) => `\`${n}\``).join(', ')}`;
    return `- \`${k.kind}\`: ${latency}; ${needs}`;
  };

  it('lists every probe kind as the kinds declare them', () => {
    const text = readFileSync(README, 'utf8');
    const block = /<!-- probe-kinds -->\n([\s\S]*?)\n<!-- \/probe-kinds -->/.exec(text)?.[1];
    expect(block, 'the probe-kinds block of tasks/README.md').toBeDefined();
    expect(block!.split('\n')).toEqual(PROBE_KINDS.map(line));
  });
});
