"""Access to examples/make_samples.py (not a package) for tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "examples" / "make_samples.py"
_spec = importlib.util.spec_from_file_location("ragnest_make_samples", _PATH)
samples = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(samples)  # type: ignore[union-attr]

SAMPLE_QUESTIONS = samples.SAMPLE_QUESTIONS
SAMPLE_ANSWERS = samples.SAMPLE_ANSWERS
