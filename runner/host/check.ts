import type { Config } from '../core/config.js';
import type { Lang } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import { table } from '../core/output.js';
import type { InspectImages } from '../images/types.js';
import { evaluateHost } from './evaluate.js';
import { imageOps } from './images.js';
import { gatherInventory } from './inventory.js';
import type { HostReport, ItemStatus, Overall } from './types.js';

export interface CheckHostOptions {
  env?: Record<string, string | undefined>;
  /** Defaults to the images module's inspectImages. */
  inspectImages?: InspectImages;
}

/** Gather the inventory, judge it against the config's thresholds, count the outcome. */
export async function checkHost(config: Config, opts: CheckHostOptions = {}): Promise<HostReport> {
  const inspectImages = opts.inspectImages ?? (await imageOps()).inspectImages;
  const inv = await gatherInventory(config, { inspectImages, ...(opts.env ? { env: opts.env } : {}) });
  const report = evaluateHost(inv, config.host);
  for (const i of report.items) metrics.hostChecks.inc({ item: i.id, status: i.status });
  return report;
}

const STATUS: Record<ItemStatus, { zh: string; en: string }> = {
  ok: { zh: '正常', en: 'ok' },
  warn: { zh: '注意', en: 'warn' },
  fail: { zh: '不满足', en: 'FAIL' },
  error: { zh: '无法检查', en: 'ERROR' },
};

const OVERALL: Record<Overall, { zh: string; en: string }> = {
  ready: { zh: '主机就绪', en: 'host ready' },
  'not-ready': { zh: '主机未就绪', en: 'host NOT ready' },
  'could-not-check': { zh: '无法完成检查', en: 'could not check the host' },
};

/** The report for people: one row per item, hints under the table. Chinese first, English beside. */
export function renderReport(r: HostReport, lang: Lang): string {
  const pick = (b: { zh: string; en: string }): string => (lang === 'zh' ? b.zh : b.en);
  const headers = lang === 'zh' ? ['项目', '状态', '说明'] : ['item', 'status', 'detail'];
  const rows = r.items.flatMap((i) => {
    const code = i.code && i.status !== 'ok' ? ` [${i.code}]` : '';
    const row = [
      lang === 'zh' && i.title.zh !== i.title.en ? `${i.title.zh} ${i.title.en}` : pick(i.title),
      lang === 'zh' ? `${STATUS[i.status].zh} ${STATUS[i.status].en}` : STATUS[i.status].en,
      pick(i.message) + code,
    ];
    // Chinese readers get the English beside it: on a line of its own, under the Chinese.
    return lang === 'zh' && i.message.zh !== i.message.en ? [row, ['', '', i.message.en]] : [row];
  });
  const hints = r.items
    .filter((i) => i.hint && i.status !== 'ok')
    .map((i) => `  → ${lang === 'zh' ? i.title.zh : i.title.en}: ${lang === 'zh' ? `${i.hint!.zh} (${i.hint!.en})` : i.hint!.en}`);
  const head = lang === 'zh' ? `${OVERALL[r.overall].zh} (${OVERALL[r.overall].en})` : OVERALL[r.overall].en;
  return [table(headers, rows), '', head, ...hints].join('\n');
}
