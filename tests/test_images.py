"""ragnest.media.render and .encode: render page refs and blob refs to arrays, PNG, JPEG."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from ragnest.errors import ParseError
from ragnest.media.encode import render_jpeg, render_png
from ragnest.media.render import clear_cache, effective_dpi, render_array
from ragnest.types import ImageRef

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    """Two 612 x 792 pt pages; page 2 has a red square at (100, 100)-(200, 200)."""
    doc = pymupdf.open()
    doc.new_page(width=612, height=792).insert_text((72, 72), "page one", fontname="helv")
    page = doc.new_page(width=612, height=792)
    page.draw_rect(pymupdf.Rect(100, 100, 200, 200), color=None, fill=(1, 0, 0))
    path = tmp_path / "doc.pdf"
    doc.save(str(path))
    return path


def test_page_png_size(pdf: Path) -> None:
    data = render_png(ImageRef(source=str(pdf), page=1, dpi=72))
    assert png_size(data) == (612, 792)
    data = render_png(ImageRef(source=str(pdf), page=1, dpi=144))
    assert png_size(data) == (1224, 1584)


def test_page_jpeg(pdf: Path) -> None:
    ref = ImageRef(source=str(pdf), page=2, dpi=96)
    low, high = render_jpeg(ref, quality=20), render_jpeg(ref, quality=95)
    assert low.startswith(JPEG_MAGIC) and high.startswith(JPEG_MAGIC)
    assert len(low) < len(high)
    with pytest.raises(ValueError):
        render_jpeg(ref, quality=0)


def test_page_array(pdf: Path) -> None:
    arr = render_array(ImageRef(source=str(pdf), page=2, dpi=72))
    assert arr.shape == (792, 612, 3) and arr.dtype == np.uint8
    assert tuple(arr[150, 150]) == (255, 0, 0)
    assert tuple(arr[400, 400]) == (255, 255, 255)


def test_clip_in_points(pdf: Path) -> None:
    ref = ImageRef(source=str(pdf), page=2, clip=(100.0, 100.0, 200.0, 150.0), dpi=144)
    arr = render_array(ref)
    assert arr.shape == (100, 200, 3)
    assert (arr == [255, 0, 0]).all()
    assert png_size(render_png(ref)) == (200, 100)
    # a clip partly off the page is cut to the page
    off = render_array(ImageRef(source=str(pdf), page=2, clip=(500, 700, 900, 900), dpi=72))
    assert off.shape == (92, 112, 3)


def test_pixel_cap_lowers_dpi(pdf: Path) -> None:
    ref = ImageRef(source=str(pdf), page=1, dpi=600)  # 5100 x 6600 = 33.7 Mpx uncapped
    width, height = png_size(render_png(ref, max_pixels=1_000_000))
    assert width * height <= 1_000_000
    assert width * height > 900_000
    assert abs(width / height - 612 / 792) < 0.01
    assert render_array(ref, max_pixels=250_000).shape[0] * render_array(
        ref, max_pixels=250_000).shape[1] <= 250_000


def test_default_cap_on_a_huge_page(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page(width=14400, height=14400)  # 200 x 200 inches, the PDF maximum
    path = tmp_path / "poster.pdf"
    doc.save(str(path))
    arr = render_array(ImageRef(source=str(path), page=1, dpi=96))
    assert arr.shape[0] * arr.shape[1] <= 40_000_000


def test_effective_dpi() -> None:
    assert effective_dpi(612, 792, 96, 10**9) == 96
    dpi = effective_dpi(612, 792, 600, 1_000_000)
    assert (612 * dpi / 72) * (792 * dpi / 72) <= 1_000_000
    with pytest.raises(ValueError):
        effective_dpi(1, 1, 72, 0)


def test_pdf_named_txt_renders(pdf: Path) -> None:
    misnamed = pdf.with_name("doc.txt")
    misnamed.write_bytes(pdf.read_bytes())
    assert png_size(render_png(ImageRef(source=str(misnamed), page=1, dpi=36))) == (306, 396)


def test_missing_file(tmp_path: Path) -> None:
    gone = tmp_path / "moved.pdf"
    with pytest.raises(ParseError, match="file not found") as info:
        render_png(ImageRef(source=str(gone), page=1))
    assert info.value.path == str(gone)
    with pytest.raises(ParseError, match="file not found"):
        render_array(ImageRef(blob=str(tmp_path / "gone.png")))


def test_bad_page_and_bad_ref(pdf: Path) -> None:
    with pytest.raises(ParseError, match="out of range"):
        render_png(ImageRef(source=str(pdf), page=3))
    with pytest.raises(ValueError):
        render_png(ImageRef(source=str(pdf)))


def test_encrypted_needs_password(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page(width=100, height=100)
    path = tmp_path / "secret.pdf"
    doc.save(str(path), encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="o")
    ref = ImageRef(source=str(path), page=1, dpi=72)
    with pytest.raises(ParseError, match="encrypted"):
        render_png(ref)
    assert png_size(render_png(ref, password="pw")) == (100, 100)


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    """A 300 x 200 RGBA PNG: left half blue, right half green."""
    arr = np.zeros((200, 300, 4), dtype=np.uint8)
    arr[:, :150] = (0, 0, 255, 255)
    arr[:, 150:] = (0, 255, 0, 128)
    pix = pymupdf.Pixmap(pymupdf.csRGB, 300, 200, arr.tobytes(), 1)
    path = tmp_path / "photo.png"
    pix.save(str(path))
    return path


def test_blob_png_to_rgb(blob: Path) -> None:
    arr = render_array(ImageRef(blob=str(blob)))
    assert arr.shape == (200, 300, 3)
    assert tuple(arr[10, 10]) == (0, 0, 255)
    assert png_size(render_png(ImageRef(blob=str(blob)))) == (300, 200)
    assert render_jpeg(ImageRef(blob=str(blob))).startswith(JPEG_MAGIC)


def test_blob_clip_and_cap(blob: Path) -> None:
    arr = render_array(ImageRef(blob=str(blob), clip=(150, 0, 300, 100)))
    assert arr.shape == (100, 150, 3)
    # Half-transparent green over white (alpha is composited, not dropped).
    assert (arr[..., 1] > 250).all() and (abs(arr[..., 2].astype(int) - 127) <= 2).all()
    small = render_array(ImageRef(blob=str(blob)), max_pixels=6_000)
    assert small.shape[0] * small.shape[1] <= 6_000


def test_blob_jpeg_grayscale(tmp_path: Path) -> None:
    gray = pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 40, 30), 0)
    gray.set_rect(gray.irect, (128,))
    path = tmp_path / "gray.jpg"
    path.write_bytes(gray.tobytes("jpeg"))
    arr = render_array(ImageRef(blob=str(path)))
    assert arr.shape == (30, 40, 3)
    assert abs(int(arr[5, 5, 0]) - 128) <= 2


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("hello")
    with pytest.raises(ParseError, match="not a readable image"):
        render_array(ImageRef(blob=str(path)))


def test_cache_sees_rewritten_and_deleted_files(tmp_path: Path) -> None:
    path = tmp_path / "changing.pdf"
    for width in (100, 200):
        doc = pymupdf.open()
        doc.new_page(width=width, height=50)
        doc.save(str(path))
        doc.close()
        assert render_array(ImageRef(source=str(path), page=1, dpi=72)).shape == (50, width, 3)
    clear_cache()
    render_array(ImageRef(source=str(path), page=1, dpi=72))
    path.unlink()
    with pytest.raises(ParseError, match="file not found"):
        render_array(ImageRef(source=str(path), page=1, dpi=72))


def test_cached_authenticated_doc_still_needs_password(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page(width=100, height=100)
    path = tmp_path / "secret2.pdf"
    doc.save(str(path), encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="o")
    ref = ImageRef(source=str(path), page=1, dpi=72)
    assert render_png(ref, password="pw").startswith(PNG_MAGIC)
    with pytest.raises(ParseError, match="encrypted"):
        render_png(ref)


def test_encode_formats(pdf: Path) -> None:
    from ragnest.media.encode import MIME_TYPES, encode

    ref = ImageRef(source=str(pdf), page=2, dpi=96)
    jpeg, png = encode(ref), encode(ref, "png")
    assert jpeg.startswith(JPEG_MAGIC) and png.startswith(PNG_MAGIC)
    assert encode(ref, "JPG").startswith(JPEG_MAGIC)
    pytest.importorskip("PIL")
    webp = encode(ref, "webp")
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
    assert len(webp) < len(png)
    assert MIME_TYPES["webp"] == "image/webp"
    with pytest.raises(ValueError, match="jpeg, webp, png"):
        encode(ref, "gif")


def test_blob_formats_render_like_the_image_parser_reads_them(tmp_path: Path) -> None:
    """WebP, TIFF frames, transparency and EXIF rotation (all decoded through Pillow)."""
    Image = pytest.importorskip("PIL.Image")
    red = Image.new("RGB", (40, 20), (255, 0, 0))
    red.save(tmp_path / "a.webp", lossless=True)
    assert tuple(render_array(ImageRef(blob=str(tmp_path / "a.webp")))[5, 5]) == (255, 0, 0)
    blue = Image.new("RGB", (40, 20), (0, 0, 255))
    red.save(tmp_path / "two.tiff", save_all=True, append_images=[blue])
    second = render_array(ImageRef(blob=str(tmp_path / "two.tiff"), page=2))
    assert tuple(second[5, 5]) == (0, 0, 255)
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert tuple(render_array(ImageRef(blob=str(tmp_path / "clear.png")))[5, 5]) == (255,) * 3
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.new("RGB", (60, 20), (0, 128, 0)).save(tmp_path / "rot.jpg", exif=exif)
    assert render_array(ImageRef(blob=str(tmp_path / "rot.jpg"))).shape[:2] == (60, 20)
    with pytest.raises(ParseError, match="frame 3"):
        render_array(ImageRef(blob=str(tmp_path / "two.tiff"), page=3))


def test_encode_arrays_and_mime_types(pdf: Path) -> None:
    from ragnest.media.encode import encode, encode_array, mime_type, normalize_format
    from ragnest.media.render import Renderer

    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:, 15:] = (0, 0, 255)
    png = encode_array(pixels, "png")
    assert png_size(png) == (30, 20)
    assert encode_array(pixels).startswith(JPEG_MAGIC)
    assert mime_type("JPG") == "image/jpeg" and normalize_format("PNG") == "png"
    with pytest.raises(ValueError, match="jpeg, webp, png"):
        mime_type("bmp")
    with pytest.raises(ValueError, match="quality"):
        encode_array(pixels, "jpeg", quality=101)
    with Renderer() as renderer:  # a component's own renderer, not the default one
        data = encode(ImageRef(source=str(pdf), page=1, dpi=36), "png", renderer=renderer)
        assert png_size(data) == (306, 396) and renderer.open_documents == 1
    assert renderer.open_documents == 0
    if pytest.importorskip("PIL"):
        webp = encode_array(pixels, "webp", quality=50)
        assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
