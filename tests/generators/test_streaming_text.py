"""AnswerText: streamed pieces, cut anywhere, join to exactly the text cleaned as a whole."""

from __future__ import annotations

import random

import pytest

from ragnest.generators.evidence import NOT_FOUND, is_abstention, parse_citations
from ragnest.generators.grounding import assign_boxes, find_boxes
from ragnest.generators.streaming import AnswerText

PIECES = [
    "Descale", " every", " 8", " weeks", " ", "  ", "[P1]", "[P", "1", "]", "[P9]", " .", ".",
    ",", "\n", "<|im_end|>", "<|box_start|>(1,2),(3,4)<|box_end|>", "<|box_end|>",
    "<|box_start|>", "(5,6)", "<|object_ref_start|>pump<|object_ref_end|>",
    "<|object_ref_start|>", '{"bbox_2d": [1,2,3,4]}', "{", "}", " [ P2 ]",
]


def _cut(rng: random.Random, raw: str) -> list[str]:
    """``raw`` cut into pieces at up to 8 random places (empty pieces included)."""
    cuts = sorted(rng.sample(range(len(raw) + 1), min(len(raw) + 1, rng.randint(0, 8))))
    pieces, prev = [], 0
    for c in [*cuts, len(raw)]:
        pieces.append(raw[prev:c])
        prev = c
    return pieces


def test_pieces_cut_anywhere_join_to_the_whole_text_cleaned() -> None:
    rng = random.Random(0)
    for _ in range(4000):
        raw = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 25)))
        pieces = _cut(rng, raw)
        text = AnswerText({"P1", "P2"}, specials=["<|im_end|>"], json_boxes=True)
        joined = "".join(text.feed(p) for p in pieces) + text.finish()
        assert joined == text.text == text.clean(raw).rstrip(), (raw, pieces)
        assert text.raw == raw


def test_clean_text_matches_parse_citations() -> None:
    from ragnest.generators.evidence import build_evidence
    from ragnest.types import Chunk, Hit

    hits = [Hit(chunk=Chunk(id=f"c{i}", document_id="d", kind="page", page=i + 1,
                            source="m.pdf", text="t"), score=1.0) for i in range(2)]
    evidence = build_evidence(hits)
    raw = "Descale  every 8 weeks [P2] [P7] . Fill the tank [ P1 ] , then brew."
    text = AnswerText({"P1", "P2"})
    assert text.clean(raw) == parse_citations(raw, evidence)[0]
    assert text.clean(raw) == "Descale every 8 weeks [P2]. Fill the tank [P1], then brew."


def test_markup_is_removed_and_boxes_are_found_in_the_raw_text() -> None:
    raw = ("The pump [P1]<|box_start|>(100,200),(300,400)<|box_end|> and "
           '<|object_ref_start|>valve<|object_ref_end|> [P2] {"bbox_2d": [1, 2, 30, 40]}.')
    text = AnswerText({"P1", "P2"}, json_boxes=True)
    assert text.clean(raw) == "The pump [P1] and valve [P2]."
    assert find_boxes(raw, "qwen2") == [(13, (100.0, 200.0, 300.0, 400.0))]
    boxes = find_boxes(raw, "qwen2.5")
    assert [b for _, b in boxes] == [(1.0, 2.0, 30.0, 40.0)]
    assert assign_boxes(raw, boxes, labels=["P1", "P2"]) == {"P2": (1.0, 2.0, 30.0, 40.0)}
    assert assign_boxes("<|box_start|>(1,1),(2,2)<|box_end|>", find_boxes(
        "<|box_start|>(1,1),(2,2)<|box_end|>", "qwen2"), labels=["P1"]) == {"P1": (1, 1, 2, 2)}
    assert find_boxes(raw, None) == []


HOLD_PIECES = [*PIECES, " I could not find", " it", " The pages do not say.", " Yes",
               " the pump is on page", " 12"]


def _released(shown: str, hold: int) -> bool:
    return "[P1]" in shown or "[P2]" in shown or (len(shown) > hold and not is_abstention(shown))


@pytest.mark.parametrize("hold", [1, 12, 60])
def test_hold_uncited_streams_nothing_until_cited_or_long_then_as_without_it(hold) -> None:
    """``hold_uncited``: the deltas still join to the whole text cleaned; before the
    text cites a label or grows past ``hold`` characters without reading as an
    abstention nothing goes out; from then on the stream is the one without the hold."""
    rng = random.Random(hold)
    for _ in range(1500):
        raw = "".join(rng.choice(HOLD_PIECES) for _ in range(rng.randint(1, 25)))
        pieces = _cut(rng, raw)
        kw = {"specials": ["<|im_end|>"], "json_boxes": True}
        held, plain = AnswerText({"P1", "P2"}, hold_uncited=hold, **kw), AnswerText({"P1", "P2"}, **kw)
        shown = streamed = ""
        for piece in pieces:
            before = shown
            shown += held.feed(piece)
            streamed += plain.feed(piece)
            assert held.text == shown
            if shown:
                assert shown == streamed, (raw, pieces)
                assert before or _released(shown, hold), (raw, pieces)  # why it went out
            else:
                assert not streamed or not _released(streamed, hold), (raw, pieces)
        joined = shown + held.finish()
        assert joined == held.text == held.clean(raw).rstrip() == plain.text + plain.finish()


def test_hold_uncited_keeps_an_abstention_back_until_the_end() -> None:
    text = AnswerText({"P1"}, hold_uncited=300)
    assert [text.feed(c) for c in f"  {NOT_FOUND} [P7]"] == [""] * (len(NOT_FOUND) + 7)
    assert text.text == "" and text.finish() == NOT_FOUND == text.text
    text = AnswerText({"P1"}, hold_uncited=30)
    assert text.feed("Descale the machine every") == ""  # 25 characters
    assert text.feed(" 8 weeks ") == "Descale the machine every 8 weeks"  # 33
    assert text.feed("[P1].") == " [P1]."
    text = AnswerText({"P1"}, hold_uncited=300)
    assert text.feed("Every 8 weeks [P") == "" and text.feed("1]") == "Every 8 weeks [P1]"
    with pytest.raises(ValueError, match="hold_uncited"):
        AnswerText({"P1"}, hold_uncited=-1)
