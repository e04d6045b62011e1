#!/usr/bin/env python3
"""The business API the candidate tests (run by the task as root on port 8000): a small answer
service in front of the local model server on 127.0.0.1:8081. Its contract is the one in the
task's instructions; the bearer token is read from the root-only copy the setup wrote.

Usage: business-api.py TOKEN_FILE
"""
import secrets
import sys

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

UPSTREAM = "http://127.0.0.1:8081"
MODEL = "tiny-llama"
TOKEN = open(sys.argv[1]).read().strip() if __name__ == "__main__" else ""

app = FastAPI(title="business-api", docs_url=None, redoc_url=None, openapi_url=None)


def error(status: int, code: str, **extra) -> JSONResponse:
    return JSONResponse({"error": {"code": code, **extra}}, status_code=status)


def invalid_field(body):
    if not isinstance(body, dict):
        return "body"
    q = body.get("question")
    if not isinstance(q, str) or not 1 <= len(q) <= 500:
        return "question"
    m = body.get("max_tokens")
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 128:
        return "max_tokens"
    return None


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.post("/v1/answer")
async def answer(request: Request):
    if not secrets.compare_digest(request.headers.get("authorization", ""), "Bearer " + TOKEN):
        return error(401, "unauthorized")
    try:
        body = await request.json()
    except ValueError:
        body = None
    field = invalid_field(body)
    if field is not None:
        return error(422, "invalid_request", field=field)
    payload = {
        "prompt": body["question"],
        "n_predict": body["max_tokens"],
        "temperature": 0,
        "cache_prompt": False,
        "ignore_eos": True,
    }
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            r = await client.post(f"{UPSTREAM}/completion", json=payload)
        r.raise_for_status()
        out = r.json()
    except (httpx.HTTPError, ValueError):
        return error(502, "upstream_error")
    text = out.get("content") or ""
    completion = int(out.get("tokens_predicted") or 0)
    if not text or not 1 <= completion <= body["max_tokens"]:
        return error(502, "upstream_error")
    return {
        "id": "ans-" + secrets.token_hex(8),
        "model": MODEL,
        "answer": text,
        "usage": {"prompt_tokens": int(out.get("tokens_evaluated") or 0), "completion_tokens": completion},
    }


@app.exception_handler(404)
async def not_found(request, exc):
    return error(404, "not_found")


@app.exception_handler(405)
async def not_allowed(request, exc):
    return error(404, "not_found")


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=8000, log_level="warning")
