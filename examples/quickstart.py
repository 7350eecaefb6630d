"""ragnest in a dozen lines: ingest the sample documents, retrieve, answer with citations.

    python examples/quickstart.py [STORE_DIR]

Runs offline on the `lite` pipeline (WordLlama ladder + BM25, embedded Qdrant Edge).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ragnest import Pipeline

DOCS = Path(__file__).resolve().parent / "docs"


def main(store: str) -> None:
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": store}) as rag:
        report = rag.ingest([DOCS], progress=False)
        print(f"ingested {report.files} files, {report.pages} pages, {report.chunks_added} new chunks")

        for hit in rag.retrieve("error code E03", k=3):
            where = Path(hit.chunk.source).name + (f" p.{hit.chunk.page}" if hit.chunk.page else "")
            print(f"  {where}  score {hit.score:.3f}  by route {dict(hit.scores_by_stage)}")

        answer = rag.query("How long should I rinse my eyes at the eyewash station?")
        print(answer.text)
        for i, c in enumerate(answer.citations, 1):
            print(f"  [{i}] {c.label()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ragnest-quickstart-"))
