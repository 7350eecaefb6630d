"""What an evaluation gives back: one row per setting, JSON, a rich table, the Pareto
fronts, plots, and an HTML view for notebooks.

    >>> r = EvalResults(rows=[
    ...     {"setting": "a", "R@5": 0.8, "nDCG@10": 0.6, "bytes_per_page": 100.0,
    ...      "latency_ms": {"retrieve": {"p50": 2.0, "p95": 3.0}}},
    ...     {"setting": "b", "R@5": 0.9, "nDCG@10": 0.7, "bytes_per_page": 400.0,
    ...      "latency_ms": {"retrieve": {"p50": 5.0, "p95": 9.0}}},
    ...     {"setting": "c", "R@5": 0.7, "nDCG@10": 0.5, "bytes_per_page": 400.0,
    ...      "latency_ms": {"retrieve": {"p50": 6.0, "p95": 9.0}}}], measures=["nDCG@10", "R@5"])
    >>> r.recall_measure, r.quality_measure
    ('R@5', 'nDCG@10')
    >>> r.pareto("latency"), r.pareto("bytes")
    ([0, 1], [0, 1])
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EvalResults", "pareto_front"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower or equal x and higher or
    equal y, better in one (x is a cost, y a quality).

    >>> pareto_front([(1, 0.5), (2, 0.9), (3, 0.8), (1, 0.4)])
    [0, 1]
    """
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return front


def _retrieve_ms(row: dict[str, Any]) -> dict[str, float]:
    """A row's retrieval latency ``{p50, p95}`` (ms; without answer generation)."""
    lat = row["latency_ms"]
    return lat.get("retrieve") or lat.get("total") or {"p50": float("nan"), "p95": float("nan")}


@dataclass
class EvalResults:
    """Rows (one per setting: the mean of each measure, ``latency_ms`` per step as
    ``{p50, p95}``, ``bytes_per_page``, ``answers`` when scored), per-query details,
    and what was measured on."""

    rows: list[dict[str, Any]]
    measures: list[str]
    per_query: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)
    vector_bytes: dict[str, float] = field(default_factory=dict)
    k: int = 10
    plots: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ what to plot
    @property
    def recall_measure(self) -> str:
        """The recall measure of the recall-vs-latency plot: the ``R@k`` with the
        largest k, else the first measure."""
        recalls = [m for m in self.measures if re.fullmatch(r"R@\d+", m)]
        return max(recalls, key=lambda m: int(m[2:])) if recalls else self.measures[0]

    @property
    def quality_measure(self) -> str:
        """The quality measure of the quality-vs-bytes plot: the first measure."""
        return self.measures[0]

    def points(self, cost: str) -> list[tuple[float, float]]:
        """``(cost, quality)`` per row; ``cost`` is ``latency`` (p50 ms of the retrieval,
        against recall) or ``bytes`` (bytes per page, against quality)."""
        if cost == "latency":
            return [(_retrieve_ms(r)["p50"], r[self.recall_measure]) for r in self.rows]
        if cost == "bytes":
            return [(r["bytes_per_page"], r[self.quality_measure]) for r in self.rows]
        raise ValueError(f"cost must be 'latency' or 'bytes', not {cost!r}")

    def pareto(self, cost: str) -> list[int]:
        """Row indices on the Pareto front of :meth:`points`."""
        return pareto_front(self.points(cost))

    # ------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (``pareto`` lists the front's settings per plot)."""
        return {
            "dataset": self.dataset, "ingest": self.ingest, "measures": self.measures,
            "k": self.k, "vector_bytes_per_page": self.vector_bytes,
            "pareto": {c: [self.rows[i]["setting"] for i in self.pareto(c)]
                       for c in ("latency", "bytes")} if self.rows else {},
            "rows": self.rows, "plots": self.plots, "per_query": self.per_query,
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return path

    def columns(self) -> list[str]:
        """The table's columns."""
        cols = ["setting", *self.measures, "p50 ms", "p95 ms", "bytes/page"]
        if any("answers" in r for r in self.rows):
            cols += ["cite acc", "IoU", "EM", "F1", "abstain"]
        return cols

    def table_rows(self) -> list[list[str]]:
        """The table's cells, formatted."""
        out = []
        for r in self.rows:
            total = _retrieve_ms(r)
            cells = [r["setting"], *(f"{r[m]:.3f}" for m in self.measures),
                     f"{total.get('p50', float('nan')):.2f}", f"{total.get('p95', float('nan')):.2f}",
                     f"{r['bytes_per_page']:,.0f}"]
            if "answers" in r:
                a = r["answers"]
                cells += [f"{a[k]:.3f}" if k in a else "-" for k in
                          ("citation_accuracy", "region_iou", "exact_match", "token_f1", "abstained")]
            elif len(cells) < len(self.columns()):
                cells += ["-"] * (len(self.columns()) - len(cells))
            out.append(cells)
        return out

    def table(self) -> Any:
        """A :class:`rich.table.Table` of the rows; Pareto-front settings are starred."""
        from rich.table import Table

        front = set(self.pareto("latency")) | set(self.pareto("bytes")) if self.rows else set()
        t = Table(title=f"{self.dataset.get('name', 'eval')}: {self.dataset.get('queries', '?')} "
                        f"queries, k={self.k} (* on a Pareto front)")
        for i, c in enumerate(self.columns()):
            if i == 0:  # the setting wraps; numbers never do
                t.add_column(c, justify="left", overflow="fold", ratio=1, min_width=18)
            else:
                t.add_column(c, justify="right", no_wrap=True, min_width=len(c))
        for i, cells in enumerate(self.table_rows()):
            t.add_row(("* " if i in front else "  ") + cells[0], *cells[1:])
        return t

    def plot(self, folder: str | Path, *, prefix: str = "eval") -> dict[str, str]:
        """Write the recall-vs-latency and quality-vs-bytes PNGs (one point per setting,
        the Pareto front marked); returns ``{"latency": path, "bytes": path}``."""
        from ragnest.eval.plots import write_plots

        self.plots = write_plots(self, Path(folder), prefix=prefix)
        return self.plots

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns())
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            for cells in self.table_rows()
        )
        parts = [f"<div class='ragnest-eval'><b>{html.escape(str(self.dataset.get('name', 'eval')))}"
                 f"</b>: {self.dataset.get('queries', '?')} queries, k={self.k}"
                 f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"]
        if self.rows:
            try:
                from ragnest.eval.plots import plot_png_base64
            except ImportError:  # pragma: no cover
                pass
            else:
                for cost in ("latency", "bytes"):
                    data = plot_png_base64(self, cost)
                    if data:
                        parts.append(f"<img src='data:image/png;base64,{data}' "
                                     f"alt='{cost} plot' style='max-width:48%'/>")
        return "".join(parts) + "</div>"
