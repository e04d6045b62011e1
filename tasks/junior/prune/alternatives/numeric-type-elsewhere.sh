#!/usr/bin/env bash
# Also correct: the preset script into a build folder of the candidate's own, then Q8_0 by its
# number (7) on two threads, moved into place.
set -euo pipefail
mkdir -p /workspace/models /workspace/build
/opt/exam/prune/prune-layers.sh /opt/models/tiny-llama-f16.gguf /workspace/build/pruned.gguf
llama-quantize /workspace/build/pruned.gguf /workspace/build/pruned-q8.gguf 7 2
mv /workspace/build/pruned-q8.gguf /workspace/models/tiny-llama-pruned-q8_0.gguf
