"""End to end with a transformers embedder: `ragnest ingest` and `ragnest query` driven by
a pipeline YAML on a tiny random ColQwen2 (page screenshots in, ranked pages out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from typer.testing import CliRunner  # noqa: E402

from ragnest.cli import app  # noqa: E402
from ragnest.testing.tiny_models import build_colqwen2  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"

PIPELINE = """
version: 1
name: tiny-colqwen2
components:
  pdf: {{type: parser/pdf, params: {{ocr: never, dpi: 48}}}}
  pages:
    type: embedder/colqwen2
    params:
      model: {model}
      batch_size: 4
      ladder:
{ladder}
  store: {{type: store/qdrant, params: {{path: {store}, collection: pages}}}}
pipeline:
  parsers: [pdf]
  embedders: [pages]
  store: store
  retrieval: {{k: 3, candidates: 10}}
"""

LADDER = """        - {name: coarse, dim: 32, vectors: 1, index: hnsw}
        - {name: mid, dim: 64, vectors: 4, datatype: float16}
        - {name: fine, dim: 128, vectors: all, datatype: float16}"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("hfpipe")
    model = build_colqwen2(base / "tiny-colqwen2")
    docs = base / "docs"
    docs.mkdir()
    (docs / "handbook.pdf").write_bytes((EXAMPLES / "nimbus3_handbook.pdf").read_bytes())
    return base, model, docs


def _write(base: Path, model: Path, store: Path, ladder: str, name: str) -> Path:
    path = base / name
    path.write_text(PIPELINE.format(model=model, store=store, ladder=ladder))
    return path


def test_ingest_and_query_with_a_transformers_pipeline(setup, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base, model, docs = setup
    runner = CliRunner()
    yaml_path = _write(base, model, base / "store", LADDER, "tiny.yaml")
    ingest = runner.invoke(app, ["ingest", str(docs), "--pipeline", str(yaml_path), "--json"])
    assert ingest.exit_code == 0, ingest.output
    summary = json.loads(ingest.stdout)
    assert summary["files"] == 1 and summary["chunks_added"] == 8 and not summary["skipped"]
    stats = json.loads(runner.invoke(app, ["stats", "--pipeline", str(yaml_path),
                                           "--json"]).stdout)
    assert set(stats["vectors"]) == {"pages-coarse", "pages-mid", "pages-fine"}
    query = runner.invoke(app, ["query", "How often should I descale the machine?",
                                "--pipeline", str(yaml_path), "--json", "--explain"])
    assert query.exit_code == 0, query.output
    hits = json.loads(query.stdout)["hits"]
    assert len(hits) == 3
    assert all(Path(h["source"]).name == "handbook.pdf" and 1 <= h["page"] <= 8 for h in hits)
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert {"pages-coarse", "pages-mid", "pages-fine"} <= set(hits[0]["scores_by_stage"])

    # Another ladder in the YAML means other named vectors, and the old store refuses it.
    other = LADDER.replace("vectors: 4", "vectors: 8")
    changed = _write(base, model, base / "store", other, "changed.yaml")
    refused = runner.invoke(app, ["ingest", str(docs), "--pipeline", str(changed)])
    assert refused.exit_code == 2
    assert "ladder" in refused.output.lower() or "differ" in refused.output.lower()
    fresh = _write(base, model, base / "store2", other.replace("name: mid", "name: middle"),
                   "fresh.yaml")
    assert runner.invoke(app, ["ingest", str(docs), "--pipeline", str(fresh)]).exit_code == 0
    stats2 = json.loads(runner.invoke(app, ["stats", "--pipeline", str(fresh),
                                            "--json"]).stdout)
    assert set(stats2["vectors"]) == {"pages-coarse", "pages-middle", "pages-fine"}


def test_pca_rotation_is_fitted_once_and_stored_with_the_collection(setup, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base, model, docs = setup
    runner = CliRunner()
    store = base / "store-pca"
    text = PIPELINE.format(model=model, store=store, ladder=LADDER).replace(
        "      batch_size: 4\n", "      batch_size: 4\n      rotation: pca\n"
    )
    yaml_path = base / "pca.yaml"
    yaml_path.write_text(text)
    ingest = runner.invoke(app, ["ingest", str(docs), "--pipeline", str(yaml_path)])
    assert ingest.exit_code == 0, ingest.output
    meta = json.loads((store / "pages.ragnest.json").read_text())
    state = meta["fitted"]["pages"]
    assert state["kind"] == "pca" and state["dim"] == 128 and state["sample_rows"] > 128
    assert meta["identity"]["pages"]["rotation"] == "pca"

    def ask() -> list[tuple[int, float]]:
        out = runner.invoke(app, ["query", "descale the machine", "--pipeline",
                                  str(yaml_path), "--json"])
        assert out.exit_code == 0, out.output
        return [(h["page"], round(h["score"], 4)) for h in json.loads(out.stdout)["hits"]]

    first = ask()
    assert len(first) == 3
    assert ask() == first  # a new pipeline loads the stored rotation: same answers
    # re-ingesting the unchanged folder keeps the stored rotation as it was
    assert runner.invoke(app, ["ingest", str(docs), "--pipeline", str(yaml_path)]).exit_code == 0
    assert json.loads((store / "pages.ragnest.json").read_text())["fitted"]["pages"] == state

    # a pipeline without the rotation is refused by this store (identity differs)
    plain = base / "plain.yaml"
    plain.write_text(PIPELINE.format(model=model, store=store, ladder=LADDER))
    refused = runner.invoke(app, ["query", "descale", "--pipeline", str(plain)])
    assert refused.exit_code == 2 and "rotation" in refused.output


def test_ragnest_fit_stores_the_state_once_and_another_process_ingests_with_it(setup, tmp_path):
    """`ragnest fit` fits on a sample before any ingest; a second process (a real one)
    ingests into the same collection with the stored state instead of fitting its own."""
    import subprocess
    import sys

    base, model, docs = setup
    store = tmp_path / "store-fit"
    text = PIPELINE.format(model=model, store=store, ladder=LADDER).replace(
        "      batch_size: 4\n", "      batch_size: 4\n      rotation: pca\n"
    )
    yaml_path = tmp_path / "fit.yaml"
    yaml_path.write_text(text)
    runner = CliRunner()
    fitted = runner.invoke(app, ["fit", str(docs), "--pipeline", str(yaml_path), "--json"])
    assert fitted.exit_code == 0, fitted.output
    assert json.loads(fitted.stdout) == {"fitted": ["pages"], "already_fitted": []}
    meta_path = store / "pages.ragnest.json"
    state = json.loads(meta_path.read_text())["fitted"]["pages"]
    assert state["kind"] == "pca"
    again = runner.invoke(app, ["fit", str(docs), "--pipeline", str(yaml_path), "--json"])
    assert json.loads(again.stdout) == {"fitted": [], "already_fitted": ["pages"]}

    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "ragnest.cli", "ingest", str(docs), "--pipeline", str(yaml_path),
         "--json", "--verbose"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["chunks_added"] == 8
    assert "fitting its corpus state" not in proc.stderr  # loaded, not fitted again
    assert json.loads(meta_path.read_text())["fitted"]["pages"] == state
