import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasEngine } from '../helpers/docker-env.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan, type SeatRef } from '../../runner/sandbox/driver.js';
import { bridgeName } from '../../runner/sandbox/host-firewall.js';
import { LABEL } from '../../runner/sandbox/labels.js';
import { seatImage } from './seat-image.js';

const run = promisify(execFile);

/** The link-local IPv6 address of `ifname` in the network namespace of host PID `pid`, if any. */
function linkLocal(pid: number, ifname: string): string | undefined {
  // /proc/PID/net is that process's namespace: address, index, prefix, scope (20 = link), flags, name.
  for (const line of readFileSync(`/proc/${pid}/net/if_inet6`, 'utf8').trim().split('\n')) {
    const f = line.trim().split(/\s+/);
    // Once duplicate address detection is over (no "tentative" flag, 0x40), the address is usable.
    if (f[5] === ifname && f[3] === '20' && (parseInt(f[4]!, 16) & 0x40) === 0) return f[0]!.match(/.{4}/g)!.join(':');
  }
  return undefined;
}

/**
 * Seats have no IPv6, but a seat process that turned it back on (what a nested container with
 * NET_ADMIN on the seat's interface once did) must still reach neither the host nor another seat:
 * the bridge's host side has IPv6 off and ip6tables mirrors the IPv4 rules. The "turned on" step
 * is done from the host with nsenter, as the strongest candidate could.
 */
describe.skipIf(!hasEngine)('docker: seat networks (IPv6, one address per seat)', () => {
  const session = `ct-v6-${randomBytes(3).toString('hex')}`;
  const a: SeatRef = { session, seat: 'a' };
  const b: SeatRef = { session, seat: 'b' };
  const driver = new DockerDriver();
  const pids: Record<string, number> = {};
  const addr: Record<string, { ip: string; mac: string }> = {};

  beforeAll(async () => {
    const image = await seatImage();
    const plan = (seat: string) => parseSeatPlan({ session, seat, task: 'contract', workspace: { image }, resources: { cpus: 0.5, memoryMiB: 256, pids: 64 } });
    await Promise.all([driver.provision(plan('a')), driver.provision(plan('b'))]);
    for (const ref of [a, b]) {
      pids[ref.seat] = (await driver.processes(ref))[0]!.hostPid;
      const [c] = await new Docker().listContainers({ filters: { label: [`${LABEL.session}=${session}`, `${LABEL.seat}=${ref.seat}`, `${LABEL.role}=workspace`] } });
      const net = Object.values(c!.NetworkSettings.Networks)[0]!;
      addr[ref.seat] = { ip: net.IPAddress, mac: net.MacAddress };
    }
  }, 120_000);

  afterAll(async () => {
    await driver.sweep({ session }).catch(() => undefined);
  }, 60_000);

  it('no seat has an IPv6 address, and the bridge has none on the host side', () => {
    for (const seat of ['a', 'b']) expect(linkLocal(pids[seat]!, 'eth0')).toBeUndefined();
    const bridge = bridgeName(session);
    expect(readFileSync(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, 'utf8').trim()).toBe('1');
    expect(readFileSync('/proc/net/if_inet6', 'utf8')).not.toMatch(new RegExp(`\\s${bridge}\\n`));
  });

  it('seats that turned IPv6 on still cannot reach each other over it; each reaches itself (the control)', async () => {
    for (const seat of ['a', 'b']) {
      await run('nsenter', ['-t', String(pids[seat]), '-n', 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0', 'net.ipv6.conf.eth0.disable_ipv6=0']);
    }
    let addrB: string | undefined;
    for (let i = 0; i < 50 && !(addrB && linkLocal(pids.a!, 'eth0')); i++) {
      await new Promise((r) => setTimeout(r, 200));
      addrB = linkLocal(pids.b!, 'eth0');
    }
    expect(addrB, 'seat b has a link-local address now').toBeDefined();
    await driver.exec(b, { cmd: ['sh', '-c', 'nohup python3 -m http.server --bind :: 8000 >/dev/null 2>&1 &'] });
    const probe = (host: string): string[] => ['python3', '-c',
      `import socket, time\nfor i in range(30):\n    try:\n        socket.create_connection((${JSON.stringify(host)}, 8000), timeout=2); print("connected"); break\n    except ConnectionRefusedError:\n        time.sleep(0.2)\n    except TimeoutError as e:\n        print("blocked", type(e).__name__); break`];
    // The control first: b's server answers on b's own IPv6 address (DAD may still be running).
    const self = await driver.exec(b, { cmd: probe(`${addrB}%eth0`), deadlineMs: 20_000 });
    expect(self.stdout.trim()).toBe('connected');
    const ab = await driver.exec(a, { cmd: probe(`${addrB}%eth0`), deadlineMs: 20_000 });
    // Dropped, not refused or unroutable: the packets left a and went nowhere.
    expect(ab.stdout.trim()).toBe('blocked TimeoutError');
  }, 60_000);

  it('a seat that takes another seat’s address and announces it over ARP is not believed: the host’s probes still reach the real seat', async () => {
    const { ip: ipB, mac: macB } = addr.b!;
    const { mac: macA } = addr.a!;
    await driver.exec(b, { cmd: ['sh', '-c', 'mkdir -p /tmp/b && cd /tmp/b && echo seat-b > index.html && nohup python3 -m http.server 8001 >/dev/null 2>&1 &'] });
    // Seat b answers before the attack starts (its server starts in the background).
    for (let i = 0; i < 50; i++) {
      const up = await fetch(`http://${ipB}:8001/`, { signal: AbortSignal.timeout(1000) }).then((r) => r.text(), () => '');
      if (up.trim() === 'seat-b') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // The strongest candidate, from the host: seat a's interface also takes b's address, serves on
    // it, and tells the bridge over and over (gratuitous ARP replies) that b's address is at a's MAC.
    await run('nsenter', ['-t', String(pids.a), '-n', 'ip', 'addr', 'add', `${ipB}/32`, 'dev', 'eth0']);
    await driver.exec(a, { cmd: ['sh', '-c', `mkdir -p /tmp/a && cd /tmp/a && echo seat-a > index.html && nohup python3 -m http.server --bind ${ipB} 8001 >/dev/null 2>&1 &`] });
    const garp = [
      'import socket, time',
      `mac = bytes.fromhex(${JSON.stringify(macA.replaceAll(':', ''))}); ip = socket.inet_aton(${JSON.stringify(ipB)})`,
      "frame = b'\\xff' * 6 + mac + b'\\x08\\x06' + b'\\x00\\x01\\x08\\x00\\x06\\x04\\x00\\x02' + mac + ip + b'\\xff' * 6 + ip",
      "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0))",
      'for i in range(40):\n    s.send(frame); time.sleep(0.1)',
    ].join('\n');
    const announcing = run('nsenter', ['-t', String(pids.a), '-n', '-m', 'python3', '-c', garp]);
    await run('ip', ['neigh', 'flush', 'to', ipB]).catch(() => undefined);
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) {
      answers.push((await fetch(`http://${ipB}:8001/`, { signal: AbortSignal.timeout(3000) }).then((r) => r.text(), (e: unknown) => `error ${String(e)}`)).trim());
      await new Promise((r) => setTimeout(r, 300));
    }
    await announcing;
    expect(answers).toEqual(Array(5).fill('seat-b'));
    const neigh = (await run('ip', ['neigh', 'show', 'to', ipB])).stdout;
    expect(neigh.toLowerCase()).toContain(macB.toLowerCase());
  }, 60_000);
});
