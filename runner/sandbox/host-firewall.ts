import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Docker gives an `internal` bridge an address on the host, and nothing stops a container from
 * connecting to host services through it (seen: a listener on 0.0.0.0 answered a seat). So each
 * session bridge gets a name we choose and one INPUT rule: nothing a seat starts reaches the host;
 * replies to connections the host opened (graders' probes) still pass.
 */
export const BRIDGE_PREFIX = 'dlseat';

export function bridgeName(session: string): string {
  // Linux interface names are at most 15 characters.
  return BRIDGE_PREFIX + createHash('sha256').update(session).digest('hex').slice(0, 9);
}

function ruleArgs(bridge: string): string[] {
  return ['INPUT', '-i', bridge, '-m', 'conntrack', '!', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'DROP'];
}

/**
 * Seats have no IPv6 (the engine turns it off inside them), but the host side of a bridge keeps a
 * link-local address, and icc and the INPUT rule above are IPv4 only: a seat process that turned
 * IPv6 back on would reach the host and the other seats past them. So the bridge's IPv6 is off
 * and, in case something turns it on again, IPv6 mirrors the IPv4 rules: nothing a seat starts
 * reaches the host, and nothing crosses from one seat to another.
 */
function rules6(bridge: string): string[][] {
  return [ruleArgs(bridge), ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'DROP']];
}

async function iptables(args: string[], cmd: 'iptables' | 'ip6tables' = 'iptables'): Promise<string> {
  const { stdout } = await run(cmd, ['-w', '5', ...args], { timeout: 15_000 });
  return stdout;
}

async function ensureRule(args: string[], cmd: 'iptables' | 'ip6tables' = 'iptables'): Promise<void> {
  try {
    await iptables(['-C', ...args], cmd);
  } catch {
    await iptables(['-I', ...args], cmd);
  }
}

export async function closeHostToSeat(bridge: string): Promise<void> {
  await ensureRule(ruleArgs(bridge));
  // Gone with the bridge; a bridge that is not there yet has nothing to turn off.
  await writeFile(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '1').catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  if (await ipv6Present()) for (const r of rules6(bridge)) await ensureRule(r, 'ip6tables');
}

/** A kernel without IPv6 has nothing to mirror (and no ip6tables tables to write to). */
async function ipv6Present(): Promise<boolean> {
  return access('/proc/sys/net/ipv6').then(() => true, () => false);
}

/** Remove the rules of one bridge, or of every seat bridge whose interface is gone when none is named. */
export async function removeHostRules(bridge?: string): Promise<string[]> {
  const removed = new Set<string>();
  const named = async (cmd: 'iptables' | 'ip6tables', chain: string): Promise<string[]> => {
    const listed = await iptables(['-S', chain], cmd);
    const out: string[] = [];
    for (const line of listed.split('\n')) {
      const name = new RegExp(`-i (${BRIDGE_PREFIX}[0-9a-f]{9}) `).exec(line)?.[1];
      if (!name || (bridge ? name !== bridge : await interfaceExists(name))) continue;
      out.push(name);
    }
    return out;
  };
  for (const name of await named('iptables', 'INPUT')) {
    await iptables(['-D', ...ruleArgs(name)]).catch(() => undefined);
    removed.add(name);
  }
  for (const chain of (await ipv6Present()) ? ['INPUT', 'FORWARD'] : []) {
    for (const name of await named('ip6tables', chain)) {
      for (const r of rules6(name).filter((x) => x[0] === chain)) await iptables(['-D', ...r], 'ip6tables').catch(() => undefined);
      removed.add(name);
    }
  }
  return [...removed];
}

async function interfaceExists(name: string): Promise<boolean> {
  try {
    await access(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Inter-container traffic is dropped on session networks (icc off). An allow-listed in-room
 * service (e.g. a model mirror) is opened to one seat by a pair of DOCKER-USER rules, which
 * Docker evaluates before its own icc DROP; the comment names the seat so destroy finds them.
 */
function allowRules(bridge: string, seatIp: string, targetIp: string, tag: string): string[][] {
  const comment = ['-m', 'comment', '--comment', `deploylab-allow ${tag}`];
  return [
    ['DOCKER-USER', '-i', bridge, '-o', bridge, '-s', seatIp, '-d', targetIp, ...comment, '-j', 'ACCEPT'],
    ['DOCKER-USER', '-i', bridge, '-o', bridge, '-s', targetIp, '-d', seatIp, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', ...comment, '-j', 'ACCEPT'],
  ];
}

export async function allowSeatToService(bridge: string, seatIp: string, targetIp: string, tag: string): Promise<void> {
  for (const rule of allowRules(bridge, seatIp, targetIp, tag)) {
    try {
      await iptables(['-C', ...rule]);
    } catch {
      await iptables(['-I', ...rule]);
    }
  }
}

/** Remove the allow rules of the seats tagged, or of every seat whose bridge is gone. */
export async function removeAllowRules(tags?: ReadonlySet<string>): Promise<number> {
  let listed: string;
  try {
    listed = await iptables(['-S', 'DOCKER-USER']);
  } catch {
    return 0; // no DOCKER-USER chain: Docker's iptables integration is off, nothing was added
  }
  let removed = 0;
  for (const line of listed.split('\n')) {
    const m = /^-A (DOCKER-USER .*--comment "?deploylab-allow ([^"\s]+)"? .*)$/.exec(line);
    if (!m) continue;
    const bridge = / -i (\S+) /.exec(line)?.[1] ?? '';
    if (tags ? !tags.has(m[2]!) : await interfaceExists(bridge)) continue;
    // `-S` prints the rule as it would be appended; the same words delete it.
    await iptables(['-D', ...splitRule(m[1]!)]).catch(() => undefined);
    removed++;
  }
  return removed;
}

/** Split an `iptables -S` rule into arguments (quotes only appear around comments). */
function splitRule(rule: string): string[] {
  return [...rule.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/**
 * A seat answers only for its own address: frames entering the bridge from the seat's port (its
 * veth) must carry the seat's MAC, and its ARP and IPv4 the seat's address, or they are dropped.
 * Without it a seat process holding NET_ADMIN on its interface (the seat daemon has it) could
 * claim another seat's address and answer the graders' probes meant for that seat. One ebtables
 * chain per seat, jumped to from INPUT (towards the host) and FORWARD (towards other seats).
 */
export const GUARD_CHAIN_PREFIX = 'DLA-';

export function guardChain(tag: string): string {
  // ebtables chain names are at most 31 characters.
  return GUARD_CHAIN_PREFIX + createHash('sha256').update(tag).digest('hex').slice(0, 16);
}

let ebtablesQueue: Promise<unknown> = Promise.resolve();

/**
 * ebtables has no wait-for-lock option like iptables' -w: calls from this process go one at a
 * time, and one that lost a race with another process's change is tried again.
 */
/** One ebtables change at a time, in this process; a busy table is tried again a few times. */
function queuedEbtables(call: () => Promise<string>): Promise<string> {
  const retried = async (): Promise<string> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (e) {
        const busy = /resource busy|try again|temporarily unavailable/i.test(String((e as { stderr?: string }).stderr ?? e));
        if (!busy || attempt >= 5) throw e;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  };
  const next = ebtablesQueue.then(retried, retried);
  ebtablesQueue = next.catch(() => undefined);
  return next;
}

async function ebtables(args: string[]): Promise<string> {
  return queuedEbtables(async () => (await run('ebtables', args, { timeout: 15_000 })).stdout);
}

/**
 * Many changes to the filter table in one `ebtables-restore --noflush`: one process and one
 * transaction, where one command each made guarding and releasing a room's seats most of its
 * reset (80 seats: about 12 processes a seat). Lines in the restore format (`:CHAIN POLICY`,
 * `-A …`, `-D …`, `-F`, `-X`). Throws when the tool is missing or refuses the batch, which then
 * changed nothing; the caller falls back to one command at a time.
 */
function ebtablesRestore(lines: readonly string[]): Promise<string> {
  const text = ['*filter', ...lines, 'COMMIT', ''].join('\n');
  return queuedEbtables(
    () =>
      new Promise<string>((resolve, reject) => {
        const child = execFile('ebtables-restore', ['--noflush'], { timeout: 15_000 }, (err, stdout, stderr) => {
          if (err) reject(Object.assign(err, { stderr }));
          else resolve(stdout);
        });
        child.stdin?.end(text);
      }),
  );
}

export async function guardSeatAddress(veth: string, ip: string, mac: string, tag: string): Promise<void> {
  const chain = guardChain(tag);
  await removeAddressGuards(new Set([tag]));
  const rules = [
    ['-s', '!', mac, '-j', 'DROP'],
    ['-p', 'ARP', '--arp-mac-src', '!', mac, '-j', 'DROP'],
    ['-p', 'ARP', '--arp-ip-src', '!', ip, '-j', 'DROP'],
    ['-p', 'IPv4', '--ip-src', '!', ip, '-j', 'DROP'],
  ].map((r) => ['-A', chain, ...r]);
  const jumps = ['INPUT', 'FORWARD'].map((from) => ['-A', from, '-i', veth, '-j', chain]);
  try {
    await ebtablesRestore([`:${chain} RETURN`, ...[...rules, ...jumps].map((c) => c.join(' '))]);
  } catch {
    await ebtables(['-N', chain, '-P', 'RETURN']);
    for (const c of [...rules, ...jumps]) await ebtables(c);
  }
}

/** Remove the guards of the seats tagged, or of every seat whose veth is gone when none is named. */
export async function removeAddressGuards(tags?: ReadonlySet<string>): Promise<number> {
  let listed: string;
  try {
    listed = await ebtables(['-L', '--Lx']);
  } catch {
    return 0; // no ebtables here: nothing was added
  }
  const wanted = tags ? new Set([...tags].map(guardChain)) : undefined;
  // `--Lx` prints each chain's rules under a "Bridge chain: NAME, …" header, without the chain name.
  const jumps: { from: string; veth: string; chain: string }[] = [];
  const chains = new Set<string>();
  let current = '';
  for (const line of listed.split('\n')) {
    const head = /^Bridge chain: ([^,]+),/.exec(line);
    if (head) {
      current = head[1]!;
      if (current.startsWith(GUARD_CHAIN_PREFIX)) chains.add(current);
      continue;
    }
    const jump = new RegExp(`^-i (\\S+) -j (${GUARD_CHAIN_PREFIX}[0-9a-f]{16})\\s*$`).exec(line.trim());
    if (jump) jumps.push({ from: current, veth: jump[1]!, chain: jump[2]! });
  }
  const doomed = new Set<string>();
  for (const chain of chains) {
    if (wanted) {
      if (wanted.has(chain)) doomed.add(chain);
      continue;
    }
    const from = jumps.filter((j) => j.chain === chain);
    const live = await Promise.all(from.map((j) => interfaceExists(j.veth)));
    if (!live.some(Boolean)) doomed.add(chain);
  }
  const commands = [
    ...jumps.filter((x) => doomed.has(x.chain)).map((j) => ['-D', j.from, '-i', j.veth, '-j', j.chain]),
    ...[...doomed].flatMap((chain) => [['-F', chain], ['-X', chain]]),
  ];
  if (commands.length === 0) return 0;
  try {
    await ebtablesRestore(commands.map((c) => c.join(' ')));
  } catch {
    // One by one, each allowed to fail: something else may have removed part of it meanwhile.
    for (const c of commands) await ebtables(c).catch(() => undefined);
  }
  return doomed.size;
}

/** The host end of a container's eth0: the interface whose index is the container side's iflink. */
export async function hostVethOf(containerPid: number): Promise<string | undefined> {
  // The container's own sysfs, mounted in its network namespace, seen through its root.
  const iflink = (await readFile(`/proc/${containerPid}/root/sys/class/net/eth0/iflink`, 'utf8').catch(() => '')).trim();
  if (!iflink) return undefined;
  for (const name of await readdir('/sys/class/net')) {
    if (!name.startsWith('veth')) continue;
    const index = (await readFile(`/sys/class/net/${name}/ifindex`, 'utf8').catch(() => '')).trim();
    if (index === iflink) return name;
  }
  return undefined;
}
