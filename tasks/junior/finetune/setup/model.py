"""TinyCharLM: a character-level language model (an MLP over the previous CONTEXT characters).

Layers, in order: embed (character embedding), fc1, fc2 (hidden layers, tanh), head (next-character
logits). Its state_dict keys: embed.weight, fc1.weight, fc1.bias, fc2.weight, fc2.bias,
head.weight, head.bias.
"""
import torch
from torch import nn

VOCAB = " abcdefghijklmnopqrstuvwxyz0123456789.,:;-\n"
CONTEXT = 8
LAYERS = ("embed", "fc1", "fc2", "head")
STOI = {c: i for i, c in enumerate(VOCAB)}


class TinyCharLM(nn.Module):
    def __init__(self, emb=16, hidden=192):
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), emb)
        self.fc1 = nn.Linear(CONTEXT * emb, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, len(VOCAB))

    def forward(self, x):  # x: (batch, CONTEXT) character ids
        h = self.embed(x).flatten(1)
        h = torch.tanh(self.fc1(h))
        h = torch.tanh(self.fc2(h))
        return self.head(h)


def encode(text):
    """Character ids of a text; a character outside VOCAB is an error."""
    bad = sorted({c for c in text if c not in STOI})
    if bad:
        raise ValueError(f"characters outside the vocabulary: {bad!r}")
    return torch.tensor([STOI[c] for c in text], dtype=torch.long)


def windows(ids):
    """Every (previous CONTEXT characters, next character) pair of the text."""
    x = ids.unfold(0, CONTEXT, 1)[:-1]
    y = ids[CONTEXT:]
    return x, y


@torch.no_grad()
def mean_loss(model, ids, batch=4096):
    """Mean cross-entropy (natural log) over every character from position CONTEXT on."""
    model.eval()
    x, y = windows(ids)
    total = 0.0
    for i in range(0, len(y), batch):
        total += nn.functional.cross_entropy(model(x[i:i + batch]), y[i:i + batch], reduction="sum").item()
    return total / len(y)
