/**
 * The `nvidia-smi` probe kind: GPU memory the seat's processes hold, from the host's nvidia-smi.
 */
import { defineKind } from '../probe-kind.js';
import { NvidiaSmiParamsSchema } from './params.js';
import { nvidiaSmiProbe } from './nvidia-smi.js';

export const nvidiaSmiKind = defineKind({
  kind: 'nvidia-smi',
  params: NvidiaSmiParamsSchema,
  probe: nvidiaSmiProbe,
  latencySensitive: false,
  needs: [],
});
