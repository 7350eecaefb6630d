"""ragnest.multimodal: what a model reads of a chunk (text, one image, ordered parts)."""

from __future__ import annotations

import logging

import pytest

from ragnest.multimodal import chunk_image, chunk_parts, chunk_text, is_interleaved
from ragnest.types import Chunk, ImageRef, Segment

A, B, C = (ImageRef(blob=f"{n}.png") for n in "abc")
PAGE = ImageRef(source="doc.pdf", page=3, dpi=96)
REGION = ImageRef(source="doc.pdf", page=3, clip=(10.0, 20.0, 300.0, 400.0))


def _t(text: str, role: str | None = None) -> Segment:
    return Segment(kind="text", text=text, role=role)


def _im(ref: ImageRef | None, text: str = "") -> Segment:
    return Segment(kind="image", image=ref, text=text)


def _inter(*segs: Segment, image: ImageRef | None = None) -> Chunk:
    return Chunk(id="i", document_id="d", kind="interleaved", segments=tuple(segs),
                 image=image, text="\n\n".join(s.text for s in segs if s.text), page=3)


def test_interleaved_parts_follow_reading_order() -> None:
    chunk = _inter(_t("Descaling", "heading"), _t("  Fill the tank.  "), _im(A, "fig 1 alt"),
                   Segment(kind="table", text="| step | time |\n|---|---|"), _t("   "),
                   _im(B), _t("Done."))
    assert is_interleaved(chunk)
    assert chunk_parts(chunk) == [
        "Descaling", "Fill the tank.", A, "| step | time |\n|---|---|", B, "Done."
    ]
    # an image segment without pixels still gives its alt text
    assert chunk_parts(_inter(_t("x"), _im(None, "a photo"), _im(A))) == ["x", "a photo", A]


def test_max_images_keeps_the_first_ones(caplog: pytest.LogCaptureFixture) -> None:
    chunk = _inter(_t("three"), _im(A), _im(B), _t("last"), _im(C))
    with caplog.at_level(logging.DEBUG, logger="ragnest.multimodal"):
        assert chunk_parts(chunk, max_images=2) == ["three", A, B, "last"]
    assert "has 3 images, reading the first 2" in caplog.text
    assert chunk_parts(chunk, max_images=0) == ["three", "last"]
    assert chunk_parts(chunk) == ["three", A, B, "last", C]
    with pytest.raises(ValueError, match="max_images"):
        chunk_parts(chunk, max_images=-1)


def test_region_reads_an_interleaved_chunk_as_one_image() -> None:
    chunk = _inter(_t("see"), _im(A), _im(B), image=REGION)
    assert chunk_parts(chunk) == ["see", A, B]
    assert chunk_parts(chunk, region=True) == [REGION]
    assert chunk_parts(chunk, region=True, prefer="both") == [REGION, "see"]
    # no region image (Office, HTML): the segments, as without region
    assert chunk_parts(_inter(_t("see"), _im(A)), region=True) == ["see", A]


def test_page_chunks_image_and_or_text_layer() -> None:
    page = Chunk(id="p", document_id="d", kind="page", text="Page three text", image=PAGE,
                 segments=(_t("Page three text"), _im(A)), page=3)
    assert not is_interleaved(page)  # a page with a screenshot is read as the page
    assert chunk_parts(page) == [PAGE]
    assert chunk_parts(page, prefer="text") == ["Page three text"]
    assert chunk_parts(page, prefer="both") == [PAGE, "Page three text"]
    blank = Chunk(id="b", document_id="d", kind="page", image=PAGE, page=4)
    assert chunk_parts(blank, prefer="text") == [PAGE] and chunk_parts(blank, prefer="both") == [PAGE]
    no_image = Chunk(id="n", document_id="d", kind="page", text="text layer only", page=5)
    assert chunk_parts(no_image) == ["text layer only"]


def test_text_and_image_chunks() -> None:
    text = Chunk(id="t", document_id="d", kind="text", text="warranty covers the pump")
    assert chunk_parts(text) == chunk_parts(text, prefer="both") == ["warranty covers the pump"]
    assert chunk_parts(Chunk(id="e", document_id="d", kind="text", text="  ")) == []
    image = Chunk(id="x", document_id="d", kind="image", text="OCR: 42 bar", image=A)
    assert chunk_parts(image) == [A]
    assert chunk_parts(image, prefer="both") == [A, "OCR: 42 bar"]
    # a text chunk of segments (no image): its joined text
    segs = Chunk(id="s", document_id="d", kind="text", segments=(_t("one"), _t("two")))
    assert chunk_text(segs) == "one\ntwo" and chunk_parts(segs) == ["one\ntwo"]


def test_chunk_image_region_choice() -> None:
    region = _inter(_t("x"), _im(A), _im(B), image=PAGE)
    plain = _inter(_t("x"), _im(A), _im(B))
    assert chunk_image(region) == A  # default: first image segment (CLIP, SigLIP)
    assert chunk_image(region, region=True) == PAGE  # the rendered region first
    assert chunk_image(plain, region=True) == A  # no region: first image segment
    pg = Chunk(id="p", document_id="d", kind="page", image=PAGE, segments=(_im(A),))
    assert chunk_image(pg) == chunk_image(pg, region=True) == PAGE
    assert chunk_image(_inter(_t("only text")), region=True) is None
    assert not is_interleaved(_inter(_t("only text")))
