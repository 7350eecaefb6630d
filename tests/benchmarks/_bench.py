"""What every benchmark script starts with: ragnest importable when a script is run from
anywhere (``python tests/benchmarks/bench_x.py``), pytest optional (only the collected
smoke tests need it), and the results folder. Import it before ``ragnest``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))

RESULTS = HERE / "results"

try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = ["HERE", "RESULTS", "pytest"]
