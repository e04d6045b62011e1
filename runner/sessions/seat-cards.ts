import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toCsv } from '../core/csv.js';
import { escapeHtml as esc } from '../core/html.js';
import type { SeatCodes, SeatRow, SessionRow } from './ledger-store.js';

/**
 * Seat cards (URL + one-time access code) of the seats in `codes`, as printable HTML and CSV,
 * owner-only files in the session's folder: the only place the codes are ever written in clear.
 */
export function writeSeatCards(dir: string, s: SessionRow, baseUrl: string, seats: readonly SeatRow[], codes: SeatCodes, name = 'seat-cards'): { html: string; csv: string } {
  const mine = seats.filter((x) => codes[x.seat_id] !== undefined);
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, `${name}.csv`);
  writeFileSync(csv, toCsv([['seat', 'candidate_no', 'name', 'url', 'access_code'], ...mine.map((x) => [x.seat_id, x.candidate_no, x.name, baseUrl, codes[x.seat_id]!])]), { mode: 0o600 });
  const cards = mine
    .map(
      (x) => `<section class="card"><h2>考位 Seat ${esc(x.seat_id)}</h2>
<p>准考证号 Candidate No.: <b>${esc(x.candidate_no)}</b></p><p>姓名 Name: <b>${esc(x.name)}</b></p>
<p>网址 URL: <code>${esc(baseUrl)}</code></p><p>一次性登录码 One-time access code: <code class="code">${esc(codes[x.seat_id]!)}</code></p>
<p class="small">登录码仅可使用一次，请勿外传。The code works once; keep it to yourself.</p></section>`,
    )
    .join('\n');
  const html = join(dir, `${name}.html`);
  writeFileSync(
    html,
    `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>考位卡 Seat cards — ${esc(s.id)}</title>
<style>body{font-family:sans-serif}.card{border:1px dashed #444;padding:12px;margin:8px;width:340px;display:inline-block;vertical-align:top;page-break-inside:avoid}.code{font-size:1.6em;letter-spacing:.15em}.small{font-size:.8em;color:#555}</style></head>
<body><h1>${esc(s.room)} · ${esc(s.paper_id)} · ${esc(s.id)}</h1>
${cards}
</body></html>
`,
    { mode: 0o600 },
  );
  return { html, csv };
}

/** Delete the seat cards (and reissued ones) in the session's folder; the archive never holds them. */
export function removeSeatCards(dir: string): number {
  if (!existsSync(dir)) return 0;
  const cards = readdirSync(dir).filter((f) => /^seat-cards.*\.(html|csv)$/.test(f));
  for (const f of cards) rmSync(join(dir, f), { force: true });
  return cards.length;
}
