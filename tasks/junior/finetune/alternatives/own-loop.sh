#!/usr/bin/env bash
# Alternative: the candidate's own training loop instead of train.py: the provided model
# definition, AdamW with gradient clipping, embed and fc1 frozen by leaving them out of the
# optimiser, the log written in the documented format with its own final evaluation.
set -euo pipefail
mkdir -p /workspace/finetune
python3 - <<'PY'
import json
import sys

sys.path.insert(0, "/opt/exam/finetune")
import torch
import torch.nn.functional as F
from model import CONTEXT, STOI, TinyCharLM

torch.manual_seed(42)
model = TinyCharLM()
model.load_state_dict(torch.load("/opt/exam/finetune/base.pt", weights_only=True))
data = "/workspace/data/domain-train.txt"
text = open(data, encoding="utf-8").read()
ids = torch.tensor([STOI[c] for c in text])
x = torch.stack([ids[i:i + CONTEXT] for i in range(len(ids) - CONTEXT)])
y = ids[CONTEXT:]
for p in list(model.embed.parameters()) + list(model.fc1.parameters()):
    p.requires_grad = False
params = list(model.fc2.parameters()) + list(model.head.parameters())
opt = torch.optim.AdamW(params, lr=0.004, weight_decay=0.01)
epochs = 3
with open("/workspace/finetune/train-log.jsonl", "w") as log:
    log.write(json.dumps({"event": "start", "data": data, "epochs": epochs, "lr": 0.004, "freeze": ["embed", "fc1"], "optimizer": "AdamW"}) + "\n")
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(y))
        losses = []
        for i in range(0, len(y), 128):
            b = perm[i:i + 128]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(loss.item())
        log.write(json.dumps({"event": "epoch", "epoch": epoch, "train_loss": sum(losses) / len(losses)}) + "\n")
    model.eval()
    with torch.no_grad():
        final = F.cross_entropy(model(x), y).item()
    torch.save(model.state_dict(), "/workspace/finetune/model.pt")
    log.write(json.dumps({"event": "end", "final_train_loss": final}) + "\n")
print(final)
PY
