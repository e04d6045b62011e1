#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
mkdir -p /workspace/models /workspace/tmp
/opt/exam/prune/prune-layers.sh /opt/models/tiny-llama-f16.gguf /workspace/tmp/tiny-llama-pruned-f16.gguf
llama-quantize /workspace/tmp/tiny-llama-pruned-f16.gguf /workspace/models/tiny-llama-pruned-q8_0.gguf Q8_0
