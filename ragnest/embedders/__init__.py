"""Embedders: each turns chunks and queries into named vectors, one per ladder level.

Backends are imported on first use through the registry (``embedder/wordllama``,
``embedder/bm25``, ...), so importing this package imports no optional dependency.
One module per family: :mod:`~ragnest.embedders.wordllama`, :mod:`~ragnest.embedders.bm25`,
:mod:`~ragnest.embedders.thumbnail`, and on the transformers runtime (:mod:`ragnest._hf`)
:mod:`~ragnest.embedders.late_interaction` (ColQwen2, ColPali),
:mod:`~ragnest.embedders.dse` (single-vector VLM) and
:mod:`~ragnest.embedders.dual_encoder` (CLIP, SigLIP).
"""

__all__: list[str] = []
