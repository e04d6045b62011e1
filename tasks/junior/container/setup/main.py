"""notes-api: the small FastAPI service the candidate packages (tasks/junior/container)."""
import os
import socket

from fastapi import FastAPI

app = FastAPI(title="notes-api")


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@app.get("/api/echo")
def echo(msg: str = "") -> dict:
    # The container's hostname and uid show where and as whom the answer was produced.
    return {"service": "notes-api", "echo": msg, "hostname": socket.gethostname(), "uid": os.getuid()}
