"""Retrieval speed side by side in one run: ragnest lite vs its pre-change code, bm25s and
LangChain + QdrantVectorStore, on the same pages and the same known-item queries; plus
the wall time of a cold ``ragnest query`` process and where it goes.

The corpus is the R manuals (Debian ``r-doc-pdf``; refman left out, about 680 pages);
``--quick`` uses two of them and fewer queries. The queries are those of
``bench_known_item.py`` (a 14-word window of a page with a quarter of its words dropped;
found = that page in the top 1 / top 5). Rows:

* ``ragnest lite``: ``Pipeline.retrieve(q, k=5)`` in process (the default path);
* ``ragnest lite explain=True``: the same with every stage's score (what every query paid
  before the fast path);
* ``ragnest lite retrieve_many``: all queries in one call (ms per query, amortised);
* ``before: DIR``: the code in DIR (``--before``, default /work/baseline when it exists;
  repeatable) run in a subprocess with ``PYTHONPATH=DIR`` on the same store (or, when
  that code cannot read it, on its own ingest of the same files: the JSON says which);
* ``bm25s``: ``bm25s`` over the same page texts (tokenize + retrieve per query);
* ``langchain QdrantVectorStore``: ``langchain-qdrant`` on qdrant-client local mode with
  the same WordLlama model (256-d, mean pooled by WordLlama itself) behind an
  ``Embeddings`` wrapper; ``similarity_search(q, k=5)``.

Latencies are medians/p95 over every query, each system run in alternating rounds so a
busy machine weighs on all of them alike. The cold CLI section runs
``python -m ragnest.cli query ... --json`` in fresh processes (median of 3) and a fresh
process that times each phase: imports, building the pipeline, opening the store,
loading the models, the query, closing.

    python tests/benchmarks/bench_speed.py            # R manuals, a few minutes
    python tests/benchmarks/bench_speed.py --quick    # two manuals, under a minute
    python tests/benchmarks/bench_speed.py --store DIR --before /path/to/old/checkout

Writes tests/benchmarks/results/speed.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _bench import HERE, RESULTS, pytest  # first: puts the repo on sys.path
from bench_known_item import make_queries

from ragnest import Pipeline, Source
from ragnest.parsers.pdf import PdfParser

REPO = HERE.parents[1]
DEFAULT_DOCS = Path("/usr/share/R/doc/manual")
QUICK_DOCS = ("R-intro.pdf", "R-data.pdf")
BASELINE = Path("/work/baseline")
Query3 = tuple[str, str, int]

# ---------------------------------------------------------------------- the systems


def score(ranked: Sequence[tuple[str, int]], source: str, page: int) -> tuple[int, int]:
    """(top-1 hit, top-5 hit) for one query's ranked (source, page) list."""
    ranks = [i for i, sp in enumerate(ranked[:5]) if sp == (source, page)]
    return int(bool(ranks) and ranks[0] == 0), int(bool(ranks))


def ragnest_search(rag: Pipeline, **kwargs: Any) -> Callable[[str], list[tuple[str, int]]]:
    def search(text: str) -> list[tuple[str, int]]:
        return [(h.chunk.source, h.chunk.page or 0) for h in rag.retrieve(text, k=5, **kwargs)]

    return search


def bm25s_search(pages: Sequence[tuple[str, int, str]]) -> Callable[[str], list[tuple[str, int]]]:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([t for _, _, t in pages], show_progress=False),
                    show_progress=False)

    def search(text: str) -> list[tuple[str, int]]:
        docs, _ = retriever.retrieve(bm25s.tokenize([text], show_progress=False), k=5,
                                     show_progress=False)
        return [(pages[i][0], pages[i][1]) for i in docs[0]]

    return search


def wordllama_embeddings() -> Any:
    """A LangChain ``Embeddings`` on the WordLlama model ragnest's lite profile uses."""
    from importlib import resources

    import wordllama
    from langchain_core.embeddings import Embeddings
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    base = resources.files(wordllama)
    with resources.as_file(base / "weights" / "l2_supercat_256.safetensors") as w, \
            resources.as_file(base / "tokenizers" / "l2_supercat_tokenizer_config.json") as t:
        model = WordLlamaInference(load_file(str(w))["embedding.weight"],
                                   Tokenizer.from_file(str(t)))

    class WordLlamaEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return model.embed(texts, norm=True).tolist()

        def embed_query(self, text: str) -> list[float]:
            return model.embed([text], norm=True)[0].tolist()

    return WordLlamaEmbeddings()


def langchain_search(
    pages: Sequence[tuple[str, int, str]],
) -> tuple[Callable[[str], list[tuple[str, int]]], float]:
    from langchain_qdrant import QdrantVectorStore

    t0 = time.perf_counter()
    store = QdrantVectorStore.from_texts(
        [t for _, _, t in pages], wordllama_embeddings(), location=":memory:",
        metadatas=[{"source": s, "page": p} for s, p, _ in pages], collection_name="pages")
    build_s = time.perf_counter() - t0

    def search(text: str) -> list[tuple[str, int]]:
        return [(d.metadata["source"], d.metadata["page"])
                for d in store.similarity_search(text, k=5)]

    return search, build_s


def measure(
    systems: dict[str, Callable[[str], list[tuple[str, int]]]],
    queries: Sequence[Query3],
    rounds: int,
    before: Sequence[Path] = (),
    before_args: tuple[list[str], Path] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each system over every query, in alternating rounds (an older checkout's round in
    its own process between them); quality from the first round."""
    lat: dict[str, list[float]] = {name: [] for name in systems}
    found: dict[str, list[tuple[int, int]]] = {name: [] for name in systems}
    olds = {f"before: {code}": code for code in before}
    errors: dict[str, Any] = {}
    lat.update({name: [] for name in olds})
    for search in systems.values():
        search(queries[0][0])  # warm-up: lazy loads are not query time
    for r in range(rounds):
        for name, search in systems.items():
            for text, source, page in queries:
                t0 = time.perf_counter()
                ranked = search(text)
                lat[name].append((time.perf_counter() - t0) * 1000)
                if r == 0:
                    found[name].append(score(ranked, source, page))
        for name, code in olds.items():
            if name in errors or before_args is None:
                continue
            got = before_round(code, before_args[0], queries, before_args[1])
            if "error" in got:
                errors[name] = got
                continue
            lat[name] += got["latencies"]
            found.setdefault(name, [tuple(f) for f in got["found"]])  # type: ignore[misc]
    out = {name: summary(lat[name], found[name]) for name in found}
    return {**out, **errors}


def summary(latencies: list[float], found: list[tuple[int, int]]) -> dict[str, Any]:
    ordered = sorted(latencies)
    n = len(found)
    return {
        "top1": sum(a for a, _ in found) / n,
        "top5": sum(b for _, b in found) / n,
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def many_row(rag: Pipeline, queries: Sequence[Query3]) -> dict[str, Any]:
    texts = [q for q, _, _ in queries]
    t0 = time.perf_counter()
    results = rag.retrieve_many(texts, k=5)
    per_query = (time.perf_counter() - t0) * 1000 / len(texts)
    one = [ragnest_search(rag)(t) for t in texts]
    same = all([(h.chunk.source, h.chunk.page or 0) for h in hits] == o
               for hits, o in zip(results, one))
    found = [score([(h.chunk.source, h.chunk.page or 0) for h in hits], s, p)
             for hits, (_, s, p) in zip(results, queries)]
    row = summary([per_query], found)
    row["p95_ms"] = None
    row["same_as_retrieve"] = same
    return row


# ---------------------------------------------------------------------- subprocesses

_BEFORE = r"""
import json, sys, tempfile, time
from ragnest import Pipeline
files, queries, store, rounds = json.loads(sys.stdin.read())

def timed(rag):
    rag.retrieve(queries[0][0], k=5)
    lat, found = [], []
    for r in range(rounds):
        for text, source, page in queries:
            t0 = time.perf_counter()
            hits = rag.retrieve(text, k=5)
            lat.append((time.perf_counter() - t0) * 1000)
            if r == 0:
                ranks = [i for i, h in enumerate(hits[:5])
                         if h.chunk.source == source and h.chunk.page == page]
                found.append((int(bool(ranks) and ranks[0] == 0), int(bool(ranks))))
    return {"latencies": lat, "found": found}

try:  # the same store, read as it is (when this code reads its format)
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": store}) as rag:
        out = {**timed(rag), "store": "same"}
except Exception as err:  # another format or ladder: its own ingest of the same files
    with tempfile.TemporaryDirectory() as tmp:
        with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tmp}) as rag:
            rag.ingest(files, progress=False)
        with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tmp}) as rag:
            out = {**timed(rag), "store": f"own ingest ({type(err).__name__})"}
print(json.dumps(out))
"""

_PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import ragnest.cli.query  # what `ragnest query` imports before it runs
from ragnest.cli._app import _config
from ragnest.pipeline import Pipeline
t1 = time.perf_counter()
store, question = sys.argv[1], sys.argv[2]
rag = Pipeline.from_config(_config("lite", store, None, read_wait=5.0))
t2 = time.perf_counter()
rag.open()
t3 = time.perf_counter()
for comp in [*rag.embedders.values(), rag.generator]:
    if comp is not None and hasattr(comp, "warm_up"):
        comp.warm_up()
t4 = time.perf_counter()
answer = rag.query(question, k=5)
t5 = time.perf_counter()
rag.close()
t6 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "build_s": t2 - t1, "open_store_s": t3 - t2,
                  "load_models_s": t4 - t3, "query_s": t5 - t4, "close_s": t6 - t5,
                  "hits": len(answer.hits)}))
"""


def before_round(code: Path, files: list[str], queries: Sequence[Query3], store: Path) -> dict:
    """One round of the queries with the code in ``code``, in a fresh process: its
    latencies and (top-1, top-5) per query, or an error."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(code)}
        proc = subprocess.run(
            [sys.executable, "-c", _BEFORE],
            input=json.dumps([files, queries, str(store), 1]),
            capture_output=True, text=True, env=env, cwd=tmp, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cold_cli(store: Path, question: str, runs: int = 3) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    walls, imports = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import ragnest.cli"], env=env, check=True)
        imports.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ragnest.cli", "query", question,
                               "--store", str(store), "--json"],
                              env=env, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
    proc = subprocess.run([sys.executable, "-c", _PHASES, str(store), question], env=env,
                          capture_output=True, text=True, check=True)
    phases = {k: round(v, 3) if isinstance(v, float) else v
              for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    return {"wall_s": round(statistics.median(walls), 3),
            "python_import_ragnest_cli_s": round(statistics.median(imports), 3),
            "phases": phases}


# ---------------------------------------------------------------------- the run


def page_texts(files: Sequence[Path]) -> list[tuple[str, int, str]]:
    parser = PdfParser()
    return [(c.source, c.page or 0, c.text) for f in files
            for c in parser.parse(Source.from_path(f)) if c.text.strip()]


def triples(known: Any) -> list[Query3]:
    """The known-item eval set as (query text, source path, page) triples."""
    out = []
    for q in known.queries:
        document, page = next(iter(known.qrels[q.id])).rsplit("#p", 1)
        out.append((q.text, str(Path(known.root) / document), int(page)))
    return out


def run(docs: Path, quick: bool, n_queries: int, store: Path, before: Sequence[Path],
        rounds: int) -> dict[str, Any]:
    files = sorted(p for p in docs.glob("*.pdf") if "refman" not in p.name
                   and (not quick or p.name in QUICK_DOCS))
    if not files:
        raise SystemExit(f"no PDFs in {docs}")
    queries = triples(make_queries(files, n_queries))
    pages = page_texts(files)
    rows: dict[str, dict[str, Any]] = {}
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        t0 = time.perf_counter()
        report = rag.ingest([str(f) for f in files], progress=False)
        ingest_s = time.perf_counter() - t0
    # queries run as a user's would: on the stored collection, opened anew (a reader)
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(store)}) as rag:
        lc_search, lc_build_s = langchain_search(pages)
        systems = {
            "ragnest lite": ragnest_search(rag),
            "ragnest lite explain=True": ragnest_search(rag, explain=True),
            "bm25s": bm25s_search(pages),
            "langchain QdrantVectorStore (local)": lc_search,
        }
        rows.update(measure(systems, queries, rounds, before,
                            ([str(f) for f in files], store)))
        rows["ragnest lite retrieve_many"] = many_row(rag, queries)
        chunks = rag.stats()["chunks"]
    cli = cold_cli(store, queries[0][0])
    return {
        "docs": [f.name for f in files],
        "pages": len(pages),
        "chunks": chunks,
        "queries": len(queries),
        "rounds": rounds,
        "ingest_s": round(ingest_s, 2),
        "ingest_pages": report.pages,
        "langchain_build_s": round(lc_build_s, 2),
        "load": os.getloadavg(),
        "rows": rows,
        "cold_cli": cli,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{len(result['docs'])} PDFs, {result['pages']} pages, {result['chunks']} chunks, "
          f"{result['queries']} queries x {result['rounds']} rounds; load "
          f"{', '.join(f'{x:.2f}' for x in result['load'])}")
    print(f"{'system':44} {'top1':>6} {'top5':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, r in result["rows"].items():
        if "error" in r:
            print(f"{name:44} failed: {r['error']}")
            continue
        p95 = f"{r['p95_ms']:8.2f}" if r.get("p95_ms") is not None else f"{'-':>8}"
        print(f"{name:44} {r['top1']:6.3f} {r['top5']:6.3f} {r['p50_ms']:8.2f} {p95}")
    cli = result["cold_cli"]
    if "error" in cli:
        print(f"cold `ragnest query` failed: {cli['error']}")
        return
    print(f"\ncold `ragnest query` (fresh process, median of 3): {cli['wall_s']:.2f} s wall; "
          f"`import ragnest.cli` alone {cli['python_import_ragnest_cli_s']:.2f} s")
    print("  phases: " + ", ".join(f"{k} {v}" for k, v in cli["phases"].items()))


@pytest.mark.benchmark
def test_speed_quick(tmp_path: Path) -> None:
    if not DEFAULT_DOCS.is_dir():
        pytest.skip("R manuals not installed (apt-get install r-doc-pdf)")
    pytest.importorskip("bm25s")
    pytest.importorskip("langchain_qdrant")
    result = run(DEFAULT_DOCS, True, 40, tmp_path / "store", [], rounds=1)
    rows = result["rows"]
    assert rows["ragnest lite retrieve_many"]["same_as_retrieve"]
    assert rows["ragnest lite"]["top5"] >= rows["bm25s"]["top5"] - 0.05
    assert rows["ragnest lite"]["p50_ms"] < rows["ragnest lite explain=True"]["p50_ms"] * 1.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    ap.add_argument("--quick", action="store_true", help="two manuals, 60 queries, 1 round")
    ap.add_argument("--queries", type=int, default=None, help="default 300 (--quick: 60)")
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (--quick: 1)")
    ap.add_argument("--store", type=Path, default=None, help="keep / reuse the store here")
    ap.add_argument("--before", type=Path, action="append", default=None,
                    help="an older checkout to compare with (repeatable; default "
                         f"{BASELINE} when it exists; --before none: no comparison)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    before = [p for p in (args.before or ([BASELINE] if BASELINE.is_dir() else []))
              if str(p) != "none"]
    n = args.queries or (60 if args.quick else 300)
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or Path(tmp) / "store"
        result = run(args.docs, args.quick, n, store, before, rounds)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("speed_quick.json" if args.quick else "speed.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
