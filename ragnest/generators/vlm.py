"""A vision-language generator on transformers (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
Idefics3/SmolVLM): it reads the retrieved pages as images and answers with ``[P#]``
citations, within a visual-token budget per request, streaming as it goes::

    from ragnest.generators.vlm import VlmGenerator
    gen = VlmGenerator(model="Qwen/Qwen2.5-VL-3B-Instruct",
                       compression=[{"type": "resolution", "budget": 3072, "floor": 256}],
                       generation={"max_new_tokens": 512})
    for delta in gen.stream(Query(text="How often should I descale?"), hits):
        print(delta.text, end="")
    answer = delta.answer  # citations with document, page, chunk id and region; usage

One user message holds every retrieved page or interleaved chunk, each preceded by its
label (``[P1] manual.pdf p. 12``) and, with ``with_text``, followed by its text layer.
Images are sized by ragnest in whole cells of the model's grid and never resized by the
processor; the compression plugins (:mod:`ragnest.generators.compression`) decide the
sizes, and ``answer.usage`` reports visual tokens per page, before and after them.
Citations name only labels that exist; grounding boxes the model writes become the
citation's region in PDF points, snapped to the page's nearest text-layer region. With no
hits, or when the model says the pages do not contain the answer, the answer is
:data:`~ragnest.generators.evidence.NOT_FOUND` with ``found=False`` (when streaming, the
deltas carry the model's own words; the final answer carries ``NOT_FOUND``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from ragnest._hf import HfRuntime, check_device, check_dtype, load_lock, render_images
from ragnest._hf.prune import FASTV_FAMILIES, fastv
from ragnest._hf.stream import check_generation, generate_stream
from ragnest._hf.vlm import Vlm
from ragnest._validate import AtLeast, validate_params
from ragnest.errors import ConfigError, GenerationError
from ragnest.generators.compression import FastV, PageImage, build_plugins
from ragnest.generators.evidence import (
    NOT_FOUND,
    Evidence,
    answer_instructions,
    box_to_points,
    build_evidence,
    is_abstention,
    parse_citations,
    snap_to_region,
)
from ragnest.generators.grounding import BOX_SPACES, assign_boxes, find_boxes
from ragnest.generators.streaming import AnswerText
from ragnest.media.render import Renderer
from ragnest.multimodal import chunk_parts
from ragnest.types import Answer, AnswerDelta, Chunk, Hit, ImageRef, Query

__all__ = ["Prepared", "VlmGenerator"]

logger = logging.getLogger(__name__)

OWNER = "generator/vlm"
BBox = tuple[float, float, float, float]


@dataclass
class Prepared:
    """What one request shows the model (before generation): the labelled evidence, the
    images in prompt order, the prompt, the model batch, and the usage known so far."""

    evidence: list[Evidence]
    images: list[PageImage]
    prompt: str
    batch: dict[str, Any] = field(repr=False)
    usage: dict[str, Any]


@dataclass(kw_only=True)
class VlmGenerator:
    """Answers from page images with an image-text-to-text model (see the module docs).

    ``max_pages``: hits read (best first). ``with_text``: each page's text layer
    (``max_text_chars``) follows its image. ``region``: an interleaved chunk with its own
    rendered region is read as that image; else its segments in order (``max_images`` at
    most). ``compression``: the plugins, in order (default: the ``resolution`` budget).
    ``generation``: ``model.generate`` parameters (``max_new_tokens``, ``min_new_tokens``,
    ``do_sample``, ``temperature``, ...). ``grounding``: read grounding boxes from the
    answer. Pages render at up to ``render_dpi`` within ``render_max_pixels``.
    """

    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    adapter: str | None = None
    max_pages: Annotated[int, AtLeast(1)] = 5
    with_text: bool = False
    max_text_chars: Annotated[int, AtLeast(0)] = 1500
    region: bool = True
    max_images: Annotated[int, AtLeast(1)] = 4
    compression: list[dict[str, Any]] = field(default_factory=lambda: [{"type": "resolution"}])
    generation: dict[str, Any] = field(default_factory=lambda: {"max_new_tokens": 512})
    system: str | None = None
    grounding: bool = True
    render_dpi: Annotated[int, AtLeast(36)] = 144
    render_max_pixels: Annotated[int, AtLeast(784)] = 4_000_000
    chat_template: str | None = None
    device: str = "auto"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        validate_params(type(self), dataclasses.asdict(self), where=OWNER)
        check_device(self.device, OWNER)
        check_dtype(self.dtype, OWNER)
        if not self.model:
            raise ConfigError(f"{OWNER}: 'model' (a hub id or a local path) is required")
        check_generation(self.generation, owner=OWNER)
        self._plugins = build_plugins(self.compression, owner=OWNER)
        self._vlm: Vlm | None = None
        self._renderer = Renderer()
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Pickles as its parameters (the model is loaded again by ``warm_up``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def warm_up(self) -> None:
        """Load the model and its pre-processing (idempotent)."""
        if self._vlm is not None:
            return
        with load_lock():
            if self._vlm is None:
                runtime = HfRuntime.create(device=self.device, dtype=self.dtype, owner=OWNER)
                vlm = Vlm.load(self.model, runtime=runtime, owner=OWNER, error=GenerationError,
                               adapter=self.adapter, chat_template=self.chat_template)
                if self._fastv is not None and vlm.family not in FASTV_FAMILIES:
                    raise ConfigError(f"{OWNER}: the fastv plugin supports "
                                      f"{', '.join(FASTV_FAMILIES)}; {self.model!r} is "
                                      f"{vlm.family}")
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
    def _fastv(self) -> FastV | None:
        return next((p for p in self._plugins if isinstance(p, FastV)), None)

    # -- answering -------------------------------------------------------------------------
    def generate(self, query: Query, hits: Sequence[Hit]) -> Answer:
        """The complete answer (:meth:`stream`, consumed)."""
        answer = None
        for delta in self.stream(query, hits):
            answer = delta.answer if delta.done else answer
        assert answer is not None
        return answer

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[AnswerDelta]:
        """The answer as it is generated; the last delta (``done``) carries the Answer."""
        hits = tuple(hits)
        t0 = time.perf_counter()
        prep = self.prepare(query, hits) if hits else None
        if prep is None or not prep.evidence:
            usage = prep.usage if prep is not None else _usage()
            yield AnswerDelta(text=NOT_FOUND, done=True, answer=Answer(
                text=NOT_FOUND, hits=hits, usage=usage, found=False,
                timings={"prepare": time.perf_counter() - t0}))
            return
        t_prep = time.perf_counter() - t0
        vlm = self.vlm
        labels = [e.label for e in prep.evidence]
        text = AnswerText(labels, specials=getattr(vlm.tokenizer, "all_special_tokens", []),
                          json_boxes=vlm.box_style in ("qwen2.5", "qwen3"))
        cited: set[str] = set()
        record: dict[str, Any] = {}
        fv = self._fastv
        t1 = time.perf_counter()
        with self._lock:
            context = None
            if fv is not None:
                context = fastv(vlm.model, layer=fv.layer, drop_ratio=fv.drop_ratio,
                                input_ids=prep.batch["input_ids"],
                                image_token_id=vlm.image_token_id, record=record)
            gen = generate_stream(vlm.loaded, prep.batch, params=self.generation,
                                  context=context)
            for piece in gen:
                new = text.feed(piece)
                if new:
                    yield AnswerDelta(text=new, citations=_new(new, prep.evidence, cited))
        tail = text.finish()
        usage = {**prep.usage, "prompt_tokens": gen.prompt_tokens,
                 "completion_tokens": gen.completion_tokens}
        if fv is not None:
            dropped = int(record.get("dropped", 0))
            usage["compression"] = [*usage["compression"], {
                "plugin": "fastv", "visual_tokens_before": usage["visual_tokens"],
                "visual_tokens_after": usage["visual_tokens"] - dropped}]
            usage["visual_tokens"] -= dropped
        boxes = self._regions(text.raw, prep) if self.grounding else {}
        _, citations = parse_citations(text.text, prep.evidence, boxes=boxes)
        found = not is_abstention(text.text)
        answer = Answer(
            text=text.text if found else NOT_FOUND, citations=citations if found else (),
            hits=hits, usage=usage, found=found,
            timings={"prepare": t_prep, "generate": time.perf_counter() - t1})
        yield AnswerDelta(text=tail, citations=_new(tail, prep.evidence, cited), done=True,
                          answer=answer)

    # -- what the model sees -----------------------------------------------------------
    def prepare(self, query: Query, hits: Sequence[Hit]) -> Prepared:
        """Render, compress and label the evidence of ``hits`` and build the model batch
        (no generation): what :meth:`stream` shows the model, for inspection and tests."""
        vlm = self.vlm
        layout = vlm.layout
        hits = list(hits)[: self.max_pages]
        weights = _weights(hits)
        items: list[list[Any]] = []
        images: list[PageImage] = []
        for i, hit in enumerate(hits):
            parts = self._parts(hit.chunk)
            refs = [p for p in parts if isinstance(p, ImageRef)]
            where = [f"{hit.chunk.source} p.{hit.chunk.page}"] * len(refs)
            rendered = iter(render_images(refs, max_pixels=self.render_max_pixels, where=where,
                                          renderer=self._renderer, min_dpi=self.render_dpi))
            item: list[Any] = []
            for part in parts:
                if isinstance(part, ImageRef):
                    pixels = next(rendered)
                    if pixels is not None:
                        page = PageImage(index=i, source=pixels, weight=weights[i],
                                         region=_region(part, hit.chunk))
                        page.resize(layout.default_size(*pixels.size))
                        images.append(page)
                        item.append(page)
                else:
                    item.append(part)
            items.append(item)
        before = sum(layout.tokens(*im.size) for im in images)
        steps = []
        for plugin in self._plugins:
            start = sum(layout.tokens(*im.size) for im in images)
            images = plugin.apply(images, layout)
            if not isinstance(plugin, FastV):
                steps.append({"plugin": plugin.name, "visual_tokens_before": start,
                              "visual_tokens_after": sum(layout.tokens(*im.size) for im in images)})
        shown = {id(im) for im in images}
        kept = [(hits[i], [p for p in item if not isinstance(p, PageImage) or id(p) in shown])
                for i, item in enumerate(items)]
        kept = [(hit, item) for hit, item in kept if item]  # a page left without anything goes
        for position, (_, item) in enumerate(kept):  # images now point at their evidence
            for part in item:
                if isinstance(part, PageImage):
                    part.index = position
        evidence = build_evidence([hit for hit, _ in kept], images=False, text=True,
                                  max_chars=300)
        parts, ordered = self._message(query, evidence, [item for _, item in kept])
        prompt = vlm.prompt(parts, system=self.system)
        batch = vlm.encode([prompt], [im.image for im in ordered])
        usage = _usage(
            evidence=evidence, items=[item for _, item in kept], layout=layout, before=before,
            steps=steps, prompt=prompt, model_tokens=vlm.visual_tokens(batch)[0])
        return Prepared(evidence=evidence, images=ordered, prompt=prompt, batch=batch,
                        usage=usage)

    def _parts(self, chunk: Chunk) -> list[Any]:
        prefer = "both" if self.with_text else "image"
        parts = chunk_parts(chunk, region=self.region, max_images=self.max_images, prefer=prefer)
        out: list[Any] = []
        budget = self.max_text_chars
        for part in parts:
            if isinstance(part, ImageRef):
                out.append(part)
            elif budget > 0:
                out.append(part[:budget])
                budget -= len(out[-1])
        return out

    def _message(
        self, query: Query, evidence: Sequence[Evidence], items: Sequence[Sequence[Any]]
    ) -> tuple[list[str | None], list[PageImage]]:
        """The user message's parts (``None``: an image slot) and the images in slot order."""
        parts: list[str | None] = [answer_instructions([e.label for e in evidence])]
        ordered: list[PageImage] = []
        for e, item in zip(evidence, items):
            parts.append(f"\n\n{e.header()}\n")
            for part in item:
                if isinstance(part, PageImage):
                    parts.append(None)
                    ordered.append(part)
                else:
                    parts.append(f"\n{part}\n")
        parts.append(f"\n\nQuestion: {query.text or '(see the image)'}")
        return parts, ordered

    def _regions(self, raw: str, prep: Prepared) -> dict[str, BBox]:
        """Grounding boxes in the raw answer, as regions (PDF points) of the cited pages."""
        style = self.vlm.box_style
        if style is None:
            return {}
        unit = self.vlm.layout.unit
        labels = [e.label for e in prep.evidence]
        found = assign_boxes(raw, find_boxes(raw, style), labels=labels)
        by_label = {e.label: e for e in prep.evidence}
        first: dict[str, PageImage] = {}
        for im in prep.images:
            first.setdefault(labels[im.index], im)
        out: dict[str, BBox] = {}
        for label, box in found.items():
            im = first.get(label)
            if im is None or im.region is None:
                continue
            w, h = im.size
            if BOX_SPACES[style] == "norm1000":
                box = (box[0] * w / 1000, box[1] * h / 1000, box[2] * w / 1000, box[3] * h / 1000)
            x0, y0 = im.to_base(box[0], box[1], unit)
            x1, y1 = im.to_base(box[2], box[3], unit)
            points = box_to_points((x0, y0, x1, y1), space="pixels", image_size=im.base,
                                   region=im.region)
            out[label] = snap_to_region(points, by_label[label].chunk)
        return out


def _weights(hits: Sequence[Hit]) -> list[float]:
    """Relevance weights for the budget: rerank probabilities when every hit has one, else
    ranks (1, 1/2, 1/3, ...)."""
    probs = [h.scores_by_stage.get("rerank_probability") for h in hits]
    if probs and all(p is not None for p in probs):
        return [float(p) for p in probs]  # type: ignore[arg-type]
    return [1.0 / (1 + i) for i in range(len(hits))]


def _region(ref: ImageRef, chunk: Chunk) -> BBox | None:
    """The part of a PDF page an image shows, in points (``None``: not a PDF page)."""
    if ref.source is None or ref.page is None:
        return None
    if ref.clip is not None:
        return tuple(float(v) for v in ref.clip)  # type: ignore[return-value]
    if chunk.kind == "page" and chunk.bbox is not None and ref.page == chunk.page:
        return chunk.bbox
    w, h = chunk.metadata.get("width"), chunk.metadata.get("height")
    return (0.0, 0.0, float(w), float(h)) if w and h else None


def _new(text: str, evidence: Sequence[Evidence], cited: set[str]) -> tuple:
    """The citations first made in ``text`` (a delta)."""
    _, found = parse_citations(text, evidence)
    fresh = tuple(c for c in found if c.chunk_id not in cited)
    cited.update(c.chunk_id for c in fresh)
    return fresh


def _usage(*, evidence: Sequence[Evidence] = (), items: Sequence[Sequence[Any]] = (),
           layout: Any = None, before: int = 0, steps: Sequence[dict[str, Any]] = (),
           prompt: str = "", model_tokens: int = 0) -> dict[str, Any]:
    pages = []
    image_bytes = 0
    for e, item in zip(evidence, items):
        ims = [p for p in item if isinstance(p, PageImage)]
        w, h = ims[0].size if ims else (0, 0)
        image_bytes += sum(3 * im.size[0] * im.size[1] for im in ims)
        pages.append({"label": e.label, "chunk_id": e.chunk.id,
                      "visual_tokens": sum(layout.tokens(*im.size) for im in ims),
                      "width": w, "height": h, "images": len(ims),
                      "budget": ims[0].budget if ims else None})
    total = sum(p["visual_tokens"] for p in pages)
    if layout is not None and total != model_tokens:
        logger.warning("%s: %d visual tokens counted, the model reads %d", OWNER, total,
                       model_tokens)
    text_bytes = len(prompt.encode("utf-8"))
    return {"prompt_tokens": 0, "completion_tokens": 0, "visual_tokens": total,
            "visual_tokens_before": before, "pages": pages, "compression": list(steps),
            "image_bytes": image_bytes, "prompt_bytes": text_bytes + image_bytes}
