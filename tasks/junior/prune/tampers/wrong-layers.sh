#!/usr/bin/env bash
# Shortcut: llama-quantize's own --prune-layers with layers of the candidate's choosing (2 and 3,
# not the preset's 1 and 2), then Q8_0: two layers, numbered without gaps, Q8_0, it loads, but
# the layers kept are not the preset's.
set -euo pipefail
mkdir -p /workspace/models
llama-quantize --prune-layers 2,3 /opt/models/tiny-llama-f16.gguf /workspace/models/tiny-llama-pruned-q8_0.gguf Q8_0
