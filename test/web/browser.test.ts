import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../runner/core/logger.js';
import { DockerDriver } from '../../runner/sandbox/docker-driver.js';
import { parseSeatPlan, type SeatRef } from '../../runner/sandbox/driver.js';
import { startServer } from '../../runner/server/http-server.js';
import { DEFAULT_TASKS_ROOT } from '../../runner/tasks/loader.js';
import { loadTaskSheets } from '../../runner/web/access.js';
import { createWebApp, type WebApp } from '../../runner/web/app.js';
import { hasEngine } from '../helpers/docker-env.js';
import { requireImage } from '../helpers/images.js';
import { hasChromium, launchChromium } from './chromium.js';
import { FixtureAccess } from './fixture-access.js';

/** What the terminal shows, read from xterm's own buffer (what the candidate sees on screen). */
async function terminalText(page: Page, task: string): Promise<string> {
  return page.evaluate((task) => {
    type Term = { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } };
    const t = (window as unknown as { deploylabTerminals?: Record<string, { term: Term }> }).deploylabTerminals?.[task]?.term;
    if (!t) return '';
    const b = t.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  }, task);
}

describe.skipIf(!hasEngine || !hasChromium)('candidate page in a real headless Chromium', () => {
  const session = `webui-${randomBytes(3).toString('hex')}`;
  // One sandbox per task, as the session service provisions them.
  const serve: SeatRef = { session, seat: 's01-serve' };
  const quantize: SeatRef = { session, seat: 's01-quantize' };
  const driver = new DockerDriver();
  const access = new FixtureAccess(loadTaskSheets([join(DEFAULT_TASKS_ROOT, 'junior/serve'), join(DEFAULT_TASKS_ROOT, 'junior/quantize')]));
  const shots = mkdtempSync(join(tmpdir(), 'dl-web-shots-'));
  let server: Server;
  let url: string;
  let web: WebApp;
  let context: BrowserContext;
  let profile: string;
  let page: Page;

  beforeAll(async () => {
    const image = await requireImage('workspace-cpu');
    const plan = (ref: SeatRef, task: string) => parseSeatPlan({ ...ref, task, workspace: { image }, resources: { cpus: 0.5, memoryMiB: 256, pids: 128 } });
    await Promise.all([driver.provision(plan(serve, 'serve')), driver.provision(plan(quantize, 'quantize'))]);
    await driver.writeFiles(quantize, [{ path: '/workspace/box.txt', content: 'box-quantize\n' }]);
    const sandboxes = [{ taskId: 'serve', ref: serve }, { taskId: 'quantize', ref: quantize }];
    access.addSeat('K7Q2-M9XD', { session, seat: 's01', sandboxes, candidate: '2026001 张三', endsAt: new Date(Date.now() + 90 * 60_000).toISOString() });
    web = createWebApp({ access, driver, log: createLogger('silent'), freezeCheckMs: 1000 });
    ({ server, url } = await startServer({ host: '127.0.0.1', port: 0, log: createLogger('silent'), web }));
    ({ context, profile } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
    process.stderr.write(`browser test screenshots: ${shots}\n`);
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    web?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await driver.sweep({ session }).catch(() => undefined);
  }, 60_000);

  it('a wrong code shows a bilingual error on the login page', async () => {
    await page.goto(url);
    await expect.poll(() => page.locator('h1').innerText()).toContain('考生登录');
    await page.fill('#code', 'ZZZZ-0000');
    await page.click('button[type=submit]');
    const err = await page.locator('#login-error').innerText();
    expect(err).toContain('准入码无效');
    expect(err).toContain('The access code is not valid');
    await page.screenshot({ path: join(shots, '1-wrong-code.png') });
  }, 30_000);

  it('logs in, shows the Chinese task sheet and the clock, runs a command in the terminal', async () => {
    await page.fill('#code', 'k7q2-m9xd'.toUpperCase());
    await page.click('button[type=submit]');
    await page.waitForURL(`${url}/exam`);
    const sheet = page.locator('.sheet.active .md.zh');
    expect(await sheet.locator('h1').innerText()).toBe('使用 llama-server 在本地提供量化模型服务');
    expect(await page.locator('.sheet.active .md.en-sheet').isVisible()).toBe(false);
    await expect.poll(() => page.locator('#clock').innerText()).toMatch(/^1:29:\d\d$|^01:(29|30):\d\d$/);

    // The prompt arrives, then we type as a candidate would.
    await expect.poll(() => terminalText(page, 'serve'), { timeout: 20_000 }).toMatch(/candidate@workspace/);
    await page.locator('.term.active .term-screen').click();
    await page.keyboard.type('echo hello-$((6*7))');
    await page.keyboard.press('Enter');
    await expect.poll(() => terminalText(page, 'serve'), { timeout: 15_000 }).toMatch(/^hello-42\s*$/m);
    // The DOM shows it too, not only xterm's buffer (drawn on a later animation frame).
    await expect.poll(() => page.locator('.term.active .xterm-rows').innerText(), { timeout: 5000 }).toContain('hello-42');
    await page.screenshot({ path: join(shots, '2-exam.png') });
    expect(statSync(join(shots, '2-exam.png')).size).toBeGreaterThan(20_000);
  }, 60_000);

  it('switches to the English sheet, then to the second task with its own terminal in its own sandbox', async () => {
    await page.locator('.sheet.active .lang-toggle button[data-lang=en]').click();
    expect(await page.locator('.sheet.active .md.en-sheet h1').innerText()).toMatch(/llama-server/i);
    await page.locator('.tab').nth(1).click();
    expect(await page.locator('.sheet.active').getAttribute('data-task')).toBe('quantize');
    expect(await page.locator('.term.active').getAttribute('data-task')).toBe('quantize');
    await expect.poll(() => terminalText(page, 'quantize'), { timeout: 20_000 }).toMatch(/candidate@workspace/);
    await page.locator('.term.active .term-screen').click();
    await page.keyboard.type('cat /workspace/box.txt');
    await page.keyboard.press('Enter');
    await expect.poll(() => terminalText(page, 'quantize'), { timeout: 15_000 }).toMatch(/^box-quantize\s*$/m);
    expect(await terminalText(page, 'serve')).not.toContain('box-quantize');
  }, 60_000);

  it('freezing the seat closes the terminal and the page says so in both languages', async () => {
    await Promise.all([driver.freeze(serve), driver.freeze(quantize)]);
    await expect.poll(() => page.locator('.term.active .term-status').innerText(), { timeout: 15_000 }).toContain('考位已冻结');
    expect(await page.locator('.term.active .term-status').innerText()).toContain('The seat is frozen');
    expect(await page.locator('#frozen-banner').isVisible()).toBe(true);
    await page.screenshot({ path: join(shots, '3-frozen.png') });
    // Reloading a frozen seat shows the notice instead of a terminal.
    await page.reload();
    expect(await page.locator('#frozen-banner').isVisible()).toBe(true);
    expect(await page.locator('.term-screen .xterm').count()).toBe(0);
  }, 30_000);
});
