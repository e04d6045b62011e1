import { randomBytes } from 'node:crypto';
import type { CandidateAccess, SeatBinding, TaskSheet } from '../../runner/web/access.js';

/**
 * TEST FIXTURE at the store boundary: access codes and session tokens in memory, standing in for
 * the session store's SeatDirectory until the web server is wired to it. Tokens are random, like
 * the store's; everything else about candidate access under test is the real code.
 */
export class FixtureAccess implements CandidateAccess {
  private readonly codes = new Map<string, SeatBinding>();
  private readonly tokens = new Map<string, SeatBinding>();

  constructor(private readonly sheets: TaskSheet[]) {}

  addSeat(code: string, binding: SeatBinding): void {
    this.codes.set(code, binding);
  }

  async redeem(code: string): Promise<{ token: string; binding: SeatBinding } | null> {
    const binding = this.codes.get(code.toUpperCase());
    if (!binding) return null;
    const token = randomBytes(32).toString('base64url');
    this.tokens.set(token, binding);
    return { token, binding };
  }

  async bySessionToken(token: string): Promise<SeatBinding | null> {
    return this.tokens.get(token) ?? null;
  }

  async revoke(token: string): Promise<void> {
    this.tokens.delete(token);
  }

  async taskSheets(): Promise<TaskSheet[]> {
    return this.sheets;
  }
}
