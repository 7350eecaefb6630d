"""ragnest.media.render.Renderer: owned state, any resolver, safe across processes."""

from __future__ import annotations

import multiprocessing
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from ragnest.errors import ParseError
from ragnest.media.render import Renderer, clear_cache, default_renderer, render_array
from ragnest.media.resolve import Resolved
from ragnest.types import ImageRef


def pdf_bytes(colour: tuple[float, float, float], pages: int = 2) -> bytes:
    """``pages`` 200 x 100 pt pages, each filled with ``colour``."""
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page(width=200, height=100)
        page.draw_rect(page.rect, color=None, fill=colour)
    data = doc.tobytes()
    doc.close()
    return data


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    arr = np.zeros((height, width, 3), np.uint8) + np.array(rgb, np.uint8)
    return pymupdf.Pixmap(pymupdf.csRGB, width, height, arr.tobytes(), 0).tobytes("png")


@dataclass
class MemoryResolver:
    """A resolver over bytes held in memory (``mem://`` locations): the shape an
    object-storage resolver takes (bytes plus a version such as an ETag)."""

    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    calls: int = 0

    def resolve(self, location: str) -> Resolved:
        self.calls += 1
        if location not in self.objects:
            raise ParseError(location, "no such object")
        data, etag = self.objects[location]
        return Resolved(location, name=location.rsplit("/", 1)[-1], data=data, version=(etag,))


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "red.pdf"
    path.write_bytes(pdf_bytes((1, 0, 0), pages=3))
    return path


def test_any_resolver_renders_pages_and_blobs() -> None:
    store = MemoryResolver({"mem://docs/a.pdf": (pdf_bytes((0, 0, 1)), "v1"),
                            "mem://img/p.png": (png_bytes(30, 20, (0, 255, 0)), "v1")})
    renderer = Renderer(store)
    page = renderer.array(ImageRef(source="mem://docs/a.pdf", page=2, dpi=72))
    assert page.shape == (100, 200, 3) and tuple(page[50, 100]) == (0, 0, 255)
    blob = renderer.array(ImageRef(blob="mem://img/p.png", clip=(0, 0, 10, 5)))
    assert blob.shape == (5, 10, 3) and tuple(blob[2, 2]) == (0, 255, 0)
    assert renderer.pixmap(ImageRef(blob="mem://img/p.png")).width == 30
    # a new version of the object is reopened, the old one is not served from cache
    store.objects["mem://docs/a.pdf"] = (pdf_bytes((0, 1, 0)), "v2")
    page = renderer.array(ImageRef(source="mem://docs/a.pdf", page=1, dpi=72))
    assert tuple(page[50, 100]) == (0, 255, 0)
    assert store.calls == 4
    with pytest.raises(ParseError, match="no such object"):
        renderer.array(ImageRef(source="mem://docs/gone.pdf", page=1))
    with pytest.raises(ParseError, match="out of range") as info:
        renderer.array(ImageRef(source="mem://docs/a.pdf", page=9))
    assert info.value.path == "a.pdf"
    renderer.close()


def test_renderers_own_their_documents(pdf: Path) -> None:
    first, second = Renderer(cache_size=2), Renderer()
    for n in (1, 2, 3):
        first.array(ImageRef(source=str(pdf), page=n, dpi=10))
    other = pdf.with_name("other.pdf")
    other.write_bytes(pdf.read_bytes())
    third = pdf.with_name("third.pdf")
    third.write_bytes(pdf.read_bytes())
    for path in (pdf, other, third):
        first.array(ImageRef(source=str(path), page=1, dpi=10))
    assert first.open_documents == 2  # the cache is bounded by cache_size
    second.array(ImageRef(source=str(pdf), page=1, dpi=10))
    first.close()
    assert first.open_documents == 0 and second.open_documents == 1
    assert first.array(ImageRef(source=str(pdf), page=1, dpi=10)).shape == (14, 28, 3)
    with pytest.raises(ValueError, match="cache_size"):
        Renderer(cache_size=0)


def test_a_renderer_pickles_without_its_documents(pdf: Path) -> None:
    renderer = Renderer(MemoryResolver({"mem://a.pdf": (pdf.read_bytes(), "1")}))
    ref = ImageRef(source="mem://a.pdf", page=1, dpi=20)
    before = renderer.array(ref)
    assert renderer.open_documents == 1
    clone = pickle.loads(pickle.dumps(renderer))
    assert clone.open_documents == 0 and clone.cache_size == renderer.cache_size
    assert isinstance(clone.resolver, MemoryResolver)
    assert np.array_equal(clone.array(ref), before)


def _render_in_child(renderer: Renderer, ref: ImageRef, queue: multiprocessing.Queue) -> None:
    queue.put((renderer.open_documents, renderer.array(ref)[5, 5].tolist()))


def test_a_forked_child_opens_its_own_documents(pdf: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    renderer = Renderer()
    renderer.array(ImageRef(source=str(pdf), page=1, dpi=20))
    queue = ctx.Queue()
    child = ctx.Process(target=_render_in_child,
                        args=(renderer, ImageRef(source=str(pdf), page=3, dpi=20), queue))
    child.start()
    inherited, pixel = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert inherited == 0 and pixel == [255, 0, 0]
    assert renderer.open_documents == 1  # the parent's document is untouched
    assert renderer.array(ImageRef(source=str(pdf), page=2, dpi=20))[5, 5].tolist() == [255, 0, 0]


def test_the_default_renderer_is_one_per_process(pdf: Path) -> None:
    assert default_renderer() is default_renderer()
    render_array(ImageRef(source=str(pdf), page=1, dpi=10))
    assert default_renderer().open_documents >= 1
    clear_cache()
    assert default_renderer().open_documents == 0
