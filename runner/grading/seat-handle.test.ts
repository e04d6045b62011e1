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
    // A service only the seat's own namespace reaches (loopback).
    await driver.exec(ref, {
      cmd: ['bash', '-c', 'mkdir -p /tmp/www && echo seat-page > /tmp/www/index.html && setsid nohup python3 -m http.server 8123 --bind 127.0.0.1 --directory /tmp/www >/dev/null 2>&1 </dev/null &'],
    });
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

  it('joins the seat’s network namespace only when asked, without any capability, and puts the grader’s own files in', async () => {
    const script = 'for i in $(seq 50); do curl -sf http://127.0.0.1:8123/ && break; sleep 0.2; done; grep CapEff /proc/self/status; stat -c "%u %a" /work/own.sh';
    const put = [{ path: '/work/own.sh', content: `#!/bin/sh\n${script}\n`, mode: 0o755 }];
    const inSeat = await seat.runTrusted!({ copy: [], put, cmd: ['/work/own.sh'], timeoutMs: 30_000, network: 'seat' });
    expect(inSeat.exitCode).toBe(0);
    expect(inSeat.stdout).toContain('seat-page');
    expect(inSeat.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(inSeat.stdout).toContain('0 755');
    // The default has no network: the same service is out of reach.
    const none = await seat.runTrusted!({ copy: [], put, cmd: ['sh', '-c', 'curl -s -m 2 http://127.0.0.1:8123/ || echo unreachable'], timeoutMs: 30_000 });
    expect(none.stdout).toContain('unreachable');
    expect(none.stdout).not.toContain('seat-page');
  }, 60_000);
});
