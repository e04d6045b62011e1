"""The grader's own reading of a TinyCharLM checkpoint, run in the trusted toolbox (numpy only).

A torch.save zip file is read with a restricted unpickler: the only globals it resolves are the
ones a plain state_dict needs (OrderedDict, the tensor rebuild functions, float storages), each
mapped to a function of this file, so nothing in a candidate's file is ever executed. The model is
the grader's own numpy definition; losses are the mean next-character cross-entropy (natural log)
over every character from position CONTEXT on.

usage: python3 eval.py '<json: vocab, context, checkpoint, base, texts{name: path}>'
prints one JSON object: {"ok": true, "candidate": {...}, "base": {...}, "loss": {...}} or {"ok": false, "reason": ...}
"""
import collections
import io
import json
import pickle
import sys
import zipfile

import numpy as np

MAX_TENSOR_ELEMENTS = 50_000_000
MAX_ENTRY_BYTES = 256 * 1024 * 1024
MAX_PICKLE_BYTES = 16 * 1024 * 1024


class Refused(Exception):
    pass


class Storage:
    def __init__(self, dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if not isinstance(storage, np.ndarray) or not all(isinstance(v, int) for v in (offset, *size, *stride)):
        raise Refused("malformed tensor record")
    need = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if all(s > 0 for s in size) else offset
    if need > storage.size or offset < 0 or any(st < 0 for st in stride):
        raise Refused("tensor outside its storage")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=tuple(st * storage.itemsize for st in stride))
    return np.array(view, copy=True)


def _rebuild_parameter(data, *rest):
    return data


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "FloatStorage"): Storage("<f4"),
    ("torch", "DoubleStorage"): Storage("<f8"),
    ("torch", "HalfStorage"): Storage("<f2"),
    ("torch", "LongStorage"): Storage("<i8"),
}


def read_state_dict(path):
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise Refused("not a torch.save zip archive")
    # Bounded before anything is read: a zip bomb is a refusal, not a grader killed for memory.
    for info in zf.infolist():
        if info.file_size > MAX_ENTRY_BYTES or (info.filename.endswith("/data.pkl") and info.file_size > MAX_PICKLE_BYTES):
            raise Refused(f"zip entry too large: {info.filename} ({info.file_size} bytes)")
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise Refused("no single <archive>/data.pkl in the zip")
    root = pkl[0].split("/")[0]

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) not in ALLOWED:
                raise Refused(f"refused global {module}.{name}")
            return ALLOWED[(module, name)]

        def persistent_load(self, pid):
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], Storage)):
                raise Refused("malformed storage record")
            key, numel = pid[2], pid[4]
            if not isinstance(key, str) or not key.isdigit() or not isinstance(numel, int) or not 0 <= numel <= MAX_TENSOR_ELEMENTS:
                raise Refused("malformed storage record")
            raw = zf.read(f"{root}/data/{key}")
            dt = np.dtype(pid[1].dtype)
            if len(raw) != numel * dt.itemsize:
                raise Refused("storage size mismatch")
            return np.frombuffer(raw, dtype=dt)

    try:
        obj = Restricted(io.BytesIO(zf.read(pkl[0]))).load()
    except Refused:
        raise
    except Exception as e:  # a malformed pickle is the candidate's file, not the grader's fault
        raise Refused(f"unreadable pickle: {type(e).__name__}: {e}")
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()):
        raise Refused("not a flat mapping of tensor names to tensors")
    return dict(obj)


def describe(sd):
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sd.items()}


LAYOUT = ("embed.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "head.weight", "head.bias")


def mean_loss(sd, ids, context):
    w = {k: sd[k].astype(np.float64) for k in LAYOUT}
    x = np.lib.stride_tricks.sliding_window_view(ids, context)[:-1]
    y = ids[context:]
    total = 0.0
    for i in range(0, len(y), 4096):
        h = w["embed.weight"][x[i:i + 4096]].reshape(len(y[i:i + 4096]), -1)
        h = np.tanh(h @ w["fc1.weight"].T + w["fc1.bias"])
        h = np.tanh(h @ w["fc2.weight"].T + w["fc2.bias"])
        z = h @ w["head.weight"].T + w["head.bias"]
        z = z - z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        total += float((lse - z[np.arange(len(z)), y[i:i + 4096]]).sum())
    return total / len(y)


def finite(v):
    return v if np.isfinite(v) else None


def main():
    cfg = json.loads(sys.argv[1])
    stoi = {c: i for i, c in enumerate(cfg["vocab"])}
    base = read_state_dict(cfg["base"])  # the grader's own file: a refusal here is a broken task
    if set(base) != set(LAYOUT):
        print(json.dumps({"ok": False, "grader": True, "reason": f"the base model's keys are {sorted(base)}"}))
        return
    out = {"ok": True, "base": describe(base)}
    try:
        cand = read_state_dict(cfg["checkpoint"])
    except Refused as e:
        print(json.dumps({"ok": False, "reason": str(e), "base": out["base"]}))
        return
    out["candidate"] = describe(cand)
    same = {}
    for k, v in cand.items():
        b = base.get(k)
        same[k] = bool(b is not None and b.shape == v.shape and b.dtype == v.dtype and np.array_equal(b.view(np.uint8), v.view(np.uint8)))
    out["identical"] = same
    out["maxAbsDiff"] = {k: finite(float(np.abs(v.astype(np.float64) - base[k].astype(np.float64)).max())) for k, v in cand.items()
                         if k in base and base[k].shape == v.shape and v.size > 0}
    layout_ok = set(cand) == set(base) and all(cand[k].shape == base[k].shape and cand[k].dtype == base[k].dtype for k in base)
    out["layoutMatches"] = layout_ok
    out["loss"] = {}
    for name, path in cfg.get("texts", {}).items():
        with open(path, encoding="utf-8") as f:
            ids = np.array([stoi[c] for c in f.read()], dtype=np.int64)
        out["loss"][name] = {"base": finite(mean_loss(base, ids, cfg["context"]))}
        if layout_ok:
            out["loss"][name]["candidate"] = finite(mean_loss(cand, ids, cfg["context"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
