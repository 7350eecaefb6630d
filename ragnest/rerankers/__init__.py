"""Rerankers: re-score retrieved hits for a query (MLLM rerankers arrive in their own issue)."""

__all__: list[str] = []
