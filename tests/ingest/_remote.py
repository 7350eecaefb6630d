"""What an embedding worker on another machine runs (imported by a spawned process)."""

from __future__ import annotations

from ragnest import Pipeline
from ragnest.ingest import embed_chunks, parse_all, pick_parser
from ragnest.types import EmbeddedChunk, Source


def parse_and_embed(path: str) -> tuple[str, list[str], list[EmbeddedChunk]]:
    """Parse and embed one file with the lite pipeline's components, without any store:
    returns (fingerprint, chunk ids in order, embedded chunks), all picklable data."""
    rag = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": "/nonexistent/never-opened"})
    source = Source.from_path(path)
    parser = pick_parser(source, rag.parsers)
    assert parser is not None
    chunks = parse_all(parser, source)
    try:
        return source.fingerprint(), [c.id for c in chunks], embed_chunks(rag.embedders, chunks)
    finally:
        for emb in rag.embedders.values():
            emb.close()
