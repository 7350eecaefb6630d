"""What every answering model is shown, and how its answer is read back: shared by the
transformers, OpenAI-compatible and LangChain/LlamaIndex generators.

* :func:`build_evidence` labels each retrieved hit (``[P1] manual.pdf p. 12``) and keeps
  its page or region image and text layer;
* :func:`split_budget` shares a request's visual-token budget across the pages by
  their rerank score, with a legibility floor per page (a page that cannot get the
  floor is left out, lowest ranked first; a lower-ranked page never gets more tokens
  than a higher-ranked one);
* :func:`fit_to_tokens` sizes a page image to exact multiples of the model's pixel unit
  (patch x merge) within its tokens, so the processor does not resize again;
* :func:`parse_citations` turns ``[P#]`` tags into :class:`~ragnest.types.Citation`\\ s
  (unknown labels are dropped, from the citations and from the text);
* :func:`box_to_points` converts a grounding box the model returned (0-1000 or pixels
  of the image it saw) to PDF points, and :func:`snap_to_region` moves it onto the
  nearest text-layer region of the chunk.

    >>> split_budget([0.9, 0.5, 0.1], total=1000, floor=200)
    [441, 333, 226]
    >>> fit_to_tokens(1700, 2200, tokens=300, unit=28)
    (420, 560)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragnest.media.fit import fit_to_tokens  # re-exported: one copy, below the rerankers too
from ragnest.types import Chunk, Citation, Hit, ImageRef

__all__ = [
    "NOT_FOUND",
    "Evidence",
    "answer_instructions",
    "box_to_points",
    "build_evidence",
    "fit_to_tokens",
    "is_abstention",
    "parse_citations",
    "snap_to_region",
    "split_budget",
]

#: What an answer says when the documents do not contain it.
NOT_FOUND = "I could not find this in the indexed documents."

_TAG = re.compile(r"\[\s*(P\d+)\s*\]")
_ABSTAIN = re.compile(
    r"(could not find|cannot find|can't find|not (?:found|contained|mentioned|present) in the "
    r"(?:indexed )?documents|(?:documents|pages|context) do(?:es)? not (?:contain|mention|say))",
    re.IGNORECASE,
)

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Evidence:
    """One retrieved hit as a model sees it: a label, the page or region image, the text."""

    label: str
    hit: Hit
    image: ImageRef | None
    text: str = ""

    @property
    def chunk(self) -> Chunk:
        return self.hit.chunk

    def header(self) -> str:
        """``[P1] manual.pdf p. 12``: what precedes this evidence in the prompt."""
        chunk = self.chunk
        name = Path(chunk.source).name if chunk.source else chunk.document_id
        where = f" p. {chunk.page}" if chunk.page else ""
        return f"[{self.label}] {name}{where}"


def build_evidence(
    hits: Sequence[Hit], *, images: bool = True, text: bool = True, max_chars: int = 4000
) -> list[Evidence]:
    """``P1``, ``P2``, ... for ``hits`` in rank order, each with its image (the chunk's
    region or page screenshot; the first image segment of a chunk without one) and its
    text layer cut to ``max_chars``."""
    out = []
    for i, hit in enumerate(hits):
        chunk = hit.chunk
        image = None
        if images:
            image = chunk.image or next((s.image for s in chunk.segments if s.image), None)
        body = chunk.text.strip()[:max_chars] if text else ""
        out.append(Evidence(label=f"P{i + 1}", hit=hit, image=image, text=body))
    return out


def split_budget(
    weights: Sequence[float], total: int, *, floor: int, cap: int | None = None
) -> list[int]:
    """Visual tokens per page, in rank order (see the module docs).

    ``weights`` are the pages' relevance (rerank probabilities or scores, best first;
    negative ones count as zero, all-zero means equal shares). Each kept page gets at
    least ``floor`` and at most ``cap`` tokens; the sum never exceeds ``total``; shares
    are proportional to weight above the floor and never increase down the ranking.

    >>> split_budget([1.0, 1.0, 1.0, 1.0], total=500, floor=200)
    [250, 250, 0, 0]
    >>> split_budget([0.7, 0.2], total=4000, floor=100, cap=1280)
    [1280, 1280]
    """
    if total < 0 or floor < 1:
        raise ValueError("the budget must be >= 0 and the floor >= 1 token")
    n = min(len(weights), total // floor)  # pages that can each get the floor
    if n <= 0:
        return [0] * len(weights)
    w = [max(0.0, float(x)) if math.isfinite(float(x)) else 0.0 for x in weights[:n]]
    # ranks are what they are: a later page never weighs more than an earlier one
    for i in range(1, n):
        w[i] = min(w[i], w[i - 1])
    if sum(w) <= 0:
        w = [1.0] * n
    ceiling = cap if cap is not None else total
    shares = [floor] * n
    spare = total - floor * n
    open_ = [i for i in range(n) if shares[i] < ceiling]
    while spare > 0 and open_:
        weight = sum(w[i] for i in open_)
        if weight <= 0:
            weight, w = float(len(open_)), [1.0] * n
        given = 0
        for i in open_:
            add = min(ceiling - shares[i], int(spare * w[i] / weight))
            shares[i] += add
            given += add
        if given == 0:  # rounding left a few tokens: hand them out by rank
            for i in open_:
                if spare - given <= 0:
                    break
                if shares[i] < ceiling:
                    shares[i] += 1
                    given += 1
            if given == 0:
                break
        spare -= given
        open_ = [i for i in open_ if shares[i] < ceiling]
    for i in range(1, n):  # integer rounding must not reorder the ranking
        shares[i] = min(shares[i], shares[i - 1])
    return shares + [0] * (len(weights) - n)


def answer_instructions(labels: Sequence[str]) -> str:
    """The instruction every generator gives its model: answer from the labelled pages
    only, cite them as ``[P#]``, and say :data:`NOT_FOUND` when they do not contain it."""
    listed = ", ".join(f"[{label}]" for label in labels) or "(none)"
    return (
        "Answer the question using only the pages below. After each statement, cite the "
        f"page it comes from with its label in brackets ({listed}). If the pages do not "
        f'contain the answer, reply exactly: "{NOT_FOUND}"'
    )


def is_abstention(text: str) -> bool:
    """Whether an answer says the documents do not contain it.

    >>> is_abstention("The pages do not contain this information.")
    True
    >>> is_abstention("Descale every 8 weeks [P1].")
    False
    """
    return not text.strip() or NOT_FOUND.lower() in text.lower() or bool(_ABSTAIN.search(text))


def parse_citations(
    text: str, evidence: Sequence[Evidence], *, boxes: dict[str, BBox] | None = None
) -> tuple[str, tuple[Citation, ...]]:
    """``(text, citations)``: the ``[P#]`` tags of ``text`` in order of first use, each
    as a citation of its evidence (document, page, chunk id, region); tags naming no
    evidence are removed from the text. ``boxes`` maps a label to a region (PDF points)
    the model pointed at, which replaces the chunk's own region.
    """
    by_label = {e.label: e for e in evidence}
    cited: list[Citation] = []
    seen: set[str] = set()

    def keep(match: re.Match[str]) -> str:
        label = match.group(1)
        e = by_label.get(label)
        if e is None:
            return ""
        if label not in seen:
            seen.add(label)
            chunk = e.chunk
            cited.append(Citation(
                chunk_id=chunk.id, document_id=chunk.document_id, source=chunk.source,
                page=chunk.page, quote=e.text[:300],
                bbox=(boxes or {}).get(label, chunk.bbox), tag=label,
            ))
        return f"[{label}]"

    cleaned = _TAG.sub(keep, text)
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return cleaned, tuple(cited)


def box_to_points(
    box: Sequence[float],
    *,
    space: Literal["norm1000", "pixels"],
    image_size: tuple[int, int],
    region: BBox,
) -> BBox:
    """A grounding box ``(x0, y0, x1, y1)`` as the model gave it, in PDF points of the page.

    ``space``: ``"norm1000"`` (Qwen2-VL, Qwen3-VL: 0..1000 of the image) or ``"pixels"``
    (Qwen2.5-VL: pixels of the image the model saw, ``image_size`` = (width, height));
    ``region`` is the part of the page the image shows, in PDF points.

    >>> box_to_points([0, 0, 500, 1000], space="norm1000", image_size=(100, 200),
    ...               region=(0.0, 0.0, 600.0, 800.0))
    (0.0, 0.0, 300.0, 800.0)
    """
    if len(box) != 4:
        raise ValueError(f"a box has 4 numbers (x0, y0, x1, y1), got {list(box)}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if space == "norm1000":
        fx0, fy0, fx1, fy1 = x0 / 1000, y0 / 1000, x1 / 1000, y1 / 1000
    else:
        w, h = image_size
        fx0, fy0, fx1, fy1 = x0 / w, y0 / h, x1 / w, y1 / h
    fx0, fx1 = sorted((min(max(fx0, 0.0), 1.0), min(max(fx1, 0.0), 1.0)))
    fy0, fy1 = sorted((min(max(fy0, 0.0), 1.0), min(max(fy1, 0.0), 1.0)))
    rx0, ry0, rx1, ry1 = region
    return (rx0 + fx0 * (rx1 - rx0), ry0 + fy0 * (ry1 - ry0),
            rx0 + fx1 * (rx1 - rx0), ry0 + fy1 * (ry1 - ry0))


def _iou(a: BBox, b: BBox) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def snap_to_region(box: BBox, chunk: Chunk) -> BBox:
    """The chunk's text-layer region (a segment's bbox on the chunk's page) that overlaps
    ``box`` most, else the one whose centre is nearest; ``box`` itself when the chunk has
    no regions."""
    regions = [s.bbox for s in chunk.segments
               if s.bbox is not None and (s.page is None or s.page == chunk.page)]
    if not regions:
        return box
    best = max(regions, key=lambda r: _iou(box, r))
    if _iou(box, best) > 0:
        return best
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return min(regions, key=lambda r: ((r[0] + r[2]) / 2 - cx) ** 2 + ((r[1] + r[3]) / 2 - cy) ** 2)
