"""The data model: frozen dataclasses that flow through a pipeline.

``Source`` goes into a parser, ``Chunk`` comes out, embedders turn chunks into
named vectors described by ``VectorSpec``, the store returns ``Hit``, a generator
returns an ``Answer`` that cites pages::

    >>> from ragnest.types import Source, Chunk, make_chunk_id
    >>> src = Source.from_path("examples/docs/handbook.pdf")
    >>> cid = make_chunk_id(src.document_id, 0, "some page text")
    >>> chunk = Chunk(id=cid, document_id=src.document_id, kind="page",
    ...               text="some page text", page=1, source=src.display_name)
    >>> Chunk.from_payload(chunk.id, chunk.to_payload()) == chunk
    True
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ragnest._paths import readable_path
from ragnest.vectors import (
    DATATYPES,
    FUSIONS,
    POOL_METHODS,
    Datatype,
    Fusion,
    Level,
    PoolMethod,
    Route,
    SearchRequest,
    SparseVector,
    Stage,
    Vector,
    VectorSpec,
)

__all__ = [
    "Source",
    "ImageRef",
    "Segment",
    "Chunk",
    "SparseVector",
    "Vector",
    "Level",
    "VectorSpec",
    "Query",
    "Stage",
    "Route",
    "SearchRequest",
    "Fusion",
    "FUSIONS",
    "Hit",
    "Hits",
    "Chunks",
    "EmbeddedChunks",
    "Citation",
    "Answer",
    "AnswerDelta",
    "EmbeddedChunk",
    "WriteResult",
    "HtmlRepr",
    "register_html",
    "html_of",
    "make_chunk_id",
    "NAMESPACE",
    # the vector side, defined in ragnest.vectors
    "DATATYPES",
    "POOL_METHODS",
    "Datatype",
    "PoolMethod",
]

#: Namespace for every uuid5 ragnest derives (document ids, chunk ids).
NAMESPACE = uuid.UUID("6f1c3a52-6a0e-4c8e-9d8e-2b7a3f0d5e11")

ChunkKind = Literal["page", "interleaved", "text", "image"]


def _uuid5(text: str) -> str:
    # uuid.uuid5 itself, but a surrogate-escaped (non-UTF-8) file name hashes too
    data = text.encode("utf-8", "surrogatepass")
    return str(uuid.UUID(bytes=hashlib.sha1(NAMESPACE.bytes + data).digest()[:16], version=5))


def make_chunk_id(document_id: str, position: int, content: str | bytes) -> str:
    """A stable chunk id from document id, position and a hash of the content.

    Re-parsing an unchanged document gives the same ids, so re-ingesting it is a no-op.
    """
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    digest = hashlib.sha256(data).hexdigest()[:32]
    return _uuid5(f"{document_id}:{position}:{digest}")


#: ``_repr_html_`` renderers by class, or by ``"module.QualName"`` for classes of higher
#: layers (see :func:`register_html`).
_HTML: dict[type | str, Callable[[Any], str]] = {}


def register_html(cls: type | str, render: Callable[[Any], str]) -> None:
    """Make notebooks show ``cls`` objects as ``render(obj)`` (an HTML string).

    The data model renders nothing itself (it sits below the renderers):
    :mod:`ragnest.display` registers the renderers when ``ragnest`` is imported, and
    a project can replace one. ``cls`` is a class, or ``"module.QualName"`` for a class
    the registering module must not import. Without a renderer, ``_repr_html_``
    returns ``None`` and notebooks show the plain ``repr``::

        >>> class Note(HtmlRepr):
        ...     pass
        >>> Note()._repr_html_() is None
        True
        >>> register_html(Note, lambda note: "<b>a note</b>")
        >>> Note()._repr_html_()
        '<b>a note</b>'
    """
    _HTML[cls] = render


def html_of(obj: Any) -> str | None:
    """The registered HTML for ``obj`` (its class or nearest base), else ``None``."""
    for klass in type(obj).__mro__:
        render = _HTML.get(klass) or _HTML.get(f"{klass.__module__}.{klass.__qualname__}")
        if render is not None:
            return render(obj)
    return None


class HtmlRepr:
    """Mixin: ``_repr_html_`` through :func:`register_html` (``None`` when nothing is
    registered, so notebooks fall back to the plain ``repr``)."""

    __slots__ = ()

    def _repr_html_(self) -> str | None:
        return html_of(self)


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where a document comes from: a file path, or raw bytes with a name.

    >>> Source.from_bytes(b"hello", name="note.txt").mime
    'text/plain'
    """

    path: str | None = None
    data: bytes | None = field(default=None, repr=False)
    name: str | None = None
    mime: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    document_id_override: str | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **metadata: Any) -> Source:
        """A source for a file on disk (the path is made absolute)."""
        p = Path(path).expanduser().absolute()
        mime, _ = mimetypes.guess_type(p.name)
        return cls(path=str(p), name=p.name, mime=mime, metadata=dict(metadata))

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str, **metadata: Any) -> Source:
        """A source for in-memory bytes; ``name`` gives the file name (and the type)."""
        mime, _ = mimetypes.guess_type(name)
        return cls(data=data, name=name, mime=mime, metadata=dict(metadata))

    @property
    def display_name(self) -> str:
        """The path for files, else the name: what citations show (valid UTF-8: a
        name that is not is shown with ``\\xNN`` escapes, see :mod:`ragnest._paths`)."""
        return readable_path(self.path or self.name or "<bytes>")

    @property
    def suffix(self) -> str:
        """Lower-case file extension including the dot, or ``""``."""
        return Path(self.name or self.path or "").suffix.lower()

    @property
    def document_id(self) -> str:
        """Stable id: from the absolute path for files, from the name for bytes."""
        if self.document_id_override:
            return self.document_id_override
        if self.path:
            return _uuid5(f"path:{self.path}")
        return _uuid5(f"name:{self.name}")

    def read_bytes(self) -> bytes:
        """The raw bytes (reads the file for path sources)."""
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError("Source has neither path nor data")
        return Path(self.path).read_bytes()

    def fingerprint(self) -> str:
        """sha256 of the content: lets an ingest skip files it already holds."""
        h = hashlib.sha256()
        if self.data is not None:
            h.update(self.data)
        elif self.path is not None:
            with open(self.path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """A reference to pixels, rendered or loaded only when needed.

    Either a region of a document page (``source`` + ``page`` + optional ``clip`` in
    PDF points, rendered at ``dpi``) or a standalone image file (``blob``).
    """

    source: str | None = None
    page: int | None = None  # 1-based
    clip: tuple[float, float, float, float] | None = None
    dpi: int = 96
    blob: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "page": self.page,
            "clip": list(self.clip) if self.clip else None,
            "dpi": self.dpi,
            "blob": self.blob,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ImageRef | None:
        if not d:
            return None
        clip = d.get("clip")
        return cls(
            source=d.get("source"),
            page=d.get("page"),
            clip=tuple(clip) if clip else None,  # type: ignore[arg-type]
            dpi=int(d.get("dpi") or 96),
            blob=d.get("blob"),
        )


@dataclass(frozen=True, kw_only=True)
class Segment:
    """One ordered piece of an interleaved chunk: text, an image, or a table.

    ``role`` refines text segments (``"heading"``, ``"caption"``, ``"title"``,
    ``"list"``, ``"code"``, ``"ocr"``); for images, ``text`` holds alt text or the
    text OCR found in it and ``role`` may say ``"figure"`` (vector drawing) or
    ``"picture"`` (embedded raster). Tables carry Markdown in ``text``.
    ``bbox`` is in PDF points of ``page`` (pixels for standalone images).
    """

    kind: Literal["text", "image", "table"]
    text: str = ""
    image: ImageRef | None = None
    bbox: tuple[float, float, float, float] | None = None
    page: int | None = None
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "image": self.image.to_dict() if self.image else None,
            "bbox": list(self.bbox) if self.bbox else None,
            "page": self.page,
            "role": self.role,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Segment:
        bbox = d.get("bbox")
        return cls(
            kind=d["kind"],
            text=d.get("text") or "",
            image=ImageRef.from_dict(d.get("image")),
            bbox=tuple(bbox) if bbox else None,  # type: ignore[arg-type]
            page=d.get("page"),
            role=d.get("role"),
        )


@dataclass(frozen=True, kw_only=True)
class Chunk(HtmlRepr):
    """The unit that is embedded, stored, retrieved and cited.

    ``page`` is 1-based. ``source`` is the display name of the document (its path).
    """

    id: str
    document_id: str
    kind: ChunkKind
    text: str = ""
    source: str = ""
    segments: tuple[Segment, ...] = ()
    page: int | None = None
    pages: tuple[int, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    image: ImageRef | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """JSON-basic payload stored next to the vectors (no pixels)."""
        return {
            "document_id": self.document_id,
            "kind": self.kind,
            "text": self.text,
            "source": self.source,
            "segments": [s.to_dict() for s in self.segments],
            "page": self.page,
            "pages": list(self.pages) if self.pages else ([self.page] if self.page else []),
            "bbox": list(self.bbox) if self.bbox else None,
            "image": self.image.to_dict() if self.image else None,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_payload(cls, chunk_id: str, payload: Mapping[str, Any]) -> Chunk:
        """Inverse of :meth:`to_payload`."""
        bbox = payload.get("bbox")
        pages = tuple(payload.get("pages") or ())
        page = payload.get("page")
        return cls(
            id=str(chunk_id),
            document_id=payload["document_id"],
            kind=payload["kind"],
            text=payload.get("text") or "",
            source=payload.get("source") or "",
            segments=tuple(Segment.from_dict(s) for s in payload.get("segments") or ()),
            page=page,
            pages=() if pages == ((page,) if page else ()) else pages,
            bbox=tuple(bbox) if bbox else None,  # type: ignore[arg-type]
            image=ImageRef.from_dict(payload.get("image")),
            metadata=dict(payload.get("metadata") or {}),
        )


@dataclass(frozen=True, kw_only=True)
class Query:
    """What the user asks: text and/or an image, with optional payload filters.

    ``filters`` maps payload keys to a value (exact match), a list (any of), or a
    dict with ``gte``/``gt``/``lte``/``lt`` (range). Example::

        Query(text="install on Windows", filters={"source": "/docs/R-admin.pdf"})
    """

    text: str | None = None
    image: ImageRef | None = None
    filters: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.text and self.image is None:
            raise ValueError("A Query needs text, an image, or both")


@dataclass(frozen=True, kw_only=True)
class Hit(HtmlRepr):
    """A retrieved chunk with its final score and the score it got at each stage.

    ``scores_by_stage`` holds ``final``, each route's own score where the fusion
    exposes it (``dense``, ``bm25``) and, when asked for (``explain=True``), each
    dense/multi-vector stage's similarity by vector name (``dense-coarse``,
    ``dense-mid``, ``dense-fine``): how the hit looked to every rung of the funnel.
    """

    chunk: Chunk
    score: float
    scores_by_stage: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Citation(HtmlRepr):
    """Where a statement in an answer comes from: file, page and, when the layout is
    known, the region of the page (``bbox`` in PDF points) the quote was taken from.
    ``tag`` is how the answer's text cites it (``P3`` for ``[P3]``, ``1`` for ``[1]``)."""

    chunk_id: str
    document_id: str
    source: str
    page: int | None
    quote: str = ""
    bbox: tuple[float, float, float, float] | None = None
    tag: str | None = None

    def label(self) -> str:
        """Human-readable ``file p. N`` label."""
        name = Path(self.source).name if self.source else self.document_id
        return f"{name} p. {self.page}" if self.page else name


@dataclass(frozen=True, kw_only=True)
class Answer(HtmlRepr):
    """A generated answer with its citations and the hits it was built from.

    ``usage`` says what the generator consumed (tokens, images, visual tokens, hits
    read); ``timings`` holds seconds per step (``retrieve``, ``rerank``, ``generate``);
    ``found`` is ``False`` when the documents do not contain the answer.
    """

    text: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    usage: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    found: bool = True


@dataclass(frozen=True, kw_only=True)
class AnswerDelta:
    """One step of a streamed answer.

    ``text`` is the new text since the previous delta (append the deltas' texts to get
    the answer); ``citations`` are the citations resolved in it. The last delta has
    ``done=True`` and carries the complete :class:`Answer` (with usage)::

        for delta in generator.stream(query, hits):
            print(delta.text, end="")
            if delta.done:
                answer = delta.answer
    """

    text: str = ""
    citations: tuple[Citation, ...] = ()
    done: bool = False
    answer: Answer | None = None


@dataclass(frozen=True, kw_only=True)
class EmbeddedChunk(HtmlRepr):
    """A chunk with its vectors, keyed by the store's vector names: what a store writes.

    Data only: it can be computed on one machine (an embedding worker) and written
    on another.
    """

    chunk: Chunk
    vectors: Mapping[str, Vector] = field(repr=False)


@dataclass(frozen=True)
class WriteResult:
    """What a store write did to one document: chunks added, kept as they were, removed."""

    added: int
    unchanged: int
    removed: int


class Chunks(HtmlRepr, list[Chunk]):
    """The chunks of one parsed document (``Pipeline.parse``), displayable in notebooks;
    ``source`` is the document they come from. A plain list otherwise."""

    def __init__(self, chunks: Iterable[Chunk] = (), *, source: Source | None = None) -> None:
        super().__init__(chunks)
        self.source = source


class EmbeddedChunks(HtmlRepr, list[EmbeddedChunk]):
    """Chunks with their vectors (``Pipeline.embed``), ready for ``Pipeline.write``;
    ``source`` is their document. A plain list otherwise."""

    def __init__(self, points: Iterable[EmbeddedChunk] = (), *,
                 source: Source | None = None) -> None:
        super().__init__(points)
        self.source = source


class Hits(HtmlRepr, list[Hit]):
    """Hits, best first, displayable in notebooks with each stage's score; ``query``
    is what they answer and ``timings`` the seconds per step. A plain list otherwise::

        >>> hits = Hits([], query=Query(text="descale"), timings={"search": 0.01})
        >>> hits == [], hits.query.text
        (True, 'descale')
    """

    def __init__(self, hits: Iterable[Hit] = (), *, query: Query | None = None,
                 timings: Mapping[str, float] | None = None) -> None:
        super().__init__(hits)
        self.query = query
        self.timings: dict[str, float] = dict(timings or {})
