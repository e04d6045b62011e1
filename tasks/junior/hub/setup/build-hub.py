#!/usr/bin/env python3
"""Build this seat's offline model hub from the image's tiny model.

Four model repositories, laid out like a Hugging Face repo (README.md model card with a YAML
header, the GGUF files, SHA256SUMS), served twice: at the hub's root and under /mirror-b/. Each
repo is a model of its own: the RMS-norm gains are scaled by random factors drawn per repo and per
seat (so no file can be made before the seat exists, and the repos answer differently), and the
facts its card states are written into the file too (general.license, general.languages,
llama.context_length, general.file_type). One main copy of the file the business need calls for is
damaged (one flipped bit in its tensor data; it still loads): only its SHA-256 tells it apart.

The grader's copy of that file and a manifest of its digest go to PRIVATE (root only).

Usage: build-hub.py SOURCE.gguf WWW PRIVATE
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

ORG = "tinylab"
SPREAD = 0.15
# repo, license, languages, context, quant presets, summary (zh / en)
REPOS = [
    ("lark-chat", "apache-2.0", ["zh"], 4096, ["F16", "Q8_0", "Q4_K_M"],
     "中文对话模型，可商用。", "A Chinese chat model, commercial use allowed."),
    ("lark-chat-preview", "cc-by-nc-4.0", ["zh"], 4096, ["Q8_0", "Q4_K_M"],
     "中文对话模型预览版，仅限研究与非商业用途。", "A preview of a Chinese chat model, research and non-commercial use only."),
    ("lark-chat-mini", "apache-2.0", ["zh"], 1024, ["Q8_0"],
     "中文对话模型精简版，可商用，上下文较短。", "A compact Chinese chat model, commercial use allowed, short context."),
    ("wren-chat", "apache-2.0", ["en"], 4096, ["F16", "Q8_0"],
     "英文对话模型，可商用。", "An English chat model, commercial use allowed."),
]
ANSWER = ("lark-chat", "Q8_0")
BITS = {"F16": "16", "Q8_0": "8", "Q4_K_M": "4"}

SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
GGML_F32 = 0


def parse(data):
    pos = 0

    def read(fmt):
        nonlocal pos
        (v,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v

    def string():
        nonlocal pos
        n = read("Q")
        s = bytes(data[pos:pos + n]).decode("utf-8")
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = read("I"), read("Q")
            return (et, [value(et) for _ in range(n)])
        return read(SCALAR[t])

    if data[:4] != b"GGUF":
        sys.exit("not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = read("I"), read("Q"), read("Q")
    if version != 3:
        sys.exit(f"GGUF version {version} not supported")
    kv = []
    for _ in range(n_kv):
        key = string()
        t = read("I")
        kv.append((key, t, value(t)))
    tensors = []
    for _ in range(n_tensors):
        name = string()
        dims = [read("Q") for _ in range(read("I"))]
        tensors.append((name, dims, read("I"), read("Q")))
    meta = {k: v for k, _, v in kv}
    align = int(meta.get("general.alignment", 32))
    start = (pos + align - 1) // align * align
    return kv, tensors, align, start


def serialize(kv, tensors, align, blob):
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))

    def s(x):
        b = x.encode("utf-8")
        out.extend(struct.pack("<Q", len(b)) + b)

    def v(t, x):
        if t == 8:
            s(x)
        elif t == 9:
            et, items = x
            out.extend(struct.pack("<IQ", et, len(items)))
            for i in items:
                v(et, i)
        else:
            out.extend(struct.pack("<" + SCALAR[t], x))

    for key, t, x in kv:
        s(key)
        out.extend(struct.pack("<I", t))
        v(t, x)
    for name, dims, kind, offset in tensors:
        s(name)
        out.extend(struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims))
        out.extend(struct.pack("<IQ", kind, offset))
    out.extend(b"\0" * ((-len(out)) % align))
    return bytes(out) + blob


def variant(src_data, name, license_, languages, context):
    kv, tensors, align, start = parse(src_data)
    blob = bytearray(src_data[start:])
    rng = np.random.default_rng(int.from_bytes(os.urandom(32), "little"))
    for tname, dims, kind, offset in tensors:
        if kind == GGML_F32 and tname.endswith("norm.weight"):
            n = int(np.prod(dims))
            g = np.frombuffer(bytes(blob[offset:offset + 4 * n]), dtype="<f4")
            blob[offset:offset + 4 * n] = (g * rng.uniform(1 - SPREAD, 1 + SPREAD, n)).astype("<f4").tobytes()
    set_ = {
        "general.name": (8, name),
        "general.organization": (8, ORG),
        "general.license": (8, license_),
        "general.languages": (9, (8, languages)),
        "llama.context_length": (4, context),
    }
    kv = [(k, *set_.pop(k)) if k in set_ else (k, t, x) for k, t, x in kv]
    kv += [(k, t, x) for k, (t, x) in set_.items()]
    return serialize(kv, tensors, align, bytes(blob))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card(repo, license_, languages, context, files, zh, en):
    rows = "\n".join(f"| `{f}` | {q} | {BITS[q]}-bit | {size / 2**20:.2f} MiB |" for f, q, size in files)
    return f"""---
license: {license_}
language:
{chr(10).join('- ' + l for l in languages)}
library_name: gguf
pipeline_tag: text-generation
tags: [llama, gguf, chat]
context_length: {context}
---

# {ORG}/{repo}

{zh}

{en}

- 架构 architecture: llama, 4 layers, hidden size 256, vocabulary 512
- 上下文长度 context length: {context} tokens
- 许可证 license: `{license_}`
- 语言 languages: {', '.join(languages)}

## 文件 Files

| 文件 file | 量化 quantization | 精度 precision | 大小 size |
|---|---|---|---|
{rows}

校验：`SHA256SUMS`。Checksums: `SHA256SUMS`.
"""


def main(src, www, private):
    src_data = open(src, "rb").read()
    work = os.path.join(private, "build")
    os.makedirs(work, exist_ok=True)
    for repo, license_, languages, context, quants, zh, en in REPOS:
        d = os.path.join(www, ORG, repo)
        m = os.path.join(www, "mirror-b", ORG, repo)
        os.makedirs(d, exist_ok=True)
        os.makedirs(m, exist_ok=True)
        f16 = os.path.join(work, f"{repo}-F16.gguf")
        with open(f16, "wb") as f:
            f.write(variant(src_data, repo, license_, languages, context))
        files, sums = [], []
        for q in quants:
            name = f"{repo}-{q}.gguf"
            built = os.path.join(work, name)
            if q != "F16":
                subprocess.run(["llama-quantize", f16, built, q], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            digest = sha256(built)
            files.append((name, q, os.path.getsize(built)))
            sums.append(f"{digest}  {name}\n")
            shutil.copyfile(built, os.path.join(m, name))
            shutil.copyfile(built, os.path.join(d, name))
            if (repo, q) == ANSWER:
                shutil.copyfile(built, os.path.join(private, "answer.gguf"))
                with open(os.path.join(private, "manifest.json"), "w") as f:
                    f.write('{"models": [{"file": "answer.gguf", "sha256": "%s", "bytes": %d}]}\n' % (digest, os.path.getsize(built)))
                # The main copy loses one bit in the middle of its tensor data.
                _, _, _, start = parse(open(built, "rb").read(1 << 20) + b"")
                bad = os.path.join(d, name)
                size = os.path.getsize(bad)
                at = start + (size - start) // 2
                with open(bad, "r+b") as f:
                    f.seek(at)
                    b = f.read(1)
                    f.seek(at)
                    f.write(bytes([b[0] ^ 0x01]))
        text = card(repo, license_, languages, context, files, zh, en)
        for where in (d, m):
            open(os.path.join(where, "README.md"), "w").write(text)
            open(os.path.join(where, "SHA256SUMS"), "w").writelines(sums)
    shutil.rmtree(work)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
