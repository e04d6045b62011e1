import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { seatImage } from '../../test/conformance/seat-image.js';
import { DockerDriver } from '../sandbox/docker-driver.js';
import { parseSeatPlan } from '../sandbox/driver.js';
import { main } from './main.js';

async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  try {
    const code = await main(['node', 'deploylab', ...args]);
    return { code, out };
  } finally {
    spy.mockRestore();
    process.exitCode = undefined;
  }
}

describe.skipIf(!hasEngine)('deploylab sandbox ls|sweep on the real engine', () => {
  const session = `cli-${randomBytes(3).toString('hex')}`;
  const driver = new DockerDriver();
  afterAll(async () => {
    await driver.sweep({ session });
  });

  it('lists a seat by its labels, keeps it on --older-than, removes it on sweep', async () => {
    await driver.provision(parseSeatPlan({ session, seat: 's1', task: 'cli', workspace: { image: await seatImage() } }));
    const ls = await runCli(['--json', 'sandbox', 'ls', '--session', session]);
    expect(ls.code).toBe(0);
    const seats = (JSON.parse(ls.out) as { seats: { ref: { seat: string }; state: string }[] }).seats;
    expect(seats.map((s) => [s.ref.seat, s.state])).toEqual([['s1', 'running']]);

    const young = await runCli(['--json', 'sandbox', 'sweep', '--session', session, '--older-than', '1h']);
    expect(JSON.parse(young.out).removed).toEqual([]);

    const swept = await runCli(['--json', 'sandbox', 'sweep', '--session', session]);
    const kinds = (JSON.parse(swept.out) as { removed: { kind: string }[] }).removed.map((r) => r.kind).sort();
    expect(kinds).toEqual(['container', 'network']);
    const after = await runCli(['--json', 'sandbox', 'ls', '--session', session]);
    expect(JSON.parse(after.out).seats).toEqual([]);
  });

  it('rejects a bad duration as bad input', async () => {
    const r = await runCli(['--json', 'sandbox', 'sweep', '--older-than', 'soon']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.out).error.code).toBe('CLI_BAD_DURATION');
  });
});
