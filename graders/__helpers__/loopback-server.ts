import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listen on an ephemeral loopback port (test traffic stays on this machine); returns the port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Close a test server without waiting for keep-alive connections to idle out. */
export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise<void>((r) => server.close(() => r()));
}
