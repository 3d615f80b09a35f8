"""The same operation as JSON over HTTP, for the gRPC-vs-REST comparison.

FastAPI on uvicorn (with uvloop and httptools, uvicorn's "standard" extras: REST at
its mainstream best). POST /v1/message {"message": "..."} (the path the proto's
google.api.http rule gives Envoy's transcoder) answers {"message": "Hello I am up and
running ...", "received": true, "replica": "..."}, and an empty message gets 422 like
py-server's INVALID_ARGUMENT.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from grpctest_server.servicer import REPLY_TEMPLATE  # the same reply as py-server

app = FastAPI()


class Message(BaseModel):
    message: str


class MessageResponse(BaseModel):
    message: str
    received: bool
    replica: str


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Readiness, for the benchmark harness."""
    return {"status": "ok"}


@app.post("/v1/message")
async def get_server_response(request: Message) -> MessageResponse:
    if not request.message:
        raise HTTPException(status_code=422, detail="message must not be empty")
    return MessageResponse(
        message=REPLY_TEMPLATE.format(request.message), received=True, replica="rest"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "grpctest_bench.rest_server:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
