"""``ragnest eval`` end to end on the lite pipeline (offline): tiny BEIR and ViDoRe v2/v3
datasets made here (PNG pages read by OCR), a PDF folder with gold boxes and answers,
and a sweep on a synthetic corpus that writes the table, the JSON and the PNGs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragnest.cli import app
from ragnest.eval import EvalResults
from ragnest.eval.plots import figure
from tests.eval._fixtures import make_beir, make_pdf_folder, make_vidore_v2, make_vidore_v3


def run_eval(args, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", *map(str, args), "--out", str(out)],
                                env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return json.loads((out / "eval.json").read_text()), result.output, out


@pytest.mark.parametrize("make", [make_beir, make_vidore_v2, make_vidore_v3])
def test_public_formats_load_and_evaluate_end_to_end(tmp_path, make):
    data, output, out = run_eval([make(tmp_path / "ds"), "-m", "nDCG@3", "-m", "R@1",
                                  "-m", "RR"], tmp_path)
    (row,) = data["rows"]
    assert data["dataset"]["queries"] == 3 and data["dataset"]["corpus"] == 4
    # each query names its page in words the page holds: found first, on text or OCR
    assert row["R@1"] == 1.0 and row["RR"] == 1.0 and row["nDCG@3"] == 1.0
    for qid, detail in data["per_query"]["default"].items():
        assert detail["RR"] == 1.0 and detail["ranked"], qid
    lat = row["latency_ms"]
    assert lat["retrieve"]["p95"] >= lat["retrieve"]["p50"] > 0
    assert lat["total"]["p50"] >= lat["retrieve"]["p50"]
    assert row["latency_ms"]["search"]["p50"] > 0 and row["bytes_per_page"] > 0
    assert (out / "eval_recall_vs_latency.png").stat().st_size > 1000
    assert "nDCG@3" in output and "default" in output
    if make is make_vidore_v3:
        answers = row["answers"]  # the extractive generator cites the page image
        assert answers["citation_accuracy"] == 1.0 and answers["abstained"] == 0.0
        assert 0.0 < answers["region_iou"] < 1.0  # the whole page against the gold box
        assert 0.0 <= answers["token_f1"] <= 1.0
        assert lat["generate"]["p50"] > 0  # answers generated after retrieval


def test_pdf_folder_answers_cite_gold_pages_and_regions(tmp_path):
    data, _, _ = run_eval([make_pdf_folder(tmp_path / "pdfs"), "-m", "R@1", "--answers"],
                          tmp_path)
    (row,) = data["rows"]
    assert row["R@1"] == 1.0
    answers = row["answers"]
    assert answers["citation_accuracy"] == 1.0
    assert answers["n_region_iou"] == 1 and answers["region_iou"] > 0  # the descaling quote
    assert answers["n_exact_match"] == 1


def test_sweep_writes_table_json_and_one_plot_point_per_setting(tmp_path):
    args = [make_pdf_folder(tmp_path / "pdfs"), "-m", "nDCG@3", "-m", "R@2",
            "--sweep", "levels=coarse,coarse+mid+fine", "--sweep", "budget.coarse=2,50",
            "--sweep", "using=dense,dense+bm25"]
    data, output, out = run_eval(args, tmp_path)
    labels = [r["setting"] for r in data["rows"]]
    assert len(labels) == 8 == len(set(labels))
    for label in labels:
        assert label in output
    by = {r["setting"]: r for r in data["rows"]}
    # fewer levels read fewer bytes; BM25 adds its sparse vectors
    coarse = by["levels=coarse budget.coarse=2 using=dense"]
    full = by["levels=coarse+mid+fine budget.coarse=2 using=dense"]
    assert coarse["vectors"] == ["dense-coarse"]
    assert full["vectors"] == ["dense-coarse", "dense-mid", "dense-fine"]
    assert coarse["bytes_per_page"] < full["bytes_per_page"]
    assert by["levels=coarse budget.coarse=2 using=dense+bm25"]["bytes_per_page"] > coarse["bytes_per_page"]
    assert set(data["pareto"]["latency"]) <= set(labels) and data["pareto"]["bytes"]
    for name in ("eval_recall_vs_latency.png", "eval_quality_vs_bytes.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = EvalResults(rows=data["rows"], measures=data["measures"])
    for cost in ("latency", "bytes"):
        fig = figure(results, cost)
        points = fig.axes[0].collections[0].get_offsets()
        assert len(points) == len(labels)  # one point per setting
        ringed = fig.axes[0].collections[1].get_offsets()
        assert len(ringed) == len(results.pareto(cost)) >= 1


def test_make_known_item_set_and_bad_sweep(tmp_path, examples_dir):
    data, _, _ = run_eval([examples_dir, "--make", "known-item", "--n", "6", "-m", "R@5",
                           "--save-queries", tmp_path / "made.jsonl"], tmp_path)
    assert data["dataset"]["name"] == "known-item" and data["rows"][0]["R@5"] > 0.5
    assert len((tmp_path / "made.jsonl").read_text().splitlines()) == data["dataset"]["queries"]
    bad = CliRunner().invoke(app, ["eval", str(examples_dir), "--make", "known-item",
                                   "--sweep", "budget.coarse", "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "write KEY=V1,V2" in bad.output
    bad = CliRunner().invoke(app, ["eval", str(examples_dir), "--make", "known-item",
                                   "-m", "nDGC@3", "--out", str(tmp_path / "o3")])
    assert bad.exit_code == 2 and "unknown measure 'nDGC@3'" in bad.output
