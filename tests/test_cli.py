"""The `ragnest` command, driven through typer's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragnest.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = tmp_path_factory.mktemp("cli") / "store"
    result = run("ingest", str(EXAMPLES), "--store", str(store), "--json")
    assert result.exit_code == 0, result.output
    return store, json.loads(result.stdout)


def test_ingest_json_summary(store):
    _, summary = store
    assert summary["files"] == 3
    assert summary["pages"] >= 10
    assert summary["chunks_added"] > 0 and summary["chunks_unchanged"] == 0
    assert summary["skipped"] == []


def test_reingest_adds_nothing_and_stats_unchanged(store):
    path, summary = store
    before = json.loads(run("stats", "--store", str(path), "--json").stdout)
    again = run("ingest", str(EXAMPLES), "--store", str(path), "--json")
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert data["chunks_added"] == 0 and data["chunks_unchanged"] == summary["chunks_added"]
    after = json.loads(run("stats", "--store", str(path), "--json").stdout)
    assert after["chunks"] == before["chunks"] and after["documents"] == before["documents"] == 3


def test_query_json(store):
    path, _ = store
    result = run("query", "What does error code E03 mean?", "--store", str(path), "--json", "--k", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] and data["found"]
    assert len(data["hits"]) == 3
    hit = data["hits"][0]
    assert set(hit) >= {"source", "page", "score", "chunk_id", "text", "scores_by_stage"}
    assert Path(hit["source"]).name == "nimbus3_handbook.pdf" and hit["page"] == 6
    assert {"embed", "search", "generate"} <= set(data["timings"])
    cite = data["citations"][0]
    assert cite["tag"] == "1" and cite["page"] == 6 and len(cite["bbox"]) == 4
    assert data["usage"]["hits_used"] >= 1


def test_query_streams_the_answer_then_cites_page_and_region(store):
    path, _ = store
    result = run("query", "How often should I descale the espresso machine?", "--store", str(path))
    assert result.exit_code == 0, result.output
    answer = result.output.split("cited pages:")[0]
    assert answer.startswith("answer: Descale the machine every 8 weeks. [1]")
    cited = " ".join(result.output.split("cited pages:")[1].split())
    assert "[1] " in cited and "nimbus3_handbook.pdf, page 5, region (" in cited


def test_query_text_output_and_filter(store):
    path, _ = store
    result = run("query", "eyewash", "--store", str(path), "--filter", "page=3")
    assert result.exit_code == 0, result.output
    assert "lab_safety_guide.pdf" in result.output


def test_query_with_an_image_crop(store, tmp_path):
    """`ragnest query --image`: a screenshot of the specifications table finds page 7."""
    pytest.importorskip("rapidocr")
    import pymupdf

    path, _ = store
    with pymupdf.open(EXAMPLES / "nimbus3_handbook.pdf") as doc:
        page = doc[6]
        crop = tmp_path / "specs.png"
        page.get_pixmap(dpi=110, clip=page.find_tables().tables[0].bbox).save(crop)
    result = run("query", "--image", str(crop), "--store", str(path), "--json")
    assert result.exit_code == 0, result.output
    hit = json.loads(result.stdout)["hits"][0]
    assert Path(hit["source"]).name == "nimbus3_handbook.pdf" and hit["page"] == 7


def test_ingest_with_worker_processes(tmp_path):
    result = run("ingest", str(EXAMPLES), "--store", str(tmp_path / "s"), "--json",
                 "--workers", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["files"] == 3 and data["skipped"] == []


@pytest.mark.parametrize("value", ["auto", "0"])
def test_workers_auto_or_a_count(tmp_path, value):
    result = run("ingest", str(EXAMPLES), "--store", str(tmp_path / "s"), "--json", "-w", value)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped"] == []


@pytest.mark.parametrize("value", ["many", "-1", "1.5"])
def test_workers_refuses_other_values(tmp_path, value):
    result = run("ingest", str(EXAMPLES), "--store", str(tmp_path / "s"), "-w", value)
    assert result.exit_code == 2
    assert "expected 'auto' or an integer >= 0" in result.output
    assert not (tmp_path / "s").exists()  # refused before anything was created


def test_query_budgets_and_stage_scores(store):
    path, _ = store
    result = run("query", "descale", "--store", str(path), "--json", "--budget", "coarse=1",
                 "--budget", "dense-mid=1", "--explain")
    assert result.exit_code == 0, result.output
    hit = json.loads(result.stdout)["hits"][0]
    assert {"dense-coarse", "dense-mid", "dense-fine"} <= set(hit["scores_by_stage"])
    # without --explain the stages' scores are not computed (the route's own scores are)
    plain = run("query", "descale", "--store", str(path), "--json")
    assert plain.exit_code == 0, plain.output
    stages = set(json.loads(plain.stdout)["hits"][0]["scores_by_stage"])
    assert "final" in stages and not stages & {"dense-coarse", "dense-mid", "dense-fine"}
    table = run("query", "descale", "--store", str(path), "--explain")
    assert table.exit_code == 0 and "dense-mid" in table.output
    bad = run("query", "descale", "--store", str(path), "--budget", "coarse")
    assert bad.exit_code != 0 and "STAGE=N" in bad.output


def test_query_needs_something(store):
    path, _ = store
    assert run("query", "--store", str(path)).exit_code != 0


def test_ingest_exit_codes(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.pdf").write_bytes(b"")
    result = run("ingest", str(bad), "--store", str(tmp_path / "s"), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["files"] == 0 and data["skipped"][0]["reason"].startswith("file is empty")
    (bad / "ok.md").write_text("# Title\n\nSome text about pumps.\n")
    assert run("ingest", str(bad), "--store", str(tmp_path / "s")).exit_code == 0


def test_list_and_validate(repo_root):
    result = run("list")
    assert result.exit_code == 0 and "embedder/wordllama" in result.output
    data = json.loads(run("list", "--json").stdout)
    assert data["store/qdrant"]["target"].endswith("QdrantStore")
    ok = run("validate", str(repo_root / "pipelines" / "lite.yaml"))
    assert ok.exit_code == 0 and "ok" in ok.output


def test_validate_reports_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "components:\n  s: {type: store/qdrant, params: {pth: x}}\n  b: {type: embedder/bm25}\n"
        "  p: {type: parser/pdf}\npipeline: {parsers: [p], embedders: [b], store: s}\n"
    )
    result = run("validate", str(bad))
    assert result.exit_code == 2
    assert "did you mean 'path'" in result.output


def test_demo_runs_offline():
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert "nimbus3_handbook.pdf" in result.output and "page 5" in result.output


def test_console_script_subprocess(tmp_path):
    """The installed entry point, as a user runs it (no hub access needed)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    exe = Path(sys.executable).parent / "ragnest"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ragnest.cli"]
    proc = subprocess.run(
        [*cmd, "ingest", str(EXAMPLES / "lab_safety_guide.pdf"), "--store", str(tmp_path / "s"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"] == 1
