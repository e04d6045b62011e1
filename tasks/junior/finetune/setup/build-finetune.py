"""Builds this seat's fine-tuning exam (run once by setup, as root): a TinyCharLM pretrained for a
few seconds on generic English text from a fresh random seed (so no answer exists before the seat
does), the domain training corpus for the candidate, and the grader's root-only copies (the base
model, the training corpus and held-out text of the same domain).

usage: build-finetune.py EXAM_DIR PRIVATE_DIR TRAIN_FILE
"""
import os
import random
import shutil
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import TinyCharLM, encode, mean_loss, windows  # noqa: E402

exam, private, train_file = sys.argv[1:4]
seed = int.from_bytes(os.urandom(8), "big")
rng = random.Random(seed)
torch.manual_seed(seed % (2**63))
torch.set_num_threads(1)

# Generic text: simple English sentences (what the "pretrained" model knows).
SUBJ = "the farmer|a child|my neighbour|the old teacher|our team|the small dog|a traveller|the baker|her brother|the students".split("|")
VERB = "found|carried|painted|watched|cleaned|opened|followed|remembered|visited|built|sold|wanted".split("|")
OBJ = "a red box|the river|some bread|the garden|an old map|the window|a long road|the market|a quiet house|the morning train".split("|")
TAIL = "in the rain|after lunch|with great care|before the winter|near the bridge|every sunday|without a word|at night".split("|")


def generic_line():
    s = f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)}"
    if rng.random() < 0.6:
        s += f" {rng.choice(TAIL)}"
    if rng.random() < 0.3:
        s += f", and {rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)}"
    return s + ".\n"


# The domain: maintenance log lines of a pump station (digits, codes, units the base rarely saw).
UNITS = [f"p-{rng.randint(100, 999)}" for _ in range(6)]
STATE = "ok|ok|ok|warn|fault".split("|")
PARTS = "seal|valve|bearing|filter|impeller".split("|")


def domain_line():
    unit = rng.choice(UNITS)
    s = f"unit {unit}: pressure {rng.randint(1, 9)}.{rng.randint(0, 9)} bar; temp {rng.randint(20, 95)} c; flow {rng.randint(10, 99)} l;"
    st = rng.choice(STATE)
    s += f" status {st}"
    if st != "ok":
        s += f"; check {rng.choice(PARTS)} in {rng.randint(1, 30)} days"
    return s + ".\n"


def text(line, chars):
    out, n = [], 0
    while n < chars:
        out.append(line())
        n += len(out[-1])
    return "".join(out)


generic = text(generic_line, 60_000)
train = text(domain_line, 12_000)
heldout = text(domain_line, 6_000)

model = TinyCharLM()
ids = encode(generic)
x, y = windows(ids)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
started = time.monotonic()
model.train()
for step in range(200):
    idx = torch.randint(0, len(y), (128,))
    loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"pretrained {step + 1} steps in {time.monotonic() - started:.1f}s, generic loss {mean_loss(model, ids):.3f}, "
      f"domain loss {mean_loss(model, encode(heldout)):.3f}", file=sys.stderr)

os.makedirs(private, mode=0o700, exist_ok=True)
torch.save(model.state_dict(), os.path.join(private, "base.pt"))
shutil.copyfile(os.path.join(private, "base.pt"), os.path.join(exam, "base.pt"))
os.chmod(os.path.join(exam, "base.pt"), 0o644)
with open(os.path.join(exam, "generic.txt"), "w") as f:
    f.write(generic)
os.chmod(os.path.join(exam, "generic.txt"), 0o644)
for name, body in (("train.txt", train), ("heldout.txt", heldout)):
    with open(os.path.join(private, name), "w") as f:
        f.write(body)
os.makedirs(os.path.dirname(train_file), exist_ok=True)
with open(train_file, "w") as f:
    f.write(train)
