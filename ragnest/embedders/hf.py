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
  page images -> token rows, text queries -> token rows;
* :class:`DseEmbedder`: Qwen2-VL last-token embeddings (one vector, Matryoshka dims);
* :class:`ClipEmbedder` / :class:`SiglipEmbedder` (:class:`DualEncoderEmbedder`): images
  and texts in one space, so image queries (``ragnest query --image``) work.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ragnest.errors import ConfigError, EmbeddingError, MissingDependencyError, ParseError
from ragnest.ladder import l2_normalize, ladder_to_specs, parse_ladder, pool_tokens
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


def chunk_image(chunk: Chunk) -> ImageRef | None:
    """The image a chunk is embedded from: the page screenshot for page chunks, else the
    first image segment (or the chunk's own image)."""
    if chunk.kind == "page" and chunk.image is not None:
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


def _cast(x: np.ndarray, lv: Level) -> np.ndarray:
    dtype = np.float16 if lv.datatype == "float16" else np.float32
    return np.ascontiguousarray(x, dtype=dtype)


@dataclass(kw_only=True)
class HfEmbedder:
    """Shared machinery: device/dtype choice, loading, batching, images, the ladder.

    ``device``: ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda``, ``mps``.
    ``dtype``: ``auto`` (bfloat16 on a cuda device that supports it, else float32),
    ``float32``, ``bfloat16``, ``float16``. ``render_max_pixels`` caps the pixels an
    image is rendered at before the processor sees it.
    """

    family: ClassVar[str] = ""
    default_ladder: ClassVar[list[dict[str, Any]]] = []

    model: str = ""
    ladder: list[dict[str, Any]] = field(default_factory=list)
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 4
    render_max_pixels: int = 4_000_000

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
        self._check_ladder()
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
            "version": _VERSION,
            **self._extra_identity(),
        }

    # -- helpers ----------------------------------------------------------------------
    def _pil(self, ref: ImageRef) -> Any:
        from PIL import Image

        from ragnest.images import render_array

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

    def _ladder_from_rows(self, rows: np.ndarray, *, query: bool) -> dict[str, Vector]:
        """Ladder vectors from (L, d) unit rows of one item (padding already stripped)."""
        if rows.shape[0] == 0 or not np.isfinite(rows).all():
            raise EmbeddingError(f"embedder/{self.family}: model returned no finite rows")
        out: dict[str, Vector] = {}
        for lv in self._levels:
            if not lv.is_multi:
                out[lv.name] = _cast(l2_normalize(rows.mean(axis=0)[: lv.dim]), lv)
                continue
            r = l2_normalize(rows[:, : lv.dim])
            if not query and lv.vectors is not None and r.shape[0] > lv.vectors:
                r = pool_tokens(r, lv.vectors, seed=0)
            out[lv.name] = _cast(r, lv)
        return out

    def _ladder_from_vector(self, vec: np.ndarray) -> dict[str, Vector]:
        if not np.isfinite(vec).all():
            raise EmbeddingError(f"embedder/{self.family}: model returned non-finite values")
        return {lv.name: _cast(l2_normalize(vec[: lv.dim]), lv) for lv in self._levels}

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

    Documents are page images (``chunk.image`` for page chunks; the first image segment
    for interleaved and image chunks) -> ``(L, dim)`` unit rows; queries are text ->
    ``(Lq, dim)`` rows (scored by MaxSim). Chunks without an image (plain text sections)
    are skipped: they get ``{}`` and no vectors from this embedder (embedding their text
    through the query tower would put them in the wrong space); pair this embedder with
    a text embedder for them. Image queries give ``None``.

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

    def _image_kwargs(self, processor: Any) -> dict[str, Any]:
        if self.max_image_tokens is None or self.family != "colqwen2":
            return {}
        size = dict(getattr(processor.image_processor, "size", None) or {})
        longest = self.max_image_tokens * 28 * 28
        shortest = min(int(size.get("shortest_edge", 4 * 28 * 28)), longest)
        return {"size": {"shortest_edge": shortest, "longest_edge": longest}}

    def _forward_rows(self, batch: Any) -> list[np.ndarray]:
        st = self._require()
        torch = st["torch"]
        inputs = self._to(batch)
        with torch.inference_mode():
            emb = st["model"](**inputs).embeddings
        mask = inputs["attention_mask"].bool().cpu().numpy()
        emb = emb.float().cpu().numpy()
        return [emb[i][mask[i]] for i in range(emb.shape[0])]

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """``{level: vectors}`` per page image; ``{}`` for chunks without an image."""
        st = self._require()
        processor = st["processor"]
        out: list[dict[str, Vector]] = [{} for _ in chunks]
        todo = [(i, ref) for i, c in enumerate(chunks) if (ref := chunk_image(c)) is not None]
        for start in range(0, len(todo), self.batch_size):
            part = todo[start : start + self.batch_size]
            images = self._render_refs([r for _, r in part], [chunks[i] for i, _ in part])
            keep = [(i, im) for (i, _), im in zip(part, images) if im is not None]
            if not keep:
                continue
            batch = processor.process_images(
                images=[im for _, im in keep], **self._image_kwargs(processor))
            for (i, _), rows in zip(keep, self._forward_rows(batch)):
                out[i] = self._ladder_from_rows(rows, query=False)
        return out

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """Token rows of a text query (every level), or ``None`` without text."""
        if not query.text or not query.text.strip():
            return None
        st = self._require()
        batch = st["processor"].process_queries(text=[query.text])
        return self._ladder_from_rows(self._forward_rows(batch)[0], query=True)

    def embed_queries(self, texts: Sequence[str]) -> list[dict[str, Vector]]:
        """Batched text queries (evaluation helper)."""
        st = self._require()
        out: list[dict[str, Vector]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = st["processor"].process_queries(text=list(texts[start : start + self.batch_size]))
            out.extend(self._ladder_from_rows(r, query=True) for r in self._forward_rows(batch))
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
    so every level has ``vectors: 1``. Documents are page images; chunks without an image
    are embedded as text (same prompt, no image). Image queries give ``None``.

    The inputs are assembled from the tokenizer (its chat template) and the image
    processor directly, so torchvision (needed by ``Qwen2VLProcessor``'s video half) is
    not required. ``max_image_tokens`` caps visual tokens per page.
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

    def _check_ladder(self) -> None:
        _single_levels_only(self)
        if self.query_image not in ("dummy", "none"):
            raise ConfigError("embedder/dse: query_image must be 'dummy' or 'none'")
        if "{text}" not in self.query_prompt:
            raise ConfigError("embedder/dse: query_prompt must contain '{text}'")
        if self.max_image_tokens is not None and self.max_image_tokens < 1:
            raise ConfigError("embedder/dse: max_image_tokens must be positive")

    def _extra_identity(self) -> dict[str, Any]:
        return {
            "document_prompt": self.document_prompt,
            "query_prompt": self.query_prompt,
            "query_image": self.query_image,
            "max_image_tokens": self.max_image_tokens,
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

    def _prompt(self, text: str, has_image: bool) -> str:
        st = self._require()
        tok = st["tokenizer"]
        content: list[dict[str, Any]] = [{"type": "image"}] if has_image else []
        content.append({"type": "text", "text": text})
        messages = [{"role": "user", "content": content}]
        if getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            image = "<|vision_start|><|image_pad|><|vision_end|>" if has_image else ""
            prompt = _QWEN2_VL_TEMPLATE.format(content=image + text)
        return prompt + "<|endoftext|>"

    def _embed(self, items: Sequence[tuple[str, Any]]) -> list[np.ndarray]:
        """Last-token embeddings of (text, PIL image or None) items, one forward pass."""
        st = self._require()
        torch, tok, ip = st["torch"], st["tokenizer"], st["image_processor"]
        images = [im for _, im in items if im is not None]
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
        texts, k = [], 0
        for text, im in items:
            prompt = self._prompt(text, im is not None)
            if im is not None:
                prompt = prompt.replace(st["image_token"], st["image_token"] * counts[k], 1)
                k += 1
            texts.append(prompt)
        enc = tok(texts, padding="longest", return_tensors="pt")
        enc["mm_token_type_ids"] = (enc["input_ids"] == st["image_token_id"]).long()
        inputs = self._to({**dict(enc), **pix})
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

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """One vector per chunk: the page image, or the text for chunks without one."""
        out: list[dict[str, Vector]] = [{} for _ in chunks]
        items: list[tuple[int, str, ImageRef | None]] = []
        for i, c in enumerate(chunks):
            ref = chunk_image(c)
            if ref is not None:
                items.append((i, self.document_prompt, ref))
            elif chunk_text(c):
                items.append((i, chunk_text(c)[: self.max_text_tokens * 8], None))
        for start in range(0, len(items), self.batch_size):
            part = items[start : start + self.batch_size]
            refs = [(j, r) for j, (_, _, r) in enumerate(part) if r is not None]
            rendered = self._render_refs([r for _, r in refs], [chunks[part[j][0]] for j, _ in refs])
            pil = {j: im for (j, _), im in zip(refs, rendered)}
            batch = []
            for j, (i, text, ref) in enumerate(part):
                if ref is not None and pil.get(j) is None:
                    text = chunk_text(chunks[i])
                    if not text:
                        continue
                batch.append((i, text, pil.get(j)))
            if not batch:
                continue
            vecs = self._embed([(t, im) for _, t, im in batch])
            for (i, _, _), v in zip(batch, vecs):
                out[i] = self._ladder_from_vector(v)
        return out

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """The text query's vector, or ``None`` without text."""
        if not query.text or not query.text.strip():
            return None
        image = self._dummy() if self.query_image == "dummy" else None
        text = self.query_prompt.format(text=query.text)
        return self._ladder_from_vector(self._embed([(text, image)])[0])


# ======================================================================================
# Dual encoders: CLIP / SigLIP
# ======================================================================================


@dataclass(kw_only=True)
class DualEncoderEmbedder(HfEmbedder):
    """CLIP / SigLIP: images and texts embedded into one space (single vectors).

    ``documents``: ``auto`` embeds a chunk's image when it has one (page screenshot,
    first figure), else its text; ``image`` embeds only images (chunks without one get
    ``{}``); ``text`` embeds only text. Queries: text -> text tower, image -> image tower,
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

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """One vector per chunk (image or text, see ``documents``); ``{}`` when there is
        nothing this mode reads."""
        out: list[dict[str, Vector]] = [{} for _ in chunks]
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
                    out[i] = self._ladder_from_vector(v)
        for start in range(0, len(txt_todo), self.batch_size):
            part = txt_todo[start : start + self.batch_size]
            for (i, _), v in zip(part, self._text_vectors([t for _, t in part])):
                out[i] = self._ladder_from_vector(v)
        return out

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """Text, image, or both (mean of the two unit vectors); ``None`` with neither."""
        vecs = []
        if query.image is not None:
            vecs.append(self._image_vectors([self._pil(query.image)])[0])
        if query.text and query.text.strip():
            vecs.append(self._text_vectors([self.query_prompt.format(text=query.text)])[0])
        if not vecs:
            return None
        return self._ladder_from_vector(l2_normalize(np.mean(vecs, axis=0)))


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
