"""``ragnest ingest --engine ray``: a dead server stops it with a clear error and exit 2,
never a report that says ok (Ray is not even started: the driver's plan fails first)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragnest.cli import app

pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'ragnest[ray]'")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "docs"


def test_dead_server_exits_2(tmp_path: Path) -> None:
    profile = tmp_path / "dead.yaml"
    profile.write_text(
        "components:\n  store:\n    params:\n      path: null\n"
        "      url: http://127.0.0.1:9\n      timeout: 1\n      retries: 0\n"
        "      server: {check_compatibility: false}\n"
        "pipeline:\n  ingest:\n    engine: ray\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(EXAMPLES), "--profile", str(profile),
                                      "--json"])
    assert result.exit_code == 2, result.output
    # the report of what was committed (nothing) says why it stopped, then the error
    assert '"error": "StoreUnavailableError' in result.output
    assert "error: collection 'lite' at http://127.0.0.1:9 is unavailable" in result.output


def test_unknown_engine_is_refused() -> None:
    result = CliRunner().invoke(app, ["ingest", str(EXAMPLES), "--engine", "spark"])
    assert result.exit_code == 2 and "spark" in result.output
