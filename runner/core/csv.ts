const csvCell = (v: unknown): string => {
  let s = String(v ?? '');
  // A cell a spreadsheet would run as a formula gets a leading apostrophe.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

/** CSV a spreadsheet opens as UTF-8 (BOM, CRLF), with formula-looking cells defused. */
export const toCsv = (rows: unknown[][]): string => '\uFEFF' + rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
