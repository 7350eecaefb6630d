"""Eval sets made from a user's own documents, each query's answer being its page.

* :func:`known_item_set`: a 14-word window of one page's text with a quarter of its
  words dropped (the method of ``tests/benchmarks/bench_known_item.py``);
* :func:`crop_set`: screenshot crops of figures, pictures and tables found by ragnest's
  own PDF layout, rendered from the PDF as a screenshot would be (the gold box is the
  crop's region);
* :func:`generated_set`: one question per sampled page written by a generator (an
  OpenAI-compatible or VLM generator), the page as its answer.

    >>> ds = known_item_set(["examples/docs/nimbus3_handbook.pdf"], 3)
    >>> len(ds), ds.queries[0].kind, next(iter(ds.qrels[ds.queries[0].id]))[:22]
    (3, 'known-item', 'nimbus3_handbook.pdf#p')
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragnest.errors import RagnestError
from ragnest.eval.dataset import EvalDataset, EvalQuery, GoldBox, page_unit
from ragnest.parsers.pdf import PdfParser
from ragnest.types import Chunk, Hit, ImageRef, Query, Source

__all__ = ["QUESTION_PROMPT", "crop_set", "generated_set", "known_item_set"]

QUESTION_PROMPT = ("Write one question that a reader could ask and that this page answers. "
                   "Reply with the question only.")


def _files(files: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], Path]:
    paths = [Path(f).absolute() for f in files]
    if not paths:
        raise RagnestError("no documents to make an eval set from")
    for p in paths:
        if not p.is_file():
            raise RagnestError(f"{p}: no such file")
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return paths, root


def _pages(files: Sequence[Path], parser: PdfParser) -> Iterator[Chunk]:
    for f in files:
        yield from parser.parse(Source.from_path(f))


def _unit(root: Path, source: str, page: int | None) -> str:
    return page_unit(Path(source).relative_to(root).as_posix(), page)


def known_item_set(files: Sequence[str | os.PathLike[str]], n: int, *, seed: int = 7,
                   window: int = 14, min_words: int = 30) -> EvalDataset:
    """``n`` known-item queries from random pages with at least ``min_words`` words
    (words: whitespace tokens holding a letter or digit): a ``window``-word span with
    a quarter of its words (3-4 of 14) dropped at random."""
    paths, root = _files(files)
    rng = random.Random(seed)
    pages: list[tuple[str, int, list[str]]] = []
    for chunk in _pages(paths, PdfParser()):
        words = [w for w in chunk.text.split() if any(ch.isalnum() for ch in w)]
        if len(words) >= min_words:
            pages.append((chunk.source, chunk.page or 0, words))
    queries, qrels = [], {}
    for i, (source, page, words) in enumerate(rng.sample(pages, min(n, len(pages)))):
        start = rng.randrange(0, len(words) - window)
        span = words[start : start + window]
        drop = set(rng.sample(range(window), window // 4 + (1 if rng.random() < 0.5 else 0)))
        qid = f"ki{i}"
        queries.append(EvalQuery(id=qid, text=" ".join(w for j, w in enumerate(span) if j not in drop),
                                 kind="known-item"))
        qrels[qid] = {_unit(root, source, page): 1}
    if not queries:
        raise RagnestError(f"no page with {min_words}+ words in {len(paths)} document(s)")
    return EvalDataset("known-item", queries, qrels, documents=paths, root=root)


def crop_set(files: Sequence[str | os.PathLike[str]], n: int, *, min_side: float = 72.0,
             dpi: int = 150, jitter: float = 0.0, seed: int = 11,
             jitter_seed: int = 5) -> EvalDataset:
    """``n`` screenshot crops of figure, picture and table regions at least
    ``min_side`` points on each side, rendered at ``dpi``; the query is the image. With
    ``jitter`` each edge moves out by up to that many points, or in by a third of it
    (a hand-made screenshot never matches the detected box); the gold box stays the
    detected region."""
    paths, root = _files(files)
    regions = []
    for chunk in _pages(paths, PdfParser(chunking="page", ocr="never")):
        for seg in chunk.segments:
            if seg.kind == "text" or not seg.bbox:
                continue
            x0, y0, x1, y1 = seg.bbox
            if x1 - x0 >= min_side and y1 - y0 >= min_side:
                regions.append((chunk.source, chunk.page or 1, seg.role or seg.kind, seg.bbox))
    if not regions:
        raise RagnestError(f"no figure or table of {min_side}+ points in {len(paths)} document(s)")
    queries, qrels = [], {}
    shift = random.Random(jitter_seed)
    for i, (source, page, kind, bbox) in enumerate(random.Random(seed).sample(regions, min(n, len(regions)))):
        qid, unit = f"crop{i}", _unit(root, source, page)
        x0, y0, x1, y1 = bbox
        if jitter:
            x0, y0 = x0 - shift.uniform(-jitter / 3, jitter), y0 - shift.uniform(-jitter / 3, jitter)
            x1, y1 = x1 + shift.uniform(-jitter / 3, jitter), y1 + shift.uniform(-jitter / 3, jitter)
        clip = (max(0.0, x0), max(0.0, y0), x1, y1)
        ref = ImageRef(source=source, page=page, clip=clip, dpi=dpi)
        queries.append(EvalQuery(id=qid, image=ref, kind=f"crop-{kind}",
                                 boxes=(GoldBox(unit, tuple(bbox)),)))  # type: ignore[arg-type]
        qrels[qid] = {unit: 1}
    return EvalDataset("crops", queries, qrels, documents=paths, root=root)


def generated_set(files: Sequence[str | os.PathLike[str]], n: int, generator: Any, *,
                  seed: int = 3, min_words: int = 30, prompt: str = QUESTION_PROMPT) -> EvalDataset:
    """``n`` questions, one per random page with ``min_words`` words or more, written by
    ``generator`` (a ragnest generator: it reads the page as its only hit); a reply
    that is empty or that abstains is left out."""
    if generator is None:
        raise RagnestError("generated questions need a generator (a pipeline with one configured)")
    paths, root = _files(files)
    pages = [c for c in _pages(paths, PdfParser())
             if sum(any(ch.isalnum() for ch in w) for w in c.text.split()) >= min_words]
    queries, qrels = [], {}
    for chunk in random.Random(seed).sample(pages, min(n, len(pages))):
        answer = generator.generate(Query(text=prompt), [Hit(chunk=chunk, score=1.0)])
        text = " ".join(answer.text.split()).strip()
        if not answer.found or not text:
            continue
        qid = f"gen{len(queries)}"
        queries.append(EvalQuery(id=qid, text=text.split("?")[0] + "?" if "?" in text else text,
                                 kind="generated"))
        qrels[qid] = {_unit(root, chunk.source, chunk.page): 1}
    if not queries:
        raise RagnestError("the generator wrote no question for any sampled page")
    return EvalDataset("generated", queries, qrels, documents=paths, root=root)
