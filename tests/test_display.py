"""Notebook HTML: thumbnails as data: images, regions drawn over them, stage scores,
escaped text, no JavaScript; the plain repr stays."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

import ragnest  # noqa: F401  (registers the renderers)
from ragnest import Pipeline, display
from ragnest.ingest import DocumentReport, IngestReport, SkippedFile
from ragnest.types import (
    Answer,
    Chunk,
    Citation,
    Hit,
    Hits,
    HtmlRepr,
    html_of,
    register_html,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
HANDBOOK = EXAMPLES / "nimbus3_handbook.pdf"
JPEG = "data:image/jpeg;base64,"
EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def assert_safe(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html, re.IGNORECASE), "event handler attribute"
    assert "javascript:" not in html.lower()


@pytest.fixture(scope="module")
def rag(tmp_path_factory):
    pipe = Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path_factory.mktemp("s"))})
    report = pipe.ingest([EXAMPLES], progress=False)
    pipe.report = report  # type: ignore[attr-defined]
    yield pipe
    pipe.close()


def page_chunk(text: str = "Descale every 8 weeks", **kw) -> Chunk:
    base = dict(id="c1", document_id="d1", kind="page", page=5, source=str(HANDBOOK), text=text,
                metadata={"width": 595.0, "height": 842.0})
    return Chunk(**{**base, **kw})


def test_hits_show_thumbnails_and_every_stage_score(rag):
    hits = rag.search("How often should I descale the machine?", k=3)
    assert isinstance(hits, Hits) and len(hits) == 3
    html = hits._repr_html_()
    assert html.count(JPEG) == 3
    for stage in ("dense-coarse", "dense-mid", "dense-fine", "bm25", "final"):
        assert f">{stage}<" in html, stage
    # funnel order: ladder levels first, fusion last
    assert html.index(">dense-coarse<") < html.index(">dense-fine<") < html.index(">final<")
    assert "How often should I descale the machine?" in html  # the caption names the query
    assert_safe(html)
    retrieved = rag.retrieve("How often should I descale the machine?", k=3)
    assert isinstance(retrieved, Hits) and {"embed", "search"} <= set(retrieved.timings)
    assert retrieved._repr_html_().count(JPEG) == 3  # what retrieve returns displays too


def test_text_is_escaped_everywhere():
    hit = Hit(chunk=page_chunk(EVIL), score=1.0, scores_by_stage={"bm25": 1.0})
    cite = Citation(chunk_id="c1", document_id="d1", source=str(HANDBOOK), page=5, quote=EVIL)
    answer = Answer(text=EVIL + " [1]", citations=(cite,), hits=(hit,))
    for obj in (hit, Hits([hit]), cite, answer, hit.chunk):
        html = obj._repr_html_()
        assert "&lt;script&gt;" in html and "&amp;" in html
        assert_safe(html)


def test_cited_region_is_a_box_over_the_thumbnail():
    # the left half of the top quarter of an A4 page
    cite = Citation(chunk_id="c1", document_id="d1", source=str(HANDBOOK), page=5,
                    bbox=(0.0, 0.0, 297.5, 210.5), quote="Cleaning and descaling")
    answer = Answer(text="Descale every 8 weeks [1].", citations=(cite,),
                    hits=(Hit(chunk=page_chunk(), score=2.0, scores_by_stage={"final": 2.0}),))
    html = answer._repr_html_()
    assert JPEG in html and "<b>[1]</b>" in html
    box = re.search(r"position:absolute;left:([\d.]+)%;top:([\d.]+)%;width:([\d.]+)%;"
                    r"height:([\d.]+)%", html)
    assert box is not None
    assert [round(float(v)) for v in box.groups()] == [0, 0, 50, 25]
    assert "nimbus3_handbook.pdf p. 5" in html and "<details" in html and ">final<" in html
    assert_safe(html)


def test_whole_page_boxes_are_not_drawn():
    chunk = page_chunk(bbox=(0.0, 0.0, 595.0, 842.0))
    assert "position:absolute;left" not in Hit(chunk=chunk, score=1.0)._repr_html_()


def test_answer_from_the_pipeline(rag):
    answer = rag.query("How often should I descale the machine?")
    html = answer._repr_html_()
    assert answer.found and JPEG in html
    assert "position:absolute;left" in html  # the quoted region on its page
    assert "generate" in html and "search" in html  # time per step
    assert_safe(html)


def test_not_found_answers_say_so():
    html = Answer(text="I could not find this.", found=False)._repr_html_()
    assert "not found" in html and JPEG not in html


def test_ingest_report_has_first_page_thumbnails_and_skipped_reasons(rag):
    report = rag.report
    html = report._repr_html_()
    assert html.count(JPEG) == 2  # two PDFs; the Markdown file has no page image
    assert "nimbus3_handbook.pdf" in html and "travel_faq.md" in html
    assert f"{report.files} files" in html
    bad = IngestReport(documents=list(report.documents),
                       skipped=[SkippedFile("/x/<evil>.pdf", "PDF is <broken>")],
                       error="StoreError: disk <full>")
    html = bad._repr_html_()
    assert "&lt;evil&gt;.pdf" in html and "PDF is &lt;broken&gt;" in html
    assert "disk &lt;full&gt;" in html
    assert_safe(html)


def test_parse_and_embed_steps_display(rag):
    chunks = rag.parse(HANDBOOK)
    html = chunks._repr_html_()
    assert f"{len(chunks)} chunks of nimbus3_handbook.pdf" in html
    assert html.count(JPEG) == min(len(chunks), display.MAX_ROWS)
    card = chunks[4]._repr_html_()
    assert JPEG in card and "position:absolute" in card  # segment regions on the page
    points = rag.embed(chunks[:2], progress=False)
    html = points._repr_html_()
    for name in ("dense-coarse", "dense-mid", "dense-fine", "bm25-sparse"):
        assert name in html
    assert "multi 16 x 64" in html and "dense 256" in html  # the ladder's shapes
    assert "2 chunks embedded" in html
    assert JPEG in points[0]._repr_html_()


def test_missing_file_is_a_note_not_an_error(tmp_path):
    chunk = page_chunk(source=str(tmp_path / "gone.pdf"))
    html = Hit(chunk=chunk, score=1.0)._repr_html_()
    assert "no preview" in html and JPEG not in html


def test_thumbnails_are_cached_per_page():
    display.clear_thumbnails()
    ref = display.page_ref(page_chunk())
    first = display.thumbnail(ref, (595.0, 842.0))
    assert isinstance(first, display.Thumbnail) and first.uri.startswith(JPEG)
    assert max(first.width, first.height) <= display.THUMB_SIDE
    assert display.thumbnail(ref, (595.0, 842.0)) is first
    display.clear_thumbnails()
    assert display.thumbnail(ref, (595.0, 842.0)) is not first


def test_text_chunks_have_no_thumbnail():
    chunk = Chunk(id="t", document_id="d", kind="text", text="Visa rules", source="faq.md")
    assert display.page_ref(chunk) is None
    html = Hit(chunk=chunk, score=0.5, scores_by_stage={"bm25": 0.5})._repr_html_()
    assert JPEG not in html and "Visa rules" in html and ">bm25<" in html


def test_plain_repr_stays_and_unregistered_classes_give_none():
    hit = Hit(chunk=page_chunk(), score=1.0)
    assert repr(hit).startswith("Hit(chunk=Chunk(")
    assert repr(Hits([hit])).startswith("[Hit(")

    class Plain(HtmlRepr):
        pass

    assert Plain()._repr_html_() is None and html_of(object()) is None
    register_html(Plain, lambda obj: "<i>plain</i>")
    assert Plain()._repr_html_() == "<i>plain</i>"


def test_renderers_can_be_registered_by_name_for_higher_layers():
    report = IngestReport(documents=[DocumentReport("a.md", "id", 0, 1, 0, 0, "added")])
    assert "1 files" in report._repr_html_()  # registered as "ragnest.ingest.report.IngestReport"


def test_hits_tables_stop_at_max_rows():
    chunk = Chunk(id="t", document_id="d", kind="text", text="x")
    hits = Hits([Hit(chunk=replace(chunk, id=str(i)), score=1.0) for i in range(25)])
    html = hits._repr_html_()
    assert "and 5 more" in html and html.count("<tr>") == display.MAX_ROWS + 2


def test_image_files_show_with_their_regions(tmp_path):
    from ragnest.media.encode import render_png
    from ragnest.types import ImageRef

    png = tmp_path / "figure.png"
    png.write_bytes(render_png(ImageRef(source=str(HANDBOOK), page=3, dpi=50)))
    chunk = Chunk(id="i", document_id="d", kind="image", source=str(png), text="pump",
                  image=ImageRef(blob=str(png)), bbox=(0.0, 0.0, 100.0, 50.0),
                  metadata={"width": 200, "height": 200})
    html = Hit(chunk=chunk, score=1.0)._repr_html_()
    assert JPEG in html
    assert "left:0.00%;top:0.00%;width:50.00%;height:25.00%" in html


def test_citation_cards_carry_the_tags_of_the_text():
    cites = tuple(Citation(chunk_id=f"c{i}", document_id="d", source="notes.md", page=None)
                  for i in (3, 1))
    html = Answer(text="A [P3]. B [P1]. A again [P3].", citations=cites)._repr_html_()
    assert html.index(">[P3]</div>") < html.index(">[P1]</div>")
    assert "<b>[P3]</b>" in html
