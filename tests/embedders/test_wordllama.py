"""WordLlamaEmbedder with the real weights shipped inside the wordllama wheel."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("wordllama")

from ragnest.embedders.wordllama import DEFAULT_LADDER, WordLlamaEmbedder
from ragnest.errors import ConfigError, EmbeddingError, MissingDependencyError
from ragnest.ladder import maxsim
from ragnest.protocols import Embedder
from ragnest.types import Chunk, ImageRef, Query, Segment

DESCALE = (
    "Descaling: to descale the espresso machine, fill the water tank with descaling "
    "solution and run the descaling programme. Rinse the tank twice with fresh water."
)
WARRANTY = (
    "The warranty covers manufacturing defects for two years from the date of purchase. "
    "Keep your receipt and contact the retailer for repairs."
)
GRIND = "Grind the coffee beans finely and tamp the grounds firmly before brewing."


def _chunk(i: int, text: str, **kw: object) -> Chunk:
    return Chunk(id=f"c{i}", document_id="d", kind="page", text=text, page=i + 1, **kw)


@pytest.fixture(scope="module")
def emb() -> WordLlamaEmbedder:
    e = WordLlamaEmbedder()
    e.warm_up()
    return e


@pytest.fixture(scope="module")
def docs(emb: WordLlamaEmbedder) -> list[dict]:
    return emb.embed_documents([_chunk(0, DESCALE), _chunk(1, WARRANTY), _chunk(2, GRIND)])


def _score(q, d) -> float:
    q = q.astype(np.float32)
    d = d.astype(np.float32)
    return float(q @ d) if q.ndim == 1 else maxsim(q, d)


def test_contract_cheap_init_and_round_trip() -> None:
    e = WordLlamaEmbedder(batch_size=8)
    assert e._model is None  # nothing loaded by __init__
    assert isinstance(e, Embedder)
    again = type(e)(**dataclasses.asdict(e))
    assert again.identity() == e.identity()
    assert e.ladder == DEFAULT_LADDER and e.ladder is not DEFAULT_LADDER


def test_specs_and_identity(emb: WordLlamaEmbedder) -> None:
    specs = emb.vector_specs()
    assert [(s.name, s.kind, s.index) for s in specs] == [
        ("coarse", "dense", "hnsw"),
        ("mid", "multi", "none"),
        ("fine", "multi", "none"),
    ]
    ident = emb.identity()
    assert ident["model"] == "wordllama/l2_supercat_256" and ident["version"] == 1
    assert [lv["name"] for lv in ident["ladder"]] == ["coarse", "mid", "fine"]
    assert "weighting" in ident


def test_document_shapes_dtypes_norms(emb: WordLlamaEmbedder, docs: list[dict]) -> None:
    specs = {s.name: s for s in emb.vector_specs()}
    for vecs in docs:
        assert set(vecs) == set(specs)
        for name, v in vecs.items():
            spec = specs[name]
            assert v.dtype == (np.float16 if spec.datatype == "float16" else np.float32)
            norms = np.linalg.norm(v.astype(np.float32), axis=-1)
            np.testing.assert_allclose(norms, 1.0, atol=2e-3)
            assert v.shape[-1] == spec.dim
            if spec.kind == "dense":
                assert v.ndim == 1
            else:
                assert v.ndim == 2 and v.shape[0] >= 1
    assert docs[0]["mid"].shape[0] <= 16


def test_pooling_caps_rows_on_long_text(emb: WordLlamaEmbedder) -> None:
    long_text = (np.linalg.svd.__doc__ or "") + (np.einsum.__doc__ or "")  # many distinct words
    (vecs,) = emb.embed_documents([_chunk(0, long_text)])
    assert vecs["mid"].shape[0] == 16
    assert vecs["fine"].shape[0] > 16  # vectors: all keeps every distinct token


def test_deterministic(emb: WordLlamaEmbedder, docs: list[dict]) -> None:
    again = WordLlamaEmbedder().embed_documents([_chunk(0, DESCALE)])[0]
    for name, v in again.items():
        np.testing.assert_array_equal(v, docs[0][name])


def test_query_vectors(emb: WordLlamaEmbedder) -> None:
    q = emb.embed_query(Query(text="descaling the espresso machine"))
    assert q is not None
    assert q["coarse"].shape == (256,)
    rows = q["fine"].astype(np.float32)
    assert rows.ndim == 2 and rows.shape[1] == 32
    # query rows are weights summing to one: MaxSim is a weighted mean of cosines
    assert np.linalg.norm(rows, axis=1).sum() == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("query", ["descaling the espresso machine", "how do I descale it"])
def test_semantic_sanity_every_level(emb: WordLlamaEmbedder, docs: list[dict], query: str) -> None:
    q = emb.embed_query(Query(text=query))
    for name in q:
        on_topic = _score(q[name], docs[0][name])
        assert on_topic > _score(q[name], docs[1][name]), name
        assert on_topic > _score(q[name], docs[2][name]), name


def test_paraphrase_single_vector(emb: WordLlamaEmbedder, docs: list[dict]) -> None:
    q = emb.embed_query(Query(text="how long is the guarantee"))
    assert _score(q["coarse"], docs[1]["coarse"]) > _score(q["coarse"], docs[0]["coarse"])


def test_empty_inputs(emb: WordLlamaEmbedder) -> None:
    with pytest.raises(EmbeddingError):
        emb.embed_query(Query(text="   "))
    assert emb.embed_query(Query(image=ImageRef(source="a.pdf", page=1))) is None
    empty = _chunk(0, "", image=ImageRef(source="a.pdf", page=1))
    a, b = emb.embed_documents([empty, empty])
    for name, v in a.items():
        np.testing.assert_array_equal(v, b[name])
        assert np.isfinite(v.astype(np.float32)).all()
    seg = Chunk(
        id="s", document_id="d", kind="interleaved", segments=(Segment(kind="text", text=GRIND),)
    )
    (from_segments,) = emb.embed_documents([seg])
    np.testing.assert_array_equal(
        from_segments["coarse"], emb.embed_documents([_chunk(2, GRIND)])[0]["coarse"]
    )


def test_batches_match_single_calls(emb: WordLlamaEmbedder) -> None:
    texts = [DESCALE, WARRANTY, GRIND, "short", "x" * 50]
    small = WordLlamaEmbedder(batch_size=2).embed_documents(
        [_chunk(i, t) for i, t in enumerate(texts)]
    )
    big = emb.embed_documents([_chunk(i, t) for i, t in enumerate(texts)])
    for a, b in zip(small, big):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_batched_queries_match_single_calls(emb: WordLlamaEmbedder) -> None:
    texts = ["descaling the espresso machine", "warranty", "how long is the guarantee " * 3]
    queries = [Query(text=texts[0]), Query(image=ImageRef(source="a.pdf", page=1)),
               Query(text=texts[1]), Query(text=texts[2], image=ImageRef(source="a.pdf", page=1))]
    batched = emb.embed_queries(queries)
    assert batched[1] is None and emb.embed_queries([]) == []
    for q, got in zip(queries, batched):
        alone = emb.embed_query(q)
        if got is None:
            assert alone is None
            continue
        assert set(got) == set(alone)
        for name in got:
            assert got[name].dtype == alone[name].dtype
            np.testing.assert_allclose(got[name].astype(np.float32),
                                       alone[name].astype(np.float32), atol=1e-6)
    # the one-pass SIF mean is the mean the documents get, for the same text
    ids = emb._ids([texts[2]])[0]
    uniq, counts = np.unique(ids, return_counts=True)
    mean = emb._single(uniq, counts.astype(np.float32))
    np.testing.assert_allclose(batched[3]["coarse"], mean / np.linalg.norm(mean), atol=1e-6)
    with pytest.raises(EmbeddingError, match="no tokens"):
        emb.embed_queries([Query(text="fine"), Query(text="  ")])


def test_max_tokens_truncates(emb: WordLlamaEmbedder) -> None:
    short = WordLlamaEmbedder(max_tokens=5)
    a = short.embed_documents([_chunk(0, DESCALE)])[0]
    b = short.embed_documents([_chunk(0, DESCALE + " " + WARRANTY)])[0]
    np.testing.assert_array_equal(a["coarse"], b["coarse"])


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="'big'"):
        WordLlamaEmbedder(ladder=[{"name": "big", "dim": 512, "index": "hnsw"}])
    with pytest.raises(ConfigError):
        WordLlamaEmbedder(batch_size=0)


def test_close_and_warm_again(docs: list[dict]) -> None:
    e = WordLlamaEmbedder()
    e.warm_up()
    e.close()
    assert e._model is None
    np.testing.assert_array_equal(
        e.embed_documents([_chunk(0, DESCALE)])[0]["coarse"], docs[0]["coarse"]
    )


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in ("wordllama", "wordllama.inference"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(MissingDependencyError, match=r"ragnest\[lite\]") as info:
        WordLlamaEmbedder().warm_up()
    assert isinstance(info.value.__cause__, ImportError)


def test_root_logger_untouched_by_import() -> None:
    code = (
        "import logging\n"
        "root = logging.getLogger()\n"
        "before = (list(root.handlers), root.level)\n"
        "from ragnest.embedders.wordllama import WordLlamaEmbedder\n"
        "WordLlamaEmbedder().warm_up()\n"
        "import wordllama.inference\n"
        "assert (list(root.handlers), root.level) == before, (root.handlers, root.level)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
