"""Media below the parsers: type sniffing, image decoding, page rendering, encoding, OCR.

Nothing here imports a parser, an embedder or a store; they all import from here.
"""

from __future__ import annotations

__all__: list[str] = []
