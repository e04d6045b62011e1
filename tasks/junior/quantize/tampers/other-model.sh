#!/usr/bin/env bash
# Shortcut: a real Q4_K_M, but of another model: here a copy of the source with one block of
# weights zeroed stands for any model the candidate brought along. Type, mix, size and loading are
# all right; only the tensors show it is not the given model.
set -euo pipefail
mkdir -p /workspace/models /workspace/tmp
cp /opt/models/tiny-llama-f16.gguf /workspace/tmp/other-f16.gguf
# 64 KiB of zeros 256 KiB before the end: inside the tensor data, far past the header.
size=$(stat -c %s /workspace/tmp/other-f16.gguf)
dd if=/dev/zero of=/workspace/tmp/other-f16.gguf bs=1 count=65536 seek=$((size - 262144)) conv=notrunc status=none
llama-quantize /workspace/tmp/other-f16.gguf /workspace/models/tiny-llama-q4_k_m.gguf Q4_K_M
