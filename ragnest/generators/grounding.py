"""Grounding boxes a model writes in its answer, read back as regions of PDF pages.

Qwen-family models point at regions in their own formats:

* ``qwen2`` (Qwen2-VL): ``<|box_start|>(x0,y0),(x1,y1)<|box_end|>``, 0..1000 of the image;
* ``qwen2.5`` (Qwen2.5-VL): JSON ``{"bbox_2d": [x0, y0, x1, y1], ...}``, pixels of the
  image it saw;
* ``qwen3`` (Qwen3-VL): the same JSON, 0..1000.

:func:`find_boxes` finds them with their position in the text; :func:`assign_boxes` gives
each to the ``[P#]`` tag nearest before it (else after it; else the only page), so a box
becomes the region of that page's citation (converted with
:func:`~ragnest.generators.evidence.box_to_points` and snapped to a text-layer region with
:func:`~ragnest.generators.evidence.snap_to_region` by the generator)::

    >>> text = "Descale every 8 weeks [P2] <|box_start|>(100,200),(500,260)<|box_end|>."
    >>> assign_boxes(text, find_boxes(text, "qwen2"), labels=["P1", "P2"])
    {'P2': (100.0, 200.0, 500.0, 260.0)}
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["BOX_SPACES", "assign_boxes", "find_boxes"]

BBox = tuple[float, float, float, float]

#: The coordinate space of each style: ``norm1000`` or ``pixels`` (of the image the model saw).
BOX_SPACES: dict[str, str] = {"qwen2": "norm1000", "qwen2.5": "pixels", "qwen3": "norm1000"}

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_QWEN2 = re.compile(rf"<\|box_start\|>\s*\({_NUM},{_NUM}\)\s*,\s*\({_NUM},{_NUM}\)\s*<\|box_end\|>")
_JSON = re.compile(rf"\"bbox_2d\"\s*:\s*\[{_NUM},{_NUM},{_NUM},{_NUM}\]")
_TAG = re.compile(r"\[\s*(P\d+)\s*\]")


def find_boxes(text: str, style: str | None) -> list[tuple[int, BBox]]:
    """``(position, (x0, y0, x1, y1))`` for each box written in ``style`` (``None``: none)."""
    if style is None:
        return []
    pattern = _QWEN2 if style == "qwen2" else _JSON
    return [(m.start(), tuple(float(g) for g in m.groups()))  # type: ignore[misc]
            for m in pattern.finditer(text)]


def assign_boxes(
    text: str, boxes: Sequence[tuple[int, BBox]], *, labels: Sequence[str]
) -> dict[str, BBox]:
    """The first box given to each label (see the module docs); tags naming no label and
    boxes no label can take are ignored."""
    known = set(labels)
    tags = [(m.start(), m.group(1)) for m in _TAG.finditer(text) if m.group(1) in known]
    out: dict[str, BBox] = {}
    for pos, box in boxes:
        before = [label for at, label in tags if at < pos]
        after = [label for at, label in tags if at > pos]
        label = before[-1] if before else after[0] if after else (
            labels[0] if len(labels) == 1 else None)
        if label is not None and label not in out:
            out[label] = box
    return out
