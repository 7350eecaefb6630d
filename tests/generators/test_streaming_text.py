"""AnswerText: streamed pieces, cut anywhere, join to exactly the text cleaned as a whole."""

from __future__ import annotations

import random

from ragnest.generators.evidence import parse_citations
from ragnest.generators.grounding import assign_boxes, find_boxes
from ragnest.generators.streaming import AnswerText

PIECES = [
    "Descale", " every", " 8", " weeks", " ", "  ", "[P1]", "[P", "1", "]", "[P9]", " .", ".",
    ",", "\n", "<|im_end|>", "<|box_start|>(1,2),(3,4)<|box_end|>", "<|box_end|>",
    "<|box_start|>", "(5,6)", "<|object_ref_start|>pump<|object_ref_end|>",
    "<|object_ref_start|>", '{"bbox_2d": [1,2,3,4]}', "{", "}", " [ P2 ]",
]


def test_pieces_cut_anywhere_join_to_the_whole_text_cleaned() -> None:
    rng = random.Random(0)
    for _ in range(4000):
        raw = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 25)))
        cuts = sorted(rng.sample(range(len(raw) + 1), min(len(raw) + 1, rng.randint(0, 8))))
        pieces, prev = [], 0
        for c in [*cuts, len(raw)]:
            pieces.append(raw[prev:c])
            prev = c
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
