"""Hugging Face transformers embedders: ColQwen2/ColPali, DSE (Qwen2-VL), CLIP/SigLIP.

The only ragnest module that imports ``torch`` and ``transformers``, and only inside
``warm_up()``: importing this module is cheap and works without the ``hf`` extra.
Models load with ``from_pretrained`` from a hub id or a local directory (with
``local_files_only`` when ``HF_HUB_OFFLINE`` is set)::

    >>> from ragnest.embedders.hf import ColQwen2Embedder
    >>> emb = ColQwen2Embedder(model="vidore/colqwen2-v1.0-hf")  # nothing loaded yet
    >>> [(s.name, s.kind) for s in emb.vector_specs()]
    [('coarse', 'dense'), ('mid', 'multi'), ('fine', 'multi')]

Every embedder turns its model output into a Matryoshka ladder (:mod:`ragnest.ladder`):
``dim`` is prefix truncation + re-normalisation, ``vectors: 1`` on a multi-vector model is
the normalised mean of its rows, ``vectors: N`` pools rows with
:func:`~ragnest.ladder.pool_tokens`, ``vectors: all`` keeps every non-padded row. Padded
rows are always stripped with the attention mask before anything is stored or scored.

Components (registered as ``embedder/colqwen2``, ``embedder/colpali``, ``embedder/dse``,
``embedder/clip``, ``embedder/siglip``):

* :class:`ColQwen2Embedder` / :class:`ColPaliEmbedder` (:class:`LateInteractionEmbedder`):
  one image per chunk -> token rows, text queries -> token rows. The retrieval forward
  reads one image per sequence, so an interleaved chunk is embedded from its rendered
  page region (``chunk.image``, the whole chunk in its layout) or, without one, its
  first image segment; chunks without any image are skipped;
* :class:`DseEmbedder`: Qwen2-VL last-token embeddings (one vector, Matryoshka dims).
  Page chunks: screenshot + document prompt; interleaved chunks: ONE sequence of their
  segments in order (text as text, each image as its own image block, up to
  ``max_images``); text chunks: their text;
* :class:`ClipEmbedder` / :class:`SiglipEmbedder` (:class:`DualEncoderEmbedder`): images
  and texts in one space, so image queries (``ragnest query --image``) work. One tower
  input per chunk: an interleaved chunk is its first image (else its text).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ragnest.errors import ConfigError, EmbeddingError, MissingDependencyError, ParseError
from ragnest.ladder import l2_normalize, ladder_to_specs, parse_ladder
from ragnest.ladder.builder import LadderBuilder, TokenRows
from ragnest.types import Chunk, ImageRef, Level, Query, Vector, VectorSpec

__all__ = [
    "FAMILIES",
    "HfEmbedder",
    "LateInteractionEmbedder",
    "ColQwen2Embedder",
    "ColPaliEmbedder",
    "DseEmbedder",
    "DualEncoderEmbedder",
    "ClipEmbedder",
    "SiglipEmbedder",
    "chunk_image",
    "chunk_text",
]

logger = logging.getLogger(__name__)

_VERSION = 1
_INSTALL = "pip install 'ragnest[hf]'"

#: family -> (model class, processor class) in ``transformers``.
FAMILIES: dict[str, tuple[str, str]] = {
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "dse": ("AutoModelForImageTextToText", "AutoTokenizer"),
    "clip": ("CLIPModel", "CLIPProcessor"),
    "siglip": ("SiglipModel", "SiglipProcessor"),
}

# Qwen2-VL's chat template, used when a DSE checkpoint's tokenizer carries none.
_QWEN2_VL_TEMPLATE = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "{content}<|im_end|>\n<|im_start|>assistant\n"
)
_VISION_BLOCK = "<|vision_start|><|image_pad|><|vision_end|>"
_VISION_TOKENS = re.compile(r"<\|(?:vision_start|vision_end|vision_pad|image_pad|video_pad)\|>")

_load_lock = threading.Lock()


def _import_hf() -> tuple[Any, Any]:
    """``(torch, transformers)`` or :class:`MissingDependencyError` naming the extra."""
    try:
        import torch
        import transformers
    except ImportError as err:
        raise MissingDependencyError(
            f"hf embedders need torch and transformers ({err.name or err} is missing): {_INSTALL}"
        ) from err
    return torch, transformers


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def chunk_image(chunk: Chunk, *, region: bool = False) -> ImageRef | None:
    """The one image a chunk is embedded from when a model reads one image per chunk.

    Page chunks: the page screenshot. Other chunks: the first image segment, else the
    chunk's own image. With ``region=True`` the chunk's own image comes first for every
    kind: for a PDF interleaved chunk that is the rendered region of the page the chunk
    covers (its text and figures in their layout, i.e. the whole chunk as one image);
    chunks without one (Office, HTML) fall back to their first image segment.
    """
    if chunk.image is not None and (region or chunk.kind == "page"):
        return chunk.image
    for seg in chunk.segments:
        if seg.kind == "image" and seg.image is not None:
            return seg.image
    return chunk.image


def chunk_text(chunk: Chunk) -> str:
    """The chunk's text, or its segments' text joined."""
    if chunk.text.strip():
        return chunk.text
    return "\n".join(s.text for s in chunk.segments if s.text).strip()


def _is_interleaved(chunk: Chunk) -> bool:
    """Whether a sequence model embeds ``chunk`` as its segments in order: interleaved
    chunks (or any chunk with several segments) holding at least one image segment;
    page chunks with a screenshot never."""
    if chunk.kind == "page" and chunk.image is not None:
        return False
    if chunk.kind != "interleaved" and len(chunk.segments) < 2:
        return False
    return any(s.kind == "image" and s.image is not None for s in chunk.segments)


def _cut_tokens(tok: Any, text: str, budget: int) -> tuple[str, int]:
    """``text`` cut to at most ``budget`` tokens at a token boundary, and the tokens kept."""
    try:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError, KeyError):  # no offsets: ~4 chars/token
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        return (text, n) if n <= budget else (text[: budget * 4].rstrip(), budget)
    if len(offsets) <= budget:
        return text, len(offsets)
    return text[: offsets[budget - 1][1]].rstrip(), budget


@dataclass(kw_only=True)
class HfEmbedder:
    """Shared machinery: device/dtype choice, loading, batching, images, the ladder.

    ``device``: ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda``, ``mps``.
    ``dtype``: ``auto`` (bfloat16 on a cuda device that supports it, else float32),
    ``float32``, ``bfloat16``, ``float16``. ``render_max_pixels`` caps the pixels an
    image is rendered at before the processor sees it. ``rotation: pca`` rotates the
    model's vectors by a PCA fitted on the first documents ingested (stored with the
    collection) before prefix truncation: for models not trained with Matryoshka dims.
    """

    family: ClassVar[str] = ""
    default_ladder: ClassVar[list[dict[str, Any]]] = []

    model: str = ""
    ladder: list[dict[str, Any]] = field(default_factory=list)
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 4
    render_max_pixels: int = 4_000_000
    rotation: str = "none"

    def __post_init__(self) -> None:
        name = f"embedder/{self.family}"
        if not self.model:
            raise ConfigError(f"{name}: 'model' (a hub id or a local path) is required")
        if not self.ladder:
            self.ladder = [dict(d) for d in self.default_ladder]
        self._levels: list[Level] = parse_ladder(self.ladder)
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith(
            "cuda:"
        ):
            raise ConfigError(f"{name}: device must be auto, cpu, cuda[:N] or mps")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"{name}: dtype must be auto, float32, bfloat16 or float16")
        if self.batch_size <= 0 or self.render_max_pixels <= 0:
            raise ConfigError(f"{name}: batch_size and render_max_pixels must be positive")
        if self.rotation not in ("none", "pca"):
            raise ConfigError(f"{name}: rotation must be 'none' or 'pca', got {self.rotation!r}")
        self._check_ladder()
        self._builder = LadderBuilder(self._levels, rotation=self.rotation, owner=name)  # type: ignore[arg-type]
        self._state: dict[str, Any] | None = None

    def _check_ladder(self) -> None:
        """Subclasses reject ladders their vectors cannot fill."""

    # -- lifecycle -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Import torch/transformers, load model and processor (idempotent)."""
        if self._state is not None:
            return
        with _load_lock:
            if self._state is None:
                torch, transformers = _import_hf()
                device = self._device(torch)
                dtype = self._dtype(torch, device)
                state = {"torch": torch, "tf": transformers, "device": device, "dtype": dtype}
                kw: dict[str, Any] = {"local_files_only": True} if _offline() else {}
                try:
                    self._load(state, transformers, dtype=dtype, **kw)
                except (OSError, ValueError) as err:
                    raise EmbeddingError(
                        f"embedder/{self.family}: cannot load {self.model!r}: {err}"
                    ) from err
                state["model"].to(device).eval()
                dim = state["dim"]
                self._levels = parse_ladder(self.ladder, model_dim=dim)
                self._builder.levels = list(self._levels)
                fitted = self._builder.rotation
                if fitted is not None and fitted.dim != dim:
                    raise EmbeddingError(
                        f"embedder/{self.family}: the stored rotation is {fitted.dim}-d but "
                        f"{self.model!r} gives {dim}-d vectors"
                    )
                self._state = state

    def close(self) -> None:
        """Drop model and processor (frees GPU memory once nothing else holds them)."""
        state, self._state = self._state, None
        if state is not None and str(state["device"]).startswith("cuda"):
            del state["model"]
            state["torch"].cuda.empty_cache()

    def _device(self, torch: Any) -> Any:
        want = self.device
        if want == "auto":
            if torch.cuda.is_available():
                want = "cuda"
            elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                want = "mps"
            else:
                want = "cpu"
        return torch.device(want)

    def _dtype(self, torch: Any, device: Any) -> Any:
        if self.dtype == "auto":
            if device.type == "cuda" and torch.cuda.is_bf16_supported():
                return torch.bfloat16
            return torch.float32
        return getattr(torch, self.dtype)

    def _load(self, state: dict[str, Any], tf: Any, **kw: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def _require(self) -> dict[str, Any]:
        self.warm_up()
        assert self._state is not None
        return self._state

    # -- description ------------------------------------------------------------------
    @property
    def levels(self) -> list[Level]:
        """The parsed ladder levels, coarse to fine."""
        return list(self._levels)

    def vector_specs(self) -> list[VectorSpec]:
        """One dense or multi vector per ladder level, distance ``dot`` (unit vectors)."""
        return ladder_to_specs(self._levels, distance="dot")

    def _extra_identity(self) -> dict[str, Any]:
        return {}

    def identity(self) -> dict[str, Any]:
        """Model, family, ladder, version and whatever else changes stored vectors."""
        return {
            "model": self.model,
            "family": self.family,
            "ladder": [lv.to_dict() for lv in self._levels],
            **({"rotation": self.rotation} if self.rotation != "none" else {}),
            "version": _VERSION,
            **self._extra_identity(),
        }

    # -- helpers ----------------------------------------------------------------------
    def _pil(self, ref: ImageRef) -> Any:
        from PIL import Image

        from ragnest.media.render import render_array

        return Image.fromarray(render_array(ref, max_pixels=self.render_max_pixels)).convert("RGB")

    def _to(self, batch: Any) -> dict[str, Any]:
        """Move a processor batch to the device; floating tensors take the model dtype."""
        st = self._require()
        torch = st["torch"]
        out = {}
        for k, v in dict(batch).items():
            if isinstance(v, torch.Tensor):
                v = v.to(st["device"])
                if v.is_floating_point():
                    v = v.to(st["dtype"])
            out[k] = v
        return out

    # -- the ladder (ragnest.ladder.builder) ------------------------------------------------
    def fitted_state(self) -> dict[str, Any] | None:
        """The PCA rotation fitted on the corpus (``rotation: pca``), or ``None``."""
        return self._builder.state()

    def load_fitted_state(self, state: Mapping[str, Any] | None) -> None:
        """Restore the rotation stored with the collection (``None``: not fitted yet)."""
        self._builder.load_state(state)

    @property
    def needs_fit(self) -> bool:
        """True with ``rotation: pca`` while no rotation is fitted or loaded."""
        return self._builder.needs_fit

    def fit(self, chunks: Sequence[Chunk]) -> None:
        """Fit the corpus state (the ``rotation: pca``) on a sample of chunks."""
        self.fit_rotation(chunks)

    def fit_rotation(self, chunks: Sequence[Chunk]) -> None:
        """Fit the ``rotation: pca`` on a sample of chunks now (not on the first batch).

        Needed for one-vector models (DSE, CLIP, SigLIP), whose first ingest batch rarely
        holds as many chunks as the model has dimensions; a pipeline stores the fitted
        rotation with the collection on the next write. Ignored without ``rotation: pca``.
        """
        if self.rotation != "pca":
            return
        self._builder.fit(self._raw_documents(chunks))

    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[TokenRows | np.ndarray | None]:
        """Model output per chunk before the ladder (``None``: nothing to embed)."""
        raise NotImplementedError  # pragma: no cover

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """``{level: vector}`` per chunk (``{}`` when the chunk has nothing this model
        reads; see the class docstring for what each kind of chunk becomes)."""
        return self._documents(self._raw_documents(chunks))

    def _documents(self, raw: Sequence[TokenRows | np.ndarray | None]) -> list[dict[str, Vector]]:
        """Ladder vectors for model outputs (``None``: nothing embedded -> ``{}``).

        With ``rotation: pca`` and nothing fitted yet, the rotation is fitted on these
        outputs first (the first batch ingested); the pipeline stores it before any of
        these vectors is written.
        """
        if self._builder.needs_fit and any(r is not None for r in raw):
            self._builder.fit(raw)
        return [{} if r is None else dict(self._builder.document(r)) for r in raw]

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """:meth:`embed_query` for each query."""
        return [self.embed_query(q) for q in queries]

    def _query(self, rows: TokenRows | np.ndarray) -> dict[str, Vector]:
        return dict(self._builder.query(rows))

    def _render_refs(self, refs: Sequence[ImageRef], chunks: Sequence[Chunk]) -> list[Any]:
        images = []
        for ref, chunk in zip(refs, chunks):
            try:
                images.append(self._pil(ref))
            except ParseError as err:
                logger.warning("%s p.%s: cannot render image: %s", chunk.source, chunk.page, err)
                images.append(None)
        return images


def _single_levels_only(emb: HfEmbedder) -> None:
    multi = [lv.name for lv in emb._levels if lv.is_multi]
    if multi:
        raise ConfigError(
            f"embedder/{emb.family}: this model gives one vector per item; ladder level(s) "
            f"{multi} ask for several (use vectors: 1)"
        )


# ======================================================================================
# Late interaction: ColQwen2 / ColPali
# ======================================================================================


@dataclass(kw_only=True)
class LateInteractionEmbedder(HfEmbedder):
    """ColQwen2 / ColPali multi-vector page embeddings (transformers' retrieval classes).

    Documents are images -> ``(L, dim)`` unit rows; queries are text -> ``(Lq, dim)``
    rows (scored by MaxSim). The retrieval forward reads exactly one image per sequence
    (``ColQwen2ForRetrieval.forward`` takes ``image_grid_thw`` as one row per batch item
    and unpads ``pixel_values`` per item; ColPali's PaliGemma prefix holds one image), so
    a chunk is embedded from one image, :func:`chunk_image` with ``region=True``:

    * page chunks: the page screenshot;
    * interleaved chunks (fallback, not one interleaved sequence): ``chunk.image`` when
      it exists -- for PDF chunks the rendered region of the page the chunk covers, which
      shows the chunk's text and figures in their layout, i.e. the whole chunk as one
      image -- else the first image segment (Office / HTML chunks usually have no
      region image; their text and further images are then not embedded here);
    * image chunks: their image.

    Chunks without any image (plain text sections) are skipped: they get ``{}`` and no
    vectors from this embedder (embedding their text through the query tower would put
    them in the wrong space); pair this embedder with a text embedder for them. Image
    queries give ``None``.

    Default ladder: ``coarse`` = the mean of the rows as one vector with HNSW, ``mid`` =
    32 pooled rows, ``fine`` = every non-padded row. ``max_image_tokens`` (ColQwen2 only)
    caps the visual tokens per page (the processor's ``longest_edge`` = N * 28 * 28).
    """

    family: ClassVar[str] = ""
    default_ladder: ClassVar[list[dict[str, Any]]] = [
        {"name": "coarse", "dim": 128, "vectors": 1, "index": "hnsw"},
        {"name": "mid", "dim": 128, "vectors": 32, "datatype": "float16"},
        {"name": "fine", "dim": 128, "vectors": "all", "datatype": "float16"},
    ]

    max_image_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.family not in ("colqwen2", "colpali"):
            raise ConfigError(
                "LateInteractionEmbedder is abstract: use ColQwen2Embedder (embedder/colqwen2) "
                "or ColPaliEmbedder (embedder/colpali)"
            )
        if self.max_image_tokens is not None and self.max_image_tokens < 4:
            raise ConfigError(f"embedder/{self.family}: max_image_tokens must be at least 4")
        super().__post_init__()

    def _extra_identity(self) -> dict[str, Any]:
        return {"max_image_tokens": self.max_image_tokens}

    def _load(self, state: dict[str, Any], tf: Any, **kw: Any) -> None:
        model_cls, proc_cls = FAMILIES[self.family]
        state["model"] = getattr(tf, model_cls).from_pretrained(self.model, **kw)
        kw.pop("dtype", None)
        state["processor"] = getattr(tf, proc_cls).from_pretrained(self.model, **kw)
        state["dim"] = int(state["model"].config.embedding_dim)
        proc = state["processor"]
        state["image_token_id"] = proc.tokenizer.convert_tokens_to_ids(proc.image_token)
        state["merge_size"] = int(getattr(proc.image_processor, "merge_size", 1) or 1)

    def _image_kwargs(self, processor: Any) -> dict[str, Any]:
        if self.max_image_tokens is None or self.family != "colqwen2":
            return {}
        size = dict(getattr(processor.image_processor, "size", None) or {})
        longest = self.max_image_tokens * 28 * 28
        shortest = min(int(size.get("shortest_edge", 4 * 28 * 28)), longest)
        return {"size": {"shortest_edge": shortest, "longest_edge": longest}}

    def _forward_rows(self, batch: Any) -> list[TokenRows]:
        """Non-padded rows per item, with the page's patch grid when it holds an image.

        The grid (for ``pool: grid | rows | columns``) comes from the image tokens'
        positions: ColQwen2's ``image_grid_thw`` divided by the merge size, ColPali's
        square of ``image_seq_length`` patches.
        """
        st = self._require()
        torch = st["torch"]
        inputs = self._to(batch)
        with torch.inference_mode():
            emb = st["model"](**inputs).embeddings
        mask = inputs["attention_mask"].bool().cpu().numpy()
        ids = inputs["input_ids"].cpu().numpy()
        thw = inputs.get("image_grid_thw")
        thw = None if thw is None else thw.cpu().numpy()
        emb = emb.float().cpu().numpy()
        out = []
        for i in range(emb.shape[0]):
            is_image = ids[i][mask[i]] == st["image_token_id"]
            grid = self._grid(int(is_image.sum()), None if thw is None else thw[i], st)
            out.append(
                TokenRows(emb[i][mask[i]], grid, np.flatnonzero(is_image) if grid else None)
            )
        return out

    @staticmethod
    def _grid(n: int, thw: np.ndarray | None, st: Mapping[str, Any]) -> tuple[int, int] | None:
        if n == 0:
            return None
        if thw is not None:  # ColQwen2: (t, h, w) patches, merged merge x merge per token
            m = int(st["merge_size"])
            grid = (int(thw[1]) // m, int(thw[2]) // m)
        else:  # ColPali: a square of patches
            side = int(round(n**0.5))
            grid = (side, side)
        return grid if grid[0] * grid[1] == n else None

    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[TokenRows | np.ndarray | None]:
        """Token rows (with the patch grid) per chunk image (see the class docstring for
        which image); ``None`` for chunks without an image."""
        st = self._require()
        processor = st["processor"]
        raw: list[TokenRows | np.ndarray | None] = [None] * len(chunks)
        todo = [
            (i, ref)
            for i, c in enumerate(chunks)
            if (ref := chunk_image(c, region=True)) is not None
        ]
        for start in range(0, len(todo), self.batch_size):
            part = todo[start : start + self.batch_size]
            images = self._render_refs([r for _, r in part], [chunks[i] for i, _ in part])
            keep = [(i, im) for (i, _), im in zip(part, images) if im is not None]
            if not keep:
                continue
            batch = processor.process_images(
                images=[im for _, im in keep], **self._image_kwargs(processor)
            )
            for (i, _), rows in zip(keep, self._forward_rows(batch)):
                raw[i] = rows
        return raw

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """Token rows of a text query (every level), or ``None`` without text."""
        if not query.text or not query.text.strip():
            return None
        st = self._require()
        batch = st["processor"].process_queries(text=[query.text])
        return self._query(self._forward_rows(batch)[0])

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """Batched text queries; queries without text give ``None``."""
        st = self._require()
        out: list[dict[str, Vector] | None] = [None] * len(queries)
        todo = [i for i, q in enumerate(queries) if q.text and q.text.strip()]
        for start in range(0, len(todo), self.batch_size):
            part = todo[start : start + self.batch_size]
            batch = st["processor"].process_queries(text=[queries[i].text for i in part])
            for i, rows in zip(part, self._forward_rows(batch)):
                out[i] = self._query(rows)
        return out


@dataclass(kw_only=True)
class ColQwen2Embedder(LateInteractionEmbedder):
    """ColQwen2 (``ColQwen2ForRetrieval``), e.g. ``vidore/colqwen2-v1.0-hf``."""

    family: ClassVar[str] = "colqwen2"
    model: str = "vidore/colqwen2-v1.0-hf"


@dataclass(kw_only=True)
class ColPaliEmbedder(LateInteractionEmbedder):
    """ColPali (``ColPaliForRetrieval``, PaliGemma), e.g. ``vidore/colpali-v1.3-hf``."""

    family: ClassVar[str] = "colpali"
    model: str = "vidore/colpali-v1.3-hf"


# ======================================================================================
# DSE: Qwen2-VL last-token embeddings
# ======================================================================================


@dataclass(kw_only=True)
class DseEmbedder(HfEmbedder):
    """Document Screenshot Embedding with a Qwen2-VL model (``AutoModelForImageTextToText``).

    Inputs follow DSE: the chat template with the image (documents) or a tiny dummy image
    (queries, ``query_image: dummy``, as DSE was trained; ``none`` sends text only),
    ``<|endoftext|>`` appended, left padding; the embedding is the last position of the
    last hidden state, unit-normalised; Matryoshka dims by truncation + re-normalisation,
    so every level has ``vectors: 1``. What a document chunk becomes (one user message):

    * page chunks (and image chunks): the image, then ``document_prompt``;
    * interleaved chunks (kind ``interleaved``, or any chunk with several segments, at
      least one an image): ONE sequence following the segments in order -- text and
      table segments as text (adjacent ones joined by a blank line), image segments as
      images, each with its own ``<|vision_start|><|image_pad|>*n<|vision_end|>`` block
      (Qwen2-VL reads several images per sequence: their patches are concatenated in
      ``pixel_values``, one ``image_grid_thw`` row each, in order). At most
      ``max_images`` images per chunk (the first ones; the rest are dropped, logged at
      debug level); the text segments share a budget of ``max_text_tokens`` tokens, in
      order (a segment past the budget is cut at a token boundary, later ones dropped).
      An image that cannot be rendered is left out;
    * chunks without any image: their text (no prompt, no image), cut to about
      ``max_text_tokens``. Interleaved chunks without an image segment take the page
      path when they carry a rendered region (``chunk.image``), else this one.

    Image queries give ``None``. The inputs are assembled from the tokenizer (its chat
    template) and the image processor directly, so torchvision (needed by
    ``Qwen2VLProcessor``'s video half) is not required. ``max_image_tokens`` caps visual
    tokens per image. :meth:`document_inputs` returns the exact model inputs built for a
    list of chunks (for inspection and tests).
    """

    family: ClassVar[str] = "dse"
    default_ladder: ClassVar[list[dict[str, Any]]] = [
        {"name": "coarse", "dim": 256, "vectors": 1, "index": "hnsw"},
        {"name": "full", "dim": 1536, "vectors": 1},
    ]

    model: str = "MrLight/dse-qwen2-2b-mrl-v1"
    document_prompt: str = "What is shown in this image?"
    query_prompt: str = "Query: {text}"
    query_image: str = "dummy"
    max_image_tokens: int | None = 1024
    max_text_tokens: int = 512
    max_images: int = 4

    def _check_ladder(self) -> None:
        _single_levels_only(self)
        if self.query_image not in ("dummy", "none"):
            raise ConfigError("embedder/dse: query_image must be 'dummy' or 'none'")
        if "{text}" not in self.query_prompt:
            raise ConfigError("embedder/dse: query_prompt must contain '{text}'")
        if self.max_image_tokens is not None and self.max_image_tokens < 1:
            raise ConfigError("embedder/dse: max_image_tokens must be positive")
        if self.max_images < 1 or self.max_text_tokens < 1:
            raise ConfigError("embedder/dse: max_images and max_text_tokens must be positive")

    def _extra_identity(self) -> dict[str, Any]:
        return {
            "document_prompt": self.document_prompt,
            "query_prompt": self.query_prompt,
            "query_image": self.query_image,
            "max_image_tokens": self.max_image_tokens,
            "max_images": self.max_images,
            "interleaved": "sequence",
            "pooling": "last-token",
        }

    def _load(self, state: dict[str, Any], tf: Any, **kw: Any) -> None:
        state["model"] = tf.AutoModelForImageTextToText.from_pretrained(self.model, **kw)
        kw.pop("dtype", None)
        state["tokenizer"] = tf.AutoTokenizer.from_pretrained(
            self.model, padding_side="left", **kw)
        state["image_processor"] = tf.AutoImageProcessor.from_pretrained(self.model, **kw)
        cfg = state["model"].config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        state["dim"] = int(text_cfg.hidden_size)
        tok = state["tokenizer"]
        state["image_token"] = "<|image_pad|>"
        state["image_token_id"] = int(getattr(cfg, "image_token_id", None)
                                      or tok.convert_tokens_to_ids("<|image_pad|>"))

    def _prompt(self, parts: Sequence[str | None]) -> str:
        """The chat prompt of one user message whose content is ``parts`` in order: a
        string is a text part, ``None`` an image slot (one ``<|image_pad|>`` each, expanded
        later); ``<|endoftext|>`` appended."""
        st = self._require()
        tok = st["tokenizer"]
        # text must not smuggle in vision tokens: they would desync images and slots
        parts = [p if p is None else _VISION_TOKENS.sub("", p) for p in parts]
        content: list[dict[str, Any]] = [
            {"type": "image"} if p is None else {"type": "text", "text": p} for p in parts
        ]
        messages = [{"role": "user", "content": content}]
        if getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            body = "".join(_VISION_BLOCK if p is None else p for p in parts)
            prompt = _QWEN2_VL_TEMPLATE.format(content=body)
        return prompt + "<|endoftext|>"

    def _build_inputs(self, items: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """Model inputs (CPU tensors) for items, each an ordered list of text parts (str)
        and PIL images: left-padded ``input_ids`` / ``attention_mask``,
        ``mm_token_type_ids`` (1 on image tokens, which the forward needs for M-RoPE),
        and, when any item has an image, ``pixel_values`` (the patches of every image of
        every item concatenated along dim 0, item by item, in part order) with
        ``image_grid_thw`` (one row per image, same order)."""
        st = self._require()
        tok, ip = st["tokenizer"], st["image_processor"]
        images = [p for parts in items for p in parts if not isinstance(p, str)]
        pix: dict[str, Any] = {}
        counts: list[int] = []
        if images:
            kwargs = {}
            if self.max_image_tokens is not None:
                size = dict(getattr(ip, "size", None) or {})
                longest = self.max_image_tokens * 28 * 28
                shortest = min(int(size.get("shortest_edge", 28 * 28)), longest)
                kwargs["size"] = {"shortest_edge": shortest, "longest_edge": longest}
            pix = dict(ip(images=images, return_tensors="pt", **kwargs))
            merge = int(getattr(ip, "merge_size", 2)) ** 2
            counts = [int(t.prod()) // merge for t in pix["image_grid_thw"]]
        pad = st["image_token"]
        texts, k = [], 0
        for parts in items:
            pieces = self._prompt([p if isinstance(p, str) else None for p in parts]).split(pad)
            n = len(pieces) - 1  # one image slot per image part, in order
            if n != sum(not isinstance(p, str) for p in parts):
                raise EmbeddingError(
                    f"embedder/dse: the chat template gave {n} image slot(s) for "
                    f"{sum(not isinstance(p, str) for p in parts)} image(s)"
                )
            prompt = pieces[0]
            for j, piece in enumerate(pieces[1:]):
                prompt += pad * counts[k + j] + piece
            k += n
            texts.append(prompt)
        enc = tok(texts, padding="longest", return_tensors="pt")
        enc["mm_token_type_ids"] = (enc["input_ids"] == st["image_token_id"]).long()
        return {**dict(enc), **pix}

    def _embed(self, items: Sequence[Sequence[Any]]) -> list[np.ndarray]:
        """Last-token embeddings of items (ordered text / PIL image parts), one forward."""
        st = self._require()
        torch = st["torch"]
        inputs = self._to(self._build_inputs(items))
        with torch.inference_mode():
            out = st["model"](**inputs, output_hidden_states=True, return_dict=True)
        hidden = out.hidden_states[-1]
        # left padding: the last position is the last real token of every row
        last = hidden[:, -1].float()
        last = torch.nn.functional.normalize(last, p=2, dim=-1)
        return list(last.cpu().numpy())

    def _dummy(self) -> Any:
        from PIL import Image

        return Image.new("RGB", (28, 28), (255, 255, 255))

    def _document_parts(self, chunk: Chunk) -> list[str | ImageRef]:
        """The ordered parts ``chunk`` is embedded from (images not rendered yet; see the
        class docstring); ``[]`` when there is nothing to embed."""
        if _is_interleaved(chunk):
            parts: list[str | ImageRef] = []
            n = dropped = 0
            for seg in chunk.segments:
                if seg.kind == "image" and seg.image is not None:
                    if n < self.max_images:
                        parts.append(seg.image)
                        n += 1
                    else:
                        dropped += 1
                elif seg.text.strip():
                    parts.append(seg.text.strip())
            if dropped:
                logger.debug(
                    "%s p.%s: chunk %s has %d images, embedding the first %d (max_images)",
                    chunk.source,
                    chunk.page,
                    chunk.id,
                    n + dropped,
                    n,
                )
            return parts
        ref = chunk_image(chunk)
        if ref is not None:
            return [ref, self.document_prompt]
        text = chunk_text(chunk)
        return [text[: self.max_text_tokens * 8]] if text else []

    def _fit_texts(self, parts: Sequence[Any]) -> list[Any]:
        """Adjacent text parts joined by a blank line, then every text part cut to a
        shared budget of ``max_text_tokens`` tokens, in order (images untouched)."""
        merged: list[Any] = []
        for p in parts:
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] = f"{merged[-1]}\n\n{p}"
            else:
                merged.append(p)
        tok = self._require()["tokenizer"]
        left, out = self.max_text_tokens, []
        for p in merged:
            if not isinstance(p, str):
                out.append(p)
            elif left > 0:
                text, used = _cut_tokens(tok, p, left)
                left -= used
                if text:
                    out.append(text)
        return out

    def _resolve(
        self, chunks: Sequence[Chunk], todo: Sequence[tuple[int, list[str | ImageRef]]]
    ) -> list[tuple[int, list[Any]]]:
        """Render the images of ``todo`` ((chunk index, parts) pairs) into model-ready
        items. An image that cannot be rendered is left out of an interleaved chunk; a
        page/image chunk whose image fails falls back to its text; empty items go."""
        refs = [
            (j, ref)
            for j, (_, parts) in enumerate(todo)
            for ref in parts
            if isinstance(ref, ImageRef)
        ]
        rendered = iter(
            self._render_refs([r for _, r in refs], [chunks[todo[j][0]] for j, _ in refs])
        )
        out: list[tuple[int, list[Any]]] = []
        for i, parts in todo:
            items = [p if isinstance(p, str) else next(rendered) for p in parts]
            if _is_interleaved(chunks[i]):
                items = self._fit_texts([p for p in items if p is not None])
            elif any(p is None for p in items):
                text = chunk_text(chunks[i])
                items = [text[: self.max_text_tokens * 8]] if text else []
            if items:
                out.append((i, items))
        return out

    def document_inputs(self, chunks: Sequence[Chunk]) -> dict[str, Any]:
        """The model inputs one batch of ``chunks`` becomes (CPU tensors; chunks with
        nothing to embed left out): for inspection and tests."""
        todo = [(i, p) for i, c in enumerate(chunks) if (p := self._document_parts(c))]
        return self._build_inputs([items for _, items in self._resolve(chunks, todo)])

    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[TokenRows | np.ndarray | None]:
        """One vector per chunk: the page image, the interleaved sequence, or the text
        (see the class docstring); ``None`` for chunks with nothing to embed."""
        raw: list[TokenRows | np.ndarray | None] = [None] * len(chunks)
        todo = [(i, p) for i, c in enumerate(chunks) if (p := self._document_parts(c))]
        for start in range(0, len(todo), self.batch_size):
            batch = self._resolve(chunks, todo[start : start + self.batch_size])
            if not batch:
                continue
            vecs = self._embed([items for _, items in batch])
            for (i, _), v in zip(batch, vecs):
                raw[i] = v
        return raw

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """The text query's vector, or ``None`` without text."""
        if not query.text or not query.text.strip():
            return None
        text = self.query_prompt.format(text=query.text)
        parts = [self._dummy(), text] if self.query_image == "dummy" else [text]
        return self._query(self._embed([parts])[0])


# ======================================================================================
# Dual encoders: CLIP / SigLIP
# ======================================================================================


@dataclass(kw_only=True)
class DualEncoderEmbedder(HfEmbedder):
    """CLIP / SigLIP: images and texts embedded into one space (single vectors).

    ``documents``: ``auto`` embeds a chunk's image when it has one (page screenshot,
    first figure), else its text; ``image`` embeds only images (chunks without one get
    ``{}``); ``text`` embeds only text. Each tower reads one input, so an interleaved
    chunk becomes ONE vector from :func:`chunk_image`: its first image segment (else
    its rendered region ``chunk.image``) through the image tower; its text and further
    images are not read (with ``text``, or when it has no image at all, its joined text
    goes through the text tower instead; a failed render in ``auto`` falls back to the
    text). Queries: text -> text tower, image -> image tower,
    both -> the normalised mean of the two. This is what lets ``ragnest query --image``
    find pages and figures with a real image model. Every level has ``vectors: 1``
    (CLIP/SigLIP are not Matryoshka-trained: keep ``dim`` at the model's size, or fit a
    PCA rotation).
    """

    family: ClassVar[str] = ""
    default_ladder: ClassVar[list[dict[str, Any]]] = []

    documents: str = "auto"
    query_prompt: str = "{text}"

    def __post_init__(self) -> None:
        if self.family not in ("clip", "siglip"):
            raise ConfigError(
                "DualEncoderEmbedder is abstract: use ClipEmbedder (embedder/clip) or "
                "SiglipEmbedder (embedder/siglip)"
            )
        super().__post_init__()

    def _check_ladder(self) -> None:
        _single_levels_only(self)
        if self.documents not in ("auto", "image", "text"):
            raise ConfigError(f"embedder/{self.family}: documents must be auto, image or text")
        if "{text}" not in self.query_prompt:
            raise ConfigError(f"embedder/{self.family}: query_prompt must contain '{{text}}'")

    def _extra_identity(self) -> dict[str, Any]:
        return {"documents": self.documents, "query_prompt": self.query_prompt}

    def _load(self, state: dict[str, Any], tf: Any, **kw: Any) -> None:
        model_cls, proc_cls = FAMILIES[self.family]
        state["model"] = getattr(tf, model_cls).from_pretrained(self.model, **kw)
        kw.pop("dtype", None)
        state["processor"] = getattr(tf, proc_cls).from_pretrained(self.model, **kw)
        cfg = state["model"].config
        dim = getattr(cfg, "projection_dim", None)
        if self.family == "siglip" or dim is None:
            dim = cfg.text_config.hidden_size  # SigLIP: no projection_dim
            if self.family == "siglip":
                dim = getattr(cfg.text_config, "projection_size", None) or dim
        state["dim"] = int(dim)

    @staticmethod
    def _features(out: Any) -> Any:
        return out.pooler_output if hasattr(out, "pooler_output") else out

    def _text_vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        st = self._require()
        torch, proc = st["torch"], st["processor"]
        if self.family == "siglip":
            enc = proc.tokenizer(list(texts), padding="max_length", truncation=True,
                                 return_tensors="pt")
        else:
            enc = proc.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        inputs = self._to(enc)
        inputs.pop("token_type_ids", None)
        if self.family == "siglip":
            inputs.pop("attention_mask", None)  # SigLIP was trained without one
        with torch.inference_mode():
            feats = self._features(st["model"].get_text_features(**inputs))
        return list(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())

    def _image_vectors(self, images: Sequence[Any]) -> list[np.ndarray]:
        st = self._require()
        torch, proc = st["torch"], st["processor"]
        inputs = self._to(proc.image_processor(images=list(images), return_tensors="pt"))
        with torch.inference_mode():
            feats = self._features(st["model"].get_image_features(
                pixel_values=inputs["pixel_values"]))
        return list(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())

    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[TokenRows | np.ndarray | None]:
        """One vector per chunk (image or text, see ``documents``); ``None`` when there
        is nothing this mode reads."""
        raw: list[TokenRows | np.ndarray | None] = [None] * len(chunks)
        img_todo: list[tuple[int, ImageRef]] = []
        txt_todo: list[tuple[int, str]] = []
        for i, c in enumerate(chunks):
            ref = chunk_image(c) if self.documents in ("auto", "image") else None
            if ref is not None:
                img_todo.append((i, ref))
            elif self.documents in ("auto", "text") and chunk_text(c):
                txt_todo.append((i, chunk_text(c)))
        for start in range(0, len(img_todo), self.batch_size):
            part = img_todo[start : start + self.batch_size]
            ims = self._render_refs([r for _, r in part], [chunks[i] for i, _ in part])
            ok = [(i, im) for (i, _), im in zip(part, ims) if im is not None]
            for (i, _), im in zip(part, ims):
                if im is None and self.documents == "auto" and chunk_text(chunks[i]):
                    txt_todo.append((i, chunk_text(chunks[i])))
            if ok:
                for (i, _), v in zip(ok, self._image_vectors([im for _, im in ok])):
                    raw[i] = v
        for start in range(0, len(txt_todo), self.batch_size):
            part = txt_todo[start : start + self.batch_size]
            for (i, _), v in zip(part, self._text_vectors([t for _, t in part])):
                raw[i] = v
        return raw

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """Text, image, or both (mean of the two unit vectors); ``None`` with neither."""
        vecs = []
        if query.image is not None:
            vecs.append(self._image_vectors([self._pil(query.image)])[0])
        if query.text and query.text.strip():
            vecs.append(self._text_vectors([self.query_prompt.format(text=query.text)])[0])
        if not vecs:
            return None
        return self._query(l2_normalize(np.mean(vecs, axis=0)))


@dataclass(kw_only=True)
class ClipEmbedder(DualEncoderEmbedder):
    """CLIP (``CLIPModel``), e.g. ``openai/clip-vit-base-patch32`` (512-d)."""

    family: ClassVar[str] = "clip"
    default_ladder: ClassVar[list[dict[str, Any]]] = [
        {"name": "coarse", "dim": 512, "vectors": 1, "index": "hnsw"},
    ]
    model: str = "openai/clip-vit-base-patch32"


@dataclass(kw_only=True)
class SiglipEmbedder(DualEncoderEmbedder):
    """SigLIP (``SiglipModel``), e.g. ``google/siglip-so400m-patch14-384`` (1152-d).

    Needs ``sentencepiece`` for the real checkpoints' tokenizer.
    """

    family: ClassVar[str] = "siglip"
    default_ladder: ClassVar[list[dict[str, Any]]] = [
        {"name": "coarse", "dim": 1152, "vectors": 1, "index": "hnsw"},
    ]
    model: str = "google/siglip-so400m-patch14-384"
