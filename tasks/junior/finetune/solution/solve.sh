#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user. The provided script, the
# pretrained base, the domain corpus, embed and fc1 frozen, 4 epochs at lr 0.003.
set -euo pipefail
mkdir -p /workspace/finetune
python3 /opt/exam/finetune/train.py \
  --base /opt/exam/finetune/base.pt \
  --data /workspace/data/domain-train.txt \
  --epochs 4 --lr 0.003 --freeze embed,fc1 \
  --out /workspace/finetune/model.pt \
  --log /workspace/finetune/train-log.jsonl
tail -n 1 /workspace/finetune/train-log.jsonl
