#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
mkdir -p /workspace/models
llama-quantize /opt/models/tiny-llama-f16.gguf /workspace/models/tiny-llama-q4_k_m.gguf Q4_K_M
