import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { simulateLimitReq } from './leaky-bucket.js';
import { limitSpecFor, parseNginxConfig, summarizeNginxConfig } from './nginx-config.js';

// Debian bookworm's nginx-common 1.22.1 files, as shipped.
const debian = (name: string): Promise<string> =>
  readFile(fileURLToPath(new URL(`./__fixtures__/nginx/${name}`, import.meta.url)), 'utf8');

// What a candidate writes for the "rate-limit the model API" task.
const GATEWAY = `
user www-data;
events { worker_connections 1024; }

http {
    log_format timed '$remote_addr "$request" $status '
                     '$request_time "$http_user_agent"';
    map $http_x_api_key $api_client {
        default      "anon";
        "k-123\\"x"  "team-a";
    }
    limit_req_zone $binary_remote_addr zone=api:10m rate=10r/s;
    limit_req_zone $api_client zone=perkey:1m rate=30r/m;
    limit_req_status 429;

    upstream llama { server 127.0.0.1:8080; keepalive 8; }

    server {
        listen 8000;
        listen [::]:8000;
        server_name gateway.local api.local;
        limit_req zone=perkey burst=2;          # server-wide default

        location /v1/ {
            limit_req zone=api burst=20 nodelay;
            proxy_pass http://llama;
            proxy_set_header Host $host;
            proxy_set_header X-Req "\${request_id}";
        }
        location = /health { proxy_pass http://127.0.0.1:8080/health; }
        location ~* ^/admin/(.*)$ {
            limit_req_status 503;
            location ~ \\.json$ { limit_req zone=api delay=5 burst=10; }
            return 403;
        }
    }
}
`;

function rejects(text: string): DeploylabError {
  try {
    parseNginxConfig(text, 'gateway.conf');
  } catch (e) {
    expect(e).toBeInstanceOf(DeploylabError);
    expect((e as DeploylabError).code).toBe('NGINX_CONF_INVALID');
    return e as DeploylabError;
  }
  throw new Error('accepted');
}

describe('nginx config: tokenizer and parser', () => {
  it('parses Debian’s nginx.conf: top-level directives, events and http blocks, includes', async () => {
    const ast = parseNginxConfig(await debian('nginx.conf'));
    expect(ast.map((d) => d.name)).toEqual(['user', 'worker_processes', 'pid', 'error_log', 'include', 'events', 'http']);
    const http = ast.find((d) => d.name === 'http')!;
    expect(http.block?.find((d) => d.name === 'ssl_protocols')?.args).toEqual(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);
    expect(summarizeNginxConfig(ast).includes).toEqual([
      '/etc/nginx/modules-enabled/*.conf',
      '/etc/nginx/mime.types',
      '/etc/nginx/conf.d/*.conf',
      '/etc/nginx/sites-enabled/*',
    ]);
  });

  it('parses Debian’s mime.types: one directive per ";" in the file', async () => {
    const text = await debian('mime.types');
    const [types] = parseNginxConfig(text);
    expect(types?.name).toBe('types');
    expect(types?.block).toHaveLength(text.split(';').length - 1);
    expect(types?.block?.find((d) => d.name === 'application/json')?.args).toEqual(['json']);
  });

  it('reads Debian’s default site as a conf.d-style fragment', async () => {
    const s = summarizeNginxConfig(parseNginxConfig(await debian('sites-default.conf')));
    expect(s.servers).toHaveLength(1);
    expect(s.servers[0]?.listen).toEqual(['80 default_server', '[::]:80 default_server']);
    expect(s.servers[0]?.serverNames).toEqual(['_']);
    expect(s.servers[0]?.locations.map((l) => l.match)).toEqual([['/']]);
    expect(s.zones).toEqual([]);
  });

  it('handles quotes across lines, escapes, ${var} and comments', () => {
    const ast = parseNginxConfig(GATEWAY);
    const http = ast.find((d) => d.name === 'http')!.block!;
    expect(http.find((d) => d.name === 'log_format')?.args).toEqual([
      'timed',
      '$remote_addr "$request" $status ',
      '$request_time "$http_user_agent"',
    ]);
    const map = http.find((d) => d.name === 'map')!;
    expect(map.block?.map((d) => [d.name, ...d.args])).toEqual([
      ['default', 'anon'],
      ['k-123"x', 'team-a'],
    ]);
    const v1 = http.find((d) => d.name === 'server')!.block!.find((d) => d.name === 'location')!;
    expect(v1.block?.find((d) => d.args[0] === 'X-Req')?.args[1]).toBe('${request_id}');
    expect(v1.line).toBe(24);
  });

  it.each([
    ['unclosed block', 'http {\n server {\n listen 80;\n}', 'line 1: cannot parse nginx config: block opened here is never closed'],
    ['stray brace', 'listen 80;\n}\n', 'line 2: cannot parse nginx config: unexpected "}"'],
    ['missing semicolon at end', 'events { }\nworker_processes 2', 'directive "worker_processes" is not terminated'],
    ['unterminated quote', 'log_format x "abc;\n', 'unterminated quoted string'],
    ['lone semicolon', ';', 'unexpected ";"'],
  ])('rejects %s', (_what, text, message) => {
    expect(rejects(text).message).toContain(message);
  });
});

describe('nginx config: rate limits, listeners and upstreams', () => {
  const s = summarizeNginxConfig(parseNginxConfig(GATEWAY));

  it('reads limit_req_zone with r/s and r/m rates', () => {
    expect(s.zones).toEqual([
      { name: 'api', key: '$binary_remote_addr', size: '10m', rate: { count: 10, per: 's' }, line: 12 },
      { name: 'perkey', key: '$api_client', size: '1m', rate: { count: 30, per: 'm' }, line: 13 },
    ]);
  });

  it('applies nginx inheritance: a location with its own limit_req replaces the server’s', () => {
    const [server] = s.servers;
    expect(server?.listen).toEqual(['8000', '[::]:8000']);
    expect(server?.serverNames).toEqual(['gateway.local', 'api.local']);
    const byPath = new Map(server!.locations.map((l) => [l.match.join(' '), l]));
    expect(byPath.get('/v1/')).toMatchObject({
      proxyPass: 'http://llama',
      limitReq: [{ zone: 'api', burst: 20, nodelay: true }],
      limitReqStatus: 429,
    });
    expect(byPath.get('= /health')).toMatchObject({
      proxyPass: 'http://127.0.0.1:8080/health',
      limitReq: [{ zone: 'perkey', burst: 2, nodelay: false }],
      limitReqStatus: 429,
    });
    expect(byPath.get('~* ^/admin/(.*)$')).toMatchObject({ proxyPass: null, limitReqStatus: 503 });
    expect(byPath.get('~ \\.json$')).toMatchObject({ limitReq: [{ zone: 'api', burst: 10, delay: 5 }], limitReqStatus: 503 });
  });

  it('turns a location’s limits into leaky-bucket parameters the simulator uses', () => {
    const v1 = s.servers[0]!.locations[0]!;
    const spec = limitSpecFor(s, v1);
    expect(spec).toEqual({ rate: { count: 10, per: 's' }, burst: 20, nodelay: true });
    const r = simulateLimitReq(spec!, Array.from({ length: 30 }, () => 0));
    expect([r.accepted, r.rejected]).toEqual([21, 9]);
  });

  it('rejects limit directives it cannot read rather than guessing', () => {
    const bad = (body: string): string => {
      try {
        summarizeNginxConfig(parseNginxConfig(`http { ${body} }`));
      } catch (e) {
        return (e as DeploylabError).message;
      }
      return 'accepted';
    };
    expect(bad('limit_req_zone $binary_remote_addr zone=a:1m rate=10r/h;')).toContain('unknown parameter "rate=10r/h"');
    expect(bad('limit_req_zone $binary_remote_addr zone=a:1m;')).toContain('needs a key, zone=name:size and rate');
    expect(bad('server { location / { limit_req burst=5; } }')).toContain('limit_req needs zone=name');
    expect(bad('limit_req_status 200;')).toContain('limit_req_status must be 400..599');
  });
});
