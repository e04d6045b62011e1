#!/usr/bin/env bash
# Also correct: the preset by its number (15) on one thread, a model name of the candidate's own
# in the metadata, written elsewhere and moved into place. The tensors are the preset's.
set -euo pipefail
mkdir -p /workspace/models /workspace/build
llama-quantize --override-kv general.name=str:candidate-q4km /opt/models/tiny-llama-f16.gguf /workspace/build/out.gguf 15 1
mv /workspace/build/out.gguf /workspace/models/tiny-llama-q4_k_m.gguf
