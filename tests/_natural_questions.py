"""The natural-question evaluation set (tests/benchmarks/data/natural_questions.jsonl)
and the checks it must pass, shared by its test and by bench_answers.py.

Each line: ``{"id", "question", "gold": [{"file", "page"}], "answer"}`` (``gold`` empty and
``answer`` null for the ``un*`` questions the R manuals cannot answer). Pages are 1-based
physical pages of the PDFs in /usr/share/R/doc/manual (Debian ``r-doc-pdf``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ragnest.generators._text import content_terms, term_in

__all__ = ["QUESTIONS", "R_MANUALS", "covers", "load_questions", "shared_runs"]

QUESTIONS = Path(__file__).resolve().parent / "benchmarks" / "data" / "natural_questions.jsonl"
R_MANUALS = Path("/usr/share/R/doc/manual")


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    """Every question of the set, in file order."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def shared_runs(question: str, page_text: str, n: int = 3) -> set[tuple[str, ...]]:
    """Runs of ``n`` consecutive content words (stemmed, stopwords dropped) that the
    question shares with the page: a paraphrased question shares none."""
    q = content_terms(question)
    p = content_terms(page_text)
    runs = {tuple(q[i : i + n]) for i in range(len(q) - n + 1)}
    return runs & {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}


def covers(answer_text: str, gold_answer: str) -> bool:
    """Every content word of the gold answer appears in the answer (stem or long prefix)."""
    have = frozenset(content_terms(answer_text))
    need = list(dict.fromkeys(content_terms(gold_answer)))
    return bool(need) and all(term_in(t, have) for t in need)
