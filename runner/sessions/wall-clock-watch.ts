/**
 * Notices the host's wall clock jumping. Seat clocks are stored in wall time (epoch ms) so that
 * every process of the runner reads the same remaining time; a wall clock set forwards or back (an
 * operator, NTP stepping a drifted clock) would otherwise take time from the candidates or give it.
 * Between two looks the monotonic clock says how much time really passed; the wall clock moving
 * by more or less than that, past a tolerance for scheduling noise, is a jump.
 */
export interface ClockSources {
  wall: () => number;
  monotonic: () => number;
}

export class WallClockWatch {
  private lastWall: number;
  private lastMono: number;

  constructor(
    private readonly clocks: ClockSources,
    /** Differences up to this are noise (a slow tick, a suspended timer), not a jump. */
    private readonly toleranceMs = 2_000,
  ) {
    this.lastWall = clocks.wall();
    this.lastMono = clocks.monotonic();
  }

  /** The wall clock's jump since the last look (ms, negative when set back), or 0. */
  check(): number {
    const wall = this.clocks.wall();
    const mono = this.clocks.monotonic();
    const jump = wall - this.lastWall - (mono - this.lastMono);
    this.lastWall = wall;
    this.lastMono = mono;
    return Math.abs(jump) > this.toleranceMs ? Math.round(jump) : 0;
  }
}
