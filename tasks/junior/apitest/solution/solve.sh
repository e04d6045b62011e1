#!/usr/bin/env bash
# Reference solution: run inside the seat as the candidate user. A Postman collection (v2.1) with
# the environment's {{baseUrl}} and {{token}}, one request per case of the contract, each with
# pm.test assertions on its status and body; then run with newman against the live service.
set -euo pipefail
mkdir -p /workspace/apitest
cat >/workspace/apitest/collection.json <<'JSON'
{
  "info": {
    "name": "business-api",
    "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
  },
  "item": [
    {
      "name": "health",
      "request": { "method": "GET", "url": "{{baseUrl}}/health" },
      "event": [{ "listen": "test", "script": { "type": "text/javascript", "exec": [
        "pm.test('status 200', () => pm.response.to.have.status(200));",
        "pm.test('body {status: ok}', () => pm.expect(pm.response.json()).to.eql({ status: 'ok' }));"
      ] } }]
    },
    {
      "name": "answer",
      "request": {
        "method": "POST",
        "header": [
          { "key": "Authorization", "value": "Bearer {{token}}" },
          { "key": "Content-Type", "value": "application/json" }
        ],
        "body": { "mode": "raw", "raw": "{\"question\": \"What does an API test check?\", \"max_tokens\": 16}" },
        "url": "{{baseUrl}}/v1/answer"
      },
      "event": [{ "listen": "test", "script": { "type": "text/javascript", "exec": [
        "const max = JSON.parse(pm.request.body.raw).max_tokens;",
        "pm.test('status 200', () => pm.response.to.have.status(200));",
        "const b = pm.response.json();",
        "pm.test('id is a non-empty string', () => pm.expect(b.id).to.be.a('string').and.not.empty);",
        "pm.test('model is tiny-llama', () => pm.expect(b.model).to.eql('tiny-llama'));",
        "pm.test('answer is a non-empty string', () => pm.expect(b.answer).to.be.a('string').and.not.empty);",
        "pm.test('prompt_tokens > 0', () => { pm.expect(Number.isInteger(b.usage.prompt_tokens)).to.be.true; pm.expect(b.usage.prompt_tokens).to.be.above(0); });",
        "pm.test('completion_tokens in 1..max_tokens', () => { pm.expect(Number.isInteger(b.usage.completion_tokens)).to.be.true; pm.expect(b.usage.completion_tokens).to.be.within(1, max); });"
      ] } }]
    },
    {
      "name": "wrong token",
      "request": {
        "method": "POST",
        "header": [
          { "key": "Authorization", "value": "Bearer {{token}}-wrong" },
          { "key": "Content-Type", "value": "application/json" }
        ],
        "body": { "mode": "raw", "raw": "{\"question\": \"hello\", \"max_tokens\": 8}" },
        "url": "{{baseUrl}}/v1/answer"
      },
      "event": [{ "listen": "test", "script": { "type": "text/javascript", "exec": [
        "pm.test('status 401', () => pm.response.to.have.status(401));",
        "pm.test('error.code unauthorized', () => pm.expect(pm.response.json().error.code).to.eql('unauthorized'));"
      ] } }]
    },
    {
      "name": "no token",
      "request": {
        "method": "POST",
        "header": [{ "key": "Content-Type", "value": "application/json" }],
        "body": { "mode": "raw", "raw": "{\"question\": \"hello\", \"max_tokens\": 8}" },
        "url": "{{baseUrl}}/v1/answer"
      },
      "event": [{ "listen": "test", "script": { "type": "text/javascript", "exec": [
        "pm.test('status 401', () => pm.response.to.have.status(401));",
        "pm.test('error.code unauthorized', () => pm.expect(pm.response.json().error.code).to.eql('unauthorized'));"
      ] } }]
    },
    {
      "name": "max_tokens out of range",
      "request": {
        "method": "POST",
        "header": [
          { "key": "Authorization", "value": "Bearer {{token}}" },
          { "key": "Content-Type", "value": "application/json" }
        ],
        "body": { "mode": "raw", "raw": "{\"question\": \"hello\", \"max_tokens\": 0}" },
        "url": "{{baseUrl}}/v1/answer"
      },
      "event": [{ "listen": "test", "script": { "type": "text/javascript", "exec": [
        "pm.test('status 422', () => pm.response.to.have.status(422));",
        "const e = pm.response.json().error;",
        "pm.test('error.code invalid_request', () => pm.expect(e.code).to.eql('invalid_request'));",
        "pm.test('error.field max_tokens', () => pm.expect(e.field).to.eql('max_tokens'));"
      ] } }]
    },
    {
      "name": "empty question",
      "request": {
        "method": "POST",
        "header": [
          { "key": "Authorization", "value": "Bearer {{token}}" },
          { "key": "Content-Type", "value": "application/json" }
        ],
        "body": { "mode": "raw", "raw": "{\"question\": \"\", \"max_tokens\": 8}" },
        "url": "{{baseUrl}}/v1/answer"
      },
      "event": [{ "listen": "test", "script": { "type": "text/javascript", "exec": [
        "pm.test('status 422', () => pm.response.to.have.status(422));",
        "const e = pm.response.json().error;",
        "pm.test('error.code invalid_request', () => pm.expect(e.code).to.eql('invalid_request'));",
        "pm.test('error.field question', () => pm.expect(e.field).to.eql('question'));"
      ] } }]
    }
  ]
}
JSON
for _ in $(seq 1 90); do curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1 && break; sleep 1; done
# newman in the seat, or the collection is left for the grader alone.
if command -v newman >/dev/null 2>&1; then
  cd /workspace/apitest && newman run collection.json -e env.json --reporters cli
fi
