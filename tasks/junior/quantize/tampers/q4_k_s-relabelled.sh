#!/usr/bin/env bash
# Shortcut: the smaller Q4_K_S preset, with general.file_type patched in the header from 14
# (Q4_K_S) to 15 (Q4_K_M). Its weights are mostly Q4_K too and its size is in range, so a check
# of the header, the type mix and the size would pass it.
set -euo pipefail
mkdir -p /workspace/models /workspace/tmp
llama-quantize /opt/models/tiny-llama-f16.gguf /workspace/tmp/q4_k_s.gguf Q4_K_S
python3 - /workspace/tmp/q4_k_s.gguf /workspace/models/tiny-llama-q4_k_m.gguf <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
key = b'general.file_type'
at = data.index(struct.pack('<Q', len(key)) + key) + 8 + len(key)
assert struct.unpack_from('<II', data, at) == (4, 14), 'expected a u32 file type 14'
struct.pack_into('<I', data, at + 4, 15)
open(sys.argv[2], 'wb').write(data)
PY
