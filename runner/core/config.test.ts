import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectLang, loadConfig } from './config.js';
import { DeploylabError } from './errors.js';

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'deploylab-config-'));
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function thrown(fn: () => unknown): DeploylabError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DeploylabError) return e;
    throw e;
  }
  throw new Error('expected a DeploylabError');
}

describe('layered config', () => {
  it('fills every default from the schema when nothing is given', () => {
    const c = loadConfig({ env: {} });
    expect(c.lang).toBeUndefined();
    expect(c.dataDir).toBe('./data');
    expect(c.images.prefix).toBe('deploylab');
    expect(c.images.llamaCppNpmVersion).toBe('3.21.1');
    expect(c.host.minFreeDiskGiB).toBe(20);
  });

  it('layers file < environment < flags', () => {
    const file = tempFile('a.yaml', 'dataDir: /from-file\nimages:\n  prefix: fromfile\nhost:\n  minFreeDiskGiB: 5\n');
    const c = loadConfig({
      file,
      env: { DEPLOYLAB_DATA_DIR: '/from-env', DEPLOYLAB_HOST_MIN_FREE_DISK_GIB: '7' },
      flags: { dataDir: '/from-flag' },
    });
    expect(c.dataDir).toBe('/from-flag');
    expect(c.images.prefix).toBe('fromfile');
    expect(c.host.minFreeDiskGiB).toBe(7);
  });

  it('names the file and the path of an unknown key, all problems at once', () => {
    const file = tempFile('bad.yaml', 'lnag: en\nimages:\n  offlin: true\nhost:\n  minFreeDiskGiB: -1\n');
    const e = thrown(() => loadConfig({ file, env: {} }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.fault).toBe('config');
    expect(e.message).toContain(file);
    expect(e.message).toContain('lnag');
    expect(e.message).toContain('images');
    expect(e.message).toContain('offlin');
    expect(e.message).toContain('host.minFreeDiskGiB');
    expect((e.details?.issues as unknown[]).length).toBe(3);
  });

  it('rejects an unknown DEPLOYLAB_* variable and lists the known ones', () => {
    const e = thrown(() => loadConfig({ env: { DEPLOYLAB_LNAG: 'en' } }));
    expect(e.code).toBe('CONFIG_UNKNOWN_ENV');
    expect(e.message).toContain('DEPLOYLAB_LNAG');
    expect(e.hint?.en).toContain('DEPLOYLAB_LANG');
  });

  it('rejects a bad value from the environment, naming the environment', () => {
    const e = thrown(() => loadConfig({ env: { DEPLOYLAB_LANG: 'fr' } }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('environment: lang');
  });

  it('takes the seat subnet pool from the environment and refuses a malformed one', () => {
    expect(loadConfig({ env: {} }).docker.seatSubnetPool).toBe('10.213.0.0/16');
    expect(loadConfig({ env: { DEPLOYLAB_DOCKER_SEAT_SUBNET_POOL: '100.90.0.0/16' } }).docker.seatSubnetPool).toBe('100.90.0.0/16');
    const e = thrown(() => loadConfig({ env: { DEPLOYLAB_DOCKER_SEAT_SUBNET_POOL: 'ten-dot-something' } }));
    expect(e.message).toContain('docker.seatSubnetPool');
  });

  it('refuses a guessable examiner token: short, or with spaces; empty keeps the examiner side off', () => {
    expect(loadConfig({ env: {} }).server.examinerToken).toBe('');
    const good = 'f3'.repeat(24);
    expect(loadConfig({ env: { DEPLOYLAB_SERVER_EXAMINER_TOKEN: good } }).server.examinerToken).toBe(good);
    for (const bad of ['1', 'x'.repeat(23), `${'a'.repeat(20)} ${'b'.repeat(20)}`]) {
      const e = thrown(() => loadConfig({ env: { DEPLOYLAB_SERVER_EXAMINER_TOKEN: bad } }));
      expect(e.code).toBe('CONFIG_INVALID');
      expect(e.message).toContain('server.examinerToken');
      expect(e.message).toContain('openssl rand');
    }
  });

  it('runs seats on Docker by default, with the Kubernetes settings filled in beside it', () => {
    const c = loadConfig({ env: {} });
    expect(c.sandbox.driver).toBe('docker');
    expect(c.sandbox.k8s).toEqual({ kubeconfig: '', context: '', toolboxImage: '', readyTimeoutSeconds: 180, graderNamespaceLabel: { key: 'deploylab.component', value: 'harness' } });
    expect(c.docker).toEqual({ host: '', seatSubnetPool: '10.213.0.0/16' });
  });

  it('selects the Kubernetes backend with its settings from the file, the driver from the environment too', () => {
    const file = tempFile(
      'k8s.yaml',
      'sandbox:\n  driver: k8s\n  k8s:\n    kubeconfig: /etc/deploylab/kubeconfig\n    context: exam-centre\n    toolboxImage: centre/toolbox:abc\n    readyTimeoutSeconds: 300\ndocker:\n  host: tcp://10.0.0.5:2375\n',
    );
    const c = loadConfig({ file, env: {} });
    expect(c.sandbox).toEqual({
      driver: 'k8s',
      k8s: { kubeconfig: '/etc/deploylab/kubeconfig', context: 'exam-centre', toolboxImage: 'centre/toolbox:abc', readyTimeoutSeconds: 300, graderNamespaceLabel: { key: 'deploylab.component', value: 'harness' } },
    });
    expect(c.docker.host).toBe('tcp://10.0.0.5:2375');
    const fromEnv = loadConfig({ env: { DEPLOYLAB_SANDBOX_DRIVER: 'k8s', DEPLOYLAB_SANDBOX_K8S_CONTEXT: 'lab' } });
    expect(fromEnv.sandbox.driver).toBe('k8s');
    expect(fromEnv.sandbox.k8s.context).toBe('lab');
    expect(loadConfig({ file, env: { DEPLOYLAB_SANDBOX_DRIVER: 'docker' } }).sandbox.driver).toBe('docker');
  });

  it('refuses an unknown sandbox driver in both languages, naming the file and the field', () => {
    const file = tempFile('driver.yaml', 'sandbox:\n  driver: kubernetes\n  k8s:\n    namespacePrefix: x\n');
    const e = thrown(() => loadConfig({ file, env: {} }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.fault).toBe('config');
    expect(e.message).toContain(`${file}: sandbox.driver: must be "docker" or "k8s", not "kubernetes"`);
    expect(e.zh).toContain(`${file}: sandbox.driver:`);
    expect(e.zh).toContain('沙箱后端只能是 docker 或 k8s');
    expect(e.message).toContain('sandbox.k8s');
    expect(e.message).toContain('namespacePrefix');
    const env = thrown(() => loadConfig({ env: { DEPLOYLAB_SANDBOX_DRIVER: 'podman' } }));
    expect(env.message).toContain('environment: sandbox.driver: must be "docker" or "k8s", not "podman"');
  });

  it('reports YAML syntax errors as config faults', () => {
    const file = tempFile('syntax.yaml', 'images: [unclosed\n');
    const e = thrown(() => loadConfig({ file, env: {} }));
    expect(e.code).toBe('CONFIG_FILE_SYNTAX');
  });

  it('reports a missing config file', () => {
    const e = thrown(() => loadConfig({ file: '/nonexistent/deploylab.yaml', env: {} }));
    expect(e.code).toBe('CONFIG_FILE_UNREADABLE');
  });
});

describe('language detection', () => {
  it('defaults to Simplified Chinese', () => {
    expect(detectLang(undefined, {})).toBe('zh');
    expect(detectLang(undefined, { LANG: 'C.UTF-8' })).toBe('zh');
  });
  it('follows --lang, then DEPLOYLAB_LANG, then the locale', () => {
    expect(detectLang('en', { LANG: 'zh_CN.UTF-8' })).toBe('en');
    expect(detectLang(undefined, { DEPLOYLAB_LANG: 'en' })).toBe('en');
    expect(detectLang(undefined, { LANG: 'en_US.UTF-8' })).toBe('en');
    expect(detectLang(undefined, { LC_ALL: 'zh_CN.UTF-8', LANG: 'en_US.UTF-8' })).toBe('zh');
    expect(detectLang(undefined, { LANG: 'zh_CN.UTF-8' }, 'en')).toBe('en');
  });
});
