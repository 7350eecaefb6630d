"""Prompt presets of the vision-language reranker: how a (query, document) pair is asked.

Each preset follows a published pointwise reranker, so its checkpoint reads the prompt it
was trained on, and names the two answer words whose last-position logits give the score
(``logit(yes) - logit(no)``; the probability is its sigmoid):

* ``monoqwen`` -- MonoQwen2-VL-v0.1 (a LoRA on Qwen2-VL-2B-Instruct): the image first, then
  "Assert the relevance of the previous image document to the following query, answer
  True or False. The query is: ..."; answers ``True`` / ``False``;
* ``qwen3-vl`` -- Qwen3-VL-Reranker-2B/8B: a system message asking for "yes" or "no", then
  ``<Instruct>: ...``, ``<Query>:`` and the query, ``\n<Document>:`` and the document (its
  text, then its images, as the reference code orders them); answers ``yes`` / ``no``;
* ``generic`` -- any instruct VLM: the query, the document, "Does the document help answer
  the query? Answer yes or no."; its yes/no logits are not calibrated, so the reranker cuts
  at the largest score gap instead of a probability threshold.

A document is a list of parts (text, or ``None`` for an image slot)::

    >>> parts = PRESETS["monoqwen"].parts("descaling interval", [None])
    >>> parts[0] is None, parts[1].startswith("Assert the relevance")
    (True, True)
    >>> PRESETS["qwen3-vl"].answers, PRESETS["generic"].calibrated
    (('yes', 'no'), False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["PRESETS", "PresetName", "RerankPreset"]

PresetName = Literal["monoqwen", "qwen3-vl", "generic"]

DocPart = str | None


@dataclass(frozen=True)
class RerankPreset:
    """One prompt format (see the module docs)."""

    name: str
    yes: str
    no: str
    calibrated: bool
    system: str | None = None
    instruction: str | None = None
    takes_query_image: bool = True

    @property
    def answers(self) -> tuple[str, str]:
        return self.yes, self.no

    def parts(
        self,
        query: str,
        document: Sequence[DocPart],
        *,
        instruction: str | None = None,
        query_image: bool = False,
    ) -> list[DocPart]:
        """The user message's parts for ``query`` (text, plus an image slot first in the
        query when ``query_image``) and ``document`` (its parts in order)."""
        doc = list(document)
        q_img: list[DocPart] = [None] if query_image and self.takes_query_image else []
        if self.name == "monoqwen":
            sep = "\n" if doc and doc[-1] is not None else ""
            return [*doc, f"{sep}Assert the relevance of the previous image document to the "
                          f"following query, answer {self.yes} or {self.no}. The query is: "
                          f"{query}"]
        if self.name == "qwen3-vl":  # as its reference code: each side's text, then its images
            instr = instruction or self.instruction or ""
            texts = [p for p in doc if p is not None]
            images = [p for p in doc if p is None]
            return [f"<Instruct>: {instr}", "<Query>:", query, *q_img, "\n<Document>:", *texts,
                    *images]
        return [f"Query: {query}", *q_img, "\nDocument:", *doc,
                f"\nDoes the document help answer the query? Answer {self.yes} or {self.no}."]


PRESETS: dict[str, RerankPreset] = {
    "monoqwen": RerankPreset("monoqwen", "True", "False", calibrated=True,
                             takes_query_image=False),
    "qwen3-vl": RerankPreset(
        "qwen3-vl", "yes", "no", calibrated=True,
        system=('Judge whether the Document meets the requirements based on the Query and the '
                'Instruct provided. Note that the answer can only be "yes" or "no".'),
        instruction="Given a search query, retrieve relevant candidates that answer the query.",
    ),
    "generic": RerankPreset("generic", "yes", "no", calibrated=False),
}
