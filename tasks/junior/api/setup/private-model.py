#!/usr/bin/env python3
"""Write this seat's private copy of the model the backend serves: the RMS-norm gains of every
layer multiplied by secret random factors (drawn from the system's entropy, kept nowhere), so
that only the backend, which alone can read the copy, gives its answers. A second llama-server
started by the candidate on the public model file answers differently, however it is configured.

The factors lie within 1 ± SPREAD. Measured on the tiny random-weight model (greedy, 32 tokens,
a 16-hex-digit message): at ±0.15 a private copy answers 36-57 of 60 random messages without a
500, with 25-48 different texts, and 1-5 of 60 answers coincide with the public file's; at ±0.5
some copies collapse (the same text for every message), which would leave the grader no
distinct answers to ask for.

Usage: private-model.py SOURCE.gguf DEST.gguf  (DEST is created 0600; GGUF v2/v3)
"""
import os
import struct
import sys

import numpy as np

SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
GGML_F32 = 0
SPREAD = 0.15


def main(src: str, dest: str) -> None:
    data = bytearray(open(src, "rb").read())
    pos = 0

    def read(fmt):
        nonlocal pos
        (v,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v

    def string():
        nonlocal pos
        n = read("Q")
        s = bytes(data[pos : pos + n]).decode("utf-8")
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = read("I"), read("Q")
            return [value(et) for _ in range(n)]
        return read(SCALAR[t])

    if data[:4] != b"GGUF":
        sys.exit(f"{src}: not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = read("I"), read("Q"), read("Q")
    if version not in (2, 3):
        sys.exit(f"{src}: GGUF version {version} not supported")
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(read("I"))
    tensors = []
    for _ in range(n_tensors):
        name = string()
        dims = [read("Q") for _ in range(read("I"))]
        tensors.append((name, dims, read("I"), read("Q")))
    align = int(meta.get("general.alignment", 32))
    start = (pos + align - 1) // align * align

    rng = np.random.default_rng(int.from_bytes(os.urandom(32), "little"))
    changed = 0
    for name, dims, kind, offset in tensors:
        if kind != GGML_F32 or not name.endswith("norm.weight"):
            continue
        n = int(np.prod(dims))
        at = start + offset
        gains = np.frombuffer(bytes(data[at : at + 4 * n]), dtype="<f4")
        gains = (gains * rng.uniform(1 - SPREAD, 1 + SPREAD, n)).astype("<f4")
        data[at : at + 4 * n] = gains.tobytes()
        changed += 1
    if changed == 0:
        sys.exit(f"{src}: no F32 norm tensors to change")
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    print(f"{dest}: {changed} norm tensors changed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
