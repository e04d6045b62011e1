#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user.
set -euo pipefail
mkdir -p /workspace/api /workspace/logs
cat >/workspace/api/app.py <<'PY'
"""参考答案：FastAPI 封装本地 llama-server 的对话接口。
Reference solution: a FastAPI service in front of the local llama-server."""
from typing import List, Optional

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

UPSTREAM = "http://127.0.0.1:8081"

app = FastAPI(title="chat-api")


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: Optional[str] = None
    messages: List[Message] = Field(..., min_items=1)
    max_tokens: Optional[int] = None
    temperature: Optional[float] = None
    stream: bool = False

    class Config:
        # Pass OpenAI options this model does not name (top_p, stream_options, ...) through.
        extra = "allow"


@app.get("/health")
async def health():
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            r = await client.get(f"{UPSTREAM}/health")
        up = r.status_code == 200
    except httpx.HTTPError:
        up = False
    if up:
        return {"status": "ok", "upstream": "ok"}
    return JSONResponse({"status": "degraded", "upstream": "down"}, status_code=503)


@app.post("/v1/chat/completions")
async def chat(req: ChatRequest):
    payload = req.dict(exclude_none=True)
    if not req.stream:
        async with httpx.AsyncClient(timeout=120) as client:
            r = await client.post(f"{UPSTREAM}/v1/chat/completions", json=payload)
        return JSONResponse(r.json(), status_code=r.status_code)

    async def relay():
        async with httpx.AsyncClient(timeout=120) as client:
            async with client.stream("POST", f"{UPSTREAM}/v1/chat/completions", json=payload) as r:
                async for chunk in r.aiter_raw():
                    yield chunk

    return StreamingResponse(relay(), media_type="text/event-stream")
PY
# setsid + nohup: the service outlives the shell that started it.
setsid nohup python3 -m uvicorn app:app --app-dir /workspace/api --host 0.0.0.0 --port 8000 \
  >/workspace/logs/api.log 2>&1 </dev/null &
for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "the API did not become healthy; see /workspace/logs/api.log" >&2
exit 1
