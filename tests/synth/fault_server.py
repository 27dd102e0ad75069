"""A small OpenAI-compatible server for fault tests: real recorded answers, faults injected in a seeded pattern.

It answers `/v1/chat/completions` from a recording of the embedded SmolLM2-135M served by `vllm serve` (a JSONL file,
one answer per request body's hash), so a synth run against it needs no engine and runs in seconds. In a seeded
pattern it answers 500 or 429 (with Retry-After), drops the connection, hangs past the client's timeout, or returns a
truncated or non-JSON body. Which request gets which fault depends only on the seed, the request body and how many
times that body has been seen, never on arrival order, so a run's faults are the same on every machine.

Record once, against a real server (see tests/synth/conftest.py for the flags that work on the CPU):

    rm tests/synth/fixtures/openai_answers.jsonl
    python tests/synth/fault_server.py --upstream http://127.0.0.1:8000/v1 \
        --record tests/synth/fixtures/openai_answers.jsonl &
    emopillars synth --backend openai --base-url http://127.0.0.1:8100/v1 --model smollm2-135m --out /tmp/rec \
        --max-passages 1 --max-characters 2 --emotions-per-character 2 --contextless-per-example 1 \
        --max-retries 1 --target-threshold 0 --seed 0      # FAULT_RUN of test_fault_server.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

FAULTS = ("http_500", "http_429", "drop", "hang", "truncated", "not_json")
RETRY_AFTER = "1"  # seconds a 429 asks the client to wait


def body_key(body: dict) -> str:
    """The recording's key of a request: its body as canonical JSON."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def read_answers(path: Path) -> dict[str, dict]:
    answers = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        answers[row.pop("key")] = row
    return answers


class FaultServer:
    """The server and its settings; `with FaultServer(...) as s:` serves on 127.0.0.1 at `s.base_url`.

    Args:
        answers: recorded answers by `body_key` (replay), or None with `upstream` set (record).
        fault_rate: the share of attempts that get a fault, while a body has had fewer than `max_faults`.
        hang_seconds: how long a hung request waits before it answers (longer than the client's timeout).
        stop_after: answer only this many requests, then close the port (a server down for good).
        fail_matching: HTTP 500 to every request whose last message contains this text (one stage always failing).
    """

    def __init__(
        self,
        answers: dict[str, dict] | None = None,
        *,
        seed: int = 0,
        fault_rate: float = 0.0,
        max_faults: int = 2,
        faults: tuple[str, ...] = FAULTS,
        hang_seconds: float = 3.0,
        stop_after: int | None = None,
        fail_matching: str | None = None,
        upstream: str | None = None,
        record: Path | None = None,
        port: int = 0,
        model: str = "smollm2-135m",
    ):
        self.answers = answers if answers is not None else {}
        self.seed, self.fault_rate, self.max_faults, self.faults = seed, fault_rate, max_faults, faults
        self.hang_seconds, self.stop_after, self.fail_matching = hang_seconds, stop_after, fail_matching
        self.upstream, self.record, self.model = upstream, record, model
        self.injected: Counter[str] = Counter()  # faults sent, by kind
        self.served = 0  # answers sent in full
        self.seen: Counter[str] = Counter()  # attempts per request body
        self._lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", port), _handler(self))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fault-server").start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and close the port: later connections are refused (a server down for good)."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def decide(self, body: dict) -> str | None:
        """The fault for this attempt of this body, or None to answer it."""
        key = body_key(body)
        with self._lock:
            attempt = self.seen[key]
            self.seen[key] += 1
            if self.fail_matching and self.fail_matching in body["messages"][-1]["content"]:
                fault = "http_500"
            else:
                rng = random.Random(f"{self.seed}:{key}:{attempt}")
                hit = attempt < self.max_faults and rng.random() < self.fault_rate
                fault = rng.choice(self.faults) if hit else None
            if fault:
                self.injected[fault] += 1
            return fault

    def answer(self, body: dict) -> dict:
        """The completion body for a request: recorded, or fetched from upstream and recorded."""
        key = body_key(body)
        if key not in self.answers:
            if self.upstream is None:
                raise KeyError("request not in the recording")
            data = httpx.post(f"{self.upstream}/chat/completions", json=body, timeout=600).json()
            choice = data["choices"][0]
            row = {"content": choice["message"]["content"], "finish_reason": choice["finish_reason"]}
            row["usage"] = data.get("usage") or {}
            with self._lock:
                self.answers[key] = row
                if self.record is not None:
                    with self.record.open("a", encoding="utf-8") as f:
                        f.write(json.dumps({"key": key, **row}, ensure_ascii=False) + "\n")
        row = self.answers[key]
        return {
            "id": f"chatcmpl-{key[:16]}",
            "object": "chat.completion",
            "model": body.get("model", self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": row["content"]},
                    "finish_reason": row["finish_reason"],
                }
            ],
            "usage": row["usage"],
        }


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that left (timed out, dropped) is part of the test, not news


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a dropped one never poisons a kept-alive pool

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, json.dumps({"object": "list", "data": [{"id": server.model}]}).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, b'{"error": "not found"}')
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fault = server.decide(body)
            if fault in ("drop", "hang"):
                if fault == "hang":  # past the client's timeout, then gone without an answer
                    time.sleep(server.hang_seconds)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "http_500":
                self._send(500, b'{"error": {"message": "injected internal error"}}')
                return
            if fault == "http_429":
                self._send(429, b'{"error": {"message": "injected rate limit"}}', {"Retry-After": RETRY_AFTER})
                return
            if fault == "not_json":
                self._send(200, b"<html><body>502 Bad Gateway</body></html>")
                return
            try:
                payload = json.dumps(server.answer(body)).encode()
            except KeyError as exc:
                self._send(400, json.dumps({"error": {"message": str(exc)}}).encode())
                return
            if fault == "truncated":
                self._send(200, payload[: len(payload) // 2])
                return
            self._send(200, payload)
            with server._lock:
                server.served += 1
                stop = server.stop_after is not None and server.served == server.stop_after
            if stop:
                threading.Thread(target=server.stop, daemon=True).start()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="The real server's base URL (.../v1).")
    parser.add_argument("--record", type=Path, required=True, help="JSONL file the answers are appended to.")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    answers = read_answers(args.record) if args.record.is_file() else {}
    server = FaultServer(answers, upstream=args.upstream, record=args.record, port=args.port, model=args.model)
    print(f"recording {args.upstream} at {server.base_url} into {args.record}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
