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

// ---------------------------------------------------------------------------------------------
// The configuration nginx loads, and one request followed through it.

import { confPrefix, followRequest, loadNginxConfig, ratePerSecond, type NginxRequest, type RouteResult } from './nginx-config.js';

/** An in-memory file system with glob(3) over its names (the probe's is the master's /proc root). */
function memfs(files: Record<string, string>): { read(p: string): Promise<string | null>; glob(p: string): Promise<string[]> } {
  return {
    read: async (p) => files[p] ?? null,
    glob: async (pattern) => {
      const re = new RegExp('^' + pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
      return Object.keys(files).filter((f) => re.test(f) && !/\/\.[^/]*$/.test(f)).sort();
    },
  };
}

const REQ: NginxRequest = { port: 80, address: '10.1.2.3', host: '10.1.2.3', method: 'GET', uri: '/api/echo', args: 'msg=x', superuser: false };

async function route(main: string, files: Record<string, string>, req: Partial<NginxRequest> = {}, params?: string): Promise<RouteResult | { none: string }> {
  const loaded = await loadNginxConfig(main, memfs(files), params ? { params } : {});
  return followRequest(loaded.directives, { ...REQ, ...req });
}

async function served(main: string, files: Record<string, string>, req: Partial<NginxRequest> = {}): Promise<RouteResult> {
  const r = await route(main, files, req);
  if ('none' in r) throw new Error(r.none);
  return r;
}

/** "zone key rate burst" of each limit in force, e.g. "perclient $binary_remote_addr 2/s 5". */
const limits = (r: RouteResult): string[] =>
  r.limits.map((l) => `${l.use.zone} ${l.zone?.key ?? '-'} ${l.zone ? ratePerSecond(l.zone.rate) : '-'}/s ${l.use.burst}`);

const M = '/workspace/nginx/nginx.conf';
const wrap = (http: string): string => `events {}\nhttp {\n${http}\n}\n`;

describe('nginx config: includes, as nginx loads them', () => {
  it('expands includes in place: globs in byte order, relative to the main file’s folder, nested, and -g first', async () => {
    const files = {
      [M]: wrap('include /etc/nginx/mime.types;\ninclude conf.d/*.conf;\n'),
      '/etc/nginx/mime.types': 'types { text/html html; }',
      '/workspace/nginx/conf.d/20-server.conf': 'server { listen 80; location / { limit_req zone=z burst=5; include snippets/proxy.inc; } }',
      '/workspace/nginx/conf.d/10-zone.conf': 'limit_req_zone $remote_addr zone=z:1m rate=2r/s;',
      '/workspace/nginx/conf.d/.hidden.conf': 'this is not read;',
      '/workspace/nginx/conf.d/notes.txt': 'nor this;',
      '/workspace/nginx/snippets/proxy.inc': 'proxy_pass http://127.0.0.1:9000;',
    };
    const loaded = await loadNginxConfig(M, memfs(files), { params: 'daemon on;' });
    expect(loaded.files).toEqual([
      M,
      '/etc/nginx/mime.types',
      '/workspace/nginx/conf.d/10-zone.conf',
      '/workspace/nginx/conf.d/20-server.conf',
      '/workspace/nginx/snippets/proxy.inc',
    ]);
    expect(loaded.directives[0]).toMatchObject({ name: 'daemon', args: ['on'], file: '(-g)' });
    const r = followRequest(loaded.directives, REQ);
    if ('none' in r) throw new Error(r.none);
    expect(limits(r)).toEqual(['z $remote_addr 2/s 5']);
    expect(r.proxyPass).toMatchObject({ file: '/workspace/nginx/snippets/proxy.inc', line: 1 });
    expect(r.limits[0]!.zone!.at).toMatchObject({ file: '/workspace/nginx/conf.d/10-zone.conf', line: 1 });
    expect(confPrefix(M)).toBe('/workspace/nginx/');
  });

  it('fails a plain include that is not there (a glob matching nothing is fine), and an include loop', async () => {
    await expect(loadNginxConfig(M, memfs({ [M]: wrap('include missing.conf;') }))).rejects.toMatchObject({ code: 'NGINX_CONF_MISSING', fault: 'candidate' });
    await expect(loadNginxConfig(M, memfs({ [M]: wrap('include none/*.conf;') }))).resolves.toMatchObject({ files: [M] });
    await expect(loadNginxConfig(M, memfs({ [M]: 'include /workspace/nginx/nginx.conf;' }))).rejects.toThrow(/nested more than 16 deep/);
    await expect(loadNginxConfig(M, memfs({}))).rejects.toMatchObject({ code: 'NGINX_CONF_MISSING' });
  });
});

describe('nginx config: the limit in force for one request', () => {
  const ZONES = `
    limit_req_zone $binary_remote_addr zone=perclient:10m rate=2r/s;
    limit_req_zone $server_port zone=everyone:1m rate=2r/s;`;

  it('judges the zone the limit_req in force names, not a decoy zone line', async () => {
    const r = await served(M, { [M]: wrap(`${ZONES}\nserver { listen 80; location / { limit_req zone=everyone burst=5 nodelay; proxy_pass http://u; } }`) });
    expect(limits(r)).toEqual(['everyone $server_port 2/s 5']);
  });

  it('ignores a zone line inside a types block (a MIME type to nginx) and commented lines', async () => {
    const r = await served(M, {
      [M]: wrap(`types { limit_req_zone $binary_remote_addr zone=perclient:10m rate=2r/s; }
        limit_req_zone $server_port zone=everyone:1m rate=2r/s;
        server { listen 80; location / {
          # limit_req zone=perclient burst=5;
          limit_req zone=everyone burst=5; } }`),
    });
    expect(limits(r)).toEqual(['everyone $server_port 2/s 5']);
  });

  it('inherits limit_req from server and http levels when the location has none, and replaces them when it has one', async () => {
    const conf = wrap(`${ZONES}
      limit_req zone=everyone burst=1;
      limit_req_status 429;
      server { listen 80;
        limit_req zone=perclient burst=5;
        location /api/ { proxy_pass http://u; }
        location /api/echo { limit_req zone=everyone burst=9; limit_req_dry_run on; limit_req_status 503; }
      }
      server { listen 81; location / { } }`);
    const inherited = await served(M, { [M]: conf }, { uri: '/api/orders' });
    expect(limits(inherited)).toEqual(['perclient $binary_remote_addr 2/s 5']);
    expect(inherited.limits[0]!.level).toBe('server');
    expect(inherited.status.value).toBe(429);
    expect(inherited.dryRun.value).toBe(false);
    const own = await served(M, { [M]: conf });
    expect(limits(own)).toEqual(['everyone $server_port 2/s 9']);
    expect([own.status.value, own.dryRun.value]).toEqual([503, true]);
    const http = await served(M, { [M]: conf }, { port: 81 });
    expect(limits(http)).toEqual(['everyone $server_port 2/s 1']);
    expect(http.limits[0]!.level).toBe('http');
  });

  it('takes the server the harness’s connection reaches: port, exact address over wildcard, server_name, default_server', async () => {
    const conf = wrap(`${ZONES}
      server { listen 8081; location / { limit_req zone=perclient burst=5; } }
      server { listen 127.0.0.1:80; location / { limit_req zone=perclient burst=5; } }
      server { listen 80; server_name api.local; location / { limit_req zone=everyone burst=1; } }
      server { listen 80 default_server; location / { limit_req zone=everyone burst=2; } }
      server { listen 80; server_name 10.1.2.3; location / { limit_req zone=everyone burst=3; } }`);
    expect(limits(await served(M, { [M]: conf }))).toEqual(['everyone $server_port 2/s 3']);
    expect(limits(await served(M, { [M]: conf }, { host: 'other' }))).toEqual(['everyone $server_port 2/s 2']);
    expect(limits(await served(M, { [M]: conf }, { host: 'API.local' }))).toEqual(['everyone $server_port 2/s 1']);
    const specific = wrap(`${ZONES} server { listen 80; location / { limit_req zone=everyone burst=1; } }
      server { listen 10.1.2.3:80; location / { limit_req zone=perclient burst=5; } }`);
    expect(limits(await served(M, { [M]: specific }))).toEqual(['perclient $binary_remote_addr 2/s 5']);
    expect(await route(M, { [M]: wrap('server { listen 127.0.0.1:80; } server { listen 8081; }') })).toEqual({
      none: 'no server listens on 10.1.2.3:80 or *:80 (only on 127.0.0.1:80, which the harness does not reach)',
    });
    expect(await route(M, { [M]: wrap('server { listen 80 ssl; }') })).toMatchObject({ none: expect.stringMatching(/TLS/) });
    // No listen: *:8000 unless nginx runs as root.
    expect(await route(M, { [M]: wrap('server { location / { } }') })).toMatchObject({ none: 'no server block listens on port 80' });
    await expect(served(M, { [M]: wrap('server { location / { } }') }, { superuser: true })).resolves.toMatchObject({ listen: { text: 'listen *:80' } });
    expect(await route(M, { [M]: wrap('server { listen [::]:80; }') })).toMatchObject({ none: expect.any(String) });
    await expect(served(M, { [M]: wrap('server { listen [::]:80 ipv6only=off; }') })).resolves.toMatchObject({ listen: { line: 3 } });
  });

  describe('picks the location as nginx does', () => {
    const pick = async (locations: string, uri = '/api/echo'): Promise<string> => {
      const r = await served(M, { [M]: wrap(`server { listen 80;\n${locations}\n}`) }, { uri });
      return r.locations.map((l) => l.text).join(' > ');
    };
    it('exact match first', async () => {
      expect(await pick('location / {} location = /api/echo {} location ~ echo {}')).toBe('location = /api/echo');
      expect(await pick('location / {} location =/api/echo {}')).toBe('location =/api/echo');
    });
    it('the longest prefix, then regexes in order override it', async () => {
      expect(await pick('location / {} location /api/ {} location /api {}')).toBe('location /api/');
      expect(await pick('location /api/ {} location ~ ^/api/e {} location ~ echo {}')).toBe('location ~ ^/api/e');
      expect(await pick('location /api/ {} location ~* /API/ECHO$ {}')).toBe('location ~* /API/ECHO$');
      expect(await pick('location /api/ {} location ~ /API/ECHO$ {}')).toBe('location /api/');
      expect(await pick('location / {} location ~^/api {}')).toBe('location ~^/api');
    });
    it('^~ on the longest prefix stops the regex search; on a shorter one it does not', async () => {
      expect(await pick('location ^~ /api/ {} location ~ echo {}')).toBe('location ^~ /api/');
      expect(await pick('location ^~ /api/ {} location /api/echo {} location ~ echo {}')).toBe('location ~ echo');
    });
    it('nested locations: inside the matched prefix, and nested regexes before outer ones', async () => {
      expect(await pick('location /api/ { location /api/echo {} } location ~ x {}')).toBe('location /api/ > location /api/echo');
      expect(await pick('location /api/ { location ~ echo {} } location ~ /api {}')).toBe('location /api/ > location ~ echo');
      expect(await pick('location @named {} location /other {}')).toBe('');
    });
  });

  it('follows the rewrite phases: return and redirects answer before limit_req; rewrite last re-matches, break stays', async () => {
    const z = `${ZONES}\nserver { listen 80;`;
    const r1 = await served(M, { [M]: wrap(`${z} location / { limit_req zone=perclient burst=5; return 200 'canned'; } }`) });
    expect(r1.answeredBy).toMatchObject({ text: 'return 200 canned' });
    const r2 = await served(M, { [M]: wrap(`${z} return 301 /x; location / { limit_req zone=perclient burst=5; } }`) });
    expect(r2.answeredBy?.text).toBe('return 301 /x');
    const r3 = await served(M, {
      [M]: wrap(`${z} location /api/ { rewrite ^/api/(.*)$ /v2/$1 last; } location /v2/ { limit_req zone=everyone burst=5; } }`),
    });
    expect([r3.uri, ...limits(r3)]).toEqual(['/v2/echo', 'everyone $server_port 2/s 5']);
    const r4 = await served(M, { [M]: wrap(`${z} location /api/ { limit_req zone=perclient burst=5; rewrite ^/api/(.*)$ /$1 break; proxy_pass http://u; } }`) });
    expect([r4.uri, r4.answeredBy, ...limits(r4)]).toEqual(['/echo', undefined, 'perclient $binary_remote_addr 2/s 5']);
    const r5 = await served(M, { [M]: wrap(`${z} location / { rewrite ^ https://example.com/ permanent; } }`) });
    expect(r5.answeredBy?.line).toBe(6);
  });

  it('evaluates if conditions on the request line, and refuses to guess about others', async () => {
    const z = `${ZONES}\nserver { listen 80; location / { limit_req zone=perclient burst=5;`;
    const post = await served(M, { [M]: wrap(`${z} if ($request_method = POST) { return 405; } } }`) });
    expect(post.answeredBy).toBeUndefined();
    const get = await served(M, { [M]: wrap(`${z} if ($request_method !~ ^(POST|PUT)$) { return 405; } } }`) });
    expect(get.answeredBy?.text).toBe('return 405');
    const arg = await served(M, { [M]: wrap(`${z} if ($arg_msg) { return 200 'x'; } } }`) });
    expect(arg.answeredBy?.text).toBe("return 200 x");
    const setOnly = await served(M, { [M]: wrap(`${z} if ($http_user_agent ~ curl) { set $x 1; } } }`) });
    expect(setOnly.answeredBy).toBeUndefined();
    await expect(served(M, { [M]: wrap(`${z} if ($http_user_agent ~ curl) { return 403; } } }`) })).rejects.toMatchObject({ code: 'PROBE_NGINX_UNFOLLOWED', fault: 'bug' });
    await expect(served(M, { [M]: wrap(`${z} if (-f /tmp/maintenance) { return 503; } } }`) })).rejects.toMatchObject({ code: 'PROBE_NGINX_UNFOLLOWED' });
  });

  it('reads 120r/m as the same rate as 2r/s, and a limit naming no zone as such', async () => {
    const r = await served(M, { [M]: wrap('limit_req_zone ${binary_remote_addr} zone=m:1m rate=120r/m; server { listen 80; limit_req zone=m burst=5; limit_req zone=nope; }') });
    expect(limits(r)).toEqual(['m $binary_remote_addr 2/s 5', 'nope - -/s 0']);
  });

  it('has no route without an http block, and refuses two', async () => {
    expect(await route(M, { [M]: 'events {}' })).toEqual({ none: 'the configuration has no http block' });
    await expect(route(M, { [M]: 'http {} http {}' })).rejects.toThrow(/duplicate/);
  });
});
