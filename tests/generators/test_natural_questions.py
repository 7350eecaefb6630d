"""The natural-question set of bench_answers.py: well formed, and paraphrased (no run of
three content words shared with its gold page; the check reads the R manuals' gold
pages and skips when they are not installed)."""

from __future__ import annotations

import pytest

from tests._natural_questions import R_MANUALS, covers, load_questions, shared_runs

QUESTIONS = load_questions()
ANSWERABLE = [q for q in QUESTIONS if q["gold"]]


def test_the_set_is_well_formed() -> None:
    assert len(ANSWERABLE) >= 60
    assert len({q["id"] for q in QUESTIONS}) == len(QUESTIONS)
    assert len({q["question"] for q in QUESTIONS}) == len(QUESTIONS)
    for q in QUESTIONS:
        assert q["question"].strip().endswith("?"), q["id"]
        if q["gold"]:
            assert q["answer"] and all(g["file"].endswith(".pdf") and g["page"] >= 1
                                       for g in q["gold"]), q["id"]
        else:
            assert q["answer"] is None and q["id"].startswith("un"), q["id"]
    assert len({g["file"] for q in ANSWERABLE for g in q["gold"]}) == 7  # every manual


def test_shared_runs_and_covers() -> None:
    page = "The function sink will divert all subsequent output to an external file."
    assert shared_runs("How do I divert subsequent output to a file?", page) == {
        ("divert", "subsequent", "output")}
    assert shared_runs("How can I send what R prints into a file?", page) == set()
    assert covers("> sink() restores the console [1]", "sink()")
    assert not covers("use the console", "sink()")


@pytest.fixture(scope="module")
def gold_pages() -> dict[tuple[str, int], str]:
    pymupdf = pytest.importorskip("pymupdf")
    if not R_MANUALS.is_dir():
        pytest.skip("R manuals not installed (apt-get install r-doc-pdf)")
    pages: dict[tuple[str, int], str] = {}
    for name in sorted({g["file"] for q in ANSWERABLE for g in q["gold"]}):
        path = R_MANUALS / name
        if not path.exists():
            pytest.skip(f"{path} not installed")
        with pymupdf.open(path) as doc:
            for q in ANSWERABLE:
                for g in q["gold"]:
                    if g["file"] == name:
                        pages[(name, g["page"])] = doc[g["page"] - 1].get_text()
    return pages


def test_questions_are_paraphrased(gold_pages) -> None:
    copied = {
        (q["id"], g["file"], g["page"]): runs
        for q in ANSWERABLE
        for g in q["gold"]
        if (runs := shared_runs(q["question"], gold_pages[(g["file"], g["page"])]))
    }
    assert not copied, copied


def test_gold_answers_are_on_their_gold_page(gold_pages) -> None:
    for q in ANSWERABLE:
        g = q["gold"][0]
        assert covers(gold_pages[(g["file"], g["page"])], q["answer"]), (q["id"], q["answer"])
