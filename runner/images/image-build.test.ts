import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { isDeploylabError } from '../core/errors.js';
import { hasEngine } from '../../test/helpers/docker-env.js';
import { requireImage } from '../../test/helpers/images.js';
import { buildImages, dockerBuild, inspectImages } from './image-build.js';

const config = loadConfig({ env: {} });
const offline = { ...config, images: { ...config.images, offline: true } };

describe.skipIf(!hasEngine)('image builds against the engine', () => {
  it('the GPU workspace is skipped offline with a reason in both languages, not a failure', async () => {
    const [r] = await buildImages({ config: offline, offline: true, names: ['workspace-gpu'] });
    expect(r?.outcome).toBe('skipped');
    expect(r?.reason?.zh).toMatch(/离线/);
    expect(r?.reason?.en).toMatch(/offline/);
  });

  it('an unchanged rebuild is a no-op that takes seconds, and ls reports the images current', async () => {
    const base = await requireImage('base');
    const t0 = performance.now();
    const results = await buildImages({ config: offline, offline: true, names: ['base'] });
    expect(results).toEqual([expect.objectContaining({ name: 'base', ref: base, outcome: 'cached' })]);
    expect(performance.now() - t0).toBeLessThan(10_000);
    const states = await inspectImages(offline);
    expect(states.find((s) => s.name === 'base')).toMatchObject({ current: true, present: true, ref: base });
    const info = await new Docker().getImage(base).inspect();
    expect(info.Config.Labels?.['deploylab.image']).toBe('base');
    expect(base.endsWith(`:${info.Config.Labels?.['deploylab.inputs']?.slice(0, 16)}`)).toBe(true);
  });

  it('a failing step is IMAGE_BUILD_FAILED carrying the step\'s last output lines', async () => {
    const base = await requireImage('base');
    const dir = mkdtempSync(join(tmpdir(), 'failing-image-'));
    writeFileSync(join(dir, 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nRUN echo about-to-fail-7731 && exit 3\n');
    const plan = { name: 'base' as const, dir, hash: 'f'.repeat(64), ref: 'deploylab-test/failing:never', repo: 'deploylab-test/failing', buildArgs: { BASE: base } };
    const err = await dockerBuild(new Docker(), plan, [], { 'deploylab.component': 'test' }, () => {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDeploylabError(err) && err.code).toBe('IMAGE_BUILD_FAILED');
    expect(isDeploylabError(err) && (err.details?.lastLines as string[]).join('\n')).toContain('about-to-fail-7731');
  });
});
