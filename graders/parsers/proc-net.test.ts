import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  cmdlineText,
  judgeOwnership,
  listeningOn,
  parseProcNetTcp,
  ProcNetParseError,
  processTree,
  sameCommand,
  socketInode,
} from './proc-net.js';

// Real captures from seat containers (see __fixtures__/proc-net/README.md), x86-64: little-endian.
const fixture = (name: string): string => readFileSync(new URL(`./__fixtures__/proc-net/${name}`, import.meta.url), 'utf8');
const v4tcp = parseProcNetTcp(fixture('python-v4-tcp.txt'), 4, 'LE');
const v4tcp6 = parseProcNetTcp(fixture('python-v4-tcp6.txt'), 6, 'LE');
const v6tcp6 = parseProcNetTcp(fixture('python-v6-tcp6.txt'), 6, 'LE');

/** `pid ppid link…` lines → process rows and inode → holders. */
function fdCapture(text: string): { rows: { hostPid: number; ppid: number }[]; holders: Map<number, number[]> } {
  const rows: { hostPid: number; ppid: number }[] = [];
  const holders = new Map<number, number[]>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [pid, ppid, ...links] = line.split(' ');
    rows.push({ hostPid: Number(pid), ppid: Number(ppid) });
    for (const l of links) {
      const inode = socketInode(l);
      if (inode !== null) holders.set(inode, [...(holders.get(inode) ?? []), Number(pid)]);
    }
  }
  return { rows, holders };
}
const fds = fdCapture(fixture('python-v4-fds.txt'));
const SHELL = 16885;
const SERVER_8080 = 16932;
const SERVER_8081 = 16933;
const CLIENT = 16991;
const EXECED_8083 = 17140;

describe('parseProcNetTcp on captured tables', () => {
  it('reads listeners and connections of an IPv4 table with addresses, ports, states, uids and inodes', () => {
    expect(v4tcp).toEqual([
      { family: 4, local: { address: '127.0.0.1', port: 8083 }, remote: { address: '0.0.0.0', port: 0 }, state: 'LISTEN', uid: 1000, inode: 1087534 },
      { family: 4, local: { address: '0.0.0.0', port: 8080 }, remote: { address: '0.0.0.0', port: 0 }, state: 'LISTEN', uid: 1000, inode: 1087086 },
      { family: 4, local: { address: '127.0.0.1', port: 8080 }, remote: { address: '127.0.0.1', port: 39078 }, state: 'ESTABLISHED', uid: 1000, inode: 1087113 },
      { family: 4, local: { address: '127.0.0.1', port: 39078 }, remote: { address: '127.0.0.1', port: 8080 }, state: 'ESTABLISHED', uid: 1000, inode: 1086317 },
    ]);
  });

  it('reads IPv6 tables: the wildcard, loopback ::1 and an IPv4-mapped peer', () => {
    expect(v4tcp6).toEqual([
      { family: 6, local: { address: '::', port: 8081 }, remote: { address: '::', port: 0 }, state: 'LISTEN', uid: 1000, inode: 1086292 },
    ]);
    expect(v6tcp6.map((s) => [s.local.address, s.local.port, s.remote.address, s.remote.port, s.state, s.inode])).toEqual([
      ['::1', 8082, '::', 0, 'LISTEN', 1088901],
      ['::', 8081, '::', 0, 'LISTEN', 1088011],
      ['::ffff:127.0.0.1', 8081, '::ffff:127.0.0.1', 50270, 'ESTABLISHED', 1088127],
    ]);
    // The IPv4 side of that connection is in the same namespace's tcp table.
    const v6tcp = parseProcNetTcp(fixture('python-v6-tcp.txt'), 4, 'LE');
    expect(v6tcp).toEqual([
      { family: 4, local: { address: '127.0.0.1', port: 50270 }, remote: { address: '127.0.0.1', port: 8081 }, state: 'ESTABLISHED', uid: 1000, inode: 1089030 },
    ]);
  });

  it('the byte order is that of the machine that wrote the table', () => {
    const be = parseProcNetTcp(fixture('python-v4-tcp.txt'), 4, 'BE');
    expect(be[0]!.local).toEqual({ address: '1.0.0.127', port: 8083 });
    const be6 = parseProcNetTcp(fixture('python-v6-tcp6.txt'), 6, 'BE');
    expect(be6[0]!.local.address).toBe('::100:0');
  });

  it('an empty table is no sockets; text that is not a table, or a torn row, throws', () => {
    const header = fixture('python-v4-tcp.txt').split('\n')[0]!;
    expect(parseProcNetTcp(`${header}\n`, 4, 'LE')).toEqual([]);
    expect(() => parseProcNetTcp('Inter-|   Receive\n', 4, 'LE')).toThrow(ProcNetParseError);
    const torn = fixture('python-v4-tcp.txt').split('\n').slice(0, 2).join('\n').slice(0, -60);
    expect(() => parseProcNetTcp(torn, 4, 'LE')).toThrow(/line 2/);
    // An IPv6 row given as IPv4 has the wrong address width.
    expect(() => parseProcNetTcp(fixture('python-v4-tcp6.txt'), 4, 'LE')).toThrow(ProcNetParseError);
  });

  it('listeningOn keeps LISTEN sockets of one port, both families', () => {
    const all = [...v4tcp, ...v4tcp6];
    expect(listeningOn(all, 8080).map((s) => s.inode)).toEqual([1087086]);
    expect(listeningOn(all, 8081).map((s) => s.inode)).toEqual([1086292]);
    expect(listeningOn(all, 39078)).toEqual([]); // a client's ephemeral port is not a listener
  });
});

describe('fd links, command lines, process trees', () => {
  it('socketInode reads socket links only', () => {
    expect(socketInode('socket:[1087086]')).toBe(1087086);
    expect(socketInode('pipe:[1086903]')).toBeNull();
    expect(socketInode('/dev/null')).toBeNull();
    expect(socketInode('/tmp/socket:[1]')).toBeNull();
  });

  it('cmdline joins argv as ps does; sameCommand accepts a clipped or control-char listing, not another command', () => {
    const live = cmdlineText('python3\0-m\0http.server\x008080\0--bind\x000.0.0.0\0');
    expect(live).toBe('python3 -m http.server 8080 --bind 0.0.0.0');
    const listed = fixture('python-v4-ps.txt').split('\n').find((l) => l.startsWith(String(SERVER_8080)))!.replace(/^\d+\s+\d+\s+/, '');
    expect(sameCommand(listed, live)).toBe(true);
    expect(sameCommand('python3 -m http.server 80', live)).toBe(true); // ps clipped the line
    expect(sameCommand('llama-server --port 8080', live)).toBe(false);
    expect(sameCommand('', live)).toBe(false);
    expect(sameCommand('x ?y', cmdlineText('x\0\ny\0'))).toBe(true);
  });

  it('processTree takes the roots and every descendant, and ends on bad rows with a cycle', () => {
    expect([...processTree(fds.rows, [SHELL])].sort()).toEqual([SHELL, SERVER_8080, SERVER_8081, CLIENT, 16992].sort());
    expect([...processTree(fds.rows, [SERVER_8080])]).toEqual([SERVER_8080]);
    expect([...processTree([{ hostPid: 1, ppid: 2 }, { hostPid: 2, ppid: 1 }], [1])].sort()).toEqual([1, 2]);
  });
});

describe('judgeOwnership on the captured seat', () => {
  const listening = [...v4tcp, ...v4tcp6];
  const judge = (port: number, roots: number[]) =>
    judgeOwnership({ port, listening: listeningOn(listening, port), holders: fds.holders, tree: processTree(fds.rows, roots) });

  it('the server that holds the listening socket owns its port', () => {
    expect(judge(8080, [SERVER_8080])).toEqual({
      verdict: 'owned',
      sockets: [{ family: 4, address: '0.0.0.0', port: 8080, inode: 1087086, holders: [SERVER_8080], owned: true }],
    });
  });

  it('a process it started holding the socket counts: the launcher shell owns its children’s ports', () => {
    expect(judge(8081, [SHELL]).verdict).toBe('owned');
  });

  it('another program next to the matched one holding the port is not ownership; the evidence names the holder', () => {
    const o = judge(8080, [SERVER_8081]);
    expect(o.verdict).toBe('held-by-others');
    expect(o.sockets).toEqual([{ family: 4, address: '0.0.0.0', port: 8080, inode: 1087086, holders: [SERVER_8080], owned: false }]);
    // Started by `docker exec`, outside the shell's tree: the shell does not own 8083.
    expect(judge(8083, [SHELL]).verdict).toBe('held-by-others');
    expect(judge(8083, [EXECED_8083]).verdict).toBe('owned');
  });

  it('a client connected to the port does not make the port its own', () => {
    // CLIENT holds an established socket to 8080, not the listener.
    expect(judge(8080, [CLIENT]).verdict).toBe('held-by-others');
  });

  it('nothing listening on the port', () => {
    expect(judge(9090, [SERVER_8080])).toEqual({ verdict: 'nothing-listening', sockets: [] });
    expect(judge(39078, [CLIENT]).verdict).toBe('nothing-listening');
  });

  it('every listener on the port must be the tree’s: a second one held by an outsider (or by nobody visible) spoils it', () => {
    const second = { ...v4tcp6[0]!, local: { address: '::', port: 8080 }, inode: 1086292 };
    const both = judgeOwnership({ port: 8080, listening: [...listening, second], holders: fds.holders, tree: processTree(fds.rows, [SERVER_8080]) });
    expect(both.verdict).toBe('held-by-others');
    expect(both.sockets.map((s) => [s.inode, s.owned])).toEqual([[1087086, true], [1086292, false]]);
    const orphan = judgeOwnership({ port: 8080, listening, holders: new Map(), tree: new Set([SERVER_8080]) });
    expect(orphan).toMatchObject({ verdict: 'held-by-others', sockets: [{ holders: [], owned: false }] });
  });
});
