"""Interleaved chunks with tiny random models: DSE reads one sequence of text and
images (ragnest.multimodal.chunk_parts); ColQwen2 (one image per sequence) falls back to
the region image, else the first image segment; CLIP reads the first image segment.

Tiny models prove plumbing, never quality: the assertions are about what reaches the
model (token counts, order, grids) and which inputs change the vector.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from ragnest.embedders._hf_base import HfEmbedder  # noqa: E402
from ragnest.embedders.dse import DseEmbedder  # noqa: E402
from ragnest.embedders.dual_encoder import ClipEmbedder  # noqa: E402
from ragnest.embedders.late_interaction import ColQwen2Embedder  # noqa: E402
from ragnest.testing import tiny_models  # noqa: E402
from ragnest.types import Chunk, ImageRef, Segment  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"

DSE_LADDER = [{"name": "coarse", "dim": 16, "index": "hnsw"}, {"name": "full", "dim": 64}]
COL_LADDER = [
    {"name": "coarse", "dim": 64, "vectors": 1, "index": "hnsw"},
    {"name": "fine", "dim": 32, "vectors": "all"},
]


@pytest.fixture(scope="module")
def imgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ImageRef]:
    """Tiny random images: a/b/b2/c 56x56 (4 visual tokens each), w 56x112 (8), page 112x112."""
    d = tmp_path_factory.mktemp("inter-imgs")
    rng = np.random.default_rng(7)
    out = {}
    for name, (h, w) in {
        "a": (56, 56),
        "b": (56, 56),
        "b2": (56, 56),
        "c": (56, 56),
        "w": (56, 112),
        "page": (112, 112),
    }.items():
        path = d / f"{name}.png"
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)
        out[name] = ImageRef(blob=str(path))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("inter-hf")
    built: dict[str, Path] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = tiny_models.BUILDERS[family](base / family)
        return str(built[family])

    return get


def _dse(models, **kw) -> DseEmbedder:
    e = DseEmbedder(model=models("dse"), ladder=DSE_LADDER, device="cpu", **kw)
    e.warm_up()
    return e


@pytest.fixture(scope="module")
def dse(models) -> DseEmbedder:
    return _dse(models, batch_size=3)


def _inter(*segs: Segment, image: ImageRef | None = None, cid: str = "i") -> Chunk:
    return Chunk(
        id=cid,
        document_id="d",
        kind="interleaved",
        segments=tuple(segs),
        image=image,
        text="\n\n".join(s.text for s in segs if s.text),
        page=1,
    )


def _t(text: str) -> Segment:
    return Segment(kind="text", text=text)


def _im(ref: ImageRef) -> Segment:
    return Segment(kind="image", image=ref)


def _vec(e: HfEmbedder, chunk: Chunk, level: str = "full") -> np.ndarray:
    return e.embed_documents([chunk])[0][level].astype(np.float32)


def _counts(e: DseEmbedder, inputs: dict) -> tuple[int, int, list[int]]:
    """(image pad tokens, vision blocks, tokens per image from the grid)."""
    ids = inputs["input_ids"]
    tok = e.loaded.tokenizer
    per_image = [int(g.prod()) // 4 for g in inputs.get("image_grid_thw", [])]  # merge 2x2
    start = tok.convert_tokens_to_ids("<|vision_start|>")
    return int((ids == e.loaded.info["image_token_id"]).sum()), int((ids == start).sum()), per_image


def test_dse_interleaved_is_one_sequence(dse: DseEmbedder, imgs) -> None:
    chunk = _inter(_t("see the figure"), _im(imgs["a"]), _t("and the chart"), _im(imgs["w"]))
    inputs = dse.document_inputs([chunk])
    pads, blocks, per_image = _counts(dse, inputs)
    assert inputs["input_ids"].shape[0] == 1  # one sequence
    assert per_image == [4, 8]  # one grid row per image, in segment order
    assert blocks == 2 and pads == sum(per_image)
    assert int(inputs["mm_token_type_ids"].sum()) == pads
    assert inputs["pixel_values"].shape[0] == int(inputs["image_grid_thw"].prod(-1).sum())
    # segment order survives: text, image block, text, image block
    text = dse.loaded.tokenizer.decode(inputs["input_ids"][0])
    i_fig, i_chart = text.index("see the figure"), text.index("and the chart")
    starts = [i for i in range(len(text)) if text.startswith("<|vision_start|>", i)]
    assert i_fig < starts[0] < i_chart < starts[1]
    assert text.count("<|image_pad|>") == 12

    vecs = dse.embed_documents([chunk])[0]
    assert set(vecs) == {"coarse", "full"}
    for v in vecs.values():
        assert np.isfinite(v).all() and abs(float(np.linalg.norm(v)) - 1) < 1e-3
    full = vecs["full"]
    text_only = _vec(dse, _inter(_t("see the figure"), _t("and the chart")))
    first_image = _vec(dse, _inter(_im(imgs["a"])))
    other_second = _vec(
        dse, _inter(_t("see the figure"), _im(imgs["a"]), _t("and the chart"), _im(imgs["b"]))
    )
    other_text = _vec(
        dse, _inter(_t("descaling the pump"), _im(imgs["a"]), _t("and the chart"), _im(imgs["w"]))
    )
    for other in (text_only, first_image, other_second, other_text):
        assert float(full @ other) < 0.9999
        assert not np.allclose(full, other, atol=1e-4)
    # the vector is a function of the sequence: same chunk, same vector
    np.testing.assert_allclose(_vec(dse, chunk), full, atol=1e-5)


def test_dse_page_and_text_chunks_keep_their_paths(dse: DseEmbedder, imgs) -> None:
    page = Chunk(
        id="p",
        document_id="d",
        kind="page",
        text="descaling",
        image=imgs["page"],
        segments=(_t("descaling"), _im(imgs["a"])),
    )
    inputs = dse.document_inputs([page])
    pads, blocks, per_image = _counts(dse, inputs)
    assert blocks == 1 and per_image == [16] and pads == 16  # the screenshot only
    assert dse.document_prompt in dse.loaded.tokenizer.decode(inputs["input_ids"][0])
    text = Chunk(id="t", document_id="d", kind="text", text="warranty covers the pump")
    assert "image_grid_thw" not in dse.document_inputs([text])


def test_dse_batch_mixing_kinds_matches_one_by_one(dse: DseEmbedder, imgs) -> None:
    chunks = [
        Chunk(id="p", document_id="d", kind="page", text="descaling", image=imgs["page"]),
        _inter(_t("see the figure"), _im(imgs["a"]), _t("and the chart"), _im(imgs["w"])),
        Chunk(id="t", document_id="d", kind="text", text="warranty covers repair of the pump"),
    ]
    inputs = dse.document_inputs(chunks)
    assert inputs["input_ids"].shape[0] == 3
    grids = [dse.document_inputs([c]).get("image_grid_thw") for c in chunks]
    # grid rows: every image of every item, item by item, in order
    assert inputs["image_grid_thw"].tolist() == grids[0].tolist() + grids[1].tolist()
    assert _counts(dse, inputs)[0] == 16 + 4 + 8
    batched = dse.embed_documents(chunks)
    for chunk, vecs in zip(chunks, batched):
        alone = dse.embed_documents([chunk])[0]
        for name in ("coarse", "full"):
            np.testing.assert_allclose(vecs[name], alone[name], atol=1e-4)


def test_dse_max_images_caps(models, imgs) -> None:
    capped = _dse(models, max_images=2)
    segs = (_t("three figures"), _im(imgs["a"]), _im(imgs["b"]), _t("last"), _im(imgs["c"]))
    chunk = _inter(*segs)
    pads, blocks, per_image = _counts(capped, capped.document_inputs([chunk]))
    assert blocks == 2 and len(per_image) == 2 and pads == 8
    # the first two images are kept, the third dropped: same as the chunk without it
    without = _inter(*segs[:-1])
    np.testing.assert_allclose(_vec(capped, chunk), _vec(capped, without), atol=1e-5)
    uncapped = _dse(models)  # default max_images=4
    assert uncapped.max_images == 4
    assert _counts(uncapped, uncapped.document_inputs([chunk]))[1] == 3
    assert capped.identity()["max_images"] == 2


def test_dse_text_budget_shared_by_segments(models, imgs) -> None:
    e = _dse(models, max_text_tokens=12)
    tok = e.loaded.tokenizer
    long = " ".join(tiny_models.corpus(40))

    def n_text_tokens(chunk: Chunk) -> int:
        ids = e.document_inputs([chunk])["input_ids"][0]
        bare = e.document_inputs([_inter(_im(imgs["a"]))])["input_ids"][0]
        return int(ids.shape[0] - bare.shape[0])  # tokens beyond the image-only sequence

    short = _inter(_t("the pump"), _im(imgs["a"]))
    assert n_text_tokens(short) == len(tok("the pump", add_special_tokens=False)["input_ids"])
    cut = _inter(_t(long), _im(imgs["a"]), _t("never reached"))
    assert 8 <= n_text_tokens(cut) <= 12 + 1  # cut near the budget (+1: re-split at the cut)
    text = tok.decode(e.document_inputs([cut])["input_ids"][0])
    assert "never reached" not in text and "<|image_pad|>" in text  # budget spent; image kept


def test_colqwen2_interleaved_uses_region_then_first_image(models, imgs) -> None:
    e = ColQwen2Embedder(model=models("colqwen2"), ladder=COL_LADDER, device="cpu")
    segs = (_t("see the figure"), _im(imgs["a"]), _t("and the chart"), _im(imgs["w"]))

    def page(ref: ImageRef) -> Chunk:
        return Chunk(id="p", document_id="d", kind="page", image=ref)

    with_region = e.embed_documents([_inter(*segs, image=imgs["page"])])[0]
    as_page = e.embed_documents([page(imgs["page"])])[0]
    first_seg = e.embed_documents([page(imgs["a"])])[0]
    for name in ("coarse", "fine"):
        assert with_region[name].shape == as_page[name].shape
        np.testing.assert_allclose(with_region[name], as_page[name], atol=1e-5)
    assert with_region["fine"].shape != first_seg["fine"].shape  # 16 vs 4 visual tokens

    no_region = e.embed_documents([_inter(*segs)])[0]
    for name in ("coarse", "fine"):
        np.testing.assert_allclose(no_region[name], first_seg[name], atol=1e-5)
    assert e.embed_documents([_inter(_t("text only"))]) == [{}]  # no image: skipped


def test_clip_interleaved_reads_first_image_segment(models, imgs) -> None:
    e = ClipEmbedder(
        model=models("clip"), ladder=[{"name": "coarse", "dim": 24, "index": "hnsw"}], device="cpu"
    )
    chunk = _inter(_t("see the figure"), _im(imgs["a"]), _im(imgs["w"]), image=imgs["page"])
    got = _vec(e, chunk, "coarse")
    first = _vec(e, Chunk(id="x", document_id="d", kind="image", image=imgs["a"]), "coarse")
    np.testing.assert_allclose(got, first, atol=1e-5)
