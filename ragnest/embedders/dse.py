"""Single-vector vision-language embeddings: DSE (Document Screenshot Embedding) on Qwen2-VL.

One unit vector per item, the last position of the last hidden state; Matryoshka dims by
truncation + re-normalisation, so every level has ``vectors: 1``. What a chunk becomes
comes from :func:`ragnest.multimodal.chunk_parts`::

    >>> from ragnest.embedders.dse import DseEmbedder
    >>> emb = DseEmbedder()  # MrLight/dse-qwen2-2b-mrl-v1; nothing loaded yet
    >>> [(s.name, s.dim) for s in emb.vector_specs()]
    [('coarse', 256), ('full', 1536)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ragnest._hf import (
    HfRuntime,
    LoadedModel,
    blank_image,
    chat_messages,
    fit_text_budget,
    load_model,
    vision_size,
)
from ragnest.embedders._hf_base import HfEmbedder, RawOutput
from ragnest.errors import ConfigError, EmbeddingError
from ragnest.multimodal import Part, chunk_parts, chunk_text, is_interleaved
from ragnest.types import Chunk, ImageRef, Query

__all__ = ["DseEmbedder"]

# Qwen2-VL's chat template, used when a DSE checkpoint's tokenizer carries none.
_QWEN2_VL_TEMPLATE = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "{content}<|im_end|>\n<|im_start|>assistant\n"
)
_VISION_BLOCK = "<|vision_start|><|image_pad|><|vision_end|>"
_VISION_TOKENS = re.compile(r"<\|(?:vision_start|vision_end|vision_pad|image_pad|video_pad)\|>")
_IMAGE_PAD = "<|image_pad|>"


@dataclass(kw_only=True)
class DseEmbedder(HfEmbedder):
    """Document Screenshot Embedding with a Qwen2-VL model (``AutoModelForImageTextToText``).

    Inputs follow DSE: the chat template with the image (documents) or a tiny dummy image
    (queries, ``query_image: dummy``, as DSE was trained; ``none`` sends text only),
    ``<|endoftext|>`` appended, left padding; the embedding is the last position of the
    last hidden state, unit-normalised; Matryoshka dims by truncation + re-normalisation,
    so every level has ``vectors: 1``. What a document chunk becomes (one user message,
    :func:`~ragnest.multimodal.chunk_parts`):

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
    transformers_classes: ClassVar[tuple[str, ...]] = (
        "AutoModelForImageTextToText",
        "AutoTokenizer",
        "AutoImageProcessor",
    )
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
        self._single_levels_only()
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

    def _load(self, runtime: HfRuntime) -> LoadedModel:
        model_cls, tok_cls, ip_cls = self.transformers_classes
        loaded = load_model(
            self.model, model_cls, tokenizer=tok_cls, image_processor=ip_cls,
            tokenizer_kwargs={"padding_side": "left"}, runtime=runtime, owner=self.owner,
            error=EmbeddingError,
        )
        cfg = loaded.model.config
        loaded.info["image_token_id"] = int(
            getattr(cfg, "image_token_id", None) or loaded.tokenizer.convert_tokens_to_ids(_IMAGE_PAD)
        )
        return loaded

    def _dim(self, loaded: LoadedModel) -> int:
        cfg = loaded.model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        return int(text_cfg.hidden_size)

    # -- inputs -----------------------------------------------------------------------
    def _prompt(self, parts: Sequence[str | None]) -> str:
        """The chat prompt of one user message whose content is ``parts`` in order: a
        string is a text part, ``None`` an image slot (one ``<|image_pad|>`` each, expanded
        later); ``<|endoftext|>`` appended."""
        tok = self.loaded.tokenizer
        # text must not smuggle in vision tokens: they would desync images and slots
        parts = [p if p is None else _VISION_TOKENS.sub("", p) for p in parts]
        if getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(
                chat_messages(parts), tokenize=False, add_generation_prompt=True
            )
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
        lm = self.loaded
        tok, ip = lm.tokenizer, lm.image_processor
        images = [p for parts in items for p in parts if not isinstance(p, str)]
        pix: dict[str, Any] = {}
        counts: list[int] = []
        if images:
            kwargs = {}
            if self.max_image_tokens is not None:
                kwargs = vision_size(ip, self.max_image_tokens)
            pix = dict(ip(images=images, return_tensors="pt", **kwargs))
            merge = int(getattr(ip, "merge_size", 2)) ** 2
            counts = [int(t.prod()) // merge for t in pix["image_grid_thw"]]
        texts, k = [], 0
        for parts in items:
            pieces = self._prompt([p if isinstance(p, str) else None for p in parts]).split(
                _IMAGE_PAD
            )
            n = len(pieces) - 1  # one image slot per image part, in order
            if n != sum(not isinstance(p, str) for p in parts):
                raise EmbeddingError(
                    f"embedder/dse: the chat template gave {n} image slot(s) for "
                    f"{sum(not isinstance(p, str) for p in parts)} image(s)"
                )
            prompt = pieces[0]
            for j, piece in enumerate(pieces[1:]):
                prompt += _IMAGE_PAD * counts[k + j] + piece
            k += n
            texts.append(prompt)
        enc = tok(texts, padding="longest", return_tensors="pt")
        enc["mm_token_type_ids"] = (enc["input_ids"] == lm.info["image_token_id"]).long()
        return {**dict(enc), **pix}

    def _embed(self, items: Sequence[Sequence[Any]]) -> list[np.ndarray]:
        """Last-token embeddings of items (ordered text / PIL image parts), one forward."""
        lm = self.loaded
        torch = lm.runtime.torch
        inputs = lm.inputs(self._build_inputs(items))
        with lm.runtime.inference():
            out = lm.model(**inputs, output_hidden_states=True, return_dict=True)
        # left padding: the last position is the last real token of every row
        last = out.hidden_states[-1][:, -1].float()
        last = torch.nn.functional.normalize(last, p=2, dim=-1)
        return list(last.cpu().numpy())

    def _document_parts(self, chunk: Chunk) -> list[Part]:
        """The ordered parts ``chunk`` is embedded from (images not rendered yet; see the
        class docstring); ``[]`` when there is nothing to embed."""
        parts = chunk_parts(chunk, max_images=self.max_images)
        if not parts or is_interleaved(chunk):
            return parts
        if isinstance(parts[0], ImageRef):
            return [parts[0], self.document_prompt]
        return [parts[0][: self.max_text_tokens * 8]]

    def _resolve(
        self, chunks: Sequence[Chunk], todo: Sequence[tuple[int, list[Part]]]
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
        rendered = iter(self._render([r for _, r in refs], [chunks[todo[j][0]] for j, _ in refs]))
        out: list[tuple[int, list[Any]]] = []
        for i, parts in todo:
            items = [p if isinstance(p, str) else next(rendered) for p in parts]
            if is_interleaved(chunks[i]):
                items = fit_text_budget(
                    self.loaded.tokenizer, [p for p in items if p is not None], self.max_text_tokens
                )
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

    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[RawOutput]:
        """One vector per chunk: the page image, the interleaved sequence, or the text
        (see the class docstring); ``None`` for chunks with nothing to embed."""
        raw: list[RawOutput] = [None] * len(chunks)
        todo = [(i, p) for i, c in enumerate(chunks) if (p := self._document_parts(c))]
        for part in self._batches(todo):
            batch = self._resolve(chunks, part)
            if batch:
                for (i, _), v in zip(batch, self._embed([items for _, items in batch])):
                    raw[i] = v
        return raw

    def _raw_queries(self, queries: Sequence[Query]) -> list[RawOutput]:
        """Text queries, batched (prompted, with the dummy image unless
        ``query_image: none``); ``None`` for queries without text."""
        out: list[RawOutput] = [None] * len(queries)
        todo = [i for i, q in enumerate(queries) if q.text and q.text.strip()]
        for part in self._batches(todo):
            items = []
            for i in part:
                text = self.query_prompt.format(text=queries[i].text)
                items.append([blank_image(28), text] if self.query_image == "dummy" else [text])
            for i, v in zip(part, self._embed(items)):
                out[i] = v
        return out
