/**
 * The nginx-config probe on a real seat: the image's nginx run as the candidate, judged from the
 * host (identity by content, a reload by SIGHUP, the files read through the master's own root).
 * A correct configuration passes, laid out another way too; a decoy zone line, a file nginx
 * cannot load, an imitation master and a symlink out of the seat do not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seatHandleFor } from '../../runner/grading/seat-handle.js';
import { newVerifySession } from '../../runner/grading/verify.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan } from '../../runner/sandbox/driver.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { masterOptions, nginxConfigProbe } from './nginx-config.js';
import { Deadline, runProbe, type ProbeOutcome, type SeatHandle } from '../probe.js';

describe('masterOptions: the options in the master’s title', () => {
  it('reads -c, -p and -g (whose text runs to the next option)', () => {
    expect(masterOptions('nginx: master process nginx -c /workspace/nginx/nginx.conf')).toEqual({ argv0: 'nginx', c: '/workspace/nginx/nginx.conf' });
    expect(masterOptions('nginx: master process /usr/sbin/nginx -g daemon on; worker_processes 2; -c /w/n.conf -p /w/')).toEqual({
      argv0: '/usr/sbin/nginx',
      g: 'daemon on; worker_processes 2;',
      c: '/w/n.conf',
      p: '/w/',
    });
    expect(masterOptions('nginx: master process nginx -c/w/n.conf')).toMatchObject({ c: '/w/n.conf' });
  });
});

const CONF = '/workspace/nginx/nginx.conf';
const conf = (http: string): string => `worker_processes 1;
pid /workspace/nginx/nginx.pid;
error_log /workspace/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
${http}
}
`;
const GOOD = conf(`
    limit_req_zone $binary_remote_addr zone=perclient:1m rate=2r/s;
    server { listen 80; location / { limit_req zone=perclient burst=5 nodelay; limit_req_status 429; try_files /none =204; } }`);

describe.skipIf(!hasEngine)('nginx-config probe on a real seat', () => {
  const driver = new DockerDriver();
  const ref = { session: newVerifySession(), seat: 'nginx-config' };
  let seat: SeatHandle;

  const sh = async (script: string): Promise<string> => {
    const r = await driver.exec(ref, { cmd: ['bash', '-c', script], user: 'candidate' });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    return r.stdout;
  };
  const write = (path: string, text: string): Promise<void> => driver.writeFiles(ref, [{ path, content: text, mode: 0o644, uid: 1000, gid: 1000 }]);
  const probe = (extra: Record<string, unknown> = {}): Promise<ProbeOutcome> =>
    runProbe(
      nginxConfigProbe,
      seat,
      {
        kind: 'nginx-config',
        master: { executable: '/usr/sbin/nginx', config: CONF },
        request: { port: 80, path: '/api/echo?msg=x' },
        expect: { limitReq: { keys: ['$binary_remote_addr', '$remote_addr'], rate: '2r/s', burst: 5, status: 429 } },
        ...extra,
      },
      Deadline.after(30_000),
    );
  const restart = async (text: string, how = `nginx -c ${CONF}`): Promise<void> => {
    await sh('nginx -c /workspace/nginx/nginx.conf -s quit 2>/dev/null; pkill -u candidate -x nginx; for i in $(seq 50); do pgrep -x nginx >/dev/null || break; sleep 0.1; done; true');
    await write(CONF, text);
    await sh(`mkdir -p /workspace/nginx && ${how} && for i in $(seq 50); do curl -s -o /dev/null localhost:80/ && exit 0; sleep 0.1; done; cat /workspace/nginx/error.log; exit 1`);
  };

  beforeAll(async () => {
    const ws = await requireImage('workspace-cpu');
    await driver.provision(parseSeatPlan({ ...ref, task: 'nginx-config-test', workspace: { image: ws }, resources: { cpus: 1, memoryMiB: 1024 } }));
    seat = seatHandleFor({ driver, ref, task: 'nginx-config-test' });
    await sh('mkdir -p /workspace/nginx/conf.d');
  }, 120_000);
  afterAll(async () => {
    await driver.sweep({ session: ref.session });
  });

  it('passes the configuration in force, after reloading nginx from the host', async () => {
    await restart(GOOD);
    const o = await probe();
    expect(o.status, JSON.stringify(o.evidence)).toBe('pass');
    const reload = o.evidence.find((e) => e.kind === 'note' && e.text.en.startsWith('the harness reloaded'));
    expect((reload as unknown as { data: { newWorkers: number[] } }).data.newWorkers.length).toBeGreaterThan(0);
  }, 60_000);

  it('passes another layout: includes relative to the file’s folder, $remote_addr, server-level limit, -g on the command line', async () => {
    await write('/workspace/nginx/conf.d/zone.conf', 'limit_req_zone $remote_addr zone=c:1m rate=120r/m;\nlimit_req_status 429;\n');
    await write('/workspace/nginx/conf.d/api.conf', 'server { listen 0.0.0.0:80 default_server; limit_req zone=c burst=5; location ^~ /api/ { try_files /none =204; } }\n');
    await restart(conf('include /etc/nginx/mime.types;\ninclude conf.d/*.conf;'), `nginx -c ${CONF} -g 'worker_rlimit_nofile 512;'`);
    const o = await probe();
    expect(o.status, JSON.stringify(o.evidence)).toBe('pass');
  }, 60_000);

  it('fails a location answered by `return`: nginx answers it in the rewrite phase, before limit_req (real nginx agrees)', async () => {
    await restart(GOOD.replace('try_files /none =204;', 'return 204;'));
    const o = await probe();
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('reachesLimits');
    // 20 requests at once, burst 5: none refused, the limit never applies.
    expect(await sh('for i in $(seq 20); do curl -s -o /dev/null -w "%{http_code}\\n" localhost:80/ & done | sort | uniq -c | tr -s " "')).toBe(' 20 204\n');
    await restart(GOOD);
    expect(await sh('sleep 3; for i in $(seq 20); do curl -s -o /dev/null -w "%{http_code}\\n" localhost:80/ & done | sort -u | tr "\\n" " "')).toBe('204 429 ');
  }, 60_000);

  it('fails a decoy zone line while the limit_req in force uses a one-bucket zone', async () => {
    await restart(conf(`
    limit_req_zone $binary_remote_addr zone=perclient:1m rate=2r/s;
    limit_req_zone $server_port zone=everyone:1m rate=2r/s;
    server { listen 80; location / { limit_req zone=everyone burst=5; limit_req_status 429; try_files /none =204; } }`));
    const o = await probe();
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('(limitReq)');
  }, 60_000);

  it('puts an edited file in force; fails one nginx cannot load, with the old configuration left running', async () => {
    await restart(conf('server { listen 80; location / { try_files /none =204; } }'));
    // Edited after start, valid: the reload makes it the configuration in force.
    await write(CONF, GOOD);
    expect((await probe()).status).toBe('pass');
    // Edited again, invalid: nginx refuses it on reload and keeps running the previous one.
    await write(CONF, GOOD.replace('try_files /none =204;', 'proxy_pass http://no_such_upstream;'));
    const o = await probe();
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain('did not load');
    expect(await sh('curl -s -o /dev/null -w "%{http_code}" localhost:80/')).toBe('204');
  }, 60_000);

  it('fails an imitation master and a config started from another file', async () => {
    await sh('pkill -u candidate -x nginx; for i in $(seq 50); do pgrep -x nginx >/dev/null || break; sleep 0.1; done; (setsid nohup bash -c "echo \\$\\$ > /tmp/imitation.pid; exec -a \'nginx: master process nginx -c /workspace/nginx/nginx.conf\' sleep 300" >/dev/null 2>&1 </dev/null &); sleep 0.3');
    const o = await probe();
    expect(o.status).toBe('fail');
    expect(o.summary.en).toContain("no nginx master process runs the image's /usr/sbin/nginx");
    await write(CONF, GOOD);
    await sh('kill "$(cat /tmp/imitation.pid)"; cp /workspace/nginx/nginx.conf /tmp/other.conf');
    await sh('nginx -c /tmp/other.conf && sleep 0.5');
    const other = await probe();
    expect(other.summary.en).toContain('started with -c /tmp/other.conf');
  }, 60_000);

  it('reads symlinks inside the seat: an absolute link to a host path reads the seat’s file', async () => {
    // The host has no /workspace/nginx/zone.conf: resolved on the host's side, the include would be missing.
    await write('/workspace/nginx/zone.conf', 'limit_req_zone $binary_remote_addr zone=perclient:1m rate=2r/s;\n');
    await sh('ln -sf /workspace/nginx/zone.conf /workspace/nginx/link.conf');
    await restart(conf('include /workspace/nginx/link.conf;\nserver { listen 80; location / { limit_req zone=perclient burst=5; limit_req_status 429; try_files /none =204; } }'));
    const o = await probe();
    expect(o.status, JSON.stringify(o.evidence)).toBe('pass');
    const files = o.evidence.find((e) => e.kind === 'note' && e.text.en === 'the files nginx loaded') as unknown as { data: { files: { path: string; real: string }[] } };
    expect(files.data.files[1]).toMatchObject({ path: '/workspace/nginx/link.conf', real: '/workspace/nginx/zone.conf' });
  }, 60_000);
});
