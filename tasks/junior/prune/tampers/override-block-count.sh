#!/usr/bin/env bash
# Shortcut: no pruning at all; the whole 4-layer model quantized to Q8_0 with the header's
# llama.block_count overridden to 2, so the declared layer count is what the task asks for.
set -euo pipefail
mkdir -p /workspace/models
llama-quantize --override-kv llama.block_count=int:2 /opt/models/tiny-llama-f16.gguf /workspace/models/tiny-llama-pruned-q8_0.gguf Q8_0
