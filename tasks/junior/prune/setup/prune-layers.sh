#!/usr/bin/env bash
# 预置剪枝脚本：按预设删除 LLaMA 模型的指定 Transformer 层，输出 F16 精度的 GGUF 文件。
# Preset pruning script: drops the preset transformer layers of a LLaMA model and writes an F16 GGUF.
#
# 用法 usage: prune-layers.sh <输入 input.gguf> <输出 output.gguf>
# 预设 preset: 删除第 1、2 层（从 0 开始编号），其余各层重新连续编号。
#              drop layers 1 and 2 (numbered from 0); the remaining layers are renumbered.
set -euo pipefail
PRESET_LAYERS="1,2"
if [ "$#" -ne 2 ]; then
  echo "用法 usage: $0 <input.gguf> <output.gguf>" >&2
  exit 2
fi
in="$1"
out="$2"
if [ ! -f "$in" ]; then
  echo "输入文件不存在 input not found: $in" >&2
  exit 1
fi
if [ "$(readlink -f "$in")" = "$(readlink -f "$out" 2>/dev/null || true)" ]; then
  echo "输出不能覆盖输入 output must not overwrite the input" >&2
  exit 1
fi
echo "剪枝 pruning: 删除层 dropping layers ${PRESET_LAYERS} → ${out} (F16)"
# 仅剪枝、不改变精度：输出类型与源模型相同（F16）。Prune only; the precision stays F16.
exec llama-quantize --prune-layers "${PRESET_LAYERS}" "$in" "$out" F16
