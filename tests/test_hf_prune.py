"""FastV-style pruning (ragnest._hf.prune) on tiny Qwen2-VL and Qwen2.5-VL models.

Off unless declared; at drop ratio 0 the pruned path gives the unpruned logits; pruning
before layer 0 equals masking the dropped tokens out of attention with every token's
original M-RoPE position -- the proof that positions survive the shorter sequence."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from ragnest._hf import HfRuntime  # noqa: E402
from ragnest._hf.prune import decoder_layers, fastv  # noqa: E402
from ragnest._hf.vlm import Vlm  # noqa: E402
from ragnest.errors import ConfigError  # noqa: E402
from ragnest.generators import vlm as vlm_module  # noqa: E402
from ragnest.generators.vlm import VlmGenerator  # noqa: E402
from ragnest.types import Chunk, Hit, ImageRef, Query  # noqa: E402

FAMILIES = ["qwen2_vl", "qwen2_5_vl"]


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    import numpy as np
    from PIL import Image

    path = tmp_path_factory.mktemp("prune") / "page.png"
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((168, 112, 3)) * 255).astype("uint8")).save(path)
    return str(path)


def _batch(vlm: Vlm, picture: str):
    from PIL import Image

    u = vlm.layout.unit
    image = Image.open(picture).convert("RGB").resize((4 * u, 6 * u))
    return vlm.encode([vlm.prompt(["[P1] page", None, "How often should I descale?"])], [image])


def _last(model, batch, **kw):
    with torch.inference_mode():
        return model(**batch, **kw).logits[0, -1].float()


@pytest.mark.parametrize("family", FAMILIES)
def test_drop_ratio_zero_gives_the_unpruned_logits(tiny_vlm, picture, family) -> None:
    vlm = Vlm.load(tiny_vlm(family), runtime=HfRuntime.create(device="cpu"), owner="t")
    batch = _batch(vlm, picture)
    ref = _last(vlm.model, batch)
    for layer in range(len(decoder_layers(vlm.model))):
        record: dict = {}
        with fastv(vlm.model, layer=layer, drop_ratio=0.0, input_ids=batch["input_ids"],
                   image_token_id=vlm.image_token_id, record=record):
            out = _last(vlm.model, batch)
        assert torch.equal(out, ref)
        assert record["image_tokens"] == 24 and record["dropped"] == 0
    assert all(not layer._forward_pre_hooks for layer in decoder_layers(vlm.model))


@pytest.mark.parametrize("family", FAMILIES)
def test_pruning_keeps_every_tokens_mrope_position(tiny_vlm, picture, family) -> None:
    vlm = Vlm.load(tiny_vlm(family), runtime=HfRuntime.create(device="cpu"), owner="t")
    model = vlm.model
    batch = _batch(vlm, picture)
    record: dict = {}
    with fastv(model, layer=0, drop_ratio=0.5, input_ids=batch["input_ids"],
               image_token_id=vlm.image_token_id, record=record):
        pruned = _last(model, batch)
    assert record["dropped"] == 12 and len(record["dropped_positions"]) == 12
    ones = torch.ones_like(batch["attention_mask"])
    positions, _ = model.model.get_rope_index(
        batch["input_ids"], image_grid_thw=batch["image_grid_thw"], attention_mask=ones,
        mm_token_type_ids=batch["mm_token_type_ids"])
    masked = ones.clone()
    masked[0, record["dropped_positions"]] = 0
    reference = _last(model, {**batch, "attention_mask": masked}, position_ids=positions)
    assert torch.allclose(pruned, reference, atol=1e-5)  # same positions, same tokens seen
    assert not torch.allclose(pruned, _last(model, batch), atol=1e-4)  # it did prune


def test_the_generator_runs_fastv_only_when_declared(tiny_vlm, picture, monkeypatch) -> None:
    hits = [Hit(chunk=Chunk(id="c1", document_id="d", kind="image", text="a page",
                            image=ImageRef(blob=picture)), score=1.0)]
    q = Query(text="How often should I descale?")
    params = {"device": "cpu", "generation": {"max_new_tokens": 6, "min_new_tokens": 6}}
    plain = VlmGenerator(model=tiny_vlm("qwen2_vl"), compression=[
        {"type": "resolution", "budget": 600, "floor": 16}], **params)
    zero = VlmGenerator(model=tiny_vlm("qwen2_vl"), compression=[
        {"type": "resolution", "budget": 600, "floor": 16}, {"type": "fastv", "layer": 1,
                                                            "drop_ratio": 0.0}], **params)
    half = VlmGenerator(model=tiny_vlm("qwen2_vl"), compression=[
        {"type": "resolution", "budget": 600, "floor": 16}, {"type": "fastv", "layer": 1,
                                                            "drop_ratio": 0.5}], **params)
    zero._vlm = half._vlm = plain.vlm
    calls: list[int] = []
    real = vlm_module.fastv

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(vlm_module, "fastv", spy)
    base = plain.generate(q, hits)
    assert not calls and "fastv" not in [s["plugin"] for s in base.usage["compression"]]
    same = zero.generate(q, hits)
    assert calls and same.text == base.text  # nothing dropped: the same greedy answer
    pruned = half.generate(q, hits)
    step = pruned.usage["compression"][-1]
    assert step["plugin"] == "fastv"
    assert step["visual_tokens_after"] == step["visual_tokens_before"] - \
        step["visual_tokens_before"] // 2
    assert pruned.usage["visual_tokens"] == step["visual_tokens_after"]
    assert pruned.usage["completion_tokens"] >= 6


def test_fastv_is_refused_where_positions_would_break(tiny_vlm) -> None:
    for family in ("idefics3", "qwen3_vl"):
        g = VlmGenerator(model=tiny_vlm(family), device="cpu",
                         compression=[{"type": "fastv", "layer": 1}])
        with pytest.raises(ConfigError, match="fastv"):
            g.warm_up()
