/**
 * The host's procfs text the process probe judges socket ownership on, parsed: the TCP tables
 * (`/proc/<pid>/net/tcp`, `tcp6`, which show that process's network namespace), `socket:[inode]`
 * fd links, command lines, and the ownership decision itself. Pure: the probe reads the files.
 */
import { endianness } from 'node:os';

export class ProcNetParseError extends Error {
  override readonly name = 'ProcNetParseError';
}

/** Kernel TCP states (include/net/tcp_states.h), as the `st` column writes them in hex. */
const TCP_STATES: Record<number, string> = {
  0x01: 'ESTABLISHED',
  0x02: 'SYN_SENT',
  0x03: 'SYN_RECV',
  0x04: 'FIN_WAIT1',
  0x05: 'FIN_WAIT2',
  0x06: 'TIME_WAIT',
  0x07: 'CLOSE',
  0x08: 'CLOSE_WAIT',
  0x09: 'LAST_ACK',
  0x0a: 'LISTEN',
  0x0b: 'CLOSING',
  0x0c: 'NEW_SYN_RECV',
};

export interface TcpAddress {
  address: string;
  port: number;
}

export interface TcpSocket {
  family: 4 | 6;
  local: TcpAddress;
  remote: TcpAddress;
  /** Name from TCP_STATES, or `0xNN` for a state this table does not know. */
  state: string;
  uid: number;
  /** Socket inode: what `/proc/<pid>/fd/*` links to as `socket:[inode]`; 0 for sockets no fd holds (TIME_WAIT). */
  inode: number;
}

const ROW = /^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\d+\s+(\d+)/;

/**
 * Rows of `/proc/<pid>/net/tcp` (family 4) or `tcp6` (family 6). The kernel prints each address
 * as 32-bit words in the host's byte order, so the text depends on the machine that wrote it:
 * `byteOrder` is that machine's (this one's by default; captures from elsewhere say theirs).
 */
export function parseProcNetTcp(text: string, family: 4 | 6, byteOrder: 'LE' | 'BE' = endianness()): TcpSocket[] {
  const lines = text.split('\n');
  if (!/^\s*sl\s+local_address\s/.test(lines[0] ?? '')) {
    throw new ProcNetParseError(`not a /proc/net/tcp${family === 6 ? '6' : ''} table: header is ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  }
  const hexLen = family === 4 ? 8 : 32;
  const out: TcpSocket[] = [];
  for (const [i, line] of lines.slice(1).entries()) {
    if (line.trim() === '') continue;
    const m = ROW.exec(line);
    if (!m || m[1]!.length !== hexLen || m[3]!.length !== hexLen) {
      throw new ProcNetParseError(`line ${i + 2} of a tcp${family === 6 ? '6' : ''} table does not parse: ${JSON.stringify(line.slice(0, 120))}`);
    }
    const st = parseInt(m[5]!, 16);
    out.push({
      family,
      local: { address: formatAddress(m[1]!, family, byteOrder), port: parseInt(m[2]!, 16) },
      remote: { address: formatAddress(m[3]!, family, byteOrder), port: parseInt(m[4]!, 16) },
      state: TCP_STATES[st] ?? `0x${m[5]!.toUpperCase()}`,
      uid: Number(m[6]),
      inode: Number(m[7]),
    });
  }
  return out;
}

/** Listening sockets on `port`, both families. */
export function listeningOn(sockets: readonly TcpSocket[], port: number): TcpSocket[] {
  return sockets.filter((s) => s.state === 'LISTEN' && s.local.port === port && s.inode > 0);
}

function addressBytes(hex: string, byteOrder: 'LE' | 'BE'): number[] {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((o) => parseInt(hex.slice(w + o, w + o + 2), 16));
    bytes.push(...(byteOrder === 'LE' ? word.reverse() : word));
  }
  return bytes;
}

function formatAddress(hex: string, family: 4 | 6, byteOrder: 'LE' | 'BE'): string {
  const b = addressBytes(hex, byteOrder);
  if (family === 4) return b.join('.');
  // IPv4-mapped (a dual-stack socket's IPv4 peer): ::ffff:a.b.c.d, as RFC 5952 writes it.
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${b.slice(12).join('.')}`;
  const groups = [0, 1, 2, 3, 4, 5, 6, 7].map((g) => (b[2 * g]! << 8) | b[2 * g + 1]!);
  // RFC 5952: the longest run of two or more zero groups becomes "::".
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len && j - i >= 2) best = { at: i, len: j - i };
    i = j;
  }
  const hexOf = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (best.at < 0) return hexOf(groups);
  return `${hexOf(groups.slice(0, best.at))}::${hexOf(groups.slice(best.at + best.len))}`;
}

/** The inode of a `/proc/<pid>/fd/N` link to a socket (`socket:[123]`), else null. */
export function socketInode(link: string): number | null {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : null;
}

/** `/proc/<pid>/cmdline` (NUL-separated argv) as ps's args column writes it. */
export function cmdlineText(raw: string): string {
  return raw.replace(/\0+$/, '').split('\0').join(' ');
}

/**
 * Whether the live command line of a PID is the one the process list gave for it: the engine's
 * host may not be this machine (then the same number names another process), and PIDs are reused.
 * ps shows control characters as `?` and may clip long lines, so the listed text, thus normalised,
 * must be a prefix of the live one.
 */
export function sameCommand(listed: string, live: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what ps rewrites
  const norm = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, '?').replace(/\s+/g, ' ').trim();
  const l = norm(listed);
  return l !== '' && norm(live).startsWith(l);
}

export interface ProcRow {
  hostPid: number;
  ppid: number;
}

/** `roots` and every process below them in `rows` (by ppid). */
export function processTree(rows: readonly ProcRow[], roots: Iterable<number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const r of rows) children.set(r.ppid, [...(children.get(r.ppid) ?? []), r.hostPid]);
  const tree = new Set(roots);
  const queue = [...tree];
  // Each PID enters the queue once, so this ends even on a cycle in bad rows.
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      if (!tree.has(c)) {
        tree.add(c);
        queue.push(c);
      }
    }
  }
  return tree;
}

export interface OwnedSocket {
  family: 4 | 6;
  address: string;
  port: number;
  inode: number;
  /** PIDs whose fd table holds the socket (the matched tree's and anyone else's). */
  holders: number[];
  /** Held by at least one process of the matched tree. */
  owned: boolean;
}

export type Ownership =
  | { verdict: 'owned'; sockets: OwnedSocket[] }
  | { verdict: 'nothing-listening'; sockets: [] }
  /** Some listening socket on the port is held by no process of the matched tree (perhaps by none visible). */
  | { verdict: 'held-by-others'; sockets: OwnedSocket[] };

/**
 * Does the matched process own the port? Rule: at least one socket listens on `port` in its network
 * namespace, and every such socket is held by the matched process or a process it started (its
 * descendants: a pre-forking server's workers inherit the socket, a launcher's child may bind it).
 * Threads need no separate look: they share their process's fd table, which `/proc/<pid>/fd` shows.
 * A socket held only by an unrelated process (a sibling, a parent, another program started next
 * to it) means another program answers on that port, at least for some connections: not owned.
 */
export function judgeOwnership(opts: {
  port: number;
  /** LISTEN sockets on the port from the matched processes' network namespaces. */
  listening: readonly TcpSocket[];
  /** Socket inode → PIDs holding it, from the fd tables read. */
  holders: ReadonlyMap<number, readonly number[]>;
  /** The matched processes and their descendants. */
  tree: ReadonlySet<number>;
}): Ownership {
  const byInode = new Map<number, TcpSocket>();
  for (const s of opts.listening) if (s.state === 'LISTEN' && s.local.port === opts.port && s.inode > 0) byInode.set(s.inode, s);
  if (byInode.size === 0) return { verdict: 'nothing-listening', sockets: [] };
  const sockets = [...byInode.values()].map((s): OwnedSocket => {
    const holders = [...(opts.holders.get(s.inode) ?? [])].sort((a, b) => a - b);
    return { family: s.family, address: s.local.address, port: s.local.port, inode: s.inode, holders, owned: holders.some((h) => opts.tree.has(h)) };
  });
  return sockets.every((s) => s.owned) ? { verdict: 'owned', sockets } : { verdict: 'held-by-others', sockets };
}
