"""Compression plugins on synthetic pages (no model): the budget's arithmetic, dedupe's
blank and repeated bands, and how a point in a deduped image maps back."""

from __future__ import annotations

import numpy as np
import pytest

from ragnest._hf.vlm import VisionLayout
from ragnest.errors import ConfigError
from ragnest.generators.compression import Dedupe, FastV, PageImage, Resolution, build_plugins

Image = pytest.importorskip("PIL.Image")

QWEN = VisionLayout("qwen2_vl", unit=28, default_pixels=(3136, 1280 * 784))
SMOL = VisionLayout("idefics3", unit=64, tokens_per_unit=4, global_tile=True,
                    default_pixels=(256, 0))


def _page(w: int, h: int, seed: int = 0, *, header: bool = False) -> np.ndarray:
    """A white page with random content in its middle third (and a fixed header band)."""
    rng = np.random.default_rng(seed)
    arr = np.full((h, w, 3), 255, dtype=np.uint8)
    y0, y1, x0, x1 = h // 3, 2 * h // 3, w // 4, 3 * w // 4
    arr[y0:y1, x0:x1] = rng.integers(0, 255, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    if header:
        arr[:28] = np.tile(np.arange(28, dtype=np.uint8)[:, None, None] * 9, (1, w, 3))
    return arr


def _image(arr: np.ndarray, index: int = 0, weight: float = 1.0) -> PageImage:
    im = PageImage(index=index, source=Image.fromarray(arr), weight=weight)
    im.resize(im.source.size)
    return im


def test_resolution_shares_the_budget_by_rank_in_whole_cells() -> None:
    pages = [_image(_page(1190, 1684, i), index=i, weight=w)
             for i, w in enumerate([0.9, 0.7, 0.4, 0.2, 0.1])]
    for layout in (QWEN, SMOL):
        out = Resolution(budget=1500, floor=200, cap=800).apply(list(pages), layout)
        tokens = [layout.tokens(*im.size) for im in out]
        assert sum(tokens) <= 1500 and all(t >= 1 for t in tokens)
        assert tokens == sorted(tokens, reverse=True)  # lower rank, no more tokens
        assert all(im.size[0] % layout.unit == 0 and im.size[1] % layout.unit == 0 for im in out)
        assert len(out) <= 1500 // 200  # a page that cannot get the floor is left out
        for im in out:  # the page's shape is kept (within one cell)
            w, h = im.size
            assert abs(h / w - 1684 / 1190) < 0.35


def test_resolution_leaves_out_pages_past_the_floor() -> None:
    pages = [_image(_page(600, 800, i), index=i, weight=1.0) for i in range(5)]
    out = Resolution(budget=700, floor=300, cap=None).apply(pages, QWEN)
    assert [im.index for im in out] == [0, 1]  # 700 // 300 pages, best ranked first
    assert sum(QWEN.tokens(*im.size) for im in out) <= 700


def test_dedupe_drops_blank_and_repeated_bands_and_maps_points_back() -> None:
    a = _image(_page(560, 784, 1, header=True), index=0)
    b = _image(_page(560, 784, 2, header=True), index=1)
    before = [QWEN.tokens(*im.size) for im in (a, b)]
    out = Dedupe().apply([a, b], QWEN)
    after = [QWEN.tokens(*im.size) for im in out]
    assert all(x < y for x, y in zip(after, before))
    assert 0 in a.rows and 0 not in b.rows  # the header stays on the first page only
    assert len(b.rows) < len(a.rows)
    src = np.asarray(a.source)
    shown = np.asarray(a.image)
    for (x, y) in [(3, 3), (30, 60), (a.size[0] - 1, a.size[1] - 1)]:
        bx, by = a.to_base(x, y, QWEN.unit)
        assert (shown[y, x] == src[int(by), int(bx)]).all()  # the same pixel of the page


def test_dedupe_keeps_a_page_with_nothing_to_drop_and_one_cell_of_a_blank_page() -> None:
    rng = np.random.default_rng(5)
    busy = _image(rng.integers(0, 255, (112, 84, 3), dtype=np.uint8))
    blank = _image(np.full((112, 84, 3), 255, dtype=np.uint8))
    Dedupe().apply([busy, blank], QWEN)
    assert busy.size == (84, 112) and busy.rows is None
    assert blank.size == (28, 28)


def test_plugins_are_declared_and_checked() -> None:
    plugins = build_plugins([{"type": "resolution", "budget": 900}, {"type": "fastv",
                                                                       "layer": 1}], owner="g")
    assert [p.name for p in plugins] == ["resolution", "fastv"]
    assert plugins[1].dropped(100) == 50
    with pytest.raises(ConfigError, match="did you mean 'dedupe'"):
        build_plugins([{"type": "dedup"}], owner="g")
    with pytest.raises(ConfigError, match=r"compression\[0\]\.budget"):
        build_plugins([{"type": "resolution", "budget": "big"}], owner="g")
    with pytest.raises(ConfigError, match="drop_ratio"):
        build_plugins([{"type": "fastv", "drop_ratio": 1.0}], owner="g")
    with pytest.raises(ConfigError, match="declared twice"):
        build_plugins([{"type": "dedupe"}, {"type": "dedupe"}], owner="g")
    assert FastV().apply([], QWEN) == []
