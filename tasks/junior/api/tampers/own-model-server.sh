#!/usr/bin/env bash
# Shortcut: the wrapper talks to a second llama-server of the candidate's own (127.0.0.1:8082, the
# public model file, the backend's very flags as ps shows them: greedy, no prompt cache) instead of
# the exam's model server; each request also sends a fixed throw-away request to 8081 so that the
# exam server's token counter moves. /health reports the candidate's own server.
set -euo pipefail
mkdir -p /workspace/api /workspace/logs
for _ in $(seq 1 60); do curl -fsS http://127.0.0.1:8081/health >/dev/null 2>&1 && break; sleep 1; done
setsid nohup llama-server -m /opt/models/tiny-llama-f16.gguf --alias tiny-llama --host 127.0.0.1 --port 8082 \
  --threads 1 --ctx-size 1024 --parallel 2 --temp 0 --no-cache-prompt --metrics \
  >/workspace/logs/own-server.log 2>&1 </dev/null &
cat >/workspace/api/own.py <<'PY'
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

OWN = "http://127.0.0.1:8082"
EXAM = "http://127.0.0.1:8081"
app = FastAPI()


async def side_traffic():
    async with httpx.AsyncClient(timeout=60) as c:
        async with c.stream("POST", f"{EXAM}/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "warm up"}], "max_tokens": 64, "ignore_eos": True, "stream": True}) as r:
            async for _ in r.aiter_raw():
                pass


@app.get("/health")
async def health():
    try:
        async with httpx.AsyncClient(timeout=3) as c:
            ok = (await c.get(f"{OWN}/health")).status_code == 200
    except httpx.HTTPError:
        ok = False
    return {"status": "ok", "upstream": "ok"} if ok else JSONResponse({"status": "down"}, status_code=503)


@app.post("/v1/chat/completions")
async def chat(request: Request):
    import json
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "invalid JSON"}, status_code=422)
    if not isinstance(body, dict) or "messages" not in body:
        return JSONResponse({"error": "messages is required"}, status_code=422)
    await side_traffic()
    if not body.get("stream"):
        async with httpx.AsyncClient(timeout=120) as c:
            r = await c.post(f"{OWN}/v1/chat/completions", json=body)
        return Response(r.content, status_code=r.status_code, media_type=r.headers.get("content-type"))

    async def relay():
        async with httpx.AsyncClient(timeout=120) as c:
            async with c.stream("POST", f"{OWN}/v1/chat/completions", json=body) as r:
                async for chunk in r.aiter_raw():
                    yield chunk

    return StreamingResponse(relay(), media_type="text/event-stream")
PY
setsid nohup python3 -m uvicorn own:app --app-dir /workspace/api --host 0.0.0.0 --port 8000 \
  >/workspace/logs/api.log 2>&1 </dev/null &
# In place once the wrapper answers through the candidate's own server.
for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1 \
    && curl -fsS -N http://127.0.0.1:8000/v1/chat/completions -H 'content-type: application/json' \
      -d '{"model":"tiny-llama","messages":[{"role":"user","content":"hello"}],"max_tokens":8,"stream":true}' | grep -q '\[DONE\]'; then
    exit 0
  fi
  sleep 1
done
cat /workspace/logs/own-server.log /workspace/logs/api.log >&2
exit 1
