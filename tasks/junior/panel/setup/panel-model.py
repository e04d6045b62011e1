#!/usr/bin/env python3
"""Write this seat's private copy of the model the backend serves.

Two changes to a copy of the public file, made in place through gguf-py's reader (memory-mapped,
so the layout stays byte for byte the same):

- Byte-fallback tokens (type BYTE) are retyped NORMAL. The random-weight model samples stray byte
  tokens whose bytes are no valid UTF-8 on their own, and llama-server answers such a reply with
  HTTP 500; as NORMAL tokens they come out as their text ("<0xE5>"), so sampled chat (temperature
  above 0, which the page sends) always answers. The tokenizer still finds them by their text.
- The RMS-norm gains of every layer are multiplied by secret random factors within 1 +/- SPREAD
  (drawn from the system's entropy, kept nowhere), as the api task's private copy does: only the
  backend, which alone can read this copy, gives its answers, so a second llama-server of the
  candidate's own on the public file answers differently however it is configured.

Usage: panel-model.py SOURCE.gguf DEST.gguf  (DEST is created 0600)
"""
import os
import shutil
import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType, TokenType

SPREAD = 0.15


def main(src: str, dest: str) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out)
    reader = GGUFReader(dest, "r+")

    field = reader.fields.get("tokenizer.ggml.token_type")
    if field is None:
        sys.exit(f"{src}: no tokenizer.ggml.token_type")
    retyped = 0
    for i in field.data:
        part = field.parts[i]
        if int(part[0]) == TokenType.BYTE:
            part[0] = TokenType.NORMAL
            retyped += 1

    rng = np.random.default_rng(int.from_bytes(os.urandom(32), "little"))
    changed = 0
    for t in reader.tensors:
        if t.tensor_type != GGMLQuantizationType.F32 or not t.name.endswith("norm.weight"):
            continue
        t.data[...] = (t.data * rng.uniform(1 - SPREAD, 1 + SPREAD, t.data.shape)).astype(np.float32)
        changed += 1
    if changed == 0:
        sys.exit(f"{src}: no F32 norm tensors to change")
    reader.data.flush()
    print(f"{dest}: {retyped} byte tokens retyped, {changed} norm tensors changed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
