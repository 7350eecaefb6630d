"""Tiny datasets in the public formats, made here: BEIR folders, ViDoRe v1/v2/v3 parquet
files with PNG page images (rendered text, read back by OCR), a folder of PDFs."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf

# Four pages on distinct topics; each query's gold page is known.
PAGES = {
    "p-descale": ["Descaling the espresso machine", "Run the descaling program every month.",
                  "It keeps the boiler free of limescale."],
    "p-filter": ["Water filter cartridge", "Replace the water filter cartridge",
                 "after sixty days or fifty litres."],
    "p-grinder": ["Grinder adjustment", "Turn the grinder dial to set the burrs",
                  "finer for espresso, coarser for filter coffee."],
    "p-steam": ["Steam wand cleaning", "Wipe and purge the steam wand",
                "after every milk drink to prevent blockages."],
}
QUERIES = {
    "q-descale": ("how often should I run the descaling program", "p-descale"),
    "q-filter": ("when to replace the water filter cartridge", "p-filter"),
    "q-grinder": ("turn the grinder dial to set the burrs", "p-grinder"),
}
# A gold box on the descaling page (pixels of its PNG), for region metrics.
DESCALE_BOX = {"annotator": 1, "x1": 20.0, "x2": 380.0, "y1": 60.0, "y2": 110.0}


def page_png(lines: list[str]) -> bytes:
    """A 400x300 px page image with the lines written on it."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    for i, line in enumerate(lines):
        page.insert_text((20, 50 + 30 * i), line, fontsize=15 if i else 18)
    png = page.get_pixmap(dpi=72).tobytes("png")
    doc.close()
    return png


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    doc = pymupdf.open()
    for lines in pages:
        page = doc.new_page(width=420, height=300)
        for i, line in enumerate(lines):
            page.insert_text((30, 60 + 26 * i), line, fontsize=13)
    doc.save(path)
    doc.close()
    return path


def make_beir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "corpus.jsonl").open("w") as f:
        for cid, lines in PAGES.items():
            f.write(json.dumps({"_id": cid, "title": lines[0], "text": " ".join(lines[1:])}) + "\n")
    with (root / "queries.jsonl").open("w") as f:
        for qid, (text, _) in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{c}\t1" for q, (_, c) in QUERIES.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return root


def _write(table: dict, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), path)


def make_vidore_v1(path: Path) -> Path:
    """One QA table: query, image (hub struct), image_filename, answer; one page without
    a question."""
    images = {cid: page_png(lines) for cid, lines in PAGES.items()}
    rows = [(text, cid, "monthly" if cid == "p-descale" else None) for text, cid in QUERIES.values()]
    rows.append((None, "p-steam", None))
    _write({"query": [r[0] for r in rows],
            "image": [{"bytes": images[r[1]], "path": f"{r[1]}.png"} for r in rows],
            "image_filename": [f"{r[1]}.png" for r in rows],
            "answer": [r[2] for r in rows]}, path)
    return path


def make_vidore_v2(root: Path) -> Path:
    """BEIR-style configs with hyphenated ids, as the hub lays them out."""
    ids = list(PAGES)
    _write({"corpus-id": list(range(len(ids))),
            "image": [{"bytes": page_png(PAGES[c]), "path": None} for c in ids]},
           root / "corpus" / "test-00000-of-00001.parquet")
    _write({"query-id": list(range(len(QUERIES))), "query": [t for t, _ in QUERIES.values()]},
           root / "queries" / "test-00000-of-00001.parquet")
    _write({"query-id": list(range(len(QUERIES))),
            "corpus-id": [ids.index(c) for _, c in QUERIES.values()],
            "score": [1] * len(QUERIES)}, root / "qrels" / "test-00000-of-00001.parquet")
    return root


def make_vidore_v3(root: Path) -> Path:
    """Underscore ids, doc_id/page_number_in_doc/markdown, qrels with bounding boxes."""
    ids = list(PAGES)
    _write({"corpus_id": list(range(len(ids))), "doc_id": ["manual"] * len(ids),
            "page_number_in_doc": list(range(1, len(ids) + 1)),
            "markdown": ["\n".join(PAGES[c]) for c in ids],
            "image": [{"bytes": page_png(PAGES[c]), "path": None} for c in ids]},
           root / "corpus.parquet")
    _write({"query_id": list(range(len(QUERIES))), "query": [t for t, _ in QUERIES.values()],
            "answer": ["every month", "after sixty days", "the grinder dial"]},
           root / "queries.parquet")
    boxes = [[DESCALE_BOX] if c == "p-descale" else [] for _, c in QUERIES.values()]
    _write({"query_id": list(range(len(QUERIES))),
            "corpus_id": [ids.index(c) for _, c in QUERIES.values()],
            "score": [2] * len(QUERIES), "content_type": ["text"] * len(QUERIES),
            "bounding_boxes": boxes}, root / "qrels.parquet")
    return root


def make_pdf_folder(root: Path) -> Path:
    """Two PDFs (a manual in a subfolder) and a queries file with (document, page, bbox)."""
    (root / "sub").mkdir(parents=True, exist_ok=True)
    make_pdf(root / "sub" / "machine.pdf", [PAGES["p-descale"], PAGES["p-filter"]])
    make_pdf(root / "grinder.pdf", [PAGES["p-grinder"], PAGES["p-steam"]])
    queries = [
        {"id": "d", "query": QUERIES["q-descale"][0], "document": "sub/machine.pdf", "page": 1,
         "bbox": [30, 70, 400, 120], "answer": "every month"},
        {"id": "f", "query": QUERIES["q-filter"][0], "document": "sub/machine.pdf", "page": 2},
        {"id": "g", "query": QUERIES["q-grinder"][0],
         "relevant": [{"document": "grinder.pdf", "page": 1, "grade": 2}]},
    ]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    return root
