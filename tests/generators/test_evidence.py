"""What generators show a model and how its answer is read back (ragnest.generators.evidence)."""

from __future__ import annotations

import random

import pytest

from ragnest.generators.evidence import (
    NOT_FOUND,
    answer_instructions,
    box_to_points,
    build_evidence,
    fit_to_tokens,
    is_abstention,
    parse_citations,
    snap_to_region,
    split_budget,
)
from ragnest.types import Chunk, Hit, ImageRef, Segment


def _hit(page: int, text: str = "text", bbox=None, segments=()) -> Hit:
    chunk = Chunk(id=f"c{page}", document_id="doc", kind="page", text=text, page=page,
                  source="/docs/manual.pdf", bbox=bbox, segments=tuple(segments),
                  image=ImageRef(source="/docs/manual.pdf", page=page))
    return Hit(chunk=chunk, score=1.0 / page)


def test_budget_is_monotone_in_rank_and_never_over_the_total():
    rng = random.Random(0)
    for _ in range(500):
        n = rng.randint(1, 12)
        weights = sorted((rng.random() for _ in range(n)), reverse=True)
        total = rng.randint(0, 5000)
        floor = rng.randint(1, 400)
        cap = rng.choice([None, rng.randint(floor, 2000)])
        shares = split_budget(weights, total, floor=floor, cap=cap)
        assert len(shares) == n and sum(shares) <= total
        assert all(a >= b for a, b in zip(shares, shares[1:]))  # lower rank, no more tokens
        assert all(s == 0 or s >= floor for s in shares)  # legible or left out
        if cap is not None:
            assert max(shares) <= cap
        kept = sum(1 for s in shares if s)
        assert kept == min(n, total // floor)


def test_budget_follows_the_scores():
    assert split_budget([0.9, 0.1], total=1000, floor=100)[0] > 800
    assert split_budget([0.5, 0.5], total=1000, floor=100) == [500, 500]
    with pytest.raises(ValueError):
        split_budget([1.0], total=100, floor=0)


def test_page_sizes_are_exact_multiples_within_the_tokens():
    for w, h, tokens in [(595, 842, 64), (1700, 2200, 300), (3000, 400, 256), (50, 50, 1800)]:
        pw, ph = fit_to_tokens(w, h, tokens=tokens, unit=28)
        assert pw % 28 == 0 and ph % 28 == 0
        assert (pw // 28) * (ph // 28) <= max(tokens, 1)
        assert pw <= max(28, -(-w // 28) * 28) and ph <= max(28, -(-h // 28) * 28)
    wide = fit_to_tokens(3000, 400, tokens=256, unit=28)
    assert wide[0] > 4 * wide[1]  # the page's shape is kept


def test_labels_headers_and_citations():
    evidence = build_evidence([_hit(12, bbox=(10, 20, 30, 40)), _hit(3)])
    assert [e.label for e in evidence] == ["P1", "P2"]
    assert evidence[0].header() == "[P1] manual.pdf p. 12"
    text, cites = parse_citations("Descale monthly [P2]. The pump [P9] hums [P1][P2].", evidence)
    assert text == "Descale monthly [P2]. The pump hums [P1][P2]."
    assert [(c.page, c.chunk_id) for c in cites] == [(3, "c3"), (12, "c12")]
    assert cites[1].bbox == (10, 20, 30, 40)
    assert "[P1], [P2]" in answer_instructions(["P1", "P2"]) and NOT_FOUND in answer_instructions([])


def test_abstention_is_recognised():
    assert is_abstention(NOT_FOUND) and is_abstention("")
    assert is_abstention("The documents do not contain this.")
    assert not is_abstention("Run the descaling programme every 8 weeks [P1].")


def test_grounding_boxes_become_pdf_points_and_snap_to_regions():
    region = (0.0, 0.0, 612.0, 792.0)
    assert box_to_points([0, 0, 1000, 1000], space="norm1000", image_size=(10, 10),
                         region=region) == region
    half = box_to_points([0, 0, 392, 504], space="pixels", image_size=(784, 1008), region=region)
    assert half == pytest.approx((0.0, 0.0, 306.0, 396.0))
    clip = box_to_points([500, 500, 1000, 1000], space="norm1000", image_size=(1, 1),
                         region=(100.0, 100.0, 300.0, 500.0))
    assert clip == pytest.approx((200.0, 300.0, 300.0, 500.0))
    segments = [Segment(kind="text", text="a", bbox=(50, 50, 300, 100), page=1),
                Segment(kind="text", text="b", bbox=(50, 400, 300, 450), page=1)]
    chunk = _hit(1, segments=segments).chunk
    assert snap_to_region((60, 390, 200, 460), chunk) == (50, 400, 300, 450)
    assert snap_to_region((60, 120, 200, 130), chunk) == (50, 50, 300, 100)  # nearest centre
    assert snap_to_region((1, 2, 3, 4), _hit(2).chunk) == (1, 2, 3, 4)
