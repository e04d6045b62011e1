/**
 * Seat networks take their subnets from the harness's own pool. The engine's default address
 * pools hold about 30 networks, and a room needs one network per candidate and task (hundreds).
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  base: number;
  prefix: number;
}

export function parseCidr(text: string): Cidr | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  if (!m) return null;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return null;
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return { base: addr - (addr % size), prefix };
}

export function formatCidr(c: Cidr): string {
  const o = [24, 16, 8, 0].map((s) => Math.floor(c.base / 2 ** s) % 256);
  return `${o.join('.')}/${c.prefix}`;
}

function span(c: Cidr): [number, number] {
  return [c.base, c.base + 2 ** (32 - c.prefix) - 1];
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const [a0, a1] = span(a);
  const [b0, b1] = span(b);
  return a0 <= b1 && b0 <= a1;
}

/** The first /prefix subnet of the pool that overlaps none of the subnets in use; null when full. */
export function pickFreeSubnet(pool: string, prefix: number, inUse: readonly string[]): string | null {
  const p = parseCidr(pool);
  if (!p || prefix < p.prefix || prefix > 30) return null;
  const used = inUse.map(parseCidr).filter((c): c is Cidr => c !== null);
  const step = 2 ** (32 - prefix);
  const [, end] = span(p);
  for (let base = p.base; base + step - 1 <= end; base += step) {
    const candidate = { base, prefix };
    if (!used.some((u) => overlaps(u, candidate))) return formatCidr(candidate);
  }
  return null;
}
