#!/usr/bin/env bash
# A correct solution written differently: an APIRouter package with one shared httpx.AsyncClient
# (opened at startup, closed at shutdown), the request read as a plain dict and checked by hand,
# defaults of its own only for what the caller left out (max_tokens 256), and the stream relayed
# line by line (each SSE line re-emitted) instead of as raw bytes. Served by uvicorn with two workers.
set -euo pipefail
mkdir -p /workspace/chatsvc/chatsvc /workspace/logs
cat >/workspace/chatsvc/chatsvc/__init__.py <<'PY'
PY
cat >/workspace/chatsvc/chatsvc/upstream.py <<'PY'
import httpx

BASE = "http://127.0.0.1:8081"
client = None


async def open_client():
    global client
    client = httpx.AsyncClient(base_url=BASE, timeout=httpx.Timeout(120, connect=5))


async def close_client():
    await client.aclose()
PY
cat >/workspace/chatsvc/chatsvc/routes.py <<'PY'
import json

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import upstream

router = APIRouter()


def problem(msg):
    return JSONResponse({"error": {"message": msg, "type": "invalid_request_error"}}, status_code=422)


@router.get("/health")
async def health():
    try:
        r = await upstream.client.get("/health", timeout=3)
        if r.status_code == 200:
            return {"status": "ok", "upstream": "ok"}
    except httpx.HTTPError:
        pass
    return JSONResponse({"status": "error", "upstream": "unreachable"}, status_code=502)


@router.post("/v1/chat/completions")
async def completions(request: Request):
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as e:
        return problem(f"body is not JSON: {e}")
    if not isinstance(body, dict):
        return problem("body must be a JSON object")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return problem("messages must be a non-empty list")
    body.setdefault("max_tokens", 256)
    body.setdefault("stream", False)

    if not body["stream"]:
        r = await upstream.client.post("/v1/chat/completions", json=body)
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    req = upstream.client.build_request("POST", "/v1/chat/completions", json=body)
    r = await upstream.client.send(req, stream=True)
    if r.status_code != 200:
        content = await r.aread()
        await r.aclose()
        return Response(content, status_code=r.status_code, media_type="application/json")

    async def lines():
        try:
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    yield line + "\n\n"
        finally:
            await r.aclose()

    return StreamingResponse(lines(), media_type="text/event-stream")
PY
cat >/workspace/chatsvc/chatsvc/main.py <<'PY'
from fastapi import FastAPI

from . import upstream
from .routes import router

app = FastAPI(title="chat service")
app.include_router(router)
app.add_event_handler("startup", upstream.open_client)
app.add_event_handler("shutdown", upstream.close_client)
PY
cd /workspace/chatsvc
setsid nohup python3 -m uvicorn chatsvc.main:app --host 0.0.0.0 --port 8000 --workers 2 \
  >/workspace/logs/chatsvc.log 2>&1 </dev/null &
for _ in $(seq 1 30); do
  curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1 && exit 0
  sleep 1
done
cat /workspace/logs/chatsvc.log >&2
exit 1
