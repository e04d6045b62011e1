import { existsSync } from 'node:fs';

/**
 * Real services some probe tests run on the host (Debian packages): nginx-light for limit_req,
 * prometheus for the query API. Missing ones skip their tests, loudly, naming the package.
 */
export function hostTool(path: string, debianPackage: string): boolean {
  const present = existsSync(path);
  if (!present) {
    process.stderr.write(
      `\n!!! ${path} missing: tests against a real ${debianPackage} are SKIPPED. Install it: apt-get install -y --no-install-recommends ${debianPackage} !!!\n\n`,
    );
  }
  return present;
}
