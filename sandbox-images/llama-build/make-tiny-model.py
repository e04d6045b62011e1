#!/usr/bin/env python3
"""Write tiny, real, random-weight GGUF models for the exam sandboxes.

They load and run in llama.cpp (quantize, serve, benchmark) in well under a second on a CPU, but
know nothing: answers are meaningless text made of real tokens. Every value comes from a fixed
seed and gguf-py writes keys and tensors in a fixed order, so the files are byte-identical on every
build and their SHA-256 sums (in manifest.json) can be checked by graders.

Usage: PYTHONPATH=<llama.cpp>/gguf-py make-tiny-model.py OUT_DIR
"""

import hashlib
import json
import os
import sys

import numpy as np

import gguf

SEED = 20240601

# ChatML, so /v1/chat/completions has a template to apply; its markers are spelled in bytes.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def spm_vocab(size: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary: specials, 256 byte-fallback tokens, then plain pieces."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(gguf.TokenType.BYTE)
    pieces = ["\u2581"]
    pieces += ["\u2581" + c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    pieces += list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    pieces += ["\u2581" + w for w in (
        "the of and to in is it that for on with as was are be this by not or at from have an "
        "you can model server token GPU CPU deploy hello world llama quantize").split()]
    # CJK pieces so Chinese prompts do not all fall back to bytes.
    pieces += list("大模型部署工程师你好世界推理服务量化测试的是了在有我")
    seen: set[str] = set()
    for p in pieces:
        if len(tokens) >= size:
            break
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p)
        types.append(gguf.TokenType.NORMAL)
    n = 0
    while len(tokens) < size:  # pad with two-letter pieces to the exact size
        a, b = divmod(n, 26)
        p = "\u2581" + chr(97 + a % 26) + chr(97 + b)
        n += 1
        if p not in seen:
            seen.add(p)
            tokens.append(p)
            types.append(gguf.TokenType.NORMAL)
    # Scores: specials and bytes 0, pieces decreasing so merges prefer earlier ones.
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, [int(t) for t in types]


def write_llama(path: str, *, name: str, vocab: int, layers: int, width: int, ffn: int, heads: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    head_dim = width // heads

    def w(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def norm(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_context_length(2048)
    writer.add_embedding_length(width)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    tokens, scores, types = spm_vocab(vocab)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    # numpy shapes are (out, in); gguf-py reverses them into GGUF's ne order.
    writer.add_tensor("token_embd.weight", w(vocab, width))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", norm(width))
        writer.add_tensor(f"blk.{i}.attn_q.weight", w(width, width))
        writer.add_tensor(f"blk.{i}.attn_k.weight", w(width, width))
        writer.add_tensor(f"blk.{i}.attn_v.weight", w(width, width))
        writer.add_tensor(f"blk.{i}.attn_output.weight", w(width, width))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm(width))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", w(ffn, width))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", w(ffn, width))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", w(width, ffn))
    writer.add_tensor("output_norm.weight", norm(width))
    writer.add_tensor("output.weight", w(vocab, width))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


MODELS = [
    # name, file, parameters
    ("tiny-llama", "tiny-llama-f16.gguf",
     dict(vocab=512, layers=4, width=256, ffn=768, heads=4, seed=SEED)),
]


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    entries = []
    for name, file, params in MODELS:
        path = os.path.join(out, file)
        write_llama(path, name=name, **params)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        entries.append({
            "file": file,
            "name": name,
            "architecture": "llama",
            "fileType": "F16",
            "bytes": os.path.getsize(path),
            "sha256": digest,
            "params": {k: v for k, v in params.items() if k != "seed"},
            "seed": params["seed"],
        })
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "make-tiny-model.py", "models": entries}, f, indent=2)
        f.write("\n")
    print(json.dumps(entries, indent=2))


if __name__ == "__main__":
    main()
