"""考题提供的业务 API（上游服务），只监听 127.0.0.1:9000。
The business API the task provides (the upstream), listening on 127.0.0.1:9000 only.

/api/echo signs its answer: `sig` is the HMAC-SHA256 of the message under a key in a root-only
file (0600), which this service (run as root) and the grader read and the candidate cannot, so an
answer made up by anything else (nginx returning a canned body) has no valid signature."""
import hashlib
import hmac

from fastapi import FastAPI

KEY_FILE = "/opt/exam/ratelimit/hmac.key"

app = FastAPI(title="orders-api")


def _sign(msg: str) -> str:
    with open(KEY_FILE, "rb") as f:
        key = f.read().strip()
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/api/echo")
def echo(msg: str = ""):
    return {"service": "orders-api", "echo": msg, "sig": _sign(msg)}


@app.get("/api/orders")
def orders():
    return {"service": "orders-api", "orders": [{"id": 1, "item": "GPU hours", "qty": 8}, {"id": 2, "item": "tokens", "qty": 100000}]}
