"""The sample documents in examples/docs: present, parseable, in sync with the script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ragnest.parsers.pdf import PdfParser
from ragnest.parsers.text import TextParser
from ragnest.types import Source

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOCS = EXAMPLES / "docs"


@pytest.fixture(scope="module")
def samples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", EXAMPLES / "make_samples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_samples", module)
    spec.loader.exec_module(module)
    return module


def _parse(path: Path):
    parser = PdfParser() if path.suffix == ".pdf" else TextParser()
    return list(parser.parse(Source.from_path(path)))


def test_docs_exist_and_are_small(samples: ModuleType) -> None:
    names = {samples.HANDBOOK, samples.LAB_GUIDE, samples.TRAVEL_FAQ}
    assert names <= {p.name for p in DOCS.iterdir()}
    assert sum(p.stat().st_size for p in DOCS.iterdir()) < 200_000


def test_docs_parse(samples: ModuleType) -> None:
    handbook = _parse(DOCS / samples.HANDBOOK)
    assert len(handbook) == 8
    assert all(c.text and c.metadata["page_count"] == 8 for c in handbook)
    assert handbook[0].metadata["title"].startswith("Nimbus 3")
    assert len(_parse(DOCS / samples.LAB_GUIDE)) == 4
    faq = _parse(DOCS / samples.TRAVEL_FAQ)
    assert len(faq) >= 5 and all(c.metadata["section"] for c in faq)


def test_script_reproduces_committed_files(samples: ModuleType, tmp_path: Path) -> None:
    """The committed samples are what the script makes (page by page text; bytes vary
    with the MuPDF version, so they are not compared)."""
    for path in samples.build(tmp_path):
        committed = DOCS / path.name
        if path.suffix == ".pdf":
            fresh = [c.text for c in _parse(path)]
            stored = [c.text for c in _parse(committed)]
        else:
            fresh, stored = path.read_text(), committed.read_text()
        assert fresh == stored, f"{committed} is out of date: run python examples/make_samples.py"


def test_sample_questions_point_at_their_answers(samples: ModuleType) -> None:
    questions = samples.SAMPLE_QUESTIONS
    assert len(questions) >= 6
    for question, name, page in questions:
        chunks = _parse(DOCS / name)
        if page is None:
            text = "\n".join(c.text for c in chunks)
        else:
            text = next(c.text for c in chunks if c.page == page)
        answer = samples.SAMPLE_ANSWERS[question]
        for words in answer:
            assert words.lower() in text.lower(), (question, name, page, words)
        if page is not None:  # the key phrase pins one page: the expected page is unambiguous
            others = [c.page for c in chunks
                      if c.page != page and answer[0].lower() in c.text.lower()]
            assert others == [], (question, answer[0], others)
