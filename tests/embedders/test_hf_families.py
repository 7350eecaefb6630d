"""Every transformers embedder family (late interaction, DSE, dual encoders) through the
same assertions, with tiny random-weight models built offline (tiny_models.py).

They prove the plumbing (loading through from_pretrained, batching, padding, the
ladder, the explicit fit), never quality: assert shapes, norms and consistency, not scores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from ragnest._hf import load_image  # noqa: E402
from ragnest.embedders._hf_base import HfEmbedder  # noqa: E402
from ragnest.embedders.dse import DseEmbedder  # noqa: E402
from ragnest.embedders.dual_encoder import ClipEmbedder, SiglipEmbedder  # noqa: E402
from ragnest.embedders.late_interaction import (  # noqa: E402
    ColPaliEmbedder,
    ColQwen2Embedder,
    LateInteractionEmbedder,
)
from ragnest.errors import ConfigError, EmbeddingError, MissingDependencyError  # noqa: E402
from ragnest.protocols import Embedder, FittedEmbedder  # noqa: E402
from ragnest.testing import tiny_models  # noqa: E402
from ragnest.types import Chunk, ImageRef, Query, Segment  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"

CLASSES: dict[str, type[HfEmbedder]] = {
    "colqwen2": ColQwen2Embedder,
    "colpali": ColPaliEmbedder,
    "dse": DseEmbedder,
    "clip": ClipEmbedder,
    "siglip": SiglipEmbedder,
}
LADDERS = {
    "colqwen2": [
        {"name": "coarse", "dim": 64, "vectors": 1, "index": "hnsw"},
        {"name": "mid", "dim": 128, "vectors": 4, "datatype": "float16"},
        {"name": "fine", "dim": 32, "vectors": "all"},
    ],
    "colpali": [
        {"name": "coarse", "dim": 128, "vectors": 1, "index": "hnsw"},
        {"name": "mid", "dim": 64, "vectors": 3},
        {"name": "fine", "dim": 128, "vectors": "all", "datatype": "float16"},
    ],
    "dse": [{"name": "coarse", "dim": 16, "index": "hnsw"}, {"name": "full", "dim": 64}],
    "clip": [{"name": "coarse", "dim": 24, "index": "hnsw"}],
    "siglip": [{"name": "coarse", "dim": 16, "index": "hnsw"}, {"name": "full", "dim": 32}],
}
IMAGE_FAMILIES = ("clip", "siglip")  # read image queries
TEXT_DOCS = ("dse", "clip", "siglip")  # embed chunks without an image from their text


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Three images of different sizes and aspect ratios (different token counts)."""
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    out = []
    for i, (h, w) in enumerate([(300, 90), (100, 100), (90, 320)]):
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        arr[: h // 2] = 255 - 60 * i
        path = d / f"im{i}.png"
        Image.fromarray(arr).save(path)
        out.append(str(path))
    return out


@pytest.fixture(scope="session")
def chunks(images: list[str]) -> list[Chunk]:
    out = [
        Chunk(
            id="p0",
            document_id="d",
            kind="page",
            text="descaling the espresso machine",
            image=ImageRef(blob=images[0]),
            page=1,
        ),
        Chunk(
            id="i1",
            document_id="d",
            kind="interleaved",
            text="",
            segments=(
                Segment(kind="text", text="see the figure"),
                Segment(kind="image", image=ImageRef(blob=images[1])),
            ),
            page=2,
        ),
        Chunk(
            id="x2", document_id="d", kind="image", text="a chart", image=ImageRef(blob=images[2])
        ),
        Chunk(id="t3", document_id="d", kind="text", text="warranty covers repair of the pump"),
    ]
    return out


_MODELS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("tiny-hf")

    def get(family: str) -> Path:
        if family not in _MODELS:
            _MODELS[family] = tiny_models.BUILDERS[family](base / family)
        return _MODELS[family]

    return get


_EMB: dict[str, HfEmbedder] = {}


@pytest.fixture(params=list(CLASSES))
def emb(request: pytest.FixtureRequest, model_dir) -> HfEmbedder:
    fam = request.param
    if fam not in _EMB:
        e = CLASSES[fam](model=str(model_dir(fam)), ladder=LADDERS[fam], batch_size=3, device="cpu")
        e.warm_up()
        _EMB[fam] = e
    return _EMB[fam]


def _check_vectors(e: HfEmbedder, vecs: dict, *, query: bool = False) -> None:
    specs = {s.name: s for s in e.vector_specs()}
    assert set(vecs) == set(specs)
    for lv in e.levels:
        v = vecs[lv.name]
        assert v.dtype == (np.float16 if lv.datatype == "float16" else np.float32)
        v = v.astype(np.float32)
        assert np.isfinite(v).all()
        if lv.is_multi:
            assert v.ndim == 2 and v.shape[1] == lv.dim and v.shape[0] >= 1
            if lv.vectors is not None and not query:
                assert v.shape[0] <= lv.vectors
            np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=2e-3)
        else:
            assert v.shape == (lv.dim,)
            assert abs(float(np.linalg.norm(v)) - 1.0) < 2e-3


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, ragnest._hf, ragnest.multimodal, ragnest.embedders.late_interaction, "
        "ragnest.embedders.dse, ragnest.embedders.dual_encoder; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_transformers_names_extra() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules['transformers'] = None
        from ragnest.embedders.dual_encoder import ClipEmbedder
        from ragnest.errors import MissingDependencyError
        try:
            ClipEmbedder(model='x').warm_up()
        except MissingDependencyError as err:
            print('MDE', err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MDE") and "pip install 'ragnest[hf]'" in out.stdout
    assert issubclass(MissingDependencyError, ImportError)


def test_cheap_init_contract_and_specs() -> None:
    for fam, cls in CLASSES.items():
        e = cls(model="/nonexistent/path")  # default ladder; nothing loaded
        assert e._loaded is None and isinstance(e, Embedder)
        again = type(e)(**dataclasses.asdict(e))
        assert again.identity() == e.identity()
        ident = e.identity()
        assert ident["family"] == fam and ident["model"] == "/nonexistent/path"
        assert ident["version"] >= 1 and ident["ladder"]
        specs = e.vector_specs()
        assert specs[0].index == "hnsw" and specs[0].kind == "dense"
    assert [s.kind for s in ColQwen2Embedder().vector_specs()] == ["dense", "multi", "multi"]


def test_bad_params() -> None:
    with pytest.raises(ConfigError):
        DseEmbedder(ladder=[{"name": "c", "dim": 8, "vectors": 4, "index": "hnsw"}])
    with pytest.raises(ConfigError):
        ClipEmbedder(documents="video")
    with pytest.raises(ConfigError, match="embedder/colpali: device"):
        ColPaliEmbedder(device="tpu")
    with pytest.raises(ConfigError, match="embedder/dse: dtype"):
        DseEmbedder(dtype="int8")
    with pytest.raises(ConfigError):
        LateInteractionEmbedder(model="x")  # abstract: pick a family class


def test_ladder_dim_checked_against_model(model_dir) -> None:
    e = ClipEmbedder(
        model=str(model_dir("clip")), ladder=[{"name": "c", "dim": 4096, "index": "hnsw"}]
    )
    with pytest.raises(ConfigError, match="embedder/clip: ladder level 'c': dim 4096 exceeds"):
        e.warm_up()
    assert e._loaded is None


def test_documents_shapes_norms_and_skips(emb: HfEmbedder, chunks: list[Chunk]) -> None:
    docs = emb.embed_documents(chunks)
    assert len(docs) == len(chunks)
    for chunk, vecs in zip(chunks, docs):
        if chunk.kind == "text" and emb.family not in TEXT_DOCS:
            assert vecs == {}  # late interaction skips chunks without an image
        else:
            _check_vectors(emb, vecs)


def test_padded_rows_stripped(emb: HfEmbedder, chunks: list[Chunk]) -> None:
    """Pages of different sizes in one batch: each keeps exactly its own rows."""
    if emb.family not in ("colqwen2", "colpali"):
        pytest.skip("single-vector model")
    fine = [lv.name for lv in emb.levels if lv.vectors is None][0]
    batch = emb.embed_documents(chunks[:3])
    for chunk, vecs in zip(chunks[:3], batch):
        alone = emb.embed_documents([chunk])[0]
        assert vecs[fine].shape == alone[fine].shape
    qs = emb.embed_queries([Query(text="short"),
                           Query(text="a much longer query about descaling the espresso machine")])
    q0 = emb.embed_query(Query(text="short"))
    assert qs[0][fine].shape == q0[fine].shape  # padding of the batch stripped
    assert qs[0][fine].shape[0] < qs[1][fine].shape[0]
    np.testing.assert_allclose(
        qs[0][fine].astype(np.float32), q0[fine].astype(np.float32), atol=2e-3
    )
    if emb.family == "colqwen2":  # dynamic resolution: different pages, different lengths
        assert len({v[fine].shape[0] for v in batch}) > 1


def test_batching_matches_one_by_one(emb: HfEmbedder, chunks: list[Chunk]) -> None:
    batched = emb.embed_documents(chunks)
    for chunk, vecs in zip(chunks, batched):
        alone = emb.embed_documents([chunk])[0]
        assert set(alone) == set(vecs)
        for name in vecs:
            np.testing.assert_allclose(
                vecs[name].astype(np.float32), alone[name].astype(np.float32), atol=3e-3
            )


def test_query_paths(emb: HfEmbedder, images: list[str]) -> None:
    q = emb.embed_query(Query(text="how do I descale the espresso machine?"))
    assert q is not None
    _check_vectors(emb, q, query=True)
    img_q = emb.embed_query(Query(image=ImageRef(blob=images[1])))
    if emb.family in IMAGE_FAMILIES:
        assert img_q is not None
        _check_vectors(emb, img_q, query=True)
        # an image query lands on the same vector as that image stored as a document
        doc = emb.embed_documents(
            [Chunk(id="x", document_id="d", kind="image", image=ImageRef(blob=images[1]))]
        )[0]
        for name in doc:
            assert float(doc[name] @ img_q[name]) > 0.999
        both = emb.embed_query(Query(text="a chart", image=ImageRef(blob=images[1])))
        assert both is not None
        _check_vectors(emb, both, query=True)
    else:
        assert img_q is None


def test_query_and_document_paths_differ(emb: HfEmbedder, chunks: list[Chunk]) -> None:
    """Text embedded as a query and as a document take different prompts (DSE) or
    towers; the late-interaction query gets every token row at every multi level."""
    q = emb.embed_query(Query(text=chunks[3].text))
    d = emb.embed_documents([chunks[3]])[0]
    if emb.family in ("colqwen2", "colpali"):
        assert d == {}
        multi = [lv.name for lv in emb.levels if lv.is_multi]
        assert len({q[n].shape[0] for n in multi}) == 1  # queries are never pooled
    elif emb.family == "dse":
        assert float(q["full"] @ d["full"]) < 0.9999
    else:  # dual encoders: the same text tower for both
        assert float(q["coarse"] @ d["coarse"]) > 0.999


def test_matryoshka_prefix(emb: HfEmbedder, chunks: list[Chunk]) -> None:
    """A shorter single-vector level is the re-normalised prefix of the longer one."""
    single = [lv for lv in emb.levels if not lv.is_multi]
    if len(single) < 2:
        pytest.skip("one single-vector level")
    small, big = sorted(single, key=lambda lv: lv.dim)[:2]
    vecs = emb.embed_documents(chunks[:1])[0]
    prefix = vecs[big.name][: small.dim]
    np.testing.assert_allclose(vecs[small.name], prefix / np.linalg.norm(prefix), atol=1e-5)


def test_close_and_warm_again(model_dir, chunks: list[Chunk]) -> None:
    e = ClipEmbedder(
        model=str(model_dir("clip")), ladder=[{"name": "coarse", "dim": 24, "index": "hnsw"}]
    )
    a = e.embed_documents(chunks[:1])[0]["coarse"]
    e.close()
    e.close()
    assert e._loaded is None
    b = e.embed_documents(chunks[:1])[0]["coarse"]
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("family", ["colqwen2", "colpali"])
def test_patch_grid_pooling(family: str, model_dir, chunks: list[Chunk]) -> None:
    """Page rows carry their patch grid; rows/columns/grid levels pool over it."""
    ladder = [
        {"name": "coarse", "dim": 32, "index": "hnsw"},
        {"name": "lines", "dim": 64, "vectors": "all", "pool": "rows"},
        {"name": "cols", "dim": 64, "vectors": "all", "pool": "columns"},
        {"name": "blocks", "dim": 64, "vectors": 5, "pool": "grid"},
        {"name": "ward", "dim": 64, "pool": "hierarchical", "pool_factor": 4},
    ]
    e = CLASSES[family](model=str(model_dir(family)), ladder=ladder, device="cpu")
    page = chunks[0]
    rows = e.page_rows([load_image(page.image, max_pixels=e.render_max_pixels)])[0]
    assert rows.grid is not None and rows.grid_rows is not None
    h, w = rows.grid
    assert h * w == len(rows.grid_rows) < rows.rows.shape[0]  # prompt tokens are apart
    if family == "colqwen2":  # the tall page image gives a tall grid
        assert h > w
    vecs = e.embed_documents([page])[0]
    extra = 1  # the prompt tokens' mean row
    assert vecs["lines"].shape == (h + extra, 64)
    assert vecs["cols"].shape == (w + extra, 64)
    assert vecs["blocks"].shape[0] <= 5
    assert vecs["ward"].shape[0] == -(-rows.rows.shape[0] // 4)
    # the rows level averages exactly one patch row: compare with numpy on the rows
    from ragnest.ladder.pooling import l2_normalize

    grid_rows = l2_normalize(rows.rows[rows.grid_rows][:, :64]).reshape(h, w, 64)
    assert np.allclose(vecs["lines"][0], l2_normalize(grid_rows[0].sum(0)), atol=1e-5)


PCA_LADDER = [{"name": "coarse", "dim": 8, "index": "hnsw"}, {"name": "full", "dim": 24}]


def _sample(n: int = 40) -> list[Chunk]:
    return [
        Chunk(id=f"s{i}", document_id="d", kind="text", text=f"sample text {i} " * (i % 5 + 1))
        for i in range(n)
    ]


def test_pca_rotation_is_fitted_explicitly_never_implicitly(model_dir, chunks) -> None:
    """``rotation: pca`` without fitted state: embedding is refused before the model
    runs; a sample too small for a one-vector model says how many rows it needs."""
    e = ClipEmbedder(model=str(model_dir("clip")), ladder=PCA_LADDER, rotation="pca",
                     device="cpu")
    assert isinstance(e, FittedEmbedder) and e.needs_fit and e.fitted_state() is None
    for call in (lambda: e.embed_documents(chunks), lambda: e.embed_query(Query(text="x"))):
        with pytest.raises(EmbeddingError,
                           match=r"embedder/clip needs fitting.*Pipeline\.fit\(sample\)"):
            call()
    assert e._loaded is None  # refused before any model was loaded or run
    assert e.embed_documents([]) == [] and e.embed_queries([]) == []
    with pytest.raises(EmbeddingError, match="needs at least 24 sample rows.*larger sample"):
        e.fit(chunks)  # 4 chunks, one row each
    assert e.needs_fit  # a failed fit leaves nothing behind
    e.fit(_sample())
    state = e.fitted_state()
    assert not e.needs_fit and state is not None
    assert state["sample_rows"] == 40 and state["dim"] == 24
    vecs = e.embed_documents(chunks)
    assert all(v["coarse"].shape == (8,) for v in vecs if v)
    assert e.fitted_state() == state  # embedding never refits
    # the rotation preserves full-dimension similarities
    plain = ClipEmbedder(model=str(model_dir("clip")), ladder=PCA_LADDER, device="cpu")
    assert not plain.needs_fit
    plain.fit(_sample())  # nothing to fit without rotation: pca
    assert plain.fitted_state() is None
    p = [v["full"] for v in plain.embed_documents(chunks) if v]
    r = [v["full"] for v in vecs if v]
    assert np.allclose(np.array(p) @ np.array(p).T, np.array(r) @ np.array(r).T, atol=1e-4)


def test_fitted_state_round_trip_gives_identical_vectors(model_dir, chunks) -> None:
    """A worker that loads the stored state embeds exactly like the one that fitted it."""
    fitter = DseEmbedder(model=str(model_dir("dse")), ladder=LADDERS["dse"], rotation="pca",
                         device="cpu")
    fitter.fit(_sample(80))
    state = json.loads(json.dumps(fitter.fitted_state()))  # as stored with the collection
    worker = DseEmbedder(model=str(model_dir("dse")), ladder=LADDERS["dse"], rotation="pca",
                         device="cpu")
    worker.load_fitted_state(None)  # nothing stored yet: still needs fitting
    assert worker.needs_fit
    worker.load_fitted_state(state)
    assert not worker.needs_fit and worker.fitted_state() == state
    a, b = fitter.embed_documents(chunks), worker.embed_documents(chunks)
    for va, vb in zip(a, b):
        assert set(va) == set(vb)
        for name in va:
            np.testing.assert_array_equal(va[name], vb[name])
    q = Query(text="descaling")
    for name, vec in fitter.embed_query(q).items():
        np.testing.assert_array_equal(vec, worker.embed_query(q)[name])
    # a state fitted for another model's dimension is refused by name
    other = ClipEmbedder(model=str(model_dir("clip")), ladder=PCA_LADDER, rotation="pca",
                         device="cpu")
    other.warm_up()
    with pytest.raises(EmbeddingError, match="embedder/clip: the fitted rotation is 64-d.*24-d"):
        other.load_fitted_state(state)
    assert other.needs_fit  # the refused state was not kept
    plain = DseEmbedder(model=str(model_dir("dse")), ladder=LADDERS["dse"], device="cpu")
    with pytest.raises(EmbeddingError, match="rotation 'none'"):
        plain.load_fitted_state(state)


def test_warm_up_binds_without_mutating_the_config(model_dir) -> None:
    """Two embedders sharing one ladder list, warmed up (twice), closed, warmed again."""
    ladder = [dict(d) for d in LADDERS["clip"]]
    a = ClipEmbedder(model=str(model_dir("clip")), ladder=ladder, device="cpu")
    b = ClipEmbedder(model=str(model_dir("clip")), ladder=ladder, device="cpu")
    before = (a.identity(), a.vector_specs())
    a.warm_up()
    a.warm_up()
    assert a.parsed_ladder.model_dim == 24 and b.parsed_ladder.model_dim is None
    assert a.ladder == LADDERS["clip"] and a.ladder is ladder
    assert (a.identity(), a.vector_specs()) == before == (b.identity(), b.vector_specs())
    a.close()
    a.warm_up()
    assert a.parsed_ladder.model_dim == 24 and a.loaded.runtime.device.type == "cpu"


def test_batched_queries_match_one_by_one(emb: HfEmbedder, images: list[str]) -> None:
    queries = [
        Query(text="short"),
        Query(image=ImageRef(blob=images[1])),
        Query(text="a much longer query about descaling the espresso machine every month"),
        Query(text="a chart", image=ImageRef(blob=images[2])),
        Query(text="pump"),
    ]
    batched = emb.embed_queries(queries)
    assert len(batched) == len(queries)
    for q, got in zip(queries, batched):
        alone = emb.embed_query(q)
        assert (got is None) == (alone is None)
        if got is None:
            continue
        assert set(got) == set(alone)
        for name in got:
            assert got[name].shape == alone[name].shape
            np.testing.assert_allclose(
                got[name].astype(np.float32), alone[name].astype(np.float32), atol=3e-3
            )
