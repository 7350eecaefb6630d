"""Re-pointing a moved document's chunks: every location they cite follows the file."""

from __future__ import annotations

from ragnest.ingest.identity import moved_path, relocated
from ragnest.types import Chunk, ImageRef, Segment


def test_moved_path_rules(tmp_path):
    old, new = str(tmp_path / "a" / "page.html"), str(tmp_path / "b" / "page.html")
    assert moved_path(old, old, new) == new
    assert moved_path(old + "::word/media/image1.png", old, new) == new + "::word/media/image1.png"
    assert moved_path("/elsewhere/x.png", old, new) == "/elsewhere/x.png"
    # a picture beside the page follows only when it moved along
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pic_old, pic_new = tmp_path / "a" / "pic.png", tmp_path / "b" / "pic.png"
    pic_old.write_bytes(b"png")
    assert moved_path(str(pic_old), old, new) == str(pic_old)  # still in the old folder
    pic_old.rename(pic_new)
    assert moved_path(str(pic_old), old, new) == str(pic_new)
    assert moved_path(str(tmp_path / "a" / "gone.png"), old, new) == str(tmp_path / "a" / "gone.png")


def test_relocated_chunk_cites_the_new_path_everywhere():
    old, new = "/old/manual.pdf", "/new/manual.pdf"
    chunk = Chunk(
        id="c", document_id="d", kind="interleaved", text="t", source=old, page=2,
        image=ImageRef(source=old, page=2),
        segments=(Segment(kind="text", text="hello"),
                  Segment(kind="image", image=ImageRef(source=old, page=2, clip=(0, 0, 9, 9))),
                  Segment(kind="image", image=ImageRef(blob=old + "::media/a.png"))),
        metadata={"origin": old, "section": "Intro", "n": 3},
    )
    moved = relocated(chunk, new)
    assert moved.source == new and moved.image == ImageRef(source=new, page=2)
    assert moved.segments[0] == chunk.segments[0]
    assert moved.segments[1].image == ImageRef(source=new, page=2, clip=(0, 0, 9, 9))
    assert moved.segments[2].image.blob == new + "::media/a.png"
    assert moved.metadata == {"origin": new, "section": "Intro", "n": 3}
    assert (moved.id, moved.document_id, moved.text, moved.page) == ("c", "d", "t", 2)
    assert relocated(moved, new) is moved
