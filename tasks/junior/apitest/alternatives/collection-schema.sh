#!/usr/bin/env bash
# Alternative: bearer auth set once on the collection ({{token}}), requests in folders, and one
# collection-level test script that branches on the request name and checks each response with a
# JSON Schema (pm.response.to.have.jsonSchema).
set -euo pipefail
mkdir -p /workspace/apitest
cat >/workspace/apitest/collection.json <<'JSON'
{
  "info": { "name": "business-api (schemas)", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json" },
  "auth": { "type": "bearer", "bearer": [{ "key": "token", "value": "{{token}}", "type": "string" }] },
  "event": [
    {
      "listen": "test",
      "script": {
        "type": "text/javascript",
        "exec": [
          "const err = (code, field) => ({ type: 'object', required: ['error'], properties: { error: field ? { type: 'object', required: ['code', 'field'], properties: { code: { const: code }, field: { const: field } } } : { type: 'object', required: ['code'], properties: { code: { const: code } } } } });",
          "const expected = {",
          "  'GET health': { status: 200, schema: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } } },",
          "  'POST answer': { status: 200, schema: { type: 'object', required: ['id', 'model', 'answer', 'usage'], properties: {",
          "    id: { type: 'string', minLength: 1 }, model: { const: 'tiny-llama' }, answer: { type: 'string', minLength: 1 },",
          "    usage: { type: 'object', required: ['prompt_tokens', 'completion_tokens'], properties: { prompt_tokens: { type: 'integer', minimum: 1 }, completion_tokens: { type: 'integer', minimum: 1, maximum: 12 } } } } } },",
          "  'POST answer, wrong token': { status: 401, schema: err('unauthorized') },",
          "  'POST answer, no token': { status: 401, schema: err('unauthorized') },",
          "  'POST answer, question too long': { status: 422, schema: err('invalid_request', 'question') },",
          "  'POST answer, max_tokens not an integer': { status: 422, schema: err('invalid_request', 'max_tokens') }",
          "};",
          "const want = expected[pm.info.requestName];",
          "pm.test(pm.info.requestName + ': known case', () => pm.expect(want, 'an expectation for this request').to.exist);",
          "if (want) {",
          "  pm.test(pm.info.requestName + ': status', () => pm.expect(pm.response.code).to.equal(want.status));",
          "  pm.test(pm.info.requestName + ': body schema', () => pm.response.to.have.jsonSchema(want.schema));",
          "}"
        ]
      }
    }
  ],
  "item": [
    {
      "name": "service",
      "item": [
        { "name": "GET health", "request": { "auth": { "type": "noauth" }, "method": "GET", "url": "{{baseUrl}}/health" } }
      ]
    },
    {
      "name": "answers",
      "item": [
        {
          "name": "POST answer",
          "request": {
            "method": "POST",
            "header": [{ "key": "Content-Type", "value": "application/json" }],
            "body": { "mode": "raw", "raw": "{\"question\": \"Name one HTTP status code.\", \"max_tokens\": 12}" },
            "url": "{{baseUrl}}/v1/answer"
          }
        }
      ]
    },
    {
      "name": "errors",
      "item": [
        {
          "name": "POST answer, wrong token",
          "request": {
            "auth": { "type": "bearer", "bearer": [{ "key": "token", "value": "definitely-not-{{token}}", "type": "string" }] },
            "method": "POST",
            "header": [{ "key": "Content-Type", "value": "application/json" }],
            "body": { "mode": "raw", "raw": "{\"question\": \"hi\", \"max_tokens\": 4}" },
            "url": "{{baseUrl}}/v1/answer"
          }
        },
        {
          "name": "POST answer, no token",
          "request": {
            "auth": { "type": "noauth" },
            "method": "POST",
            "header": [{ "key": "Content-Type", "value": "application/json" }],
            "body": { "mode": "raw", "raw": "{\"question\": \"hi\", \"max_tokens\": 4}" },
            "url": "{{baseUrl}}/v1/answer"
          }
        },
        {
          "name": "POST answer, question too long",
          "event": [{ "listen": "prerequest", "script": { "type": "text/javascript", "exec": [
            "pm.variables.set('longQuestion', 'q'.repeat(501));"
          ] } }],
          "request": {
            "method": "POST",
            "header": [{ "key": "Content-Type", "value": "application/json" }],
            "body": { "mode": "raw", "raw": "{\"question\": \"{{longQuestion}}\", \"max_tokens\": 4}" },
            "url": "{{baseUrl}}/v1/answer"
          }
        },
        {
          "name": "POST answer, max_tokens not an integer",
          "request": {
            "method": "POST",
            "header": [{ "key": "Content-Type", "value": "application/json" }],
            "body": { "mode": "raw", "raw": "{\"question\": \"hi\", \"max_tokens\": \"four\"}" },
            "url": "{{baseUrl}}/v1/answer"
          }
        }
      ]
    }
  ]
}
JSON
python3 -c 'import json; json.load(open("/workspace/apitest/collection.json"))'
