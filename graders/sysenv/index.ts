/**
 * The `sysenv` probe kind: the seat's basic system environment as it is in force: accounts,
 * folder ownership and modes, every user's login-shell environment, a venv and its isolation,
 * and a service's identity and environment.
 */
import { defineKind } from '../probe-kind.js';
import { SysenvParamsSchema } from './params.js';
import { sysenvProbe } from './sysenv.js';

export const sysenvKind = defineKind({
  kind: 'sysenv',
  params: SysenvParamsSchema,
  probe: sysenvProbe,
  latencySensitive: false,
  needs: ['toolbox', 'image-files'],
  needsFor: (p) => (p.loginEnv ? ['toolbox'] : p.venv || p.service ? ['image-files'] : []),
});
