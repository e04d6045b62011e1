/**
 * Fixed-window attempt counter per key (client IP), bounded in memory: when full, the entry whose
 * window started first is dropped, so a flood of addresses cannot grow the map without end.
 */
export class AttemptLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly opts: { max: number; windowMs: number; maxKeys: number; now?: () => number },
  ) {}

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** Counts one attempt; returns the milliseconds to wait when the key is over its limit, else 0. */
  hit(key: string): number {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.opts.windowMs) {
      this.windows.delete(key);
      if (this.windows.size >= this.opts.maxKeys) {
        // Map keeps insertion order; a key is re-inserted when its window restarts.
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    w.count += 1;
    return w.count > this.opts.max ? w.start + this.opts.windowMs - now : 0;
  }

  /** The milliseconds to wait when the key has used up its window, else 0; counts nothing. */
  pending(key: string): number {
    const now = this.now();
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.opts.windowMs || w.count < this.opts.max) return 0;
    return w.start + this.opts.windowMs - now;
  }

  get size(): number {
    return this.windows.size;
  }
}
