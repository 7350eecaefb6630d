"""Dual encoders: CLIP and SigLIP, images and texts embedded into one space.

One vector per item from the image tower or the text tower, so image queries
(``ragnest query --image``) find pages and figures::

    >>> from ragnest.embedders.dual_encoder import ClipEmbedder
    >>> emb = ClipEmbedder()  # openai/clip-vit-base-patch32; nothing loaded yet
    >>> emb.vector_specs()[0].dim, emb.documents
    (512, 'auto')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ragnest._hf import HfRuntime, LoadedModel, load_image, load_model
from ragnest.embedders._hf_base import HfEmbedder, RawOutput
from ragnest.errors import ConfigError, EmbeddingError
from ragnest.ladder import l2_normalize
from ragnest.multimodal import chunk_image, chunk_text
from ragnest.types import Chunk, ImageRef, Query

__all__ = ["ClipEmbedder", "DualEncoderEmbedder", "SiglipEmbedder"]


@dataclass(kw_only=True)
class DualEncoderEmbedder(HfEmbedder):
    """CLIP / SigLIP: images and texts embedded into one space (single vectors).

    ``documents``: ``auto`` embeds a chunk's image when it has one (page screenshot,
    first figure), else its text; ``image`` embeds only images (chunks without one get
    ``{}``); ``text`` embeds only text. Each tower reads one input, so an interleaved
    chunk becomes ONE vector from :func:`~ragnest.multimodal.chunk_image`: its first
    image segment (else its rendered region ``chunk.image``) through the image tower;
    its text and further images are not read (with ``text``, or when it has no image at
    all, its joined text goes through the text tower instead; a failed render in
    ``auto`` falls back to the text). Queries: text -> text tower, image -> image tower,
    both -> the normalised mean of the two; texts and images of many queries are batched.
    Every level has ``vectors: 1`` (CLIP/SigLIP are not Matryoshka-trained: keep ``dim``
    at the model's size, or fit a PCA rotation).
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
        self._single_levels_only()
        if self.documents not in ("auto", "image", "text"):
            raise ConfigError(f"{self.owner}: documents must be auto, image or text")
        if "{text}" not in self.query_prompt:
            raise ConfigError(f"{self.owner}: query_prompt must contain '{{text}}'")

    def _extra_identity(self) -> dict[str, Any]:
        return {"documents": self.documents, "query_prompt": self.query_prompt}

    def _load(self, runtime: HfRuntime) -> LoadedModel:
        model_cls, proc_cls = self.transformers_classes
        return load_model(
            self.model, model_cls, processor=proc_cls, runtime=runtime, owner=self.owner,
            error=EmbeddingError,
        )

    def _dim(self, loaded: LoadedModel) -> int:
        cfg = loaded.model.config
        dim = getattr(cfg, "projection_dim", None)
        if self.family == "siglip" or dim is None:
            dim = cfg.text_config.hidden_size  # SigLIP: no projection_dim
            if self.family == "siglip":
                dim = getattr(cfg.text_config, "projection_size", None) or dim
        return int(dim)

    @staticmethod
    def _features(out: Any) -> Any:
        return out.pooler_output if hasattr(out, "pooler_output") else out

    def _text_vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        lm = self.loaded
        torch, tok = lm.runtime.torch, lm.processor.tokenizer
        padding: Any = "max_length" if self.family == "siglip" else True
        enc = tok(list(texts), padding=padding, truncation=True, return_tensors="pt")
        inputs = lm.inputs(enc)
        inputs.pop("token_type_ids", None)
        if self.family == "siglip":
            inputs.pop("attention_mask", None)  # SigLIP was trained without one
        with lm.runtime.inference():
            feats = self._features(lm.model.get_text_features(**inputs))
        return list(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())

    def _image_vectors(self, images: Sequence[Any]) -> list[np.ndarray]:
        lm = self.loaded
        torch = lm.runtime.torch
        inputs = lm.inputs(lm.processor.image_processor(images=list(images), return_tensors="pt"))
        with lm.runtime.inference():
            feats = self._features(lm.model.get_image_features(pixel_values=inputs["pixel_values"]))
        return list(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())

    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[RawOutput]:
        """One vector per chunk (image or text, see ``documents``); ``None`` when there
        is nothing this mode reads."""
        raw: list[RawOutput] = [None] * len(chunks)
        img_todo: list[tuple[int, ImageRef]] = []
        txt_todo: list[tuple[int, str]] = []
        for i, c in enumerate(chunks):
            ref = chunk_image(c) if self.documents in ("auto", "image") else None
            if ref is not None:
                img_todo.append((i, ref))
            elif self.documents in ("auto", "text") and chunk_text(c):
                txt_todo.append((i, chunk_text(c)))
        for part in self._batches(img_todo):
            ims = self._render([r for _, r in part], [chunks[i] for i, _ in part])
            ok = [(i, im) for (i, _), im in zip(part, ims) if im is not None]
            for (i, _), im in zip(part, ims):
                if im is None and self.documents == "auto" and chunk_text(chunks[i]):
                    txt_todo.append((i, chunk_text(chunks[i])))
            if ok:
                for (i, _), v in zip(ok, self._image_vectors([im for _, im in ok])):
                    raw[i] = v
        for part in self._batches(txt_todo):
            for (i, _), v in zip(part, self._text_vectors([t for _, t in part])):
                raw[i] = v
        return raw

    def _raw_queries(self, queries: Sequence[Query]) -> list[RawOutput]:
        """Text, image, or both (mean of the two unit vectors) per query; texts and images
        batched through their towers; ``None`` with neither."""
        found: list[list[np.ndarray]] = [[] for _ in queries]
        imgs = [i for i, q in enumerate(queries) if q.image is not None]
        for part in self._batches(imgs):
            images = [
                load_image(queries[i].image, max_pixels=self.render_max_pixels,  # type: ignore[arg-type]
                           renderer=self._renderer)
                for i in part
            ]
            for i, v in zip(part, self._image_vectors(images)):
                found[i].append(v)
        texts = [i for i, q in enumerate(queries) if q.text and q.text.strip()]
        for part in self._batches(texts):
            prompts = [self.query_prompt.format(text=queries[i].text) for i in part]
            for i, v in zip(part, self._text_vectors(prompts)):
                found[i].append(v)
        return [l2_normalize(np.mean(v, axis=0)) if v else None for v in found]


@dataclass(kw_only=True)
class ClipEmbedder(DualEncoderEmbedder):
    """CLIP (``CLIPModel``), e.g. ``openai/clip-vit-base-patch32`` (512-d)."""

    family: ClassVar[str] = "clip"
    transformers_classes: ClassVar[tuple[str, ...]] = ("CLIPModel", "CLIPProcessor")
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
    transformers_classes: ClassVar[tuple[str, ...]] = ("SiglipModel", "SiglipProcessor")
    default_ladder: ClassVar[list[dict[str, Any]]] = [
        {"name": "coarse", "dim": 1152, "vectors": 1, "index": "hnsw"},
    ]
    model: str = "google/siglip-so400m-patch14-384"
