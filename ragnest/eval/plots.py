"""Recall-vs-latency and quality-vs-bytes plots (the one matplotlib adapter, Agg backend):
one point per setting, numbered (the key under the plot names each setting), the Pareto front drawn as a line and its points ringed."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from ragnest.errors import MissingDependencyError

__all__ = ["figure", "plot_png_base64", "write_plots"]

TITLES = {"latency": ("p50 retrieval latency per query (ms)", "recall_vs_latency"),
          "bytes": ("bytes per page", "quality_vs_bytes")}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise MissingDependencyError("plots need matplotlib: pip install 'ragnest[eval]'") from e
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure(results: Any, cost: str) -> Any:
    """The matplotlib figure of one plot (``cost``: ``latency`` or ``bytes``)."""
    plt = _pyplot()
    points = results.points(cost)
    front = results.pareto(cost)
    measure = results.recall_measure if cost == "latency" else results.quality_measure
    key = [f"{i + 1}: {row['setting']}" for i, row in enumerate(results.rows)]
    fig, ax = plt.subplots(figsize=(7.0, 4.6 + 0.16 * len(key)), dpi=100)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    ax.scatter(xs, ys, s=28, color="#4C72B0", zorder=3, label="setting")
    fx = sorted((points[i] for i in front), key=lambda p: p[0])
    ax.plot([p[0] for p in fx], [p[1] for p in fx], color="#C44E52", lw=1.5, zorder=2,
            label="Pareto front")
    ax.scatter([p[0] for p in fx], [p[1] for p in fx], s=90, facecolors="none",
               edgecolors="#C44E52", zorder=4)
    for i, (x, y) in enumerate(points):  # numbered points, the key under the plot
        ax.annotate(str(i + 1), (x, y), fontsize=8, xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel(TITLES[cost][0])
    ax.set_ylabel(measure)
    ax.set_title(f"{measure} vs {TITLES[cost][0].split(' (')[0]}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout(rect=(0, 0.16 * len(key) / (4.6 + 0.16 * len(key)) + 0.02, 1, 1))
    fig.text(0.02, 0.01, "\n".join(key), fontsize=7, va="bottom", family="monospace")
    return fig


def write_plots(results: Any, folder: Path, *, prefix: str = "eval") -> dict[str, str]:
    """Write both plots as PNG files in ``folder``; ``{cost: path}``."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for cost in ("latency", "bytes"):
        fig = figure(results, cost)
        path = folder / f"{prefix}_{TITLES[cost][1]}.png"
        fig.savefig(path)
        plt.close(fig)
        out[cost] = str(path)
    return out


def plot_png_base64(results: Any, cost: str) -> str | None:
    """One plot as base64 PNG (for HTML); ``None`` without matplotlib."""
    try:
        plt = _pyplot()
    except MissingDependencyError:
        return None
    fig = figure(results, cost)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")
