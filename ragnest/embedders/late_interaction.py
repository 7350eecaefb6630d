"""Late interaction over page images: ColQwen2 and ColPali (transformers' retrieval classes).

Documents are images -> ``(L, dim)`` unit token rows with the page's patch grid; queries
are text -> ``(Lq, dim)`` rows, scored by MaxSim. The ladder
(:class:`~ragnest.ladder.LadderBuilder`) makes the levels: the mean of the rows as one
vector, pooled rows, every non-padded row::

    >>> from ragnest.embedders.late_interaction import ColPaliEmbedder
    >>> emb = ColPaliEmbedder()  # vidore/colpali-v1.3-hf; nothing loaded yet
    >>> emb.identity()["family"], [lv.vectors for lv in emb.levels]
    ('colpali', [1, 32, None])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ragnest._hf import HfRuntime, LoadedModel, load_model, vision_size
from ragnest.embedders._hf_base import HfEmbedder, RawOutput
from ragnest.errors import ConfigError, EmbeddingError
from ragnest.ladder import TokenRows
from ragnest.multimodal import chunk_image
from ragnest.types import Chunk, Query

__all__ = ["ColPaliEmbedder", "ColQwen2Embedder", "LateInteractionEmbedder"]


@dataclass(kw_only=True)
class LateInteractionEmbedder(HfEmbedder):
    """ColQwen2 / ColPali multi-vector page embeddings (transformers' retrieval classes).

    Documents are images -> ``(L, dim)`` unit rows; queries are text -> ``(Lq, dim)``
    rows (scored by MaxSim). The retrieval forward reads exactly one image per sequence
    (``ColQwen2ForRetrieval.forward`` takes ``image_grid_thw`` as one row per batch item
    and unpads ``pixel_values`` per item; ColPali's PaliGemma prefix holds one image), so
    a chunk is embedded from one image, :func:`~ragnest.multimodal.chunk_image` with
    ``region=True``:

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
            raise ConfigError(f"{self.owner}: max_image_tokens must be at least 4")
        super().__post_init__()

    def _extra_identity(self) -> dict[str, Any]:
        return {"max_image_tokens": self.max_image_tokens}

    def _load(self, runtime: HfRuntime) -> LoadedModel:
        model_cls, proc_cls = self.transformers_classes
        loaded = load_model(
            self.model, model_cls, processor=proc_cls, runtime=runtime, owner=self.owner,
            error=EmbeddingError,
        )
        proc = loaded.processor
        loaded.info["image_token_id"] = proc.tokenizer.convert_tokens_to_ids(proc.image_token)
        loaded.info["merge_size"] = int(getattr(proc.image_processor, "merge_size", 1) or 1)
        return loaded

    def _dim(self, loaded: LoadedModel) -> int:
        return int(loaded.model.config.embedding_dim)

    def _image_kwargs(self, processor: Any) -> dict[str, Any]:
        if self.max_image_tokens is None or self.family != "colqwen2":
            return {}
        return vision_size(processor.image_processor, self.max_image_tokens, min_tokens=4)

    def _forward_rows(self, batch: Any) -> list[TokenRows]:
        """Non-padded rows per item, with the page's patch grid when it holds an image.

        The grid (for ``pool: grid | rows | columns``) comes from the image tokens'
        positions: ColQwen2's ``image_grid_thw`` divided by the merge size, ColPali's
        square of ``image_seq_length`` patches.
        """
        lm = self.loaded
        inputs = lm.inputs(batch)
        with lm.runtime.inference():
            emb = lm.model(**inputs).embeddings
        mask = inputs["attention_mask"].bool().cpu().numpy()
        ids = inputs["input_ids"].cpu().numpy()
        thw = inputs.get("image_grid_thw")
        thw = None if thw is None else thw.cpu().numpy()
        emb = emb.float().cpu().numpy()
        out = []
        for i in range(emb.shape[0]):
            is_image = ids[i][mask[i]] == lm.info["image_token_id"]
            grid = self._grid(int(is_image.sum()), None if thw is None else thw[i], lm.info)
            out.append(
                TokenRows(emb[i][mask[i]], grid, np.flatnonzero(is_image) if grid else None)
            )
        return out

    @staticmethod
    def _grid(n: int, thw: np.ndarray | None, info: Mapping[str, Any]) -> tuple[int, int] | None:
        if n == 0:
            return None
        if thw is not None:  # ColQwen2: (t, h, w) patches, merged merge x merge per token
            m = int(info["merge_size"])
            grid = (int(thw[1]) // m, int(thw[2]) // m)
        else:  # ColPali: a square of patches
            side = int(round(n**0.5))
            grid = (side, side)
        return grid if grid[0] * grid[1] == n else None

    def page_rows(self, images: Sequence[Any]) -> list[TokenRows]:
        """Token rows (with the patch grid) of PIL page images, one forward pass."""
        processor = self.loaded.processor
        batch = processor.process_images(images=list(images), **self._image_kwargs(processor))
        return self._forward_rows(batch)

    def _raw_documents(self, chunks: Sequence[Chunk]) -> list[RawOutput]:
        """Token rows (with the patch grid) per chunk image (see the class docstring for
        which image); ``None`` for chunks without an image."""
        raw: list[RawOutput] = [None] * len(chunks)
        todo = [
            (i, ref)
            for i, c in enumerate(chunks)
            if (ref := chunk_image(c, region=True)) is not None
        ]
        for part in self._batches(todo):
            images = self._render([r for _, r in part], [chunks[i] for i, _ in part])
            keep = [(i, im) for (i, _), im in zip(part, images) if im is not None]
            if keep:
                for (i, _), rows in zip(keep, self.page_rows([im for _, im in keep])):
                    raw[i] = rows
        return raw

    def _raw_queries(self, queries: Sequence[Query]) -> list[RawOutput]:
        """Token rows of text queries, batched; ``None`` for queries without text."""
        processor = self.loaded.processor
        out: list[RawOutput] = [None] * len(queries)
        todo = [i for i, q in enumerate(queries) if q.text and q.text.strip()]
        for part in self._batches(todo):
            batch = processor.process_queries(text=[queries[i].text for i in part])
            for i, rows in zip(part, self._forward_rows(batch)):
                out[i] = rows
        return out


@dataclass(kw_only=True)
class ColQwen2Embedder(LateInteractionEmbedder):
    """ColQwen2 (``ColQwen2ForRetrieval``), e.g. ``vidore/colqwen2-v1.0-hf``."""

    family: ClassVar[str] = "colqwen2"
    transformers_classes: ClassVar[tuple[str, ...]] = ("ColQwen2ForRetrieval", "ColQwen2Processor")
    model: str = "vidore/colqwen2-v1.0-hf"


@dataclass(kw_only=True)
class ColPaliEmbedder(LateInteractionEmbedder):
    """ColPali (``ColPaliForRetrieval``, PaliGemma), e.g. ``vidore/colpali-v1.3-hf``."""

    family: ClassVar[str] = "colpali"
    transformers_classes: ClassVar[tuple[str, ...]] = ("ColPaliForRetrieval", "ColPaliProcessor")
    model: str = "vidore/colpali-v1.3-hf"
