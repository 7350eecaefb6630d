"""One error tree for ragnest.

Every error ragnest raises on purpose derives from :class:`RagnestError`, so
callers can catch the whole family with one ``except``::

    >>> from ragnest.errors import RagnestError, ParseError
    >>> try:
    ...     raise ParseError("broken.pdf", "file is empty")
    ... except RagnestError as err:
    ...     print(err)
    broken.pdf: file is empty
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RagnestError",
    "ConfigError",
    "ComponentNotFoundError",
    "MissingDependencyError",
    "ParseError",
    "StoreError",
    "StoreLockedError",
    "StoreMismatchError",
    "StoreUnavailableError",
    "DocumentNotFoundError",
    "EmbeddingError",
    "RerankError",
    "GenerationError",
    "ModelServerError",
    "ModelServerUnavailableError",
    "RequestTooLargeError",
]


class RagnestError(Exception):
    """Root of every error ragnest raises on purpose."""


class ConfigError(RagnestError, ValueError):
    """A pipeline YAML or component parameter is invalid (unknown key, bad type, ...)."""


class ComponentNotFoundError(ConfigError, LookupError):
    """A ``kind/name`` component type is not registered (the message suggests close names)."""


class MissingDependencyError(RagnestError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class ParseError(RagnestError):
    """A source could not be parsed. ``path`` names the file, ``reason`` says what is wrong."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep picklable across process pools
        return (type(self), (self.path, self.reason))


class StoreError(RagnestError):
    """The vector store failed or was used wrongly.

    Raised out of an ingest, ``report`` holds the
    :class:`~ragnest.ingest.IngestReport` of what was committed before it.
    """

    report: Any = None


class StoreLockedError(StoreError):
    """The store directory is already opened by another process (or another handle)."""


class StoreMismatchError(StoreError):
    """A store was reopened with a different embedder identity or granularity ladder."""


class StoreUnavailableError(StoreError):
    """The store's backend failed: a server that does not answer (after retries), a full
    disk, an engine error. Unlike a bad document, this stops an ingest: nothing more can
    be written, and nothing is reported as ingested that was not committed."""


class DocumentNotFoundError(RagnestError, LookupError):
    """A document named by path or id is not in the store (``ragnest delete``); the
    message names every such target, and nothing was deleted."""


class EmbeddingError(RagnestError):
    """An embedder could not embed its input."""


class RerankError(RagnestError):
    """A reranker could not score its candidates."""


class GenerationError(RagnestError):
    """A generator could not produce an answer."""


class ModelServerError(RagnestError):
    """A model server (an OpenAI-compatible endpoint: vLLM, Ollama, OpenAI, llama.cpp
    server) refused or failed a request. The message names the server, the model and
    what to change; ``status`` is the HTTP status (``None`` when no answer came)."""

    def __init__(self, message: str, *, server: str = "", model: str = "",
                 status: int | None = None) -> None:
        super().__init__(message)
        self.server = server
        self.model = model
        self.status = status

    def __reduce__(self):  # keep the fields across processes
        return (_rebuild_server_error, (type(self), str(self), self.server, self.model,
                                        self.status))


class ModelServerUnavailableError(ModelServerError):
    """The server did not answer: refused or dropped connections, timeouts, or 5xx and
    rate limiting that outlasted the retries."""


class RequestTooLargeError(ModelServerError):
    """The request does not fit the server: the prompt exceeds the model's context
    length, or the body exceeds the server's size limit (HTTP 413)."""


def _rebuild_server_error(cls: type[ModelServerError], message: str, server: str, model: str,
                          status: int | None) -> ModelServerError:
    return cls(message, server=server, model=model, status=status)
