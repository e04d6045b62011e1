#!/usr/bin/env bash
# Alternative: the provided script, copied to the candidate's own folder, with other allowed
# settings (6 epochs, lr 0.001, batch size 32, another seed).
set -euo pipefail
mkdir -p ~/ft /workspace/finetune
cp /opt/exam/finetune/train.py /opt/exam/finetune/model.py ~/ft/
cd ~/ft
python3 train.py --base=/opt/exam/finetune/base.pt --data=/workspace/data/domain-train.txt \
  --freeze=fc1,embed --epochs=6 --lr=0.001 --batch-size=32 --seed=7 \
  --out=/workspace/finetune/model.pt --log=/workspace/finetune/train-log.jsonl 2>/dev/null
tail -n 1 /workspace/finetune/train-log.jsonl
