#!/usr/bin/env bash
# Shortcut: two real fine-tunes. The weights kept are a quick, weak run (3 epochs at lr 0.001,
# batches of 256); the log put beside them is that of a longer run (5 epochs at lr 0.005) with its
# better-looking losses. Settings and records in the log are all in order.
set -euo pipefail
mkdir -p /workspace/finetune /workspace/other
T=/opt/exam/finetune/train.py
python3 $T --base /opt/exam/finetune/base.pt --data /workspace/data/domain-train.txt --epochs 3 --lr 0.001 --batch-size 256 \
  --freeze embed,fc1 --out /workspace/finetune/model.pt --log /workspace/other/quick-log.jsonl 2>/dev/null
python3 $T --base /opt/exam/finetune/base.pt --data /workspace/data/domain-train.txt --epochs 5 --lr 0.005 \
  --freeze embed,fc1 --out /workspace/other/long.pt --log /workspace/finetune/train-log.jsonl 2>/dev/null
tail -n 1 /workspace/other/quick-log.jsonl /workspace/finetune/train-log.jsonl
