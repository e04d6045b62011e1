import Docker from 'dockerode';

/**
 * Integration tests need a real Docker engine. Outside CI they are skipped, loudly, when none is
 * reachable; with CI=true a missing engine fails the run instead of hiding behind a skip.
 */
export async function engineReachable(): Promise<boolean> {
  try {
    await new Docker().ping();
    return true;
  } catch {
    return false;
  }
}

const reachable = await engineReachable();

if (!reachable) {
  if (process.env.CI === 'true') {
    throw new Error('CI=true but no Docker engine is reachable: run `deploylab host prepare` first (integration tests must not be skipped in CI)');
  }
  process.stderr.write(
    '\n!!! No Docker engine reachable: Docker integration tests are SKIPPED. Run `npx deploylab host prepare` to install/start one. !!!\n\n',
  );
}

/** Use as `describe.skipIf(!hasEngine)(...)`. */
export const hasEngine = reachable;
