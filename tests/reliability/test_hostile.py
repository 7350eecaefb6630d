"""Hostile files beside valid ones: ``ragnest ingest --json`` output always parses, each
bad file is skipped with its reason, the valid ones (and the damaged-but-readable PDF)
are ingested, and what MuPDF said about a file is in that file's report entry.

Runs the real ``ragnest`` command (the shipped lite pipeline) in a subprocess, in one
process and with two parser workers.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from ._docs import EXAMPLES, hostile_files
from ._procs import start_ragnest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and symlinks")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile") / "docs"
    expect = hostile_files(folder)
    for name in ("nimbus3_handbook.pdf", "travel_faq.md"):
        shutil.copy(EXAMPLES / name, folder / name)
        expect[name] = ""
    return folder, expect


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_hostile_folder_json_parses_and_names_every_file(hostile, tmp_path, workers):
    folder, expect = hostile
    proc = start_ragnest(["ingest", str(folder), "--store", str(tmp_path / "store"), "--json",
                          "-w", workers])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    report = json.loads(out)  # nothing but the JSON report on stdout
    assert "Traceback" not in err.decode(errors="replace")

    skipped = {_name(s["path"]): s["reason"] for s in report["skipped"]}
    ingested = {_name(d["path"]): d for d in report["documents"]}
    readable = {n.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"): w
                for n, w in expect.items()}
    assert set(skipped) | set(ingested) == set(readable), "a file went unreported"
    for name, word in readable.items():
        if word:
            assert name in skipped and word in skipped[name], (name, skipped.get(name))
        else:
            assert ingested[name]["status"] == "added" and ingested[name]["added"] > 0, name
    assert "caf\\xe9 menu.pdf" in ingested  # a Latin-1 file name, reported readably
    warnings = ingested["nested.pdf"]["warnings"]
    assert any("stack overflow" in w for w in warnings), warnings
    assert ingested["nimbus3_handbook.pdf"]["warnings"] == []
