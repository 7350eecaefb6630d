"""The one adapter to httpx: JSON and server-sent events to OpenAI-compatible model
servers (vLLM, Ollama, OpenAI, llama.cpp server), with timeouts, retries and errors that
say what to change.

* :class:`ChatClient` posts JSON and reads JSON or an SSE stream. Refused or dropped
  connections, connect timeouts, 408, 429 and 5xx are retried ``retries`` times after
  an exponential backoff with jitter (or the wait the server asked for in
  ``Retry-After``); a stream is only retried before its first event.
* Failures become :class:`~ragnest.errors.ModelServerError` naming the component, the
  server and the model: :class:`~ragnest.errors.ModelServerUnavailableError` (no
  answer), :class:`~ragnest.errors.RequestTooLargeError` (context length exceeded or
  HTTP 413: the caller may retry with fewer image tokens), the rest with the server's
  own message and the setting to change.
* :func:`iter_sse` parses ``text/event-stream`` lines; :func:`image_part` writes an
  image content part; :class:`OpenAIEndpoint` holds the fields every OpenAI-compatible
  component shares (server, model, key variable, image encoding).

httpx is imported on first use (it comes with qdrant-client; the ``openai`` extra
names it)::

    >>> list(iter_sse(["data: {\\"a\\": 1}", "", ": comment", "data: [DONE]", ""]))
    [('message', '{"a": 1}'), ('message', '[DONE]')]
    >>> RetryPolicy(retries=2, backoff=0.5).delay(3, retry_after=2.0)
    2.0
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Annotated, Any, Literal

from ragnest._validate import AtLeast, validate_params
from ragnest.errors import (
    ConfigError,
    MissingDependencyError,
    ModelServerError,
    ModelServerUnavailableError,
    RequestTooLargeError,
)
from ragnest.media.fit import FittedImage, fit_image
from ragnest.media.render import Renderer
from ragnest.types import ImageRef

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ChatClient",
    "OpenAIEndpoint",
    "RetryPolicy",
    "error_message",
    "image_part",
    "iter_sse",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

#: The longest wait honoured when a server asks for one (Retry-After), in seconds.
RETRY_AFTER_MAX_S = 60.0
_RETRY_STATUS = frozenset({408, 429})
_CONTEXT = re.compile(
    r"context[ _](?:length|size|window)|maximum (?:context|sequence) length|too many tokens|"
    r"prompt is too long|input (?:is )?too long|reduce the length|exceeds? the (?:max|available)",
    re.IGNORECASE,
)
_IMAGE_LIMIT = re.compile(r"at most (\d+) image|limit[-_]mm[-_]per[-_]prompt|(\d+) image items",
                          re.IGNORECASE)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as err:  # pragma: no cover - httpx comes with qdrant-client
        raise MissingDependencyError(
            "OpenAI-compatible components need httpx: pip install 'ragnest[openai]'"
        ) from err
    return httpx


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    retries: int = 2
    backoff: float = 0.5
    backoff_max: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry ``attempt`` (1-based): the server's Retry-After when it
        sent one (at most a minute), else exponential backoff with 50-100 % jitter."""
        if retry_after is not None:
            return min(max(0.0, retry_after), RETRY_AFTER_MAX_S)
        ceiling = min(self.backoff_max, self.backoff * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number of seconds or an HTTP date), else ``None``.

    >>> parse_retry_after("3"), parse_retry_after(None), parse_retry_after("soon")
    (3.0, None, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_message(body: bytes | str) -> str:
    """The server's own words from an error body: OpenAI and Ollama
    (``{"error": {"message"}}``), older vLLM (``{"object": "error", "message"}``),
    llama.cpp and FastAPI (``{"detail"}``), else the text itself (cut to 500 chars).

    >>> error_message(b'{"object": "error", "message": "At most 1 image(s) may be provided"}')
    'At most 1 image(s) may be provided'
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg")
            if msg:
                return str(msg)[:500]
        elif isinstance(err, str):
            return err[:500]
        if data.get("detail"):
            return str(data["detail"])[:500]
    return text[:500]


def iter_sse(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(event, data)`` for each server-sent event in ``lines`` (line endings stripped):
    ``data:`` lines joined by newlines, ``event:`` names it (default ``"message"``),
    comments (``:``) and other fields ignored; a blank line ends an event."""
    event, data = "", []
    for line in lines:
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield event or "message", "\n".join(data)


# -- chat-completions shapes --------------------------------------------------------------
def image_part(url: str, detail: str | None = None) -> dict[str, Any]:
    """An ``image_url`` content part; ``detail`` only when given (servers that do not
    know it, such as Ollama, ignore or refuse it)."""
    spec: dict[str, Any] = {"url": url}
    if detail:
        spec["detail"] = detail
    return {"type": "image_url", "image_url": spec}


# -- the client ---------------------------------------------------------------------------
class ChatClient:
    """JSON and SSE requests to one server for one model (thread-safe).

    ``owner`` (``"generator/openai"``) and ``api_key_env`` only shape error messages.
    ``sleep`` is injectable for tests. :meth:`close` releases the connection pool; the
    client reopens one on the next request.

        client = ChatClient(base_url="http://localhost:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")
        reply = client.post("/chat/completions", {"model": client.model, "messages": [...]})
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        policy: RetryPolicy | None = None,
        owner: str = "openai",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.policy = policy or RetryPolicy()
        self.owner = owner
        self._sleep = sleep
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """``generator/openai (server http://..., model 'm')``: how messages name us."""
        return f"{self.owner} (server {self.base_url}, model {self.model!r})"

    def close(self) -> None:
        """Close the connection pool."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                httpx = _httpx()
                headers = {"Accept": "application/json"}
                if self.api_key:
                    headers["Authorization"] = f"Bearer {self.api_key}"
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                    headers=headers, follow_redirects=True)
            return self._client

    # -- requests ---------------------------------------------------------------------
    def get(self, path: str) -> Any:
        """``GET base_url + path`` as JSON (retried like any request)."""
        return self._json(self._send("GET", path, None, stream=False))

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST`` JSON, answer as JSON."""
        return self._json(self._send("POST", path, body, stream=False))

    def stream(self, path: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """``POST`` JSON, answer as a stream of JSON events up to ``[DONE]`` (a server
        that answers plain JSON instead yields that one object). An error event, or a
        stream that breaks off, raises :class:`~ragnest.errors.ModelServerError`."""
        httpx = _httpx()
        response = self._send("POST", path, body, stream=True)
        events = 0
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                response.read()
                yield self._json(response)
                return
            for name, data in iter_sse(response.iter_lines()):
                if data.strip() == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError as err:
                    raise self._error(f"sent a stream event that is not JSON ({data[:200]!r}); "
                                      "is base_url an OpenAI-compatible API?",
                                      response.status_code) from err
                if name == "error" or (isinstance(event, dict) and event.get("error")):
                    raise self._error(f"failed mid-stream: {error_message(data)}; check the "
                                      "server's log", response.status_code)
                events += 1
                yield event
        except httpx.TransportError as err:
            raise self._error(f"stream broke off after {events} events ({type(err).__name__}: "
                              f"{err}); check the server's log", None,
                              ModelServerUnavailableError) from err
        finally:
            response.close()

    # -- internals --------------------------------------------------------------------
    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as err:
            raise self._error(f"answered with something that is not JSON "
                              f"({response.text[:200]!r}); does base_url point at an "
                              "OpenAI-compatible API (it usually ends in /v1)?",
                              response.status_code) from err

    def _error(self, what: str, status: int | None,
               cls: type[ModelServerError] = ModelServerError) -> ModelServerError:
        return cls(f"{self.where} {what}", server=self.base_url, model=self.model,
                   status=status)

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None, *,
              stream: bool) -> httpx.Response:
        httpx = _httpx()
        client = self._http()
        url = self.base_url + path
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                request = client.build_request(method, url, json=body)
                response = client.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                    httpx.ReadError, httpx.WriteError) as err:
                reason = f"{type(err).__name__}: {err}"
                failure: Exception = err
            except httpx.TimeoutException as err:  # read/write/pool: the model is too slow
                raise self._error(
                    f"gave no answer within {self.timeout:g} s ({type(err).__name__}); raise "
                    "timeout, or ask for less (max_tokens, fewer pages or visual tokens)",
                    None, ModelServerUnavailableError) from err
            else:
                status = response.status_code
                if status < 400:
                    return response
                response.read()
                response.close()
                if status not in _RETRY_STATUS and status < 500:
                    raise self._classify(status, error_message(response.content))
                reason = f"HTTP {status}: {error_message(response.content)}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                failure = self._classify(status, error_message(response.content))
            if attempt >= self.policy.retries:
                if isinstance(failure, ModelServerError):
                    raise failure
                raise self._error(
                    f"cannot be reached ({reason}) after {attempt + 1} attempts; is the server "
                    "running, and is base_url right?", None,
                    ModelServerUnavailableError) from failure
            attempt += 1
            delay = self.policy.delay(attempt, retry_after)
            logger.warning("%s: %s %s failed (%s); retry %d of %d in %.1f s", self.where,
                           method, path, reason, attempt, self.policy.retries, delay)
            self._sleep(delay)

    def _classify(self, status: int, message: str) -> ModelServerError:
        """The error for an HTTP error status and the server's message."""
        said = f"answered {status}: {message}"
        if status == 413 or (status == 400 and _CONTEXT.search(message)):
            cls: type[ModelServerError] = RequestTooLargeError
            hint = ("the request is too large for it; send fewer pages or visual tokens "
                    "(visual_tokens, max_pages, image_tokens) or raise the server's limit "
                    "(vLLM --max-model-len, a proxy's body size)")
            return self._error(f"{said}; {hint}", status, cls)
        limit = _IMAGE_LIMIT.search(message)
        if status == 400 and limit:
            n = limit.group(1)
            return self._error(
                f"{said}; it takes {'at most ' + n if n else 'fewer'} image(s) per prompt: set "
                f"max_images{': ' + n if n else ''} (vLLM takes more when started with "
                "--limit-mm-per-prompt '{\"image\": 8}')", status)
        if status in (401, 403):
            return self._error(f"{said}; set the environment variable {self.api_key_env} to a "
                               "key this server accepts (api_key_env names it)", status)
        if status == 404:
            return self._error(f"{said}; check that the server serves model {self.model!r} "
                               "(Ollama: ollama pull it) and that base_url ends in /v1",
                               status)
        if status == 429:
            return self._error(f"{said}; still rate limited after {self.policy.retries} "
                               "retries: lower concurrency or try later", status,
                               ModelServerUnavailableError)
        if status >= 500 or status == 408:
            return self._error(f"{said}; still failing after {self.policy.retries} retries: "
                               "check the server's log", status, ModelServerUnavailableError)
        return self._error(f"refused the request ({said})", status)


# -- what every OpenAI-compatible component is configured with ---------------------------
@dataclass(kw_only=True)
class OpenAIEndpoint:
    """The server, the model and how images travel: the fields ``reranker/openai`` and
    ``generator/openai`` share (see their docs). Holds the :class:`ChatClient` and the
    page renderer, made in ``warm_up`` and released in ``close``.

    ``base_url``: the OpenAI-compatible root (``http://localhost:8000/v1`` for vLLM,
    ``http://localhost:11434/v1`` for Ollama, ``https://api.openai.com/v1``);
    ``api_key_env``: the environment variable holding the key (unset: no key is sent);
    ``timeout``/``connect_timeout`` in seconds; ``retries`` and ``backoff`` (seconds,
    doubling) for connection errors, 408, 429 and 5xx. Images are sent inline as
    ``data:`` URLs (Ollama refuses http URLs), resized by ragnest to exact multiples of
    ``patch_unit`` (patch x merge of the model: 28 for Qwen2/2.5-VL, 32 for Qwen3-VL)
    and encoded as ``image_format`` at ``image_quality``; pages render at up to
    ``max_dpi``. ``detail`` (``auto``/``low``/``high``) is sent only when set (OpenAI
    reads it). ``max_images`` caps the images in one prompt (vLLM takes 1 unless started
    with ``--limit-mm-per-prompt``). ``extra_body`` is merged into every request for what
    only some servers read (``{"reasoning_effort": "none"}`` turns Ollama's thinking
    off, ``{"chat_template_kwargs": {"enable_thinking": false}}`` vLLM's); the fields
    ragnest sets win.
    """

    base_url: str = "http://localhost:11434/v1"
    model: str = "qwen2.5vl:7b"
    api_key_env: str = "OPENAI_API_KEY"
    timeout: Annotated[float, AtLeast(0.1)] = 120.0
    connect_timeout: Annotated[float, AtLeast(0.1)] = 5.0
    retries: Annotated[int, AtLeast(0)] = 2
    backoff: Annotated[float, AtLeast(0.0)] = 0.5
    image_format: Literal["jpeg", "webp", "png"] = "jpeg"
    image_quality: Annotated[int, AtLeast(1)] = 85
    detail: Literal["auto", "low", "high"] | None = None
    patch_unit: Annotated[int, AtLeast(1)] = 28
    max_images: Annotated[int, AtLeast(0)] = 1
    max_dpi: Annotated[int, AtLeast(36)] = 200
    extra_body: dict[str, Any] = field(default_factory=dict)

    #: The component's registered type, for messages.
    _owner = "openai"

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        validate_params(type(self), values, where=self._owner)
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{self._owner}: base_url must start with http:// or https://, "
                              f"got {self.base_url!r}")
        if not self.model:
            raise ConfigError(f"{self._owner}: model must name the model the server serves")
        if self.image_quality > 100:
            raise ConfigError(f"{self._owner}: image_quality is 1-100, got {self.image_quality}")
        self._chat: ChatClient | None = None
        self._renderer: Renderer | None = None
        self._warm_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # settings only: workers make their own client
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _connect(self) -> ChatClient:
        """The client (made on first use; no network yet)."""
        with self._warm_lock:
            if self._chat is None:
                self._chat = ChatClient(
                    base_url=self.base_url, model=self.model,
                    api_key=os.environ.get(self.api_key_env) or None,
                    api_key_env=self.api_key_env, timeout=self.timeout,
                    connect_timeout=self.connect_timeout,
                    policy=RetryPolicy(retries=self.retries, backoff=self.backoff),
                    owner=self._owner)
                self._renderer = Renderer()
            return self._chat

    def _release(self) -> None:
        with self._warm_lock:
            if self._chat is not None:
                self._chat.close()
                self._chat = None
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None

    def _check_model(self) -> None:
        """Fail fast when the server is down; warn when it does not list the model."""
        try:
            listed = self._connect().get("/models")
        except ModelServerUnavailableError:
            raise
        except ModelServerError as err:
            if err.status in (401, 403):  # a missing or wrong key: say so now
                raise
            # a server without /models: the first request will tell
            logger.debug("%s: /models not available (%s)", self._owner, err)
            return
        data = listed.get("data") if isinstance(listed, dict) else None
        ids = [str(m.get("id")) for m in data or [] if isinstance(m, dict)]
        if ids and self.model not in ids:
            logger.warning("%s: %s does not list model %r (it lists %s); requests may fail",
                           self._owner, self.base_url, self.model, ", ".join(ids[:10]))

    def _body(self, **body: Any) -> dict[str, Any]:
        """A chat-completions request body: ``extra_body``, then ragnest's own fields."""
        return {**self.extra_body, "model": self.model, **body}

    def _image(self, ref: ImageRef, tokens: int) -> FittedImage:
        """``ref`` at ``tokens`` visual tokens, encoded for the request."""
        self._connect()
        return fit_image(ref, tokens=tokens, unit=self.patch_unit, format=self.image_format,
                         quality=None if self.image_format == "png" else self.image_quality,
                         max_dpi=self.max_dpi, renderer=self._renderer)
