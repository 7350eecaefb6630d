"""ViDoRe datasets saved from the hub as parquet files (the one pyarrow adapter).

* v1: one QA table per dataset (``query``, ``image``, ``image_filename``; ``answer``
  where given): each distinct image is a corpus page, each query's gold page its image.
* v2: BEIR-style configs ``corpus`` (``corpus-id``, ``image``), ``queries``
  (``query-id``, ``query``) and ``qrels`` (``query-id``, ``corpus-id``, ``score``).
* v3: the same configs with underscore ids (``corpus_id``, ``query_id``; ``doc_id``,
  ``page_number_in_doc``, ``markdown`` in the corpus) and qrels with ``bounding_boxes``
  (``[{annotator, x1, x2, y1, y2}]``, pixels of the page image).

Column names are normalised (lower case, ``-`` -> ``_``), so v2 and v3 read alike. A
config is found by its name in the file's path (``corpus/test-00000.parquet``,
``corpus.parquet``). Page images are indexed as image files (OCR on the lite pipeline).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragnest.errors import MissingDependencyError, RagnestError
from ragnest.eval.dataset import CorpusItem, EvalDataset, EvalQuery, GoldBox

__all__ = ["load_vidore", "read_table"]

CONFIGS = ("corpus", "queries", "qrels")


def read_table(path: Path) -> list[dict[str, Any]]:
    """The rows of one parquet file, column names normalised (``corpus-id`` ->
    ``corpus_id``); a file pyarrow cannot read is an error naming it."""
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow ships with the eval extra
        raise MissingDependencyError(
            "reading ViDoRe parquet files needs pyarrow: pip install 'ragnest[eval]'") from e
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise RagnestError(f"{path}: not a readable parquet file ({e})") from None
    table = table.rename_columns([c.lower().replace("-", "_") for c in table.column_names])
    return table.to_pylist()


def _image_bytes(value: Any, where: str) -> bytes:
    if isinstance(value, Mapping):
        value = value.get("bytes")
    if isinstance(value, (bytes, bytearray)) and value:
        return bytes(value)
    raise RagnestError(f"{where}: the image column holds no image bytes")


def _config_files(root: Path) -> dict[str, list[Path]]:
    files = sorted(root.rglob("*.parquet")) if root.is_dir() else [root]
    found: dict[str, list[Path]] = {c: [] for c in CONFIGS}
    for f in files:
        parts = [p.lower() for p in f.relative_to(root).parts] if root.is_dir() else [f.name]
        for c in CONFIGS:
            if any(p == c or p.startswith(c + "-") or p.startswith(c + ".") or
                   p.startswith(c + "_") for p in parts):
                found[c].append(f)
                break
    return found


def _rows(files: list[Path]) -> list[dict[str, Any]]:
    return [row for f in files for row in read_table(f)]


def load_vidore(path: str | Path, *, split: str = "test") -> EvalDataset:
    """A ViDoRe v1 QA table, or a v2/v3 folder of ``corpus``/``queries``/``qrels``
    parquet files (see the module docs)."""
    root = Path(path)
    configs = _config_files(root)
    if all(configs[c] for c in CONFIGS):
        return _load_configs(root, configs)
    files = [root] if root.is_file() else sorted(root.rglob("*.parquet"))
    split_files = [f for f in files if split in f.name] or files
    rows = _rows(split_files)
    if rows and {"query", "image"} <= set(rows[0]):
        return _load_v1(root, rows)
    missing = [c for c in CONFIGS if not configs[c]]
    raise RagnestError(f"{root}: not a ViDoRe dataset: no QA table (query, image columns) and no "
                       f"{'/'.join(missing)} parquet file")


def _load_v1(root: Path, rows: list[dict[str, Any]]) -> EvalDataset:
    corpus: dict[str, CorpusItem] = {}
    queries: dict[str, EvalQuery] = {}
    qrels: dict[str, dict[str, int]] = {}
    by_text: dict[str, str] = {}
    for i, row in enumerate(rows):
        where = f"{root}: row {i}"
        name = str(row.get("image_filename") or f"page-{i}")
        if name not in corpus:
            corpus[name] = CorpusItem(id=name, image=_image_bytes(row.get("image"), where))
        text = row.get("query")
        if not text:
            continue  # a page without a question is still in the corpus
        qid = by_text.setdefault(str(text), f"q{len(by_text)}")
        if qid not in queries:
            answer = row.get("answer")
            queries[qid] = EvalQuery(id=qid, text=str(text),
                                     answers=(str(answer),) if answer else ())
        qrels.setdefault(qid, {})[name] = 1
    return EvalDataset("vidore-v1", list(queries.values()), qrels, corpus=list(corpus.values()),
                       root=root)


def _load_configs(root: Path, configs: dict[str, list[Path]]) -> EvalDataset:
    corpus_rows = _rows(configs["corpus"])
    query_rows = _rows(configs["queries"])
    qrel_rows = _rows(configs["qrels"])
    v3 = bool(corpus_rows) and "doc_id" in corpus_rows[0] or bool(qrel_rows) and \
        "bounding_boxes" in qrel_rows[0]
    corpus = []
    for i, row in enumerate(corpus_rows):
        where = f"{configs['corpus'][0]}: row {i}"
        if row.get("corpus_id") is None:
            raise RagnestError(f"{where}: no corpus-id / corpus_id column")
        corpus.append(CorpusItem(id=str(row["corpus_id"]), image=_image_bytes(row.get("image"), where)))
    qrels: dict[str, dict[str, int]] = {}
    boxes: dict[str, list[GoldBox]] = {}
    for i, row in enumerate(qrel_rows):
        if row.get("query_id") is None or row.get("corpus_id") is None:
            raise RagnestError(f"{configs['qrels'][0]}: row {i}: needs query-id and corpus-id")
        qid, cid = str(row["query_id"]), str(row["corpus_id"])
        qrels.setdefault(qid, {})[cid] = int(row.get("score", 1) or 0)
        for b in row.get("bounding_boxes") or ():
            try:
                box = (float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"]))
            except (KeyError, TypeError, ValueError):
                raise RagnestError(f"{configs['qrels'][0]}: row {i}: a bounding box needs numeric "
                                   f"x1, y1, x2, y2, got {b!r}") from None
            boxes.setdefault(qid, []).append(GoldBox(cid, box))
    queries = []
    for i, row in enumerate(query_rows):
        if row.get("query_id") is None or not row.get("query"):
            raise RagnestError(f"{configs['queries'][0]}: row {i}: needs query-id and query")
        qid = str(row["query_id"])
        answer = row.get("answer")
        queries.append(EvalQuery(id=qid, text=str(row["query"]),
                                 answers=(str(answer),) if answer else (),
                                 boxes=tuple(boxes.get(qid, ()))))
    return EvalDataset("vidore-v3" if v3 else "vidore-v2", queries, qrels, corpus=corpus, root=root)
