#!/usr/bin/env python3
"""Write the tiny GGUF fixtures used by the GGUF parser tests.

Usage: PYTHONPATH=<llama.cpp>/gguf-py python3 make-fixture.py [out-dir]

<llama.cpp> is the source tree shipped in the node-llama-cpp npm package (llama/gitRelease.bundle,
cloned with git). Weights are random with a fixed seed, so the files are reproducible.

- tiny-llama-q8_0.gguf: llama architecture, 2 blocks, width 32, FFN 64, vocab 32; 2-D weights
  in Q8_0 except output.weight in F16, norms in F32; general.file_type = 7 (MOSTLY_Q8_0).
- tiny-inconsistent.gguf: says block_count = 3 but holds blocks 0 and 2 only (a bad prune).
"""
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
rng = np.random.default_rng(20240601)
EMB, FFN, VOCAB = 32, 64, 32


def weights(rows: int, cols: int) -> np.ndarray:
    return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)


def add_quantized(w: gguf.GGUFWriter, name: str, a: np.ndarray, qtype: T) -> None:
    w.add_tensor(name, quantize(a, qtype), raw_dtype=qtype)


def header(w: gguf.GGUFWriter, blocks: int, ftype: int) -> None:
    w.add_name("deploylab tiny fixture")
    w.add_file_type(ftype)
    w.add_context_length(128)
    w.add_embedding_length(EMB)
    w.add_feed_forward_length(FFN)
    w.add_block_count(blocks)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_rope_dimension_count(EMB // 4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(VOCAB - 3)]
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([2, 3, 3] + [6] * (VOCAB - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)


def block(w: gguf.GGUFWriter, i: int, qtype: T) -> None:
    w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(EMB, dtype=np.float32))
    for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
        add_quantized(w, f"blk.{i}.{t}.weight", weights(EMB, EMB), qtype)
    w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(EMB, dtype=np.float32))
    add_quantized(w, f"blk.{i}.ffn_gate.weight", weights(FFN, EMB), qtype)
    add_quantized(w, f"blk.{i}.ffn_up.weight", weights(FFN, EMB), qtype)
    add_quantized(w, f"blk.{i}.ffn_down.weight", weights(EMB, FFN), qtype)


def write(w: gguf.GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


w = gguf.GGUFWriter(out / "tiny-llama-q8_0.gguf", "llama")
header(w, 2, gguf.LlamaFileType.MOSTLY_Q8_0)
add_quantized(w, "token_embd.weight", weights(VOCAB, EMB), T.Q8_0)
for i in range(2):
    block(w, i, T.Q8_0)
w.add_tensor("output_norm.weight", np.ones(EMB, dtype=np.float32))
w.add_tensor("output.weight", weights(VOCAB, EMB).astype(np.float16))
write(w)

w = gguf.GGUFWriter(out / "tiny-inconsistent.gguf", "llama")
header(w, 3, gguf.LlamaFileType.ALL_F32)
w.add_tensor("token_embd.weight", weights(VOCAB, EMB))
for i in (0, 2):
    w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(EMB, dtype=np.float32))
    w.add_tensor(f"blk.{i}.attn_q.weight", weights(EMB, EMB))
w.add_tensor("output_norm.weight", np.ones(EMB, dtype=np.float32))
write(w)
