/**
 * The monitor task's report checks hold the figures of its generated gateway log. Here the
 * generator runs again (python3, as in the seat's setup) and the figures are recomputed from its
 * output, independently of the generator, so the task's expected values cannot drift from the log.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const dir = fileURLToPath(new URL('../../tasks/junior/monitor/', import.meta.url));
const LINE = /^\S+ - - \[[^\]]+\] "[A-Z]+ \S+ HTTP\/1\.1" (\d{3}) \d+ "[^"]*" "[^"]*" rt=(\d+\.\d{3})$/;

interface Check {
  id: string;
  probe: { expect: { pointer: string; equals?: unknown; near?: { value: number; tolerance: number } }[] };
}

describe('monitor task: the log and the expected report', () => {
  const log = execFileSync('python3', [`${dir}setup/gen_access_log.py`], { encoding: 'utf8' });
  const task = parse(readFileSync(`${dir}task.yaml`, 'utf8')) as { checks: Check[] };
  const expected = (id: string, pointer: string) => task.checks.find((c) => c.id === id)!.probe.expect.find((e) => e.pointer === pointer)!;

  it('is the same on every run (fixed seed)', () => {
    expect(execFileSync('python3', [`${dir}setup/gen_access_log.py`], { encoding: 'utf8' })).toBe(log);
  });

  it('holds the request count, errors by status and nearest-rank p95 the checks expect', () => {
    const lines = log.trimEnd().split('\n');
    const errors: Record<string, number> = {};
    const ms: number[] = [];
    for (const l of lines) {
      const m = LINE.exec(l);
      expect(m, l).not.toBeNull();
      if (Number(m![1]) >= 400) errors[m![1]!] = (errors[m![1]!] ?? 0) + 1;
      ms.push(Math.round(Number(m![2]) * 1000));
    }
    ms.sort((a, b) => a - b);
    const p95 = ms[Math.ceil(0.95 * ms.length) - 1]!;
    expect(expected('report-counts', '/requests').equals).toBe(lines.length);
    expect(expected('report-counts', '/errors_by_status').equals).toEqual(errors);
    const near = expected('report-p95', '/p95_ms').near!;
    expect(near.value).toBe(p95);
    // The tolerance tells nearest rank from its neighbours and from the mean.
    const rank = Math.ceil(0.95 * ms.length) - 1;
    const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
    for (const wrong of [ms[rank - 1]!, ms[rank + 1]!, mean]) expect(Math.abs(wrong - p95)).toBeGreaterThan(near.tolerance);
    // A realistic mix: every class of status is there.
    expect(Object.keys(errors).some((s) => s.startsWith('4'))).toBe(true);
    expect(Object.keys(errors).some((s) => s.startsWith('5'))).toBe(true);
  });
});
