"""Loopback OpenAI-compatible servers for tests: a real HTTP server on 127.0.0.1 in a thread.

``FakeServer(flavor="vllm")`` behaves like vLLM's OpenAI server: logprobs with
``top_logprobs`` up to 20, SSE streaming with a usage chunk when asked, one image per
prompt unless told otherwise (400 "At most 1 image(s) may be provided in one request."
in vLLM's older top-level error shape), 400 with a context-length message when the images
exceed ``context_tokens``. ``FakeServer(flavor="ollama")`` has Ollama's quirks: only
``data:`` image URLs (400 "invalid image input" otherwise), ``detail`` ignored,
temperature 1.0 when none is sent, logprobs passed through, errors as
``{"error": {"message", "type", "param", "code"}}``.

Every request is recorded (``server.requests``), with the decoded size of each image
(``server.images``: one list of ``(width, height)`` per request). ``fail`` lists HTTP
statuses to answer first (one per request: ``[429, 503]``); ``logprobs`` is ``"both"``,
``"yes-only"`` (only the "yes" variants are listed), ``"refuse"`` (400), ``"drop"``
(answers without logprobs) or ``"think"`` (a thinking model: ``<think>`` first, unless the
request says ``reasoning_effort: none``); ``relevance(body) -> p`` gives the probability of "yes" for a
rerank request, ``answer(body) -> str`` the text of a generation.

``Script([(status, headers, body), ...])`` is a bare server answering each request with
the next scripted reply (``seen`` records them), for the HTTP layer's own tests.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

__all__ = ["FakeServer", "Script", "default_answer", "user_texts", "word_overlap"]

_WORD = re.compile(r"[a-z0-9]+")


def user_texts(body: dict[str, Any]) -> list[str]:
    """The text parts of the request's user message, in order."""
    out = []
    for msg in body.get("messages", []):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            out.append(content)
        else:
            out += [p["text"] for p in content if p.get("type") == "text"]
    return out


def word_overlap(question: str, text: str) -> float:
    q = {w for w in _WORD.findall(question.lower()) if len(w) > 3}
    t = set(_WORD.findall(text.lower()))
    return len(q & t) / len(q) if q else 0.0


def default_answer(body: dict[str, Any]) -> str:
    """Quote the P1 sentence sharing most words with the question, cite [P1] (and an
    unknown [P7]); say the pages do not contain it when the question says "unanswerable"."""
    texts = user_texts(body)
    question = next((t[len("Question: "):] for t in texts if t.startswith("Question: ")), "")
    if "unanswerable" in question.lower():
        return "The pages do not contain this information."
    p1 = ""
    for i, t in enumerate(texts):
        if t.startswith("[P1]"):
            p1 = texts[i + 1] if i + 1 < len(texts) and not texts[i + 1].startswith("[P") else ""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", p1) if len(s.split()) >= 4]
    best = max(sentences, key=lambda s: word_overlap(question, s), default="It is on the page.")
    return f"  {best.rstrip('.')} [P1]. More details are in the manual [P7]."


class FakeServer:
    """See the module docs. Use as a context manager; ``url`` is the ``/v1`` base URL."""

    def __init__(self, flavor: str = "vllm", *, model: str = "fake-vl", unit: int = 28,
                 max_images: int | None = None, context_tokens: int | None = None,
                 too_large_status: int = 400, logprobs: str = "both",
                 fail: list[int] | None = None, retry_after: str | None = "0",
                 relevance: Callable[[dict[str, Any]], float] | None = None,
                 answer: Callable[[dict[str, Any]], str] | None = None,
                 piece: int = 4) -> None:
        self.flavor = flavor
        self.model = model
        self.unit = unit
        self.max_images = max_images if max_images is not None else (1 if flavor == "vllm" else 99)
        self.context_tokens = context_tokens
        self.too_large_status = too_large_status
        self.logprobs = logprobs
        self.fail = list(fail or [])
        self.retry_after = retry_after
        self.relevance = relevance or (lambda body: 0.5)
        self.answer = answer or default_answer
        self.piece = piece
        self.requests: list[dict[str, Any]] = []
        self.images: list[list[tuple[int, int]]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]

    def __enter__(self) -> FakeServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    owner = "vllm" if server.flavor == "vllm" else "library"
                    self._json(200, {"object": "list", "data": [
                        {"id": server.model, "object": "model", "owned_by": owner}]})
                else:
                    self._json(404, server._error(404, "not found"))

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    status = server.fail.pop(0) if server.fail else None
                if status is not None:
                    extra = {"Retry-After": server.retry_after} if status == 429 and server.retry_after else {}
                    self._json(status, server._error(status, f"simulated {status}"), extra)
                    return
                try:
                    server._chat(self, body)
                except Exception as err:  # a bug in a test's rule: say so, do not hang up
                    self._json(500, server._error(500, f"fake server: {err!r}"))

            def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- behaviour -----------------------------------------------------------------
    def _error(self, status: int, message: str) -> dict[str, Any]:
        if self.flavor == "ollama":
            kind = "invalid_request_error" if status == 400 else "api_error"
            return {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return {"error": {"message": message, "type": "BadRequestError", "param": None,
                          "code": status}}

    def _chat(self, handler: Any, body: dict[str, Any]) -> None:
        send = handler._json
        if body.get("model") != self.model:
            msg = (f'model "{body.get("model")}" not found, try pulling it first'
                   if self.flavor == "ollama" else f"The model `{body.get('model')}` does not exist.")
            send(404, self._error(404, msg))
            return
        sizes = []
        for msg in body.get("messages", []):
            content = msg.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") != "image_url":
                    continue
                url = part["image_url"]["url"]
                if not url.startswith("data:image/"):
                    send(400, self._error(400, "invalid image input"))
                    return
                data = base64.b64decode(url.split(",", 1)[1])
                sizes.append(Image.open(io.BytesIO(data)).size)
        with self.lock:
            self.images.append(sizes)
        if self.flavor == "vllm" and len(sizes) > self.max_images:
            send(400, {"object": "error", "message": f"At most {self.max_images} image(s) may be "
                       "provided in one request.", "type": "BadRequestError", "param": None,
                       "code": 400})
            return
        visual = sum((w // self.unit) * (h // self.unit) for w, h in sizes)
        if self.context_tokens is not None and visual > self.context_tokens:
            if self.too_large_status == 413:
                raw = b"<html><body><h1>413 Request Entity Too Large</h1></body></html>"
                handler.send_response(413)
                handler.send_header("Content-Type", "text/html")
                handler.send_header("Content-Length", str(len(raw)))
                handler.end_headers()
                handler.wfile.write(raw)
                return
            send(400, self._error(400, f"This model's maximum context length is "
                                  f"{self.context_tokens} tokens. However, you requested "
                                  f"{visual + 100} tokens ({visual + 100} in the messages, 0 in "
                                  "the completion). Please reduce the length of the messages."))
            return
        prompt_tokens = visual + sum(len(t.split()) for t in user_texts(body))
        if body.get("logprobs"):
            if self.logprobs == "refuse":
                send(400, self._error(400, "logprobs is not supported with this model"))
                return
            if self.flavor == "vllm" and int(body.get("top_logprobs") or 0) > 20:
                send(400, self._error(400, "Requested top logprobs of "
                                      f"{body['top_logprobs']}, which is greater than max "
                                      "allowed: 20"))
                return
            send(200, self._judgement(body, prompt_tokens))
            return
        temperature = body.get("temperature", 1.0)  # both servers default to 1.0
        text = self.answer(body)
        if temperature > 0.5:  # an unsteady answer when the client leaves sampling on
            text += " (sampled)"
        if body.get("stream"):
            self._stream(handler, body, text, prompt_tokens)
            return
        send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                   "model": self.model, "choices": [{"index": 0, "finish_reason": "stop",
                   "message": {"role": "assistant", "content": text}}],
                   "usage": {"prompt_tokens": prompt_tokens,
                             "completion_tokens": len(text.split()),
                             "total_tokens": prompt_tokens + len(text.split())}})

    def _judgement(self, body: dict[str, Any], prompt_tokens: int) -> dict[str, Any]:
        p = min(0.98, max(0.02, float(self.relevance(body))))
        top = [("yes", p * 0.75), ("Yes", p * 0.15), (" yes", p * 0.05)]
        if self.logprobs != "yes-only":
            top += [("no", (1 - p) * 0.75), ("No", (1 - p) * 0.15), (" no", (1 - p) * 0.05)]
        top += [("The", 0.03), ("I", 0.01)]
        if self.logprobs == "think" and body.get("reasoning_effort") != "none":
            top = [("<think>", 0.97), ("Okay", 0.02)]  # a thinking model thinks first
        top = sorted(top, key=lambda t: -t[1])[: int(body.get("top_logprobs") or 0)]
        entries = [{"token": t, "logprob": math.log(v), "bytes": list(t.encode())} for t, v in top]
        first = dict(entries[0], top_logprobs=entries)
        logprobs = None if self.logprobs == "drop" else {"content": [first]}
        return {"id": "chatcmpl-2", "object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "finish_reason": "length", "logprobs": logprobs,
                             "message": {"role": "assistant", "content": top[0][0]}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1,
                          "total_tokens": prompt_tokens + 1}}

    def _stream(self, handler: Any, body: dict[str, Any], text: str, prompt_tokens: int) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()

        def event(data: Any) -> None:
            raw = data if isinstance(data, str) else json.dumps(data)
            handler.wfile.write(f"data: {raw}\n\n".encode())
            handler.wfile.flush()

        base = {"id": "chatcmpl-3", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.model}
        pieces = [text[i:i + self.piece] for i in range(0, len(text), self.piece)]
        if self.flavor == "vllm":
            event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]})
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1 and self.flavor == "ollama"
            event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                        "finish_reason": "stop" if last else None}]})
            if i % 7 == 0:
                handler.wfile.write(b": keep-alive\n\n")
        if self.flavor == "vllm":
            event({**base, "choices": [{"index": 0, "delta": {"content": ""},
                                        "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            event({**base, "choices": [], "usage": {
                "prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                "total_tokens": prompt_tokens + len(pieces)}})
        event("[DONE]")


class Script:
    """A server answering each request with the next scripted (status, headers, body)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.seen = []

    def __enter__(self):
        script = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self):
                length = int(self.headers.get("content-length") or 0)
                script.seen.append((self.command, self.path, self.rfile.read(length),
                                    dict(self.headers)))
                status, headers, body = script.replies.pop(0)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _reply

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
