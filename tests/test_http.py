"""ragnest._http: the httpx adapter (retries, SSE, errors) against a real loopback server."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ragnest._http import ChatClient, RetryPolicy, error_message, iter_sse, parse_retry_after
from ragnest.errors import (
    ModelServerError,
    ModelServerUnavailableError,
    RagnestError,
    RequestTooLargeError,
)
from tests._openai_server import Script


def client(url, **kw):
    sleeps = []
    kw.setdefault("policy", RetryPolicy(retries=2, backoff=0.01))
    c = ChatClient(base_url=url, model="m-1", owner="generator/openai", sleep=sleeps.append, **kw)
    return c, sleeps


def test_sse_parsing_follows_the_spec():
    lines = ["event: message", "data: a", "data: b", "", ": ping", "", "data:c", "retry: 5", "",
             "event: error", "data: {}"]
    assert list(iter_sse(lines)) == [("message", "a\nb"), ("message", "c"), ("error", "{}")]


def test_error_bodies_of_each_server_family():
    assert error_message(b'{"error": {"message": "bad", "type": "x"}}') == "bad"
    assert error_message(b'{"object": "error", "message": "old vllm"}') == "old vllm"
    assert error_message(b'{"error": "plain"}') == "plain"
    assert error_message(b'{"detail": "fastapi"}') == "fastapi"
    assert error_message(b"<html> 413  Too Large </html>") == "<html> 413 Too Large </html>"
    assert error_message(b"") == "(empty body)"


def test_retry_after_and_backoff():
    assert parse_retry_after("2.5") == 2.5
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") < 1
    policy = RetryPolicy(retries=3, backoff=1.0, backoff_max=3.0)
    assert 0.5 <= policy.delay(1) <= 1.0 and 1.5 <= policy.delay(3) <= 3.0
    assert policy.delay(1, retry_after=500) == 60.0


def test_retries_429_and_5xx_honouring_retry_after_then_succeeds():
    replies = [(429, {"Retry-After": "1.5"}, {"error": {"message": "slow down"}}),
               (503, {}, {"error": {"message": "loading"}}), (200, {}, {"ok": True})]
    with Script(replies) as server:
        c, sleeps = client(server.url, api_key="sk-test")
        assert c.post("/chat/completions", {"x": 1}) == {"ok": True}
    assert len(server.seen) == 3 and sleeps[0] == 1.5 and 0 < sleeps[1] <= 0.02
    assert server.seen[0][3]["Authorization"] == "Bearer sk-test"


def test_errors_name_server_model_and_the_fix():
    with Script([(404, {}, {"error": {"message": "model 'm-1' not found"}}),
                 (401, {}, {"error": {"message": "bad key"}}),
                 (400, {}, {"object": "error", "message": "At most 1 image(s) may be provided "
                            "in one request.", "code": 400}),
                 (400, {}, {"error": {"message": "This model's maximum context length is 4096 "
                                      "tokens. However, you requested 9000 tokens"}}),
                 (413, {"Content-Type": "text/html"}, b"<h1>413 Request Entity Too Large</h1>"),
                 (400, {}, {"error": {"message": "temperature must be >= 0"}})]) as server:
        c, sleeps = client(server.url, api_key_env="MY_KEY")
        with pytest.raises(ModelServerError, match=r"model 'm-1' not found.*ollama pull") as e:
            c.post("/chat/completions", {})
        assert e.value.status == 404 and e.value.model == "m-1" and server.url in str(e.value)
        with pytest.raises(ModelServerError, match="MY_KEY"):
            c.post("/chat/completions", {})
        with pytest.raises(ModelServerError, match=r"set max_images: 1.*--limit-mm-per-prompt"):
            c.post("/chat/completions", {})
        with pytest.raises(RequestTooLargeError, match="context length.*visual_tokens"):
            c.post("/chat/completions", {})
        with pytest.raises(RequestTooLargeError, match="413") as e:
            c.post("/chat/completions", {})
        assert e.value.status == 413
        with pytest.raises(ModelServerError, match=r"generator/openai \(server .*model 'm-1'\) "
                           r"refused the request \(answered 400: temperature"):
            c.post("/chat/completions", {})
    assert sleeps == []  # none of these is worth a retry
    err = pickle.loads(pickle.dumps(e.value))
    assert isinstance(err, RequestTooLargeError) and err.status == 413 and err.model == "m-1"


def test_a_server_that_is_down_fails_fast_and_clearly():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    c = ChatClient(base_url=f"http://127.0.0.1:{port}/v1", model="m-1", connect_timeout=1.0,
                   policy=RetryPolicy(retries=2, backoff=0.05))
    t0 = time.monotonic()
    with pytest.raises(ModelServerUnavailableError, match=r"cannot be reached.*3 attempts.*"
                       "is the server running") as e:
        c.get("/models")
    assert time.monotonic() - t0 < 5
    assert f"127.0.0.1:{port}" in str(e.value) and "'m-1'" in str(e.value)
    assert isinstance(e.value, RagnestError)


def test_persistent_5xx_is_unavailable_after_the_retries():
    with Script([(502, {}, b"bad gateway")] * 3) as server:
        c, sleeps = client(server.url)
        with pytest.raises(ModelServerUnavailableError, match="502.*after 2 retries"):
            c.post("/chat/completions", {})
    assert len(sleeps) == 2


def test_read_timeout_is_not_retried_and_says_what_to_change():
    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            time.sleep(1.0)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        c, sleeps = client(f"http://127.0.0.1:{httpd.server_address[1]}/v1", timeout=0.2)
        with pytest.raises(ModelServerUnavailableError, match="within 0.2 s.*raise timeout"):
            c.post("/chat/completions", {})
        assert sleeps == []
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_stream_events_until_done_and_errors_mid_stream():
    ok = b'data: {"n": 1}\n\n: keep-alive\n\ndata: {"n": 2}\n\ndata: [DONE]\n\n'
    bad = b'data: {"n": 1}\n\ndata: {"error": {"message": "engine died"}}\n\n'
    sse = {"Content-Type": "text/event-stream"}
    with Script([(503, {}, b"busy"), (200, sse, ok), (200, sse, bad),
                 (200, {}, {"n": 0})]) as server:
        c, sleeps = client(server.url)
        assert [e["n"] for e in c.stream("/chat/completions", {"stream": True})] == [1, 2]
        assert len(sleeps) == 1  # retried before the first event
        events = c.stream("/chat/completions", {"stream": True})
        assert next(events) == {"n": 1}
        with pytest.raises(ModelServerError, match="mid-stream: engine died"):
            next(events)
        # a server that ignores stream=true answers one JSON object
        assert list(c.stream("/chat/completions", {"stream": True})) == [{"n": 0}]


def test_not_json_says_to_check_the_base_url():
    with Script([(200, {"Content-Type": "text/html"}, b"<html>welcome</html>")]) as server:
        c, _ = client(server.url)
        with pytest.raises(ModelServerError, match="not JSON.*ends in /v1"):
            c.get("/models")
