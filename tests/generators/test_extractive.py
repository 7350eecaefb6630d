"""ExtractiveGenerator: quotes the answering sentence and cites its page."""

from __future__ import annotations

import dataclasses
import re

import pytest

from ragnest.errors import ConfigError
from ragnest.generators.extractive import (
    NOT_FOUND,
    ExtractiveGenerator,
    content_terms,
    split_sentences,
)
from ragnest.protocols import Generator
from ragnest.types import Chunk, Hit, ImageRef, Query

MANUAL = "/docs/espresso-manual.pdf"
PAGE_7 = """Maintenance
Clean the drip tray after every use. To descale the espresso machine, fill the
water tank with descaling solution and run the descaling programme once a month.
\u2022 Rinse the tank twice with fresh water
\u2022 Dry the steam wand, e.g. with a soft cloth."""
PAGE_12 = """Warranty
The warranty covers manufacturing defects for two years from the date of pur-
chase. Keep your receipt. Repairs are done by authorised service centres only."""
PAGE_3 = "Grind the coffee beans finely. Tamp the grounds firmly before brewing."


def _hit(page: int, text: str, score: float = 1.0, source: str = MANUAL) -> Hit:
    chunk = Chunk(
        id=f"c{page}", document_id="doc", kind="page", text=text, page=page, source=source
    )
    return Hit(chunk=chunk, score=score)


HITS = [_hit(12, PAGE_12, 0.9), _hit(7, PAGE_7, 0.8), _hit(3, PAGE_3, 0.5)]


def test_contract() -> None:
    gen = ExtractiveGenerator(max_sentences=2)
    assert isinstance(gen, Generator)
    assert type(gen)(**dataclasses.asdict(gen)) == gen
    with pytest.raises(ConfigError):
        ExtractiveGenerator(min_overlap=2.0)


def test_picks_answering_sentence_and_cites_page() -> None:
    answer = ExtractiveGenerator().generate(
        Query(text="How often should I descale the espresso machine?"), HITS
    )
    assert answer.found
    assert answer.text.startswith("To descale the espresso machine")
    assert "once a month. [1]" in answer.text
    first = answer.citations[0]
    assert (first.page, first.source, first.chunk_id) == (7, MANUAL, "c7")
    assert "descal" in first.quote
    assert first.label() == "espresso-manual.pdf p. 7"
    assert answer.usage["sentences_considered"] > 5 and answer.usage["hits_used"] >= 1
    assert answer.hits == tuple(HITS)


def test_citations_numbered_in_order_of_use() -> None:
    answer = ExtractiveGenerator(min_overlap=0.2).generate(
        Query(text="warranty repairs and descaling"), HITS
    )
    numbers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert numbers and numbers[0] == 1
    assert sorted(set(numbers)) == list(range(1, len(answer.citations) + 1))
    seen: list[int] = []
    for n in numbers:
        if n not in seen:
            seen.append(n)
    assert seen == sorted(seen)


def test_hyphenated_pdf_text_is_joined() -> None:
    answer = ExtractiveGenerator().generate(Query(text="how long is the warranty?"), HITS)
    assert answer.found and answer.citations[0].page == 12
    assert "date of purchase" in answer.text


def test_not_found_paths() -> None:
    gen = ExtractiveGenerator()
    miss = gen.generate(Query(text="What is the boiling point of mercury?"), HITS)
    assert not miss.found and miss.text == NOT_FOUND and miss.citations == ()
    assert miss.hits == tuple(HITS)
    empty = gen.generate(Query(text="descale"), [])
    assert not empty.found and empty.text == NOT_FOUND


def test_near_duplicates_avoided() -> None:
    dup = _hit(8, PAGE_7.replace("Clean", "Wipe"), 0.7)
    answer = ExtractiveGenerator(max_sentences=3, min_overlap=0.2).generate(
        Query(text="descale the espresso machine with descaling solution"), [HITS[1], dup]
    )
    assert answer.text.count("descaling programme") == 1


def test_image_only_query_cites_top_page() -> None:
    query = Query(image=ImageRef(source="photo.png"))
    answer = ExtractiveGenerator().generate(query, HITS)
    assert answer.found
    assert "page 12 of espresso-manual.pdf" in answer.text
    assert answer.citations[0].page == 12


def test_sentence_splitting_handles_pdf_text() -> None:
    sentences = split_sentences(PAGE_7)
    assert "Maintenance" in sentences
    assert any(s.startswith("Rinse the tank") for s in sentences)
    assert any(s == "Dry the steam wand, e.g. with a soft cloth." for s in sentences)
    assert split_sentences("See Fig. 3 for details. Then stop.") == [
        "See Fig. 3 for details.",
        "Then stop.",
    ]


def test_content_terms_stem_and_drop_stopwords() -> None:
    assert content_terms("The descaled machines") == ["descal", "machin"]
    assert content_terms("descaling") == content_terms("descale")


def test_stream_yields_one_sentence_per_delta_then_the_answer() -> None:
    from ragnest.protocols import StreamingGenerator
    from ragnest.types import AnswerDelta

    gen = ExtractiveGenerator(max_sentences=3, min_overlap=0.2)
    assert isinstance(gen, StreamingGenerator)
    hits = HITS
    query = Query(text="warranty repairs and descaling")
    answer = gen.generate(query, hits)
    deltas = list(gen.stream(query, hits))
    assert all(isinstance(d, AnswerDelta) for d in deltas)
    assert deltas[-1].done and deltas[-1].answer == answer
    assert not any(d.done for d in deltas[:-1])
    assert "".join(d.text for d in deltas) == answer.text
    streamed = [c for d in deltas[:-1] for c in d.citations]
    assert streamed == list(answer.citations)  # each citation once, when it first appears
    assert len(deltas) > 2  # several sentences, one delta each
