"""A pointwise vision-language reranker on transformers (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
Idefics3/SmolVLM): each (query, page or region image, optional page text) pair is scored
by ONE forward pass -- never ``generate`` -- as the last position's logit of the "yes"
answer minus "no", in left-padded batches::

    from ragnest.rerankers.vlm import VlmReranker
    reranker = VlmReranker(model="Qwen/Qwen3-VL-Reranker-2B", preset="qwen3-vl",
                           threshold=0.5, min_k=1, max_k=5)
    kept = reranker.rerank(Query(text="How often should I descale?"), hits)
    kept[0].scores_by_stage["rerank"], kept[0].scores_by_stage["rerank_probability"]

The prompt follows a published reranker (:mod:`ragnest.rerankers.presets`). The answer
tokens are resolved at ``warm_up`` and must be single tokens. Calibrated presets keep the
candidates whose probability is at least ``threshold`` (clamped to ``[min_k, max_k]``; none
above it: nothing is kept, and the answer says the documents do not contain it);
uncalibrated ones cut at the largest gap (:mod:`ragnest.rerankers.cutoff`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from ragnest._hf import HfRuntime, check_device, check_dtype, load_lock, render_images
from ragnest._hf.vlm import Vlm
from ragnest._validate import AtLeast, validate_params
from ragnest.errors import ConfigError, RerankError
from ragnest.media.render import Renderer
from ragnest.multimodal import chunk_parts
from ragnest.rerankers.cutoff import apply_cutoff, sigmoid
from ragnest.rerankers.presets import PRESETS, PresetName, RerankPreset
from ragnest.types import Chunk, Hit, ImageRef, Query

__all__ = ["VlmReranker"]

logger = logging.getLogger(__name__)

OWNER = "reranker/vlm"


@dataclass(kw_only=True)
class VlmReranker:
    """Reranks hits with an image-text-to-text model (see the module docs).

    ``model``: a hub id or local path (``AutoModelForImageTextToText``); ``adapter``: a
    PEFT adapter loaded on top (MonoQwen2-VL is a LoRA on Qwen2-VL-2B-Instruct).
    ``preset``: the prompt format; ``instruction`` replaces the ``qwen3-vl`` preset's task
    instruction; ``yes_token`` / ``no_token`` replace the preset's answer words;
    ``calibrated`` overrides whether its probabilities are trusted (threshold) or not
    (largest gap). ``max_pixels``: the image budget per candidate, separate from the
    generator's: each page or region is rendered at up to ``render_dpi`` within it and
    sized in whole patch blocks, so the processor does not resize again. ``with_text``:
    the page's text layer (``max_text_chars`` of it) follows its image. ``region``: a
    chunk with its own rendered region (interleaved PDF chunks) is read as that image.
    """

    model: str = "Qwen/Qwen3-VL-Reranker-2B"
    preset: PresetName = "qwen3-vl"
    adapter: str | None = None
    instruction: str | None = None
    yes_token: str | None = None
    no_token: str | None = None
    calibrated: bool | None = None
    threshold: float = 0.5
    min_k: Annotated[int, AtLeast(0)] = 1
    max_k: Annotated[int, AtLeast(1)] = 5
    batch_size: Annotated[int, AtLeast(1)] = 4
    max_pixels: Annotated[int, AtLeast(784)] = 1_003_520  # 1280 x 28 x 28
    with_text: bool = False
    max_text_chars: Annotated[int, AtLeast(0)] = 2000
    region: bool = True
    render_dpi: Annotated[int, AtLeast(36)] = 200
    chat_template: str | None = None
    device: str = "auto"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        validate_params(type(self), dataclasses.asdict(self), where=OWNER)
        check_device(self.device, OWNER)
        check_dtype(self.dtype, OWNER)
        if not self.model:
            raise ConfigError(f"{OWNER}: 'model' (a hub id or a local path) is required")
        if self.min_k > self.max_k:
            raise ConfigError(f"{OWNER}: min_k ({self.min_k}) exceeds max_k ({self.max_k})")
        if self.is_calibrated and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"{OWNER}: threshold is a probability: within [0, 1], got "
                              f"{self.threshold}")
        self._vlm: Vlm | None = None
        self._ids: tuple[int, int] | None = None
        self._renderer = Renderer()
        self._lock = threading.Lock()  # one forward pass at a time on the model

    def __getstate__(self) -> dict[str, Any]:
        """Pickles as its parameters (the model is loaded again by ``warm_up``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def preset_spec(self) -> RerankPreset:
        """The preset with this reranker's answer-word overrides applied."""
        spec = PRESETS[self.preset]
        return dataclasses.replace(spec, yes=self.yes_token or spec.yes,
                                   no=self.no_token or spec.no)

    @property
    def is_calibrated(self) -> bool:
        """Whether the probabilities are trusted (the threshold rule) or not (largest gap)."""
        return PRESETS[self.preset].calibrated if self.calibrated is None else self.calibrated

    def warm_up(self) -> None:
        """Load the model and resolve the answer tokens (each must be a single token)."""
        if self._vlm is not None:
            return
        with load_lock():
            if self._vlm is None:
                runtime = HfRuntime.create(device=self.device, dtype=self.dtype, owner=OWNER)
                vlm = Vlm.load(self.model, runtime=runtime, owner=OWNER, error=RerankError,
                               adapter=self.adapter, chat_template=self.chat_template)
                spec = self.preset_spec
                self._ids = (vlm.answer_token(spec.yes), vlm.answer_token(spec.no))
                if self._ids[0] == self._ids[1]:
                    raise ConfigError(f"{OWNER}: {spec.yes!r} and {spec.no!r} are the same token")
                self._vlm = vlm

    def close(self) -> None:
        """Drop the model and close the documents the renderer holds open."""
        vlm, self._vlm = self._vlm, None
        if vlm is not None:
            vlm.close()
        self._renderer.close()

    @property
    def vlm(self) -> Vlm:
        """The loaded model (warms up first)."""
        self.warm_up()
        assert self._vlm is not None
        return self._vlm

    @property
    def answer_ids(self) -> tuple[int, int]:
        """The token ids of the yes and no answers."""
        self.warm_up()
        assert self._ids is not None
        return self._ids

    # -- scoring -----------------------------------------------------------------------
    def rerank(self, query: Query, hits: Sequence[Hit], top_k: int | None = None) -> list[Hit]:
        """Score every hit, then keep what the cut-off keeps (best first, each with
        ``scores_by_stage["rerank"]``; ``[]`` when no probability clears the threshold)."""
        if not hits:
            return []
        t0 = time.perf_counter()
        scores = self.score(query, [h.chunk for h in hits])
        probs = [sigmoid(s) for s in scores] if self.is_calibrated else None
        max_k = min(self.max_k, top_k) if top_k else self.max_k
        kept = apply_cutoff(hits, scores, probabilities=probs, threshold=self.threshold,
                            min_k=min(self.min_k, max_k), max_k=max_k)
        logger.debug("%s: %d candidates scored in %.2fs, %d kept", OWNER, len(hits),
                     time.perf_counter() - t0, len(kept))
        return kept

    def score(self, query: Query, chunks: Sequence[Chunk]) -> list[float]:
        """``logit(yes) - logit(no)`` for each chunk, in order (batches of ``batch_size``)."""
        if not (query.text and query.text.strip()) and (
                query.image is None or not self.preset_spec.takes_query_image):
            raise RerankError(f"{OWNER}: the {self.preset!r} preset needs query text")
        vlm = self.vlm
        yes, no = self.answer_ids
        q_image = self._render([query.image], ["query image"])[0] if query.image else None
        out: list[float] = []
        for start in range(0, len(chunks), self.batch_size):
            prompts, images = self.inputs(query, chunks[start:start + self.batch_size],
                                          query_image=q_image)
            batch = vlm.encode(prompts, images)
            with self._lock:
                logits = vlm.last_logits(batch, [yes, no])
            out.extend(float(y - n) for y, n in logits)
        return out

    def inputs(
        self, query: Query, chunks: Sequence[Chunk], *, query_image: Any = None
    ) -> tuple[list[str], list[Any]]:
        """The prompts and images (in slot order, sized within ``max_pixels``) of one
        batch: what :meth:`score` feeds the model (for inspection and tests)."""
        vlm = self.vlm
        spec = self.preset_spec
        prompts: list[str] = []
        images: list[Any] = []
        for chunk in chunks:
            doc, doc_images = self._document(chunk)
            with_q = query_image is not None and spec.takes_query_image
            parts = spec.parts(query.text or "", doc, instruction=self.instruction,
                               query_image=with_q)
            prompts.append(vlm.prompt(parts, system=spec.system))
            images.extend(([query_image] if with_q else []) + doc_images)
        return prompts, images

    def _document(self, chunk: Chunk) -> tuple[list[str | None], list[Any]]:
        """A chunk's parts (text, ``None`` for an image slot) and its images, resized."""
        prefer = "both" if self.with_text else "image"
        parts = chunk_parts(chunk, region=self.region, prefer=prefer)
        refs = [p for p in parts if isinstance(p, ImageRef)]
        rendered = iter(self._render(refs, [f"{chunk.source} p.{chunk.page}"] * len(refs)))
        doc: list[str | None] = []
        images: list[Any] = []
        budget = self.max_text_chars
        for part in parts:
            if isinstance(part, ImageRef):
                image = next(rendered)
                if image is not None:
                    doc.append(None)
                    images.append(image)
            elif budget > 0:
                text = part[:budget]
                budget -= len(text)
                doc.append(text)
        if not doc:  # nothing readable (an image that could not be rendered, no text)
            doc.append(chunk.text[: self.max_text_chars] or "(empty)")
        return doc, images

    def _render(self, refs: Sequence[ImageRef | None], where: Sequence[str]) -> list[Any]:
        """Images of ``refs`` within ``max_pixels``, in whole cells of the model's grid."""
        layout = self.vlm.layout
        images = render_images([r for r in refs if r is not None], max_pixels=self.max_pixels,
                               where=where, renderer=self._renderer, min_dpi=self.render_dpi)
        out = []
        for image in images:
            if image is not None:
                size = layout.fit_pixels(*image.size, max_pixels=self.max_pixels)
                if size != image.size:
                    image = image.resize(size, 3)  # bicubic
            out.append(image)
        return out
