/**
 * A SeatHandle for probe unit tests: files come from a real temporary directory, endpoints are
 * real servers on 127.0.0.1, processes are given. It stands in for the seat boundary only; the
 * probe logic under test runs unchanged. Integration tests use the Docker driver's adapter.
 */
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeploylabError } from '../../runner/core/errors.js';
import type { Endpoint, SeatFile, SeatHandle, SeatProcess } from '../probe.js';

export interface TempSeat extends SeatHandle {
  /** Host path of the seat's "/" (files a probe reads at /x are at root/x). */
  root: string;
  /** Make checkPath fail, as when the engine or the seat network is down. */
  breakPath(broken: boolean): void;
  /** Ports endpoint() maps: seat port → loopback port of a real server. */
  ports: Map<number, number>;
  processes: SeatProcess[];
  cleanup(): Promise<void>;
}

export async function tempSeat(id = 'seat-01'): Promise<TempSeat> {
  const root = await mkdtemp(join(tmpdir(), 'deploylab-seat-'));
  let broken = false;
  const ports = new Map<number, number>();
  const seat: TempSeat = {
    id,
    labels: { 'deploylab.seat': id, 'deploylab.component': 'probe-test' },
    root,
    ports,
    processes: [],
    breakPath(b) {
      broken = b;
    },
    async endpoint(port: number): Promise<Endpoint> {
      return { host: '127.0.0.1', port: ports.get(port) ?? port };
    },
    async readFile(path: string, opts?: { maxBytes?: number }): Promise<SeatFile | null> {
      if (broken) throw pathDown();
      const hostPath = join(root, path);
      const st = await stat(hostPath).catch(() => null);
      if (!st) return null;
      if (!st.isFile()) {
        throw new DeploylabError({ code: 'SANDBOX_NOT_A_FILE', fault: 'candidate', message: { zh: `不是普通文件：${path}`, en: `not a regular file: ${path}` } });
      }
      const max = opts?.maxBytes ?? 16 * 1024 * 1024;
      const fh = await open(hostPath, 'r');
      try {
        const data = Buffer.alloc(Math.min(max, st.size));
        await fh.read(data, 0, data.length, 0);
        return { path, size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, data, truncated: st.size > max };
      } finally {
        await fh.close();
      }
    },
    async listProcesses() {
      if (broken) throw pathDown();
      return seat.processes;
    },
    async checkPath() {
      if (broken) throw pathDown();
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
  return seat;
}

function pathDown(): DeploylabError {
  return new DeploylabError({
    code: 'SANDBOX_ENGINE_ERROR',
    fault: 'infrastructure',
    message: { zh: '容器引擎无响应', en: 'container engine not answering' },
  });
}

/** A loopback port with nothing listening: bind one, then close it. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
