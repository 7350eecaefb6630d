"""The text of a streamed answer: raw model output in, clean answer text out, piece by piece.

A model's raw text carries what the reader must not see -- special tokens, grounding-box
markup, ``[P#]`` tags that name no page -- and whitespace that
:func:`~ragnest.generators.evidence.parse_citations` would tidy. :class:`AnswerText`
applies exactly that cleaning while the text streams in, holding back a tail that could
still change (a half-written tag or special token, an open box, trailing spaces), so the
deltas it hands out, joined, are the final answer text::

    >>> text = AnswerText(labels={"P1"}, specials=["<|im_end|>"])
    >>> [text.feed(p) for p in ["Descale every", " 8 weeks [P", "1] [P9] ", ".<|im_", "end|>"]]
    ['Descale every', ' 8 weeks', ' [P1]', '.', '']
    >>> text.finish(), text.text
    ('', 'Descale every 8 weeks [P1].')

Every generator that streams text uses it: the transformers VLM, the OpenAI-compatible
one and the LangChain and LlamaIndex connectors. With ``hold_uncited``, nothing goes
out until the answer cites a page or grows past that many characters without reading
as an abstention, so a caller can still replace an answer that turns out to be "not
found" (the OpenAI-compatible generator streams only
:data:`~ragnest.generators.evidence.NOT_FOUND` then)::

    >>> text = AnswerText(labels={"P1"}, hold_uncited=300)
    >>> [text.feed(p) for p in ["The pages do", " not say.", " Every 8 weeks [P1]."]]
    ['', '', 'The pages do not say. Every 8 weeks [P1].']
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from ragnest.generators.evidence import is_abstention

__all__ = ["AnswerText"]

_TAG = re.compile(r"\[\s*(P\d+)\s*\]")
_OPEN_TAG = re.compile(r"\[\s*(?:P\d*)?\s*$")
_BOX = re.compile(r"<\|box_start\|>.*?<\|box_end\|>", re.DOTALL)
_REF = re.compile(r"<\|object_ref_start\|>(.*?)<\|object_ref_end\|>", re.DOTALL)
_JSON_BOX = re.compile(r"\{[^{}]{0,200}\"bbox_2d\"[^{}]{0,200}\}")
_SPANS = (("<|box_start|>", "<|box_end|>"), ("<|object_ref_start|>", "<|object_ref_end|>"))
_MAX_OPEN_JSON = 420  # an unclosed "{" further back than this can no longer open a box


class AnswerText:
    """Incremental cleaning of a model's answer (see the module docs).

    ``labels``: the evidence labels the answer may cite (``P1``...); ``specials``: the
    tokenizer's special tokens (removed); ``json_boxes``: the model writes grounding boxes
    as JSON objects with ``bbox_2d`` (Qwen2.5-VL, Qwen3-VL), which are removed from the text;
    ``hold_uncited``: when above 0, :meth:`feed` hands out nothing until the clean text
    cites one of ``labels`` or is longer than ``hold_uncited`` characters and does not
    read as an abstention (:func:`~ragnest.generators.evidence.is_abstention`); from then
    on it streams as usual (:meth:`finish` hands out whatever is left either way).
    ``raw`` is the model's text so far, ``text`` the clean text handed out so far.
    """

    def __init__(self, labels: Collection[str], *, specials: Sequence[str] = (),
                 json_boxes: bool = False, hold_uncited: int = 0) -> None:
        self.labels = set(labels)
        if hold_uncited < 0:
            raise ValueError(f"hold_uncited must be >= 0 characters, got {hold_uncited}")
        self.json_boxes = json_boxes
        self.hold_uncited = hold_uncited
        keep = {t for pair in _SPANS for t in pair}
        names = sorted({s for s in specials if s and s not in keep}, key=len, reverse=True)
        self._specials = re.compile("|".join(re.escape(s) for s in names)) if names else None
        self._prefixes = [s for s in [*names, *keep]]
        self.raw = ""
        self.text = ""

    def feed(self, piece: str) -> str:
        """Add raw text; returns the clean text that became certain (may be ``""``)."""
        self.raw += piece
        return self._emit(self.raw[: self._hold(self.raw)], final=False)

    def finish(self) -> str:
        """The rest of the clean text, at the end of the stream."""
        return self._emit(self.raw, final=True)

    def _emit(self, raw: str, *, final: bool) -> str:
        clean = self.clean(raw).rstrip()  # trailing whitespace may yet be eaten
        if not final and not self.text and self.hold_uncited and not self._released(clean):
            return ""  # not cited yet, and short or an abstention: may still be "not found"
        if not clean.startswith(self.text):  # cannot happen with the holds; never rewrite
            return ""
        new = clean[len(self.text):]
        self.text = clean
        return new

    def _released(self, clean: str) -> bool:
        """Whether text held under ``hold_uncited`` may go out: it cites a label (only
        known ones are left in ``clean``), or it is long and not an abstention."""
        if _TAG.search(clean):
            return True
        return len(clean) > self.hold_uncited and not is_abstention(clean)

    def clean(self, raw: str) -> str:
        """``raw`` cleaned as a whole: markup and special tokens removed, unknown tags
        dropped, whitespace tidied as :func:`parse_citations` does."""
        text = _BOX.sub("", raw)
        text = _REF.sub(r"\1", text)
        for start, end in _SPANS:  # an unmatched marker at the very end of the stream
            text = text.replace(start, "").replace(end, "")
        if self.json_boxes:
            text = _JSON_BOX.sub("", text)
        if self._specials is not None:
            text = self._specials.sub("", text)
        text = _TAG.sub(lambda m: f"[{m.group(1)}]" if m.group(1) in self.labels else "", text)
        text = re.sub(r"[ \t]{2,}", " ", text)
        text = re.sub(r"[ \t]+([.,;:])", r"\1", text)
        return text.lstrip()

    def _hold(self, raw: str) -> int:
        """Where the uncertain tail of ``raw`` begins."""
        hold = len(raw.rstrip())  # trailing whitespace may yet be eaten by punctuation
        for start, end in _SPANS:  # an open box or object reference: the first start
            j = raw.rfind(end)       # after the last end
            i = raw.find(start, j + len(end) if j >= 0 else 0)
            if i >= 0:
                hold = min(hold, i)
        if self.json_boxes:
            i = raw.rfind("{")
            if i >= 0 and raw.find("}", i) < 0 and len(raw) - i <= _MAX_OPEN_JSON:
                hold = min(hold, i)
        tag = _OPEN_TAG.search(raw)  # "[P1" may become a known or an unknown tag
        if tag:
            hold = min(hold, tag.start())
        lt = raw.rfind("<")  # the start of a special token still being written
        if lt >= 0 and ">" not in raw[lt:] and any(p.startswith(raw[lt:]) for p in self._prefixes):
            hold = min(hold, lt)
        # never cut through a complete box, reference or JSON box: hold at its start
        spans = [m.span() for rx in (_BOX, _REF, *([_JSON_BOX] if self.json_boxes else []))
                 for m in rx.finditer(raw)]
        moved = True
        while moved:
            moved = False
            for a, b in spans:
                if a < hold < b:
                    hold, moved = a, True
        # whitespace right before the hold may be eaten too
        return len(raw[:hold].rstrip())
