"""llama_index.readers.ragnest: the contract, pages and regions, images, SimpleDirectoryReader."""

from __future__ import annotations

import base64

import pytest
from llama_index.core import SimpleDirectoryReader
from llama_index.core.schema import Document, ImageDocument
from llama_index.readers.ragnest import RagnestReader

from ragnest import ParseError

from .conftest import EXAMPLES
from .contracts import ReaderContract

HANDBOOK = EXAMPLES / "nimbus3_handbook.pdf"


class TestRagnestReaderContract(ReaderContract):
    @pytest.fixture
    def reader(self):
        return RagnestReader()

    @pytest.fixture
    def path(self):
        return str(HANDBOOK)


def test_one_document_per_page_with_page_and_region():
    docs = RagnestReader().load_data(HANDBOOK)
    assert [d.metadata["page"] for d in docs] == list(range(1, 9))
    assert all(type(d) is Document for d in docs)
    page5 = docs[4]
    assert "Descale the machine every 8 weeks" in page5.text
    assert page5.metadata["bbox"] == [0.0, 0.0, 595.0, 842.0]
    assert page5.metadata["title"].startswith("Nimbus 3")
    shown = page5.get_content(metadata_mode="llm")
    assert "file_name: nimbus3_handbook.pdf" in shown and "chunk_id" not in shown


def test_images_become_image_documents():
    docs = RagnestReader(images=True, max_pixels=200_000).load_data(HANDBOOK)
    assert all(isinstance(d, ImageDocument) for d in docs)
    assert base64.b64decode(docs[0].image)[:3] == b"\xff\xd8\xff"
    assert docs[0].image_mimetype == "image/jpeg"


def test_folders_and_lists(rag):
    docs = RagnestReader(pipeline=rag).load_data(EXAMPLES)
    names = {d.metadata["file_name"] for d in docs}
    assert names == {"nimbus3_handbook.pdf", "lab_safety_guide.pdf", "travel_faq.md"}
    md = [d for d in docs if d.metadata["file_name"] == "travel_faq.md"]
    assert md and all("page" not in d.metadata for d in md)
    both = RagnestReader().load_data([HANDBOOK, EXAMPLES / "travel_faq.md"])
    assert len(both) == 8 + len(md)


def test_simple_directory_reader_uses_it():
    reader = RagnestReader()
    docs = SimpleDirectoryReader(input_files=[str(HANDBOOK)],
                                 file_extractor={".pdf": reader}).load_data()
    assert len(docs) == 8 and docs[4].metadata["page"] == 5
    assert docs[4].metadata["file_name"] == "nimbus3_handbook.pdf"


def test_bad_input_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pdf"):
        RagnestReader().load_data(tmp_path / "missing.pdf")
    bad = tmp_path / "data.bin"
    bad.write_bytes(b"\x00\x01\x02")
    with pytest.raises(ParseError, match="data.bin"):
        RagnestReader().load_data(bad)
    with pytest.raises(ValueError, match="not both"):
        RagnestReader(pipeline=object(), parsers=[])  # type: ignore[arg-type]
