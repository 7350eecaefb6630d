"""Datasets from local paths: BEIR, ViDoRe v1/v2/v3 parquet, a PDF folder; clear errors."""

from __future__ import annotations

import json

import pytest

from ragnest.errors import RagnestError
from ragnest.eval import load_beir, load_dataset, load_pdf_folder, load_vidore, save_queries
from tests.eval._fixtures import (
    PAGES,
    QUERIES,
    make_beir,
    make_pdf_folder,
    make_vidore_v1,
    make_vidore_v2,
    make_vidore_v3,
)


def test_beir_folder(tmp_path):
    ds = load_dataset(make_beir(tmp_path / "beir"))
    assert ds.name == "beir" and len(ds) == 3
    assert ds.qrels == {q: {c: 1} for q, (_, c) in QUERIES.items()}
    item = next(c for c in ds.corpus if c.id == "p-filter")
    assert item.title == PAGES["p-filter"][0] and "sixty days" in item.text
    files = ds.materialise(tmp_path / "work")
    assert len(files) == 4 and all(f.suffix == ".txt" for f in files)
    assert ds.unit(str(files[1]), 1) == "p-filter"
    assert ds.unit(str(tmp_path / "elsewhere.txt"), 1) is None


def test_beir_errors_name_the_file_and_line(tmp_path):
    root = make_beir(tmp_path / "beir")
    with (root / "queries.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(RagnestError, match=r"queries\.jsonl:4: not valid JSON"):
        load_beir(root)
    root = make_beir(tmp_path / "beir2")
    (root / "qrels" / "test.tsv").write_text("q\td\t1\n")
    with pytest.raises(RagnestError, match=r"test\.tsv:1: expected the header"):
        load_beir(root)
    with pytest.raises(RagnestError, match=r"dev\.tsv: no such qrels file \(splits here: \['test.tsv'\]\)"):
        load_beir(root, split="dev")


def test_vidore_v1_qa_table(tmp_path):
    ds = load_dataset(make_vidore_v1(tmp_path / "docvqa_test.parquet"))
    assert ds.name == "vidore-v1"
    assert len(ds.corpus) == 4  # the page without a question is still indexed
    assert all(c.image.startswith(b"\x89PNG") for c in ds.corpus)
    gold = {ds.queries[i].text: next(iter(ds.qrels[ds.queries[i].id])) for i in range(len(ds))}
    assert gold[QUERIES["q-descale"][0]] == "p-descale.png"
    assert ds.queries[0].answers == ("monthly",)


@pytest.mark.parametrize("make,name", [(make_vidore_v2, "vidore-v2"), (make_vidore_v3, "vidore-v3")])
def test_vidore_v2_and_v3_configs_read_alike(tmp_path, make, name):
    ds = load_dataset(make(tmp_path / "ds"))
    assert ds.name == name and len(ds) == 3 and len(ds.corpus) == 4
    # ids normalised to strings from corpus-id / corpus_id alike
    assert ds.qrels["0"] == {"0": 1 if name == "vidore-v2" else 2}
    assert ds.qrels["2"] == {"2": 1 if name == "vidore-v2" else 2}
    files = ds.materialise(tmp_path / "work")
    assert all(f.suffix == ".png" for f in files)
    if name == "vidore-v3":
        assert [b.unit for b in ds.queries[0].boxes] == ["0"]
        assert ds.queries[0].boxes[0].box == (20.0, 60.0, 380.0, 110.0)
        assert ds.queries[0].answers == ("every month",)


def test_vidore_errors(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(RagnestError, match="bad.parquet: not a readable parquet file"):
        load_vidore(bad)
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "other").mkdir()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "other" / "t.parquet")
    with pytest.raises(RagnestError, match="not a ViDoRe dataset"):
        load_vidore(tmp_path / "other")


def test_pdf_folder_with_queries_file_and_round_trip(tmp_path):
    root = make_pdf_folder(tmp_path / "pdfs")
    ds = load_pdf_folder(root)
    assert len(ds.documents) == 2 and len(ds) == 3
    assert ds.qrels == {"d": {"sub/machine.pdf#p1": 1}, "f": {"sub/machine.pdf#p2": 1},
                        "g": {"grinder.pdf#p1": 2}}
    assert ds.queries[0].boxes[0].box == (30.0, 70.0, 400.0, 120.0)
    assert ds.queries[0].answers == ("every month",)
    assert ds.unit(str(root / "sub" / "machine.pdf"), 2) == "sub/machine.pdf#p2"
    saved = save_queries(ds, tmp_path / "again.jsonl")
    again = load_pdf_folder(root, queries=saved)
    assert again.qrels == ds.qrels and again.queries[0].boxes == ds.queries[0].boxes


def test_pdf_folder_errors(tmp_path):
    root = make_pdf_folder(tmp_path / "pdfs")
    (root / "queries.jsonl").write_text(json.dumps({"query": "x", "document": "nope.pdf", "page": 1}))
    with pytest.raises(RagnestError, match=r"queries\.jsonl:1: document 'nope.pdf' is not a PDF"):
        load_pdf_folder(root)
    (root / "queries.jsonl").write_text(json.dumps({"query": "x", "document": "grinder.pdf",
                                                    "page": 0}))
    with pytest.raises(RagnestError, match="page must be an integer >= 1"):
        load_pdf_folder(root)
    (root / "queries.jsonl").unlink()
    with pytest.raises(RagnestError, match="no queries file"):
        load_dataset(root)
    with pytest.raises(RagnestError, match="no such dataset"):
        load_dataset(tmp_path / "missing")


def test_pdf_folder_exclude_globs(tmp_path):
    root = make_pdf_folder(tmp_path / "pdfs")
    ds = load_dataset(root, exclude=["machine*"])
    assert [d.name for d in ds.documents] == ["grinder.pdf"]
    assert set(ds.qrels) == {"g"} and [q.id for q in ds.queries] == ["g"]
    with pytest.raises(RagnestError, match=r"no PDF files in this folder \(after --exclude \*\.pdf\)"):
        load_pdf_folder(root, exclude=["*.pdf"])
