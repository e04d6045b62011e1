#!/usr/bin/env python3
"""Basic fine-tuning of a TinyCharLM checkpoint on a text file (Adam, next-character cross-entropy).

Writes the fine-tuned weights (a state_dict, torch.save) and a training log in JSON Lines:
  {"event": "start", "base": ..., "data": ..., "epochs": N, "lr": LR, "batch_size": B, "freeze": [...], "seed": S}
  {"event": "epoch", "epoch": 1, "train_loss": ...}            one line per epoch (mean loss of its batches)
  {"event": "end", "final_train_loss": ..., "trainable": [...], "frozen": [...]}
final_train_loss: the fine-tuned model's mean cross-entropy over the whole data file, in eval mode.
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LAYERS, TinyCharLM, encode, mean_loss, windows  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--base", required=True, help="pretrained checkpoint to start from (state_dict)")
ap.add_argument("--data", required=True, help="training text (characters of model.VOCAB only)")
ap.add_argument("--epochs", type=int, required=True)
ap.add_argument("--lr", type=float, required=True, help="Adam learning rate")
ap.add_argument("--batch-size", type=int, default=64)
ap.add_argument("--freeze", default="", help=f"comma-separated layers to keep frozen, of: {','.join(LAYERS)}")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--out", required=True, help="where to save the fine-tuned state_dict")
ap.add_argument("--log", required=True, help="where to write the JSON Lines training log")
a = ap.parse_args()

freeze = [s for s in a.freeze.split(",") if s]
unknown = [s for s in freeze if s not in LAYERS]
if unknown:
    ap.error(f"unknown layers: {unknown}")
torch.manual_seed(a.seed)
torch.set_num_threads(1)

model = TinyCharLM()
model.load_state_dict(torch.load(a.base, map_location="cpu", weights_only=True))
for name, p in model.named_parameters():
    p.requires_grad_(name.split(".")[0] not in freeze)
trainable = [n for n, p in model.named_parameters() if p.requires_grad]
frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
with open(a.data, encoding="utf-8") as f:
    ids = encode(f.read())
x, y = windows(ids)
opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=a.lr)

os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
os.makedirs(os.path.dirname(os.path.abspath(a.log)), exist_ok=True)
with open(a.log, "w") as log:
    def emit(**rec):
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), file=sys.stderr)

    emit(event="start", base=os.path.abspath(a.base), data=os.path.abspath(a.data), epochs=a.epochs, lr=a.lr,
         batch_size=a.batch_size, freeze=freeze, seed=a.seed)
    started = time.monotonic()
    for epoch in range(1, a.epochs + 1):
        model.train()
        order = torch.randperm(len(y))
        total, n = 0.0, 0
        for i in range(0, len(y), a.batch_size):
            idx = order[i:i + a.batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        emit(event="epoch", epoch=epoch, train_loss=round(total / n, 6), seconds=round(time.monotonic() - started, 1))
    torch.save(model.state_dict(), a.out)
    emit(event="end", final_train_loss=round(mean_loss(model, ids), 6), trainable=trainable, frozen=frozen)
