import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium (apt-get install chromium fonts-noto-cjk); Playwright cannot download browsers offline. */
export const CHROMIUM = '/usr/bin/chromium';

const present = existsSync(CHROMIUM);
if (!present) {
  if (process.env.CI === 'true') {
    throw new Error(`CI=true but ${CHROMIUM} is missing: install the Debian packages chromium and fonts-noto-cjk (browser tests must not be skipped in CI)`);
  }
  process.stderr.write(`\n!!! ${CHROMIUM} not found: browser tests are SKIPPED. apt-get install -y chromium fonts-noto-cjk !!!\n\n`);
}
export const hasChromium = present;

/** A headless Chromium with a fresh profile that talks to nothing but the pages we open. */
export async function launchChromium(): Promise<{ context: BrowserContext; profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'dl-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 860 },
    locale: 'zh-CN',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  return { context, profile };
}
