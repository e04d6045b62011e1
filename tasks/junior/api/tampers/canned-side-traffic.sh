#!/usr/bin/env bash
# Shortcut: a hard-coded OpenAI-shaped reply; each request also sends a throw-away request of the
# handler's own (fixed prompt, more tokens than the reply claims) to the model server on 8081, so
# its token counter moves by more than the reply's usage says. Streaming chunks the same canned text.
set -euo pipefail
mkdir -p /workspace/api /workspace/logs
for _ in $(seq 1 60); do curl -fsS http://127.0.0.1:8081/health >/dev/null 2>&1 && break; sleep 1; done
cat >/workspace/api/canned.py <<'PY'
import json
import time

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

UP = "http://127.0.0.1:8081"
TEXT = "你好，我是本地部署的大语言模型助手。"
app = FastAPI()


async def side_traffic():
    # Streamed, so the random model's stray bytes never turn it into a 500.
    async with httpx.AsyncClient(timeout=60) as c:
        async with c.stream("POST", f"{UP}/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "warm up"}], "max_tokens": 64, "ignore_eos": True, "stream": True}) as r:
            async for _ in r.aiter_raw():
                pass


@app.get("/health")
async def health():
    return {"status": "ok", "upstream": "ok"}


@app.post("/v1/chat/completions")
async def chat(request: Request):
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "invalid JSON"}, status_code=422)
    if not isinstance(body, dict) or "messages" not in body:
        return JSONResponse({"error": "messages is required"}, status_code=422)
    await side_traffic()
    model = body.get("model") or "tiny-llama"
    now = int(time.time())
    if not body.get("stream"):
        return {
            "id": f"chatcmpl-{now}", "object": "chat.completion", "created": now, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
        }

    def sse():
        for i, piece in enumerate([TEXT[j:j + 3] for j in range(0, len(TEXT), 3)]):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            chunk = {"id": f"chatcmpl-{now}", "object": "chat.completion.chunk", "created": now, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
        end = {"id": f"chatcmpl-{now}", "object": "chat.completion.chunk", "created": now, "model": model,
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(end)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream")
PY
setsid nohup python3 -m uvicorn canned:app --app-dir /workspace/api --host 0.0.0.0 --port 8000 \
  >/workspace/logs/api.log 2>&1 </dev/null &
# In place only once the canned reply is served and the side traffic really reaches the backend.
counter() { curl -fsS http://127.0.0.1:8081/metrics | awk '$1 == "llamacpp:tokens_predicted_total" { print $2 }'; }
for _ in $(seq 1 30); do
  curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1 && break
  sleep 1
done
before=$(counter)
reply=$(curl -fsS http://127.0.0.1:8000/v1/chat/completions -H 'content-type: application/json' \
  -d '{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"max_tokens":16}')
after=$(counter)
echo "$reply" | grep -q '本地部署的大语言模型助手' || { echo "canned reply not served: $reply" >&2; exit 1; }
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a - b >= 8) }' || { echo "counter moved $before -> $after" >&2; exit 1; }
