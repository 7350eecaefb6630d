"""Rerankers: re-score retrieved hits for a query, then keep what the adaptive cut-off keeps.

Backends are imported on first use through the registry (``reranker/vlm``: a
vision-language model's yes/no logits on transformers, :mod:`ragnest.rerankers.vlm`);
:mod:`ragnest.rerankers.cutoff` is the cut-off every backend applies and
:mod:`ragnest.rerankers.presets` the prompt formats of published rerankers.
"""

__all__: list[str] = []
