"""Any OpenAI-compatible chat server (`vllm serve`, TGI, llama.cpp, the OpenAI API) over plain HTTP.

Requests stream in as the caller has them; at most `concurrency` are on the wire (a thread pool), which keeps
the server's batch full without flooding it. Transient faults (a refused or dropped connection, a timeout, 429, 5xx,
a truncated or non-JSON body) are retried with the same body after the server's Retry-After or an exponential
backoff, counted by kind in `faults`, and after `http_retries` returned as `finish_reason="error"` completions naming
the server, so one bad call never stops a long run (the runner stops a run whose calls all fail). The caller
validates every output, so a server that rejects JSON-schema `response_format` is used without it.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import Field, PrivateAttr

from emopillars.errors import EmopillarsError
from emopillars.synth.backends.base import Backend, Completion, Request

log = logging.getLogger(__name__)

# Seconds allowed for the reachability check in load(): an unreachable server fails well within a minute.
CONNECT_CHECK_TIMEOUT = 10.0
MAX_BACKOFF = 30.0


class OpenAIBackend(Backend):
    """POST {base_url}/chat/completions for each request, `concurrency` at a time."""

    base_url: str = Field(description="Server URL up to the API version, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key, if any.")
    concurrency: int = Field(8, ge=1, le=256, description="Parallel requests to an OpenAI-compatible server.")
    http_retries: int = Field(3, ge=0, description="Retries of a call failing on connection, 5xx or 429.")
    request_timeout: float = Field(120.0, gt=0.0, description="Seconds before an HTTP request to the server fails.")
    retry_backoff: float = Field(1.0, gt=0.0, description="Seconds before the first retry; doubles per retry.")

    _client: httpx.Client | None = PrivateAttr(None)
    _pool: ThreadPoolExecutor | None = PrivateAttr(None)
    _use_response_format: bool = PrivateAttr(True)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _faults: Counter = PrivateAttr(default_factory=Counter)  # failed attempts by kind, retried ones included

    @property
    def name(self) -> str:
        # The URL is left out: the same model behind another host or port gives the same results.
        return f"openai:{self.model}"

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/")

    def load(self) -> None:
        if self._client is not None:
            return
        headers = {}
        if api_key := os.environ.get(self.api_key_env):
            headers["Authorization"] = f"Bearer {api_key}"
        client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=self.request_timeout,
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )
        try:
            served = self._served_models(client)
        except EmopillarsError:
            client.close()
            raise
        if served and self.model not in served:
            client.close()
            raise EmopillarsError(
                f"the server at {self.url} does not serve model '{self.model}'; it serves: {', '.join(served)}"
            )
        self._client = client
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="emopillars-openai")

    def _served_models(self, client: httpx.Client) -> list[str]:
        """GET /models: proves the server is up and tells which model names it accepts."""
        where = f"OpenAI-compatible server at {self.url}"
        try:
            response = client.get("/models", timeout=CONNECT_CHECK_TIMEOUT)
        except httpx.ConnectError as e:
            reason = "connection refused" if "refused" in str(e).lower() else str(e)
            raise EmopillarsError(f"cannot reach {where}: {reason}") from e
        except httpx.TimeoutException as e:
            raise EmopillarsError(f"cannot reach {where}: no answer within {CONNECT_CHECK_TIMEOUT:.0f} s") from e
        except httpx.HTTPError as e:
            raise EmopillarsError(f"cannot reach {where}: {e}") from e
        if response.status_code in (401, 403):
            raise EmopillarsError(
                f"{where} refused the API key (HTTP {response.status_code}); set it in ${self.api_key_env}"
            )
        if response.status_code != 200:
            raise EmopillarsError(f"{where} answered GET /models with HTTP {response.status_code}")
        try:
            return [m["id"] for m in response.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            return []  # not a standard model list; requests will tell

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def submit(self, request: Request) -> Future[Completion]:
        self.load()
        assert self._pool is not None
        return self._pool.submit(self._complete, request)

    def _body(self, request: Request) -> dict[str, Any]:
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if request.json_schema is not None and self._use_response_format:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
            }
        return body

    def _complete(self, request: Request) -> Completion:
        """One call; transient faults (connection, timeout, 429, 5xx, a malformed body) are retried with the same
        body, after the server's Retry-After or an exponential backoff. Never raises."""
        assert self._client is not None
        body = self._body(request)
        failures = 0
        while True:
            wait = None
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                fault, error = "timeout", f"no answer within {self.request_timeout:g} s"
            except httpx.HTTPError as e:  # refused, reset, dropped without an answer
                fault, error = "connection", f"{type(e).__name__}: {e}"
            else:
                if response.status_code == 200:
                    completion = _completion(response)
                    if completion is not None:
                        return completion
                    fault, error = "malformed_body", f"malformed response: {response.text[:300]!r}"
                elif "response_format" in body and _rejects_response_format(response):
                    self._drop_response_format(response.text)
                    body.pop("response_format")
                    continue  # not a failure: resend the same call unconstrained
                else:
                    error = f"HTTP {response.status_code}: {response.text[:500]}"
                    if response.status_code != 429 and response.status_code < 500:
                        failures += 1
                        break  # a client error does not heal by retrying
                    fault = "http_429" if response.status_code == 429 else "http_5xx"
                    wait = _retry_after(response)
            with self._lock:
                self._faults[fault] += 1
            failures += 1
            if failures > self.http_retries:
                break
            time.sleep(wait if wait is not None else self._backoff(failures))
        log.warning("call to %s failed after %d attempt(s): %s", self.url, failures, error)
        return Completion(text="", finish_reason="error", error=f"{self.url}: {error}")

    def _backoff(self, failures: int) -> float:
        return min(MAX_BACKOFF, self.retry_backoff * 2.0 ** (failures - 1)) * random.uniform(0.5, 1.0)

    @property
    def faults(self) -> dict[str, int]:
        with self._lock:
            return dict(self._faults)

    def _drop_response_format(self, reason: str) -> None:
        with self._lock:
            if self._use_response_format:
                self._use_response_format = False
                log.warning(
                    "the server at %s rejects JSON-schema response_format; sending requests without it "
                    "(outputs are still validated): %s",
                    self.url,
                    reason[:300],
                )


def _rejects_response_format(response: httpx.Response) -> bool:
    return response.status_code == 400 and "response_format" in response.text


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a 429/503 asks the client to wait (Retry-After: seconds or an HTTP date), capped; None if unsaid."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(MAX_BACKOFF, max(0.0, seconds))


def _completion(response: httpx.Response) -> Completion | None:
    """An OpenAI chat completion body as a Completion; None for a body that is not one (truncated, not JSON)."""
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        reason = choice.get("finish_reason")
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    ok = reason in ("stop", "length")
    return Completion(
        text=text,
        finish_reason=reason if ok else "error",
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        # vLLM reports prefix-cache hits here when served with --enable-prompt-tokens-details, OpenAI always.
        cached_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        error=None if ok else f"server finished the request with reason {reason!r}",
    )
