"""Generators: answer a query from retrieved hits, citing document and page.

Backends are imported on first use through the registry (``generator/extractive``, ...).
"""

__all__: list[str] = []
