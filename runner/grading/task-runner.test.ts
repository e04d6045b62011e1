import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempSeat, type TempSeat } from '../../graders/__helpers__/temp-seat.js';
import { TaskSchema, type TaskInput } from '../tasks/task-schema.js';
import { gradeSeat, planForTask } from './task-runner.js';

const base: Omit<TaskInput, 'checks'> = {
  id: 'sample',
  level: 'junior',
  title: { zh: '样例', en: 'sample' },
  version: '1.0.0',
  needs: { profile: 'workspace-cpu', cpus: 2, memoryMiB: 1024, estimatedMinutes: 5 },
  solution: { scripts: ['solve.sh'] },
};
const fileCheck = (id: string, path: string, dependsOn: string[] = [], points = 1): TaskInput['checks'][number] => ({
  id,
  skill: '1.2.1',
  title: { zh: id, en: id },
  points,
  dependsOn,
  probe: { kind: 'file', path, expect: { exists: true } },
});

describe('gradeSeat', () => {
  let seat: TempSeat;
  let server: Server;
  const inFlight: string[] = [];
  let overlapSeen = false;
  beforeAll(async () => {
    seat = await tempSeat();
    await mkdir(join(seat.root, 'workspace'), { recursive: true });
    await writeFile(join(seat.root, 'workspace/a.txt'), 'a');
    // A slow real server: an http check stays in flight long enough to see what runs beside it.
    server = createServer((req, res) => {
      inFlight.push(req.url ?? '');
      // Other checks may overlap each other; none may overlap the burst.
      if (inFlight.length > 1 && inFlight.includes('/burst')) overlapSeen = true;
      setTimeout(() => {
        inFlight.splice(inFlight.indexOf(req.url ?? ''), 1);
        res.end('ok');
      }, 300);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    seat.ports.set(8080, (server.address() as AddressInfo).port);
  });
  afterAll(async () => {
    server.close();
    await seat.cleanup();
  });

  it('runs checks in dependency order, blocks dependents of a failed check, totals the points', async () => {
    const task = TaskSchema.parse({
      ...base,
      checks: [
        fileCheck('later', '/workspace/a.txt', ['first'], 2),
        fileCheck('first', '/workspace/a.txt'),
        fileCheck('missing', '/workspace/none.txt'),
        fileCheck('after-missing', '/workspace/a.txt', ['missing', 'first'], 3),
      ],
    });
    const order: string[] = [];
    const g = await gradeSeat(task, seat, { onCheck: (c) => order.push(c.checkId) });
    expect(order.indexOf('first')).toBeLessThan(order.indexOf('later'));
    expect(g.checks.map((c) => [c.checkId, c.result.outcome, c.result.earned])).toEqual([
      ['later', 'pass', 2],
      ['first', 'pass', 1],
      ['missing', 'fail', 0],
      ['after-missing', 'blocked', 0],
    ]);
    expect(g.checks[3]!.blockedBy).toEqual(['missing']);
    expect(g.checks[3]!.outcome).toBeUndefined();
    expect([g.earned, g.possible]).toEqual([3, 7]);
  });

  it('never runs a latency-sensitive probe beside another when told to keep them apart', async () => {
    const http = (id: string): TaskInput['checks'][number] => ({
      id,
      skill: '3.1.1',
      title: { zh: id, en: id },
      points: 1,
      probe: { kind: 'http', target: { port: 8080 }, path: `/${id}` },
    });
    const rate = {
      id: 'burst',
      skill: '3.1.1',
      title: { zh: 'burst', en: 'burst' },
      points: 1,
      probe: { kind: 'rate-limit', target: { port: 8080 }, path: '/burst', requests: 2, concurrency: 1, expect: { minLimited: 1, minAllowed: 1 } },
    } as const;
    const task = TaskSchema.parse({ ...base, checks: [http('h1'), rate, http('h2'), http('h3')] });
    overlapSeen = false;
    await gradeSeat(task, seat, { concurrency: 4, exclusiveLatency: true });
    expect(overlapSeen).toBe(false);
    // Control: without the rule the same checks do overlap, so the assertion above can fail.
    overlapSeen = false;
    await gradeSeat(task, seat, { concurrency: 4, exclusiveLatency: false });
    expect(overlapSeen).toBe(true);
  });
});

describe('planForTask', () => {
  it('takes image, resources and labels from the task', () => {
    const task = TaskSchema.parse({ ...base, checks: [fileCheck('x', '/x')] });
    const plan = planForTask(task, { session: 'verify-1', seat: 'sample' }, { workspaceCpu: 'deploylab/workspace-cpu:abc' }, { 'deploylab.purpose': 'verify' });
    expect(plan.workspace.image).toBe('deploylab/workspace-cpu:abc');
    expect(plan.resources).toMatchObject({ cpus: 2, memoryMiB: 1024 });
    expect([plan.session, plan.seat, plan.task]).toEqual(['verify-1', 'sample', 'sample']);
    expect(plan.labels).toEqual({ 'deploylab.purpose': 'verify' });
    expect(plan.dockerInSeat.enabled).toBe(false);
  });

  it('refuses a GPU task on this host kind as infrastructure, not as a task defect', () => {
    const task = TaskSchema.parse({ ...base, needs: { ...base.needs, profile: 'gpu', gpus: 1 }, checks: [fileCheck('x', '/x')] });
    expect(() => planForTask(task, { session: 's', seat: 'x1' }, { workspaceCpu: 'i' })).toThrow(expect.objectContaining({ code: 'GRADING_PROFILE_UNAVAILABLE', fault: 'infrastructure' }));
  });
});
