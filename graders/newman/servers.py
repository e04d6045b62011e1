#!/usr/bin/env python3
"""The grader's own servers of the apitest business API contract (stdlib only), one per run:
`control` keeps the contract exactly (answers made deterministically, no model); each mutant
breaks one thing of it and is otherwise the same server, byte for byte (same headers, same
shapes), so a collection can tell them apart only by testing what the contract says.

Usage: servers.py VARIANT PORT TOKEN   (prints "ready" once listening on 127.0.0.1:PORT)

The contract:
  GET  /health     -> 200 {"status": "ok"}
  POST /v1/answer  (Authorization: Bearer TOKEN; body {"question": str 1..500, "max_tokens": int 1..128})
                   -> 200 {"id", "model": "tiny-llama", "answer": non-empty, "usage": {"prompt_tokens" > 0,
                           "completion_tokens" 1..max_tokens}}
                   missing or wrong token -> 401 {"error": {"code": "unauthorized"}}
                   invalid body -> 422 {"error": {"code": "invalid_request", "field": NAME}}
                   (the token is checked first; NAME is the first invalid of question, max_tokens,
                   or "body" when the body is not a JSON object)
  anything else    -> 404 {"error": {"code": "not_found"}}
"""
import hashlib
import http.server
import json
import secrets
import sys

MODEL = "tiny-llama"
WORDS = ["alpha", "bravo", "delta", "echo", "kilo", "lima", "nova", "oscar", "sierra", "tango", "vega", "zulu"]

STATUS_MUTANTS = {
    "auth-not-enforced",  # a missing or wrong token is answered like a right one
    "any-token-accepted",  # a missing token is refused, but any token at all is taken
    "forbidden-for-401",  # 403 where the contract says 401 (same body)
    "server-error-for-422",  # 500 where the contract says 422 (same body)
    "ok-for-422",  # 200 with the error body for invalid input
}
BODY_MUTANTS = {
    "no-completion-tokens",  # usage.completion_tokens left out
    "too-many-tokens",  # completion_tokens (and the answer) one more than max_tokens
    "wrong-model",  # another model name
    "empty-answer",  # answer ""
    "no-error-field",  # error.field left out of the 422 body
    "wrong-error-field",  # error.field names another field than the invalid one
}
VARIANTS = {"control"} | STATUS_MUTANTS | BODY_MUTANTS


def answer_for(question: str, max_tokens: int) -> list:
    """Words drawn from the question's hash: the same question, the same answer."""
    h = hashlib.sha256(question.encode("utf-8")).digest()
    n = 1 + h[0] % max_tokens
    return [WORDS[h[1 + i % 31] % len(WORDS)] for i in range(n)]


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


def make_handler(variant: str, token: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self) -> str:
            return "uvicorn"

        def reply(self, status: int, obj) -> None:
            data = json.dumps(obj, separators=(",", ":")).encode("utf-8")
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def read_body(self) -> bytes:
            n = int(self.headers.get("content-length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def do_GET(self) -> None:
            self.read_body()
            if self.path.split("?")[0] == "/health":
                self.reply(200, {"status": "ok"})
            else:
                self.reply(404, {"error": {"code": "not_found"}})

        def do_POST(self) -> None:
            raw = self.read_body()
            if self.path.split("?")[0] != "/v1/answer":
                self.reply(404, {"error": {"code": "not_found"}})
                return
            given = self.headers.get("authorization") or ""
            authorized = secrets.compare_digest(given, "Bearer " + token)
            if variant == "any-token-accepted":
                authorized = given.startswith("Bearer ") and len(given) > len("Bearer ")
            if not authorized and variant != "auth-not-enforced":
                self.reply(403 if variant == "forbidden-for-401" else 401, {"error": {"code": "unauthorized"}})
                return
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = None
            field = invalid_field(body)
            if field is not None:
                err = {"code": "invalid_request", "field": field}
                if variant == "no-error-field":
                    del err["field"]
                elif variant == "wrong-error-field":
                    err["field"] = "question" if field != "question" else "max_tokens"
                status = {"server-error-for-422": 500, "ok-for-422": 200}.get(variant, 422)
                self.reply(status, {"error": err})
                return
            max_tokens = body["max_tokens"]
            words = answer_for(body["question"], max_tokens)
            if variant == "too-many-tokens":
                words = (words * (max_tokens + 1))[: max_tokens + 1]
            usage = {"prompt_tokens": 4 + len(body["question"].split()), "completion_tokens": len(words)}
            if variant == "no-completion-tokens":
                del usage["completion_tokens"]
            self.reply(200, {
                "id": "ans-" + secrets.token_hex(8),
                "model": "tiny-llama-2" if variant == "wrong-model" else MODEL,
                "answer": "" if variant == "empty-answer" else " ".join(words),
                "usage": usage,
            })

        def do_PUT(self) -> None:
            self.read_body()
            self.reply(404, {"error": {"code": "not_found"}})

        do_DELETE = do_PATCH = do_PUT

        def log_message(self, *args) -> None:
            pass

    return Handler


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] not in VARIANTS:
        sys.exit("usage: servers.py VARIANT PORT TOKEN; VARIANT one of " + ", ".join(sorted(VARIANTS)))
    variant, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), make_handler(variant, token))
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
