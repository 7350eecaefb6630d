"""Peak memory of big inputs, measured in the real ``ragnest ingest`` process (its own
``VmHWM``, and ``resource.getrusage`` for the largest parser worker).

* a 10,000-page PDF through the shipped lite pipeline with two parser workers;
* a 100 MB text file: refused by the default size cap (``TextParser.max_bytes``, 50 MB)
  without being read, and ingested in bounded memory when the cap is raised.

Slow (``pytest -m slow tests/reliability``); the figures are printed (``-s``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .._long_pdf import make_long_pdf
from ._docs import large_text
from ._procs import measured_ragnest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is KiB on Linux")]

BIG_TEXT = """\
components:
  text: {type: parser/text, params: {max_bytes: 200000000}}
  bm25: {type: embedder/bm25}
  store: {type: store/qdrant, params: {path: .ragnest}}
pipeline:
  parsers: [text]
  embedders: [bm25]
  store: store
"""


@pytest.fixture(scope="module")
def big_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bigtext") / "docs"
    folder.mkdir()
    large_text(folder / "manual.md", 100)
    return folder


def test_10k_page_pdf_ingests_in_bounded_memory(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_long_pdf(docs / "long.pdf", 10_000)
    code, out, peak = measured_ragnest(["ingest", str(docs), "--store", str(tmp_path / "s"),
                                        "-w", "2", "--json"])
    assert code == 0, peak["stderr"][-3000:]
    report = json.loads(out)
    assert report["pages"] == 10_000 and report["chunks_added"] == 10_000
    print(f"\n10k-page PDF, lite, -w 2: {report['seconds']:.1f} s, peak RSS ingest process "
          f"{peak['self_mb']:.0f} MB, largest parser worker {peak['workers_mb']:.0f} MB")
    assert peak["self_mb"] < 1024, peak
    assert peak["workers_mb"] < 512, peak


def test_100mb_text_is_refused_by_the_default_cap_without_reading_it(big_text, tmp_path):
    code, out, peak = measured_ragnest(["ingest", str(big_text), "--store", str(tmp_path / "s"),
                                        "--json"])
    report = json.loads(out)
    assert code == 1 and report["files"] == 0  # nothing ingested: exit 1, with the reason
    [skipped] = report["skipped"]
    assert "over the limit of 50.0 MB (TextParser max_bytes)" in skipped["reason"], skipped
    print(f"\n100 MB text, lite (default cap): skipped in {report['seconds']:.1f} s, "
          f"peak RSS {peak['self_mb']:.0f} MB")
    assert peak["self_mb"] < 600, peak


def test_100mb_text_under_a_raised_cap_ingests_in_bounded_memory(big_text, tmp_path):
    pipeline = tmp_path / "bm25.yaml"
    pipeline.write_text(BIG_TEXT)
    size_mb = (big_text / "manual.md").stat().st_size / 2**20
    code, out, peak = measured_ragnest(["ingest", str(big_text), "--pipeline", str(pipeline),
                                        "--store", str(tmp_path / "s"), "--json"])
    assert code == 0, peak["stderr"][-3000:]
    report = json.loads(out)
    assert report["files"] == 1 and report["chunks_added"] > 50_000
    print(f"\n{size_mb:.0f} MB text, BM25, max_bytes raised: {report['chunks_added']} chunks in "
          f"{report['seconds']:.1f} s, peak RSS {peak['self_mb']:.0f} MB")
    # parsing streams (about 50 MB for the parse alone); the rest is the document's
    # chunks held for its write transaction and the engine's own memory
    assert peak["self_mb"] < 15 * size_mb, peak
