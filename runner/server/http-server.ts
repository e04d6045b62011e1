import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registry } from '../core/metrics.js';
import type { Logger } from '../core/logger.js';
import type { WebApp } from '../web/app.js';

export interface ServerOptions {
  host: string;
  port: number;
  log: Logger;
  /** Candidate pages, terminal websocket and examiner API (runner/web); absent: operational endpoints only. */
  web?: WebApp;
}

/**
 * The runner's HTTP server. For now it answers the operational endpoints (`/healthz`, `/metrics`);
 * the exam-room API and candidate pages mount here as they are built.
 */
export async function startServer(opts: ServerOptions): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true }));
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        })
        .catch((err: unknown) => {
          opts.log.error({ err }, 'metrics rendering failed');
          res.writeHead(500).end();
        });
      return;
    }
    if (opts.web?.handle(req, res)) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: { zh: '未找到', en: 'not found' } } }));
  });
  server.on('upgrade', (req, socket, head: Buffer) => {
    if (opts.web?.upgrade(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  opts.log.info({ url }, 'server listening');
  return { server, url };
}
