"""notes-api: the small FastAPI service the candidate packages (tasks/junior/container)."""
import hashlib
import hmac
import os
import socket

from fastapi import FastAPI

# The grader writes a fresh key here in the running app container just before it asks
# /api/echo; the answer carries the HMAC of the message under it, which only a process in this
# container can compute.
KEY_FILE = "/run/notes-api/grader.key"

app = FastAPI(title="notes-api")


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@app.get("/api/echo")
def echo(msg: str = "") -> dict:
    # The container's hostname and uid show where and as whom the answer was produced.
    out = {"service": "notes-api", "echo": msg, "hostname": socket.gethostname(), "uid": os.getuid()}
    try:
        with open(KEY_FILE, "rb") as f:
            out["sig"] = hmac.new(f.read().strip(), msg.encode(), hashlib.sha256).hexdigest()
    except OSError:
        pass
    return out
