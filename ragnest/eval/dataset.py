"""The evaluation data model: a corpus, queries and their gold answers.

A relevance *unit* is what a query's answer points at: a corpus id (BEIR, ViDoRe), or
one page of a document, written ``name.pdf#p3`` (a folder of PDFs). Hits map back to
units through their chunk's file and page (:meth:`EvalDataset.unit`)::

    >>> ds = EvalDataset(name="tiny", queries=[EvalQuery(id="q1", text="reset")],
    ...                  qrels={"q1": {"manual.pdf#p2": 1}}, root=Path("/docs"))
    >>> ds.unit("/docs/manual.pdf", 2)
    'manual.pdf#p2'
    >>> page_unit("manual.pdf", 2)
    'manual.pdf#p2'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragnest.errors import RagnestError
from ragnest.types import ImageRef, Query

__all__ = ["CorpusItem", "EvalDataset", "EvalQuery", "GoldBox", "merge_boxes", "page_unit",
           "qrels_from_pairs"]


def page_unit(document: str, page: int | None) -> str:
    """The unit id of one page of a document (its name relative to the dataset folder)."""
    return f"{document}#p{page or 1}"


@dataclass(frozen=True)
class GoldBox:
    """A gold region: ``unit`` (corpus id or page unit) and ``x0, y0, x1, y1`` in the
    page's own coordinates (PDF points for PDFs, pixels for page images)."""

    unit: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class EvalQuery:
    """One query: text and/or an image (a file path or an :class:`ImageRef`), gold
    answer strings (for exact match / token F1) and gold boxes (for region IoU)."""

    id: str
    text: str | None = None
    image: ImageRef | None = None
    answers: tuple[str, ...] = ()
    boxes: tuple[GoldBox, ...] = ()
    kind: str = "text"

    def to_query(self) -> Query:
        """The :class:`ragnest.Query` a retriever runs."""
        return Query(text=self.text or None, image=self.image)


@dataclass(frozen=True)
class CorpusItem:
    """One corpus entry to index: text (BEIR) or page image bytes (ViDoRe)."""

    id: str
    text: str = ""
    title: str = ""
    image: bytes | None = field(default=None, repr=False)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class EvalDataset:
    """Queries, qrels (``{query id: {unit: grade}}``), and what to index: ``corpus``
    items (written to files by :meth:`materialise`) or ``documents`` (files as they
    are, units are their pages, named relative to ``root``)."""

    name: str
    queries: list[EvalQuery]
    qrels: dict[str, dict[str, int]]
    corpus: list[CorpusItem] = field(default_factory=list)
    documents: list[Path] = field(default_factory=list)
    root: Path | None = None
    _files: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        ids = [q.id for q in self.queries]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise RagnestError(f"dataset {self.name}: duplicate query ids {dup}")
        self.queries = [q for q in self.queries if self.qrels.get(q.id)]
        if not self.queries:
            raise RagnestError(f"dataset {self.name}: no query has a relevant document in the qrels")

    def __len__(self) -> int:
        return len(self.queries)

    def materialise(self, workdir: str | Path) -> list[Path]:
        """The files to ingest: corpus items are written under ``workdir/corpus`` (text
        as ``.txt``, images as they came), documents are returned as they are."""
        files = [Path(d).absolute() for d in self.documents]
        if not self.corpus:
            return files
        out = Path(workdir) / "corpus"
        out.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(self.corpus):
            stem = f"{i:06d}_{_SAFE.sub('_', item.id)[:48]}"
            if item.image is not None:
                path = out / (stem + _image_suffix(item.image))
                data = item.image
            else:
                path = out / (stem + ".txt")
                data = ("\n\n".join(p for p in (item.title, item.text) if p)).encode("utf-8")
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)
            self._files[str(path.absolute())] = item.id
            files.append(path.absolute())
        return files

    def unit(self, source: str, page: int | None) -> str | None:
        """The unit of a hit on ``source`` (a file path) at ``page``; ``None`` when the
        file is not part of this dataset."""
        corpus_id = self._files.get(str(Path(source).absolute()))
        if corpus_id is not None:
            return corpus_id
        p = Path(source).absolute()
        if self.root is not None:
            try:
                return page_unit(p.relative_to(Path(self.root).absolute()).as_posix(), page)
            except ValueError:
                pass
        return page_unit(p.name, page) if not self.corpus else None

    def subset(self, n: int) -> EvalDataset:
        """The first ``n`` queries (same corpus)."""
        ds = EvalDataset(self.name, self.queries[:n], self.qrels, self.corpus, self.documents,
                         self.root)
        ds._files = self._files
        return ds

    def summary(self) -> dict[str, Any]:
        """Counts for reports."""
        return {"name": self.name, "queries": len(self.queries),
                "corpus": len(self.corpus) or len(self.documents),
                "qrels": sum(len(v) for v in self.qrels.values())}


def _image_suffix(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".png"


def qrels_from_pairs(pairs: Sequence[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """``{query id: {unit: grade}}`` from (query id, unit, grade) triples (grade <= 0
    is kept: ir-measures treats it as not relevant)."""
    out: dict[str, dict[str, int]] = {}
    for qid, unit, grade in pairs:
        out.setdefault(str(qid), {})[str(unit)] = int(grade)
    return out


def merge_boxes(queries: Sequence[EvalQuery], boxes: Mapping[str, list[GoldBox]]) -> list[EvalQuery]:
    """``queries`` with the gold boxes found for their ids added."""
    from dataclasses import replace

    return [replace(q, boxes=tuple(q.boxes) + tuple(boxes.get(q.id, ()))) for q in queries]
