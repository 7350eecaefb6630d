"""WordLlama: offline static text embeddings with a Matryoshka multi-vector ladder.

The only module that imports ``wordllama``. The 256-d weights and the Llama-2
tokenizer ship inside the wordllama wheel and are loaded from the package directory
directly (no download, no ``tokenizer/`` folder lookup)::

    >>> from ragnest.embedders.wordllama import WordLlamaEmbedder
    >>> from ragnest.types import Query
    >>> emb = WordLlamaEmbedder()
    >>> [s.name for s in emb.vector_specs()]
    ['coarse', 'mid', 'fine']
    >>> q = emb.embed_query(Query(text="descaling the espresso machine"))
    >>> q["coarse"].shape, q["mid"].shape[1], q["fine"].shape[1]
    ((256,), 64, 32)

Vectors:

* single-vector levels: a smooth-inverse-frequency (SIF) weighted mean of unit token
  vectors, ``a / (a + p(w))`` with ``p(w)`` from the token's Zipf rank (the Llama
  vocabulary is ordered roughly by merge frequency), truncated and re-normalised;
* multi-vector levels: the document's distinct content tokens (stopword-like tokens,
  recognised by their small embedding norm, and punctuation dropped), truncated to the
  level's dim, pooled by the level's ``pool`` (:class:`ragnest.ladder.builder.LadderBuilder`;
  k-means by default) to at most ``vectors`` rows
  (``vectors: all`` keeps every distinct token). A query keeps its own token rows,
  scaled so that the MaxSim score is a weighted mean of cosines (distance ``dot``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from ragnest.errors import ConfigError, EmbeddingError, MissingDependencyError
from ragnest.ladder import Ladder, LadderBuilder, TokenRows, cast_level, l2_normalize
from ragnest.multimodal import chunk_text
from ragnest.types import Chunk, Level, Query, Vector, VectorSpec

__all__ = ["DEFAULT_LADDER", "WordLlamaEmbedder"]

logger = logging.getLogger(__name__)

MODEL_NAME = "wordllama/l2_supercat_256"
_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")

#: Chosen by known-item retrieval on the R manuals (3,092 pages; see the issue note):
#: the 256-d SIF mean is the best single vector for the HNSW stage (recall@1000 98%),
#: 16 pooled 64-d rows rescore well (recall@200 97%), and every distinct token at 32 dims
#: ranks best (MaxSim top-5 96%, where 32 pooled 128-d rows reach 82%).
#: About 14 KB per page on average (1 KB + 2 KB + ~11 KB).
DEFAULT_LADDER: list[dict[str, Any]] = [
    {"name": "coarse", "dim": 256, "vectors": 1, "index": "hnsw"},
    {"name": "mid", "dim": 64, "vectors": 16, "datatype": "float16"},
    {"name": "fine", "dim": 32, "vectors": "all", "datatype": "float16"},
]

# Weighting constants: they change stored vectors, so identity() records them.
_SIF_A = 1e-4  # SIF smoothing: weight = a / (a + p(w))
_FREQUENT_RANK = 50  # byte tokens and single characters count as this frequent
_MIN_NORM = 4.0  # token vectors shorter than this are stopword-like (the, of, a, ...)
_WEIGHTING = {
    "single": "sif-zipf",
    "sif_a": _SIF_A,
    "frequent_rank": _FREQUENT_RANK,
    "multi_min_norm": _MIN_NORM,
    "multi_pool": "spherical-kmeans(seed=0, weights=norm*log1p(count))",
    "query_rows": "norm-weighted, sum to 1",
}

_lock = threading.Lock()
_DIM = 256


def _import_wordllama() -> tuple[Any, Any, Any, Any]:
    """Import wordllama without letting it reconfigure the root logger.

    ``wordllama`` calls ``logging.basicConfig(level=INFO)`` at import; that is a no-op
    while the root logger has a handler, so a NullHandler stands in during the import.
    """
    root = logging.getLogger()
    guard = logging.NullHandler()
    level = root.level
    root.addHandler(guard)
    try:
        import wordllama
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        from wordllama.inference import WordLlamaInference
    except ImportError as err:
        raise MissingDependencyError(
            "embedder/wordllama needs the 'wordllama' package: pip install 'ragnest[lite]'"
        ) from err
    finally:
        root.removeHandler(guard)
        root.setLevel(level)
    return wordllama, load_file, Tokenizer, WordLlamaInference


@dataclass
class _Model:
    """Loaded state: unit token vectors, their norms and per-token weights."""

    tokenizer: Any
    unit: np.ndarray  # (vocab, 256) float32, unit rows
    norm: np.ndarray  # (vocab,) float32
    sif: np.ndarray  # (vocab,) float32 single-vector weights
    content: np.ndarray  # (vocab,) bool: kept in multi-vector levels


def _load_model() -> _Model:
    wordllama, load_file, Tokenizer, WordLlamaInference = _import_wordllama()
    base = resources.files(wordllama)
    weights_path = base.joinpath(*_WEIGHTS)
    tok_path = base.joinpath(*_TOKENIZER)
    try:
        with resources.as_file(weights_path) as wp, resources.as_file(tok_path) as tp:
            matrix = load_file(str(wp))["embedding.weight"]
            tokenizer = Tokenizer.from_file(str(tp))
    except (OSError, KeyError) as err:
        raise EmbeddingError(f"WordLlama files missing from the wordllama package: {err}") from err
    inference = WordLlamaInference(matrix, tokenizer)  # the package's own loader path
    tokenizer = inference.tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    emb = inference.embedding  # float32, contiguous
    norm = np.linalg.norm(emb, axis=1).astype(np.float32)
    unit = emb / np.maximum(norm, 1e-12)[:, None]
    vocab = emb.shape[0]
    rank = np.arange(vocab, dtype=np.float64) - 258.0  # ids 3..258 are byte tokens
    pieces = [tokenizer.id_to_token(i) or "" for i in range(vocab)]
    single_char = np.array([len(p.replace("\u2581", "")) <= 1 for p in pieces])
    rank[single_char | (rank < 1)] = _FREQUENT_RANK
    p = 1.0 / (rank * (np.log(vocab) + 0.5772))
    sif = (_SIF_A / (_SIF_A + p)).astype(np.float32)
    alnum = np.array([any(ch.isalnum() for ch in p) for p in pieces])
    content = alnum & (norm >= _MIN_NORM)
    return _Model(tokenizer=tokenizer, unit=unit, norm=norm, sif=sif, content=content)


@dataclass(kw_only=True)
class WordLlamaEmbedder:
    """Static WordLlama text embeddings, fully offline, with a Matryoshka ladder.

    ``ladder`` lists the levels (coarse first; the first has ``index: hnsw``):
    ``vectors: 1`` levels are SIF-weighted means truncated to ``dim``; other levels are
    token vectors truncated to ``dim``, pooled to at most ``vectors`` rows (or ``all``).
    ``max_tokens`` caps the tokens read per chunk. Image-only queries give ``None``.

    >>> emb = WordLlamaEmbedder(ladder=[{"name": "coarse", "dim": 64, "index": "hnsw"}])
    >>> emb.vector_specs()[0].dim
    64
    """

    #: Parser workers may each hold a copy and embed what they parse (a small CPU model).
    embeds_in_workers: ClassVar[bool] = True

    ladder: list[dict[str, Any]] = field(default_factory=lambda: [dict(d) for d in DEFAULT_LADDER])
    batch_size: int = 64
    max_tokens: int = 4096

    def __post_init__(self) -> None:
        self._ladder = Ladder(self.ladder).bind(_DIM, owner="embedder/wordllama")
        self._builder = LadderBuilder(self._ladder, owner="embedder/wordllama")
        if self.batch_size <= 0 or self.max_tokens <= 0:
            raise ConfigError("embedder/wordllama: batch_size and max_tokens must be positive")
        self._model: _Model | None = None

    # -- lifecycle -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load weights and tokenizer from the wordllama package (idempotent, < 1 s)."""
        if self._model is None:
            with _lock:
                if self._model is None:
                    self._model = _load_model()

    def close(self) -> None:
        """Drop the loaded matrices."""
        self._model = None

    # -- description ------------------------------------------------------------------
    @property
    def levels(self) -> list[Level]:
        """The parsed ladder levels, coarse to fine."""
        return list(self._ladder.levels)

    @property
    def parsed_ladder(self) -> Ladder:
        """The parsed :class:`~ragnest.ladder.Ladder`, bound to WordLlama's 256 dims."""
        return self._ladder

    def vector_specs(self) -> list[VectorSpec]:
        """One dense or multi vector per ladder level, distance ``dot``."""
        return self._ladder.specs(distance="dot")

    def identity(self) -> dict[str, Any]:
        """Model, ladder and weighting: what stored vectors depend on."""
        return {
            "model": MODEL_NAME,
            "ladder": self._ladder.to_dicts(),
            "weighting": dict(_WEIGHTING),
            "max_tokens": self.max_tokens,
            "version": 1,
        }

    # -- embedding --------------------------------------------------------------------
    def _ids(self, texts: Sequence[str], *, fast: bool = False) -> list[np.ndarray]:
        """Token ids per text (``fast``: the tokenizer skips the character offsets, which
        nothing here reads; the ids are the same)."""
        model = self._require()
        encode = model.tokenizer.encode_batch
        if fast:
            encode = getattr(model.tokenizer, "encode_batch_fast", encode)
        out: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            for enc in encode(batch, add_special_tokens=False):
                out.append(np.asarray(enc.ids[: self.max_tokens], dtype=np.int64))
        return out

    def _require(self) -> _Model:
        self.warm_up()
        assert self._model is not None
        return self._model

    def _single(self, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
        model = self._require()
        w = model.sif[ids] * counts
        return w @ model.unit[ids]  # (256,), not yet normalised

    def _content(self, ids: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct content tokens; falls back to all alphanumeric, then to all tokens."""
        model = self._require()
        keep = model.content[ids]
        if not keep.any():
            keep = model.norm[ids] > 0
        return ids[keep], counts[keep]

    def _vectors(
        self, ids: np.ndarray, *, query: bool, mean: np.ndarray | None = None
    ) -> dict[str, Vector]:
        """Every level's vector for one text's token ids (``mean``: its SIF mean when
        already computed, as :meth:`embed_queries` does for a whole batch)."""
        model = self._require()
        uniq, counts = np.unique(ids, return_counts=True)
        counts = counts.astype(np.float32)
        if mean is None:
            mean = self._single(uniq, counts)
        cids, ccounts = self._content(uniq, counts)
        out: dict[str, Vector] = {}
        for lv in self._ladder:
            if not lv.is_multi:
                out[lv.name] = l2_normalize(mean[: lv.dim])
                continue
            rows = l2_normalize(model.unit[cids, : lv.dim])
            if query:
                w = model.norm[cids]
                rows = rows * (w / w.sum())[:, None]
            elif lv.vectors is not None or lv.pool_factor is not None:
                weights = model.norm[cids] * np.log1p(ccounts)
                rows = self._builder.pool_rows(lv, TokenRows(rows, weights=weights))
            out[lv.name] = cast_level(rows, lv)
        return out

    def _placeholder(self) -> dict[str, Vector]:
        """Vectors for a chunk without text: the ``<unk>`` token's embedding."""
        return self._vectors(np.array([0], dtype=np.int64), query=False)

    def embed_documents(self, chunks: Sequence[Chunk]) -> list[dict[str, Vector]]:
        """One ``{level: vector}`` per chunk: 1-d float32 for single levels, 2-d rows else.

        Chunks without text (image-only) get a deterministic placeholder (the ``<unk>``
        token's vectors), logged at debug level.
        """
        texts = [chunk_text(c) for c in chunks]
        all_ids = self._ids(texts, fast=True)
        out: list[dict[str, Vector]] = []
        for chunk, ids in zip(chunks, all_ids):
            if ids.size == 0:
                logger.debug("chunk %s has no text; storing placeholder vectors", chunk.id)
                out.append(self._placeholder())
            else:
                out.append(self._vectors(ids, query=False))
        return out

    def embed_queries(self, queries: Sequence[Query]) -> list[dict[str, Vector] | None]:
        """Many queries at once: one tokenizer batch and one matrix pass for the SIF means;
        ``None`` for image-only queries.

        Raises :class:`EmbeddingError` when a query's text has no tokens (blank text).
        """
        model = self._require()
        out: list[dict[str, Vector] | None] = [None] * len(queries)
        todo = [i for i, q in enumerate(queries) if q.text is not None and q.text != ""]
        for i in todo:
            if not str(queries[i].text).strip():
                raise EmbeddingError(f"query text {queries[i].text!r} has no tokens to embed")
        all_ids = self._ids([str(queries[i].text) for i in todo])
        for i, ids in zip(todo, all_ids):
            if ids.size == 0:
                raise EmbeddingError(f"query text {queries[i].text!r} has no tokens to embed")
        if not todo:
            return out
        uniq = [np.unique(ids, return_counts=True) for ids in all_ids]
        flat = np.concatenate([u for u, _ in uniq])
        weights = model.sif[flat] * np.concatenate([c for _, c in uniq]).astype(np.float32)
        starts = np.cumsum([0] + [len(u) for u, _ in uniq[:-1]])
        means = np.add.reduceat(weights[:, None] * model.unit[flat], starts, axis=0)
        for i, ids, mean in zip(todo, all_ids, means):
            out[i] = self._vectors(ids, query=True, mean=mean)
        return out

    def embed_query(self, query: Query) -> dict[str, Vector] | None:
        """The query's vectors, or ``None`` for an image-only query.

        Raises :class:`EmbeddingError` when the text has no tokens (blank text).
        """
        return self.embed_queries([query])[0]
