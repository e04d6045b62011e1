import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SeatHandle } from '../../graders/probe.js';
import { requireImage } from '../../test/helpers/images.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { DockerDriver } from '../sandbox/docker-driver.js';
import { TOOLBOX_COMPONENT } from '../sandbox/docker-toolbox.js';
import { parseSeatPlan } from '../sandbox/driver.js';
import { LABEL } from '../sandbox/labels.js';
import { seatHandleFor } from './seat-handle.js';
import { newVerifySession } from './verify.js';

describe.skipIf(!hasEngine)('seat handle on the docker driver', () => {
  const driver = new DockerDriver();
  const docker = new Docker();
  const ref = { session: newVerifySession(), seat: 'handle' };
  let seat: SeatHandle;

  beforeAll(async () => {
    const [ws, tb] = [await requireImage('workspace-cpu'), await requireImage('toolbox')];
    await driver.provision(parseSeatPlan({ ...ref, task: 'handle-test', workspace: { image: ws } }));
    seat = seatHandleFor({ driver, ref, task: 'handle-test', toolboxImage: tb });
    await driver.exec(ref, { cmd: ['bash', '-c', 'setsid nohup sleep 300 >/dev/null 2>&1 </dev/null &'] });
  }, 120_000);
  afterAll(async () => {
    await driver.sweep({ session: ref.session });
  });

  it('reads a prefix of a file over the cap with its real size; absent is null; a directory is the candidate’s fault', async () => {
    const f = await seat.readFile('/opt/models/tiny-llama-f16.gguf', { maxBytes: 4096 });
    expect(f?.truncated).toBe(true);
    expect(f?.data.length).toBe(4096);
    expect(f?.data.subarray(0, 4).toString()).toBe('GGUF');
    expect(f!.size).toBeGreaterThan(1 << 20);
    const whole = await seat.readFile('/opt/models/manifest.json');
    expect(whole?.truncated).toBe(false);
    expect(whole?.data.length).toBe(whole?.size);
    expect(await seat.readFile('/workspace/none')).toBeNull();
    await expect(seat.readFile('/opt/models')).rejects.toMatchObject({ fault: 'candidate' });
  });

  it('names process users from the seat’s own passwd', async () => {
    const ps = await seat.listProcesses();
    const sleep = ps.find((p) => p.command.startsWith('sleep 300'));
    expect(sleep?.user).toBe('candidate');
    expect(sleep?.role).toBe('workspace');
  });

  it('checks its own path, and runs trusted tools on copies in a toolbox it removes afterwards', async () => {
    await seat.checkPath();
    const r = await seat.runTrusted!({ copy: [{ from: '/opt/models/manifest.json', to: '/work/m.json' }], cmd: ['sh', '-c', 'cat /work/m.json; echo; echo "net: $(ls /sys/class/net | tr "\\n" " ")"'], timeoutMs: 30_000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('tiny-llama-f16.gguf');
    expect(r.where).toMatch(/^toolbox /);
    // No network in the toolbox: loopback only.
    expect(r.stdout).toContain('net: lo \n');
    await expect(seat.runTrusted!({ copy: [{ from: '/workspace/none', to: '/work/x' }], cmd: ['true'], timeoutMs: 5_000 })).rejects.toMatchObject({ fault: 'candidate' });
    // Files the tool wrote come back on request; one it did not write is left out.
    const made = await seat.runTrusted!({ copy: [], cmd: ['sh', '-c', 'printf built > /tmp/out.txt'], timeoutMs: 30_000, collect: ['/tmp/out.txt', '/tmp/none'] });
    expect(made.exitCode).toBe(0);
    expect(Object.keys(made.files ?? {})).toEqual(['/tmp/out.txt']);
    expect(made.files?.['/tmp/out.txt']?.toString()).toBe('built');
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL.component}=${TOOLBOX_COMPONENT}`, `${LABEL.session}=${ref.session}`] } });
    expect(left).toEqual([]);
  });
});
