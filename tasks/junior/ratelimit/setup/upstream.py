"""考题提供的业务 API（上游服务），只监听 127.0.0.1:9000。
The business API the task provides (the upstream), listening on 127.0.0.1:9000 only."""
from fastapi import FastAPI

app = FastAPI(title="orders-api")


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/api/echo")
def echo(msg: str = ""):
    return {"service": "orders-api", "echo": msg}


@app.get("/api/orders")
def orders():
    return {"service": "orders-api", "orders": [{"id": 1, "item": "GPU hours", "qty": 8}, {"id": 2, "item": "tokens", "qty": 100000}]}
