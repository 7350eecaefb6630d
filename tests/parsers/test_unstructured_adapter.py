"""ragnest.parsers.office._unstructured: each patch of unstructured's private internals.

One group of tests per patch. Each first checks that the private target still exists
with the shape the patch expects, then that after patching unstructured does what
ragnest relies on. When an unstructured upgrade breaks a patch, these fail with a
message naming the patch and what changed (real unstructured, real documents).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("unstructured")
pytest.importorskip("docx")
pytest.importorskip("pptx")

from office_fixtures import PICTURE_SIZE, make_docx, make_pptx  # noqa: E402

from ragnest.parsers.office import _unstructured as adapter  # noqa: E402
from ragnest.parsers.office import pictures as pics  # noqa: E402

UPGRADE = "an unstructured upgrade broke ragnest.parsers.office._unstructured."


def _checked(check) -> object:
    """Run a ``check_*`` and turn UnstructuredChanged into a loud test failure."""
    try:
        return check()
    except adapter.UnstructuredChanged as err:
        pytest.fail(f"{UPGRADE}{check.__name__}: {err}")


def _images(elements) -> list:
    return [e for e in elements if e.category == "Image"]


@pytest.fixture(scope="module", autouse=True)
def _imported() -> None:
    """unstructured imported the way the parser does (every patch applied): partitioning
    without the spaCy stand-in would try to download a model."""
    adapter.import_unstructured()


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapter")
    return {"docx": make_docx(root / "guide.docx"), "pptx": make_pptx(root / "deck.pptx")}


def test_importing_the_office_package_does_not_import_unstructured() -> None:
    code = ("import sys, ragnest.parsers.office, ragnest.parsers.office._unstructured;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('unstructured', 'spacy', 'docx', 'pptx', 'pandas')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "[]", out


# ------------------------------------------------------------- DOCX picture hook
def test_docx_picture_hook_target_shape() -> None:
    options = _checked(adapter.check_docx_picture_hook)
    assert isinstance(options, type)
    from unstructured.partition import docx

    assert docx.register_picture_partitioner is not None


def test_docx_picture_hook_gives_picture_elements(docs: dict[str, Path]) -> None:
    adapter.install_docx_picture_hook()
    from unstructured.partition.docx import DocxPartitionerOptions, partition_docx

    assert DocxPartitionerOptions._PicturePartitionerCls is adapter.DocxPictures, (
        f"{UPGRADE}install_docx_picture_hook: register_picture_partitioner() no longer "
        "sets DocxPartitionerOptions._PicturePartitionerCls")
    state = pics.Pictures(archive=str(docs["docx"]))
    with pics.collecting(state):
        elements = partition_docx(filename=str(docs["docx"]))
    images = _images(elements)
    assert [e.metadata.image_path for e in images] == ["word/media/image1.png"], (
        f"{UPGRADE}DocxPictures: unstructured no longer asks the registered picture "
        f"sub-partitioner for each paragraph's pictures (got {images})")
    assert state.document_part is not None  # opts.document.part was readable
    assert not _images(partition_docx(filename=str(docs["docx"])))  # outside a parse


def test_docx_picture_hook_defers_to_the_previous_one_outside_a_parse(
        docs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    class ThirdParty:
        @classmethod
        def iter_elements(cls, paragraph, opts):
            if paragraph._p.xpath(".//a:blip"):
                yield adapter.image_element("third party", "elsewhere.png", None)

    adapter.install_docx_picture_hook()
    monkeypatch.setattr(adapter.DocxPictures, "previous", ThirdParty)
    from unstructured.partition.docx import partition_docx

    # one element per paragraph holding a picture (the picture and the icon)
    assert [e.text for e in _images(partition_docx(filename=str(docs["docx"])))] == [
        "third party", "third party"]


def test_a_broken_docx_target_is_reported_and_skipped(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from unstructured.partition.docx import DocxPartitionerOptions

    monkeypatch.delattr(DocxPartitionerOptions, "_PicturePartitionerCls")
    with pytest.raises(adapter.UnstructuredChanged,
                       match=r"unstructured \S+ changed: .*DocxPartitionerOptions has no "
                             r"_PicturePartitionerCls; ragnest's patch install_docx_picture_hook"):
        adapter.check_docx_picture_hook()
    with caplog.at_level(logging.WARNING):
        adapter._apply(adapter.install_docx_picture_hook)  # what import_unstructured does
    assert "DOCX pictures are not extracted" in caplog.text


# ------------------------------------------------------------- PPTX picture hook
def test_pptx_picture_hook_target_shape() -> None:
    assert isinstance(_checked(adapter.check_pptx_picture_hook), type)


def test_pptx_picture_hook_gives_picture_elements(docs: dict[str, Path]) -> None:
    adapter.install_pptx_picture_hook()
    from unstructured.partition.pptx import PptxPartitionerOptions, partition_pptx

    assert PptxPartitionerOptions._PicturePartitionerCls is adapter.PptxPictures, (
        f"{UPGRADE}install_pptx_picture_hook: register_picture_partitioner() no longer "
        "sets PptxPartitionerOptions._PicturePartitionerCls")
    state = pics.Pictures(archive=str(docs["pptx"]))
    with pics.collecting(state):
        elements = partition_pptx(filename=str(docs["pptx"]))
    images = _images(elements)
    assert len(images) == 1 and images[0].metadata.image_path.startswith("ppt/media/"), (
        f"{UPGRADE}PptxPictures: unstructured no longer asks the registered picture "
        f"sub-partitioner for each picture shape (got {images})")
    assert images[0].metadata.page_number == 2  # opts.page_number: the slide
    assert not _images(partition_pptx(filename=str(docs["pptx"])))  # outside a parse


def test_pptx_picture_reading_uses_python_pptx_internals(docs: dict[str, Path]) -> None:
    """pictures.pptx_picture reads python-pptx private attributes (blip_rId, _nvXxPr)."""
    import pptx

    deck = pptx.Presentation(str(docs["pptx"]))
    shapes = [s for slide in deck.slides for s in slide.shapes
              if s.shape_type == pptx.enum.shapes.MSO_SHAPE_TYPE.PICTURE]
    part, alt = pics.pptx_picture(shapes[0])
    assert str(part.partname).startswith("/ppt/media/") and isinstance(alt, str)


def test_docx_picture_reading_uses_python_docx_internals(docs: dict[str, Path]) -> None:
    """pictures.docx_paragraph_pictures reads python-docx's private ``paragraph._p``."""
    import docx

    found = [hit for p in docx.Document(str(docs["docx"])).paragraphs
             for hit in pics.docx_paragraph_pictures(p)]
    assert len(found) == 2  # the picture and the icon (the filter skips the icon later)
    sizes = sorted(len(part.blob) for part, _ in found)
    assert sizes[0] < 2048 < sizes[1]
    assert PICTURE_SIZE == pics.pixel_size(max((p.blob for p, _ in found), key=len))


# ------------------------------------------------------------ spaCy model stand-in
def test_nlp_stand_in_target_shape() -> None:
    tokenize = _checked(adapter.check_nlp_stand_in)
    assert tokenize is not None, f"{UPGRADE}check_nlp_stand_in: unstructured.nlp.tokenize " \
                                 "or spaCy is gone"


def test_nlp_stand_in_classifies_text_offline() -> None:
    import spacy.util

    if spacy.util.is_package("en_core_web_sm"):
        pytest.skip("spaCy's en_core_web_sm is installed: unstructured uses it, no stand-in")
    assert adapter.install_nlp_stand_in() and adapter.install_nlp_stand_in()  # idempotent
    from unstructured.nlp import tokenize
    from unstructured.partition.html import partition_html
    from unstructured.partition.text_type import is_possible_narrative_text

    assert isinstance(tokenize._get_nlp(), adapter.StandInNlp), (
        f"{UPGRADE}install_nlp_stand_in: tokenize._get_nlp is not the stand-in")
    assert tokenize.sent_tokenize("Fill the tank. Switch it on.") == [
        "Fill the tank.", "Switch it on."]
    assert is_possible_narrative_text("Run the cleaning cycle every eight weeks.")
    assert not is_possible_narrative_text("Descaling Guide")
    elements = partition_html(text="<div>Descaling Guide</div>"
                                   "<div>Run the cleaning cycle every eight weeks.</div>")
    assert [e.category for e in elements][-1] == "NarrativeText", (
        f"{UPGRADE}install_nlp_stand_in: unstructured's text-type heuristics no longer "
        f"read the stand-in's tags ({[(e.category, e.text) for e in elements]})")


def test_a_broken_nlp_target_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from unstructured.nlp import tokenize

    monkeypatch.delattr(tokenize, "_get_nlp")
    with pytest.raises(adapter.UnstructuredChanged,
                       match=r"tokenize has no _get_nlp\(\); ragnest's patch "
                             r"install_nlp_stand_in .* en_core_web_sm"):
        adapter.check_nlp_stand_in()
