/**
 * Containment of the docker-in-seat profile: what a candidate can do through the seat's own
 * daemon (tcp://dind:2375) must stay inside the seat. Each step is asserted by looking from the
 * host or from the neighbour seat, never by trusting what the seat says. The strongest nested
 * container the daemon accepts is tried, and so is the seat daemon's own root (what an escape
 * from a nested container would hold).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSeatPlan, type SandboxDriver, type SeatRef } from '../../runner/sandbox/driver.js';

export interface DockerInSeatContractOptions {
  name: string;
  makeDriver: () => SandboxDriver | Promise<SandboxDriver>;
  workspaceImage: () => Promise<string>;
  dindImage: () => Promise<string>;
  /** An image with sh and python3, preloaded into the seat daemon for the nested containers. */
  nestedImage: () => Promise<string>;
}

/** Capabilities no seat process may hold, by number (linux/capability.h). */
const FORBIDDEN_CAPS: Record<string, number> = {
  DAC_READ_SEARCH: 2,
  SYS_MODULE: 16,
  SYS_RAWIO: 17,
  SYS_PTRACE: 19,
  SYS_BOOT: 22,
  SYS_RESOURCE: 24,
  SYS_TIME: 25,
  MAC_OVERRIDE: 32,
  MAC_ADMIN: 33,
  SYSLOG: 34,
};

/** Host PIDs whose cgroup path names the container id. */
function hostPidsOf(containerId: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(containerId)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function capBounding(pid: number): bigint {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return BigInt(`0x${m![1]}`);
}

/**
 * The seat daemon itself keeps SYS_PTRACE: runc joins a running container's namespaces to exec in it
 * (every healthcheck of a non-root process) and needs it for that. Its pid namespace is its own, so
 * it reaches only its nested containers; those never get it.
 */
const SIDECAR_MAY_HOLD = new Set(['SYS_PTRACE']);

function forbiddenHeld(pid: number, allowed: Set<string> = new Set()): string[] {
  const bnd = capBounding(pid);
  return Object.entries(FORBIDDEN_CAPS)
    .filter(([name]) => !allowed.has(name))
    .filter(([, bit]) => (bnd >> BigInt(bit)) & 1n)
    .map(([name]) => name);
}

/** The host cgroup v1 file of a controller for a host PID (or cgroup v2's unified one). */
function hostCgroupFile(pid: number, controller: string, file: string): string | null {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.map((l) => l.split(':')).find((p) => p[1]!.split(',').includes(controller));
  if (v1) return `/sys/fs/cgroup/${controller}${v1[2]}/${file}`;
  return null;
}

export function runDockerInSeatContract(opts: DockerInSeatContractOptions): void {
  describe(`docker-in-seat containment: ${opts.name}`, () => {
    const session = `ds-${randomBytes(3).toString('hex')}`;
    const seat: SeatRef = { session, seat: 'd' };
    const neighbour: SeatRef = { session, seat: 'n' };
    const docker = new Docker();
    let driver: SandboxDriver;
    let nested: string;
    let neighbourId: string;
    let neighbourPid: number;
    let hostListener: Server | undefined;

    const candidate = (script: string, deadlineMs = 60_000) => driver.exec(seat, { cmd: ['bash', '-c', script], deadlineMs });
    /** A script run in the nested container "strongest", passed whole (no quoting through two shells). */
    const inNested = (script: string) => candidate(`docker exec strongest sh -c "echo ${Buffer.from(script).toString('base64')} | base64 -d | sh"`);
    const sidecarRoot = (script: string) => driver.exec(seat, { cmd: ['sh', '-c', script], container: 'dind', user: 'root', deadlineMs: 60_000 });

    beforeAll(async () => {
      driver = await opts.makeDriver();
      const [ws, dind] = [await opts.workspaceImage(), await opts.dindImage()];
      nested = await opts.nestedImage();
      await Promise.all([
        driver.provision(parseSeatPlan({ ...seat, task: 'containment', workspace: { image: ws }, resources: { cpus: 1, memoryMiB: 1024 }, dockerInSeat: { enabled: true, image: dind, preload: [nested] } })),
        driver.provision(parseSeatPlan({ ...neighbour, task: 'containment', workspace: { image: ws }, resources: { cpus: 0.5, memoryMiB: 256 } })),
      ]);
      neighbourId = (await driver.status(neighbour)).containers.find((c) => c.role === 'workspace')!.id;
      neighbourPid = (await docker.getContainer(neighbourId).inspect()).State.Pid;
    }, 300_000);

    afterAll(async () => {
      hostListener?.close();
      await driver?.sweep({ session }).catch(() => undefined);
    });

    it('the seat daemon works for ordinary containers (the control for every refusal below)', async () => {
      const r = await candidate(`docker run --rm ${nested} sh -c 'echo nested-ok'`);
      expect(r.stdout + r.stderr).toContain('nested-ok');
    }, 120_000);

    it('what the nested daemon holds counts toward the seat\'s disk: its images, and a nested container\'s writes', async () => {
      const dataOf = async (): Promise<number> =>
        (await driver.diskUsage({ session })).find((u) => u.ref.seat === seat.seat)?.parts.find((p) => p.kind === 'volume' && p.role === 'dind-data')?.bytes ?? 0;
      const loaded = await dataOf();
      // The preloaded image alone is tens of MiB.
      expect(loaded).toBeGreaterThan(20 << 20);
      const r = await candidate(`docker run --name filler ${nested} sh -c 'head -c 31457280 /dev/zero > /big && sync && echo filled'`);
      expect(r.stdout).toContain('filled');
      expect((await dataOf()) - loaded).toBeGreaterThanOrEqual(30 << 20);
      expect((await driver.diskUsage({ session })).find((u) => u.ref.seat === neighbour.seat)?.parts.some((p) => p.role === 'dind-data') ?? false).toBe(false);
      await candidate('docker rm -f filler');
    }, 120_000);

    it('refuses privileged containers, host mounts, added capabilities, host namespaces, devices, unconfined profiles, bind volumes and plugins', async () => {
      const attempts = [
        `docker run --rm --privileged ${nested} true`,
        `docker run --rm -v /:/host ${nested} true`,
        `docker run --rm --mount type=bind,source=/var/run,target=/r ${nested} true`,
        `docker run --rm --cap-add SYS_ADMIN ${nested} true`,
        `docker run --rm --pid host ${nested} true`,
        `docker run --rm --net host ${nested} true`,
        `docker run --rm --userns host ${nested} true`,
        `docker run --rm --device /dev/null:/dev/x ${nested} true`,
        `docker run --rm --security-opt seccomp=unconfined ${nested} true`,
        `docker run --rm --security-opt apparmor=unconfined ${nested} true`,
        `docker run --rm --security-opt systempaths=unconfined ${nested} true`,
        `docker run --rm --sysctl kernel.shm_rmid_forced=1 ${nested} true`,
        'docker volume create -o type=none -o o=bind -o device=/ rootvol',
        'docker plugin install --grant-all-permissions vieux/sshfs',
      ];
      const allowed: string[] = [];
      for (const a of attempts) {
        const r = await candidate(a);
        if (r.exitCode === 0 || !/refused by the exam seat/.test(r.stderr)) allowed.push(`${a} → exit ${r.exitCode}: ${r.stderr.trim().slice(-160)}`);
      }
      expect(allowed).toEqual([]);
      // A privileged exec into an ordinary nested container is refused too.
      await candidate(`docker run -d --name plain ${nested} sleep 300`);
      const ex = await candidate('docker exec --privileged plain true');
      expect(ex.exitCode).not.toBe(0);
      expect(ex.stderr).toMatch(/refused by the exam seat/);
    }, 240_000);

    it('no seat process holds the capabilities that reach the host (clock, modules, raw I/O, boot; ptrace outside the daemon): seen from the host', async () => {
      // The strongest options that start, strongest first.
      const tries = ['--privileged', '--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined', '--cap-add ALL --cap-drop SYS_RESOURCE', ''];
      const strongest = await candidate(tries.map((o) => `(docker rm -f strongest >/dev/null 2>&1; docker run -d --name strongest ${o} ${nested} sleep 300)`).join(' || '));
      const id = strongest.stdout.trim().split('\n').at(-1)!;
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      const nestedPids = hostPidsOf(id);
      expect(nestedPids.length, `${id} ${strongest.stderr}`).toBeGreaterThan(0);
      const dindId = (await driver.status(seat)).containers.find((c) => c.role === 'dind')!.id;
      const sidecarPid = (await docker.getContainer(dindId).inspect()).State.Pid;
      expect({ nested: forbiddenHeld(nestedPids[0]!), sidecar: forbiddenHeld(sidecarPid, SIDECAR_MAY_HOLD) }).toEqual({ nested: [], sidecar: [] });
    }, 120_000);

    it('cannot set the host clock, from a nested container or the seat daemon’s root', async () => {
      // Set to "now": harmless if it were allowed, and EPERM is what must come back.
      const set = 'date -s "@$(date +%s)" >/dev/null 2>&1 && echo clock-set || echo clock-refused';
      const before = Date.now();
      const nestedSet = await inNested(set);
      const inSidecar = await sidecarRoot(set);
      expect(nestedSet.stdout.trim(), nestedSet.stderr).toBe('clock-refused');
      expect(inSidecar.stdout.trim()).toBe('clock-refused');
      expect(Math.abs(Date.now() - before)).toBeLessThan(60_000);
    }, 60_000);

    it('cannot freeze, re-limit or signal the neighbour seat: its cgroups are out of sight and the host’s readings do not move', async () => {
      const freezer = hostCgroupFile(neighbourPid, 'freezer', 'freezer.state');
      const memory = hostCgroupFile(neighbourPid, 'memory', 'memory.limit_in_bytes');
      const limitBefore = memory ? readFileSync(memory, 'utf8').trim() : '';
      const attack = [
        `for f in $(find /sys/fs/cgroup -path '*${neighbourId}*' -name freezer.state 2>/dev/null); do echo FROZEN > "$f"; done`,
        `for f in $(find /sys/fs/cgroup -path '*${neighbourId}*' -name memory.limit_in_bytes 2>/dev/null); do echo 4000000 > "$f"; done`,
        `kill -STOP ${neighbourPid} 2>/dev/null`,
        `echo seen=$(find /sys/fs/cgroup -path '*${neighbourId}*' 2>/dev/null | wc -l)`,
      ].join('; ');
      const fromNested = await inNested(attack);
      const fromSidecar = await sidecarRoot(attack);
      expect(fromNested.stdout).toContain('seen=0');
      expect(fromSidecar.stdout).toContain('seen=0');
      // From the host: not frozen, same limit, and it still runs commands.
      if (freezer) expect(readFileSync(freezer, 'utf8').trim()).toBe('THAWED');
      if (memory) expect(readFileSync(memory, 'utf8').trim()).toBe(limitBefore);
      expect((await docker.getContainer(neighbourId).inspect()).State.Paused).toBe(false);
      expect(readFileSync(`/proc/${neighbourPid}/status`, 'utf8')).not.toMatch(/^State:\s+T/m);
      const alive = await driver.exec(neighbour, { cmd: ['echo', 'alive'], deadlineMs: 10_000 });
      expect(alive.stdout.trim()).toBe('alive');
    }, 120_000);

    it('nested containers live inside the seat daemon’s cgroup and count against its memory: seen from the host', async () => {
      const dindId = (await driver.status(seat)).containers.find((c) => c.role === 'dind')!.id;
      const run = await candidate(`docker run -d ${nested} sleep 300`);
      const id = run.stdout.trim().split('\n').at(-1)!;
      expect(id, run.stderr).toMatch(/^[0-9a-f]{64}$/);
      const pids = hostPidsOf(id);
      expect(pids.length).toBeGreaterThan(0);
      // Every nested process's cgroup, as the host names it, is below the sidecar's own.
      for (const pid of pids) expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(dindId);
      const limit = (await docker.getContainer(dindId).inspect()).HostConfig.Memory!;
      // Writing 1.5× the sidecar's limit, with no limit of its own: the kernel stops it at the sidecar's.
      const hog = await candidate(`docker run --rm ${nested} python3 -c 'b = b"x" * ${Math.round(limit * 1.5)}; print("allocated")'; echo "exit=$?"`, 120_000);
      expect(hog.stdout).not.toContain('allocated');
      expect(hog.stdout).toContain('exit=137');
    }, 180_000);

    it('sees no host block devices and no host engine: the daemon it talks to is its own', async () => {
      const devs = 'echo blocks=$(find /dev -type b 2>/dev/null | wc -l)';
      expect((await inNested(devs)).stdout).toContain('blocks=0');
      expect((await sidecarRoot(devs)).stdout).toContain('blocks=0');
      const hostEngine = (await docker.info()) as { ID: string };
      const seen = await candidate("docker info --format '{{.ID}}'");
      expect(seen.stdout.trim()).not.toBe('');
      expect(seen.stdout.trim()).not.toBe(hostEngine.ID);
      const inSidecar = await sidecarRoot("docker -H unix:///var/run/docker.sock info --format '{{.ID}}' 2>/dev/null || echo none");
      expect(inSidecar.stdout.trim()).not.toBe(hostEngine.ID);
    }, 60_000);

    it('a nested container reaches neither the host’s services nor the neighbour', async () => {
      hostListener = createServer((s) => s.end('host\n'));
      await new Promise<void>((r) => hostListener!.listen(0, '0.0.0.0', r));
      const hostPort = (hostListener.address() as AddressInfo).port;
      const gwHex = (await candidate("awk '$2==\"00000000\" {print $3}' /proc/net/route")).stdout.trim();
      const gw = [6, 4, 2, 0].map((i) => parseInt(gwHex.slice(i, i + 2), 16)).join('.');
      // The neighbour serves on 8000; the host reaches it (the control), the nested container must not.
      await driver.exec(neighbour, { cmd: ['sh', '-c', 'nohup python3 -m http.server 8000 >/dev/null 2>&1 &'] });
      const ep = await driver.endpoint(neighbour, 8000);
      let served = false;
      for (let i = 0; i < 50 && !served; i++) {
        served = await fetch(`http://${ep.host}:${ep.port}/`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
        if (!served) await new Promise((r) => setTimeout(r, 200));
      }
      expect(served).toBe(true);
      const probe = (host: string, port: number): string =>
        `python3 -c 'import socket\ntry:\n    socket.create_connection(("${host}", ${port}), timeout=3); print("connected")\nexcept Exception as e:\n    print("blocked", type(e).__name__)'`;
      expect((await inNested(probe(gw, hostPort))).stdout).toMatch(/^blocked/);
      expect((await inNested(probe(ep.host, ep.port))).stdout).toMatch(/^blocked/);
    }, 60_000);
  });
}
