"""Datasets from a local path: BEIR folders, ViDoRe parquet files, a folder of PDFs with
a queries file. :func:`load_dataset` tells them apart::

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "Descaling",
    ...     "text": "Descale the machine every month."}) + "\\n")
    >>> _ = (d / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "descale"}) + "\\n")
    >>> (d / "qrels").mkdir()
    >>> _ = (d / "qrels" / "test.tsv").write_text("query-id\\tcorpus-id\\tscore\\nq1\\td1\\t1\\n")
    >>> ds = load_dataset(d)
    >>> ds.name, len(ds), ds.qrels
    ('beir', 1, {'q1': {'d1': 1}})

Queries file of a PDF folder (``queries.jsonl``, one JSON object a line): ``query``
(or ``text``), optionally ``image`` (a path relative to the folder), the gold page as
``document`` + ``page`` (+ ``bbox`` in PDF points) or several as ``relevant: [{document,
page, bbox, grade}]``, and gold answer strings as ``answer`` or ``answers``.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator, Mapping, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from ragnest.errors import RagnestError
from ragnest.eval.dataset import CorpusItem, EvalDataset, EvalQuery, GoldBox, page_unit
from ragnest.types import ImageRef

__all__ = ["load_beir", "load_dataset", "load_pdf_folder", "pdf_files", "read_jsonl", "save_queries"]

QUERY_FILES = ("queries.jsonl", "queries.json")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line; a bad line is an error naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise RagnestError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise RagnestError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
            yield n, obj


def _need(obj: Mapping[str, Any], keys: tuple[str, ...], where: str) -> Any:
    for k in keys:
        if obj.get(k) is not None:
            return obj[k]
    raise RagnestError(f"{where}: missing {' or '.join(repr(k) for k in keys)}")


def _first(folder: Path, *names: str) -> Path | None:
    for name in names:
        for cand in (folder / name, folder / (name + ".gz")):
            if cand.is_file():
                return cand
    return None


def load_beir(path: str | Path, *, split: str = "test") -> EvalDataset:
    """A BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
    (``_id``, ``text``), ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``,
    header row)."""
    root = Path(path)
    corpus_file = _first(root, "corpus.jsonl")
    queries_file = _first(root, "queries.jsonl")
    qrels_file = root / "qrels" / f"{split}.tsv"
    for f, what in ((corpus_file, "corpus.jsonl"), (queries_file, "queries.jsonl")):
        if f is None:
            raise RagnestError(f"{root}: not a BEIR folder (no {what})")
    if not qrels_file.is_file():
        found = sorted(p.name for p in (root / "qrels").glob("*.tsv"))
        raise RagnestError(f"{qrels_file}: no such qrels file (splits here: {found or 'none'})")
    assert corpus_file is not None and queries_file is not None
    corpus = [
        CorpusItem(id=str(_need(o, ("_id",), f"{corpus_file}:{n}")), text=str(o.get("text") or ""),
                   title=str(o.get("title") or ""))
        for n, o in read_jsonl(corpus_file)
    ]
    queries = [
        EvalQuery(id=str(_need(o, ("_id",), f"{queries_file}:{n}")),
                  text=str(_need(o, ("text",), f"{queries_file}:{n}")))
        for n, o in read_jsonl(queries_file)
    ]
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        header = next(rows, None)
        if not header or [h.strip().lower() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise RagnestError(f"{qrels_file}:1: expected the header 'query-id corpus-id score', "
                               f"got {header!r}")
        for n, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) < 3:
                raise RagnestError(f"{qrels_file}:{n}: expected 3 tab-separated columns, got {row!r}")
            try:
                grade = int(float(row[2]))
            except ValueError:
                raise RagnestError(f"{qrels_file}:{n}: score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    return EvalDataset("beir", queries, qrels, corpus=corpus, root=root)


def _ref(value: Any, root: Path, where: str) -> ImageRef:
    if isinstance(value, Mapping):
        ref = ImageRef.from_dict(value)
        if ref is None:
            raise RagnestError(f"{where}: empty image")
        return ref
    p = (root / str(value)).absolute()
    if not p.is_file():
        raise RagnestError(f"{where}: image {value!r}: no such file under {root}")
    return ImageRef(blob=str(p))


def _box(value: Any, where: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise RagnestError(f"{where}: bbox must be [x0, y0, x1, y1], got {value!r}") from None
    return (x0, y0, x1, y1)


def pdf_files(root: Path, exclude: Sequence[str] = ()) -> list[Path]:
    """The PDFs under ``root`` (recursively, sorted), less those whose name matches a
    glob of ``exclude``; none is an error."""
    docs = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file()
                  and not any(fnmatch(p.name, pat) for pat in exclude))
    if not docs:
        raise RagnestError(f"{root}: no PDF files in this folder"
                           + (f" (after --exclude {' '.join(exclude)})" if exclude else ""))
    return docs


def load_pdf_folder(path: str | Path, *, queries: str | Path | None = None,
                    exclude: Sequence[str] = ()) -> EvalDataset:
    """A folder of PDFs (searched recursively; names matching a glob of ``exclude`` left
    out) and a queries file (``queries.jsonl`` in the folder unless ``queries`` names
    one; see the module docs for its fields)."""
    root = Path(path)
    docs = pdf_files(root, exclude)
    qfile = Path(queries) if queries else next(
        (root / n for n in QUERY_FILES if (root / n).is_file()), None)
    if qfile is None:
        raise RagnestError(f"{root}: no queries file (queries.jsonl); give one, or make an eval "
                           "set from the documents (ragnest eval DIR --make known-item)")
    names = {p.relative_to(root).as_posix() for p in docs}
    left_out = {p.relative_to(root).as_posix() for p in pdf_files(root)} - names if exclude else set()
    out, qrels = [], {}
    for n, o in _query_objects(qfile):
        where = f"{qfile}:{n}"
        qid = str(o.get("id", f"q{n}"))
        relevant = [r for r in o.get("relevant") or [o] if r.get("document") not in left_out]
        if not relevant:
            continue  # every gold page is in an excluded document
        boxes, grades = [], {}
        for r in relevant:
            doc = str(_need(r, ("document",), where))
            if doc not in names:
                raise RagnestError(f"{where}: document {doc!r} is not a PDF under {root}")
            page = r.get("page")
            if not isinstance(page, int) or page < 1:
                raise RagnestError(f"{where}: page must be an integer >= 1, got {page!r}")
            unit = page_unit(doc, page)
            grades[unit] = int(r.get("grade", 1))
            if r.get("bbox") is not None:
                boxes.append(GoldBox(unit, _box(r["bbox"], where)))
        text = o.get("query", o.get("text"))
        image = _ref(o["image"], root, where) if o.get("image") else None
        if not text and image is None:
            raise RagnestError(f"{where}: a query needs 'query' text or an 'image'")
        answers = o.get("answers", [o["answer"]] if o.get("answer") else [])
        out.append(EvalQuery(id=qid, text=text or None, image=image,
                             answers=tuple(str(a) for a in answers), boxes=tuple(boxes),
                             kind=str(o.get("kind", "image" if image and not text else "text"))))
        qrels[qid] = grades
    return EvalDataset(root.name or "pdfs", out, qrels, documents=docs, root=root)


def _query_objects(qfile: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not qfile.is_file():
        raise RagnestError(f"{qfile}: no such queries file")
    if qfile.suffix == ".json":
        try:
            data = json.loads(qfile.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise RagnestError(f"{qfile}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(data, list):
            raise RagnestError(f"{qfile}: expected a JSON list of queries")
        yield from enumerate(data, 1)
    else:
        yield from read_jsonl(qfile)


def save_queries(dataset: EvalDataset, path: str | Path) -> Path:
    """Write a PDF-folder dataset's queries as ``queries.jsonl`` (readable by
    :func:`load_pdf_folder`), e.g. an eval set made from a user's documents."""
    path = Path(path)
    lines = []
    for q in dataset.queries:
        rel = []
        for unit, grade in dataset.qrels[q.id].items():
            doc, _, page = unit.rpartition("#p")
            item: dict[str, Any] = {"document": doc, "page": int(page), "grade": grade}
            box = next((b.box for b in q.boxes if b.unit == unit), None)
            if box:
                item["bbox"] = list(box)
            rel.append(item)
        obj: dict[str, Any] = {"id": q.id, "kind": q.kind, "relevant": rel}
        if q.text:
            obj["query"] = q.text
        if q.image is not None:
            obj["image"] = q.image.to_dict()
        if q.answers:
            obj["answers"] = list(q.answers)
        lines.append(json.dumps(obj, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_dataset(path: str | Path, *, split: str = "test", queries: str | Path | None = None,
                 exclude: Sequence[str] = ()) -> EvalDataset:
    """Load a dataset, telling its format from what the path holds: ``corpus.jsonl`` ->
    BEIR, ``*.parquet`` -> ViDoRe (v1, v2 or v3), PDFs -> a PDF folder."""
    root = Path(path)
    if not root.exists():
        raise RagnestError(f"{root}: no such dataset folder or file")
    if root.is_file() and root.suffix == ".parquet" or root.is_dir() and any(root.rglob("*.parquet")):
        from ragnest.eval.vidore import load_vidore

        return load_vidore(root, split=split)
    if root.is_dir() and _first(root, "corpus.jsonl"):
        return load_beir(root, split=split)
    if root.is_dir():
        return load_pdf_folder(root, queries=queries, exclude=exclude)
    raise RagnestError(f"{root}: not a dataset (expected a BEIR folder, ViDoRe parquet files or "
                       "a folder of PDFs)")
