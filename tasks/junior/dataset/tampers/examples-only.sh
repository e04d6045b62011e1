#!/usr/bin/env bash
# Shortcut: no documents processed; the two example records of the candidate sheet copied into
# the file. Each line is a perfect Alpaca record in perfect UTF-8, but it is not the dataset.
set -euo pipefail
OUT=${OUT:-/workspace/dataset}
mkdir -p "$OUT"
cat > "$OUT/train.jsonl" <<'JSONL'
{"instruction": "如何查看当前运行的版本？", "input": "", "output": "执行 xinghe-gateway --version，或访问 /v1/version 接口。"}
{"instruction": "模型加载很慢，有什么办法加快？", "input": "服务器为 16 核 CPU，内存 64 GB，模型约 8 GB。", "output": "可以把模型文件放在本地 SSD 上，并开启 mmap 加载；首次加载后会使用页缓存，之后重启会快很多。"}
JSONL
# Exit 0 only once the shortcut is really in the file.
python3 -c 'import json, sys; assert len([json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]) == 2' "$OUT/train.jsonl"
