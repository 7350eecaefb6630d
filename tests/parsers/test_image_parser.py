"""ImageParser: image files into ``image`` chunks with OCR text (real OCR, no mocks)."""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from ragnest.errors import ConfigError, ParseError
from ragnest.media.decode import decode_rgb
from ragnest.parsers.image import IMAGE_EXTENSIONS, ImageParser
from ragnest.protocols import Parser
from ragnest.testing import check_component_contract
from ragnest.types import Chunk, ImageRef, Segment, Source

TEXT = "Descale every eight weeks"
SECOND = "Pump pressure fifteen bar"


def render(text: str, *, width: float = 420, height: float = 90,
           fontsize: float = 28) -> Image.Image:
    """A white RGB Pillow image with ``text`` in black (72 dpi: points = pixels)."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    page.insert_text((15, 55), text, fontsize=fontsize, fontname="helv")
    pix = page.get_pixmap(dpi=72)
    img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    doc.close()
    return img


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def recall(expected: str, got: str) -> float:
    want = words(expected)
    return len(want & words(got)) / len(want)


@pytest.fixture(scope="module")
def parser() -> ImageParser:
    p = ImageParser()
    p.warm_up()  # the OCR model is shared by every engine in the process
    return p


def parse(path: Path | Source, parser: ImageParser | None = None) -> list[Chunk]:
    source = path if isinstance(path, Source) else Source.from_path(path)
    return list((parser or ImageParser(ocr=False)).parse(source))


@pytest.mark.parametrize(("suffix", "options"), [
    (".png", {}),
    (".jpg", {"quality": 90}),
    (".webp", {"quality": 90}),
    (".bmp", {}),
    (".gif", {}),
])
def test_formats_ocr(tmp_path: Path, parser: ImageParser, suffix: str, options: dict) -> None:
    path = tmp_path / f"label{suffix}"
    render(TEXT).save(path, **options)
    source = Source.from_path(path)
    [chunk] = parse(source, parser)
    assert recall(TEXT, chunk.text) >= 0.75, chunk.text
    assert chunk.kind == "image" and chunk.page == 1
    assert chunk.source == str(path) and chunk.document_id == source.document_id
    assert chunk.bbox == (0.0, 0.0, 420.0, 90.0)
    assert chunk.image == ImageRef(blob=str(path), page=None)
    kind = {".jpg": "jpeg"}.get(suffix, suffix[1:])
    assert chunk.metadata == {"width": 420, "height": 90, "format": kind,
                              "text_source": "ocr", "ocr_lines": 1}
    assert chunk.segments == (
        Segment(kind="image", image=chunk.image, bbox=chunk.bbox, page=1),
        Segment(kind="text", text=chunk.text, page=1),
    )


def test_multi_frame_tiff(tmp_path: Path, parser: ImageParser) -> None:
    path = tmp_path / "scan.tif"
    render(TEXT).save(path, save_all=True, append_images=[render(SECOND, height=120)],
                      compression="tiff_lzw")
    chunks = parse(path, parser)
    assert [c.page for c in chunks] == [1, 2]
    assert [c.image for c in chunks] == [ImageRef(blob=str(path), page=1),
                                         ImageRef(blob=str(path), page=2)]
    assert recall(TEXT, chunks[0].text) >= 0.75 and recall(SECOND, chunks[1].text) >= 0.75
    assert chunks[1].bbox == (0.0, 0.0, 420.0, 120.0)
    assert chunks[1].segments[0].page == 2
    assert len({c.id for c in chunks}) == 2
    single = tmp_path / "one.tif"
    render(TEXT).save(single)
    [chunk] = parse(single)
    assert chunk.page == 1 and chunk.image == ImageRef(blob=str(single))


@pytest.mark.parametrize("variant", ["cmyk-jpeg", "alpha-png", "gray16-png", "exif-jpeg"])
def test_converted_for_ocr(tmp_path: Path, parser: ImageParser, variant: str) -> None:
    base = render(TEXT)
    path = tmp_path / f"{variant}.{variant.split('-')[1].replace('jpeg', 'jpg')}"
    if variant == "cmyk-jpeg":
        base.convert("CMYK").save(path, quality=92)
    elif variant == "alpha-png":
        # Black everywhere; the text exists only in the alpha channel. Composited on
        # white it reads as black text (composited on black it would be invisible).
        ink = Image.eval(base.convert("L"), lambda v: 255 - v)
        Image.merge("RGBA", [Image.new("L", base.size, 0)] * 3 + [ink]).save(path)
    elif variant == "gray16-png":
        gray = np.asarray(base.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(gray).save(path)
        assert Image.open(path).mode.startswith("I")
    else:  # stored rotated, EXIF orientation 8 says "rotate 90 degrees to display"
        exif = Image.Exif()
        exif[0x0112] = 8
        base.transpose(Image.Transpose.ROTATE_270).save(path, exif=exif.tobytes(),
                                                        quality=92)
    [chunk] = parse(path, parser)
    assert recall(TEXT, chunk.text) >= 0.75, (variant, chunk.text)
    assert (chunk.metadata["width"], chunk.metadata["height"]) == (420, 90)


def test_decode_rgb_conversions() -> None:
    transparent = Image.new("RGBA", (4, 3), (0, 0, 0, 0))
    assert decode_rgb(transparent).tolist() == [[[255, 255, 255]] * 4] * 3
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    assert decode_rgb(palette)[0, 0].tolist() == [10, 20, 30]
    palette.info["transparency"] = 0
    assert decode_rgb(palette)[0, 0].tolist() == [255, 255, 255]
    assert decode_rgb(Image.new("1", (3, 3), 1))[0, 0].tolist() == [255, 255, 255]
    assert decode_rgb(Image.new("I;16", (2, 2), 65535))[0, 0].tolist() == [255] * 3
    assert decode_rgb(Image.new("I", (2, 2), 1000)).dtype == np.uint8
    cmyk = decode_rgb(Image.new("CMYK", (2, 2), (0, 0, 0, 0)))
    assert cmyk.shape == (2, 2, 3) and cmyk[0, 0].tolist() == [255, 255, 255]


def test_ocr_off(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    render(TEXT).save(path)
    parser = ImageParser(ocr=False)
    parser.warm_up()  # loads nothing
    assert parser._engine is None
    [chunk] = parse(path, parser)
    assert chunk.text == ""
    assert chunk.metadata["text_source"] == "none" and chunk.metadata["ocr_lines"] == 0
    assert [s.kind for s in chunk.segments] == ["image"]
    parser.close()


def test_blank_image_has_empty_text(tmp_path: Path, parser: ImageParser) -> None:
    path = tmp_path / "blank.png"
    Image.new("RGB", (120, 80), "white").save(path)
    [chunk] = parse(path, parser)
    assert chunk.text == "" and chunk.metadata["text_source"] == "ocr"
    assert chunk.metadata["ocr_lines"] == 0 and len(chunk.segments) == 1


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    # A valid PNG header claiming 50000 x 50000 pixels (2.5 GB as RGB): 80 bytes on disk.
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + _png_chunk(b"IEND", b""))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning from Pillow either
        with pytest.raises(ParseError) as info:
            parse(path, ImageParser())
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert message.startswith(str(path))
    assert "image is 50000x50000 = 2.5e9 pixels, over the limit of 1e8 (max_pixels)" in message
    # A real, highly compressible image over a lowered limit: refused the same way.
    big = tmp_path / "big.png"
    Image.new("L", (3000, 2000), 255).save(big)
    assert big.stat().st_size < 50_000
    with pytest.raises(ParseError, match=r"3000x2000 = 6e6 pixels, over the limit of 1e6"):
        parse(big, ImageParser(ocr=False, max_pixels=1_000_000))
    # Each TIFF frame is checked before it is decoded.
    tiff = tmp_path / "frames.tif"
    Image.new("L", (100, 100), 255).save(tiff, save_all=True,
                                         append_images=[Image.new("L", (3000, 2000), 255)])
    chunks = ImageParser(ocr=False, max_pixels=1_000_000).parse(Source.from_path(tiff))
    assert next(chunks).page == 1
    with pytest.raises(ParseError, match=r"frame 2 of the image is 3000x2000"):
        next(chunks)


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    good = io.BytesIO()
    render(TEXT).save(good, format="PNG")
    data = good.getvalue()
    cases = {
        "empty.png": (b"", "file is empty"),
        "truncated.png": (data[: len(data) // 2], "corrupt or truncated PNG image"),
        "corrupt.png": (data[:60] + bytes(b ^ 0x5A for b in data[60:]), "PNG image"),
        "text.png": (b"just some words, not pixels\n" * 3, "not a supported image"),
        "report.jpg": (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "content looks like pdf"),
        "garbage.gif": (bytes(range(256)) * 4, "content looks like unknown binary data"),
        "header-only.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG image"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ParseError) as info:
            parse(path)
        assert info.value.path == str(path), name
        assert reason in info.value.reason, (name, info.value.reason)
    with pytest.raises(ParseError, match="file not found"):
        parse(tmp_path / "missing.png")


def test_ids_stable_and_pixel_sensitive(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    render(TEXT).save(path)
    first = parse(path)[0].id
    assert parse(path)[0].id == first
    changed = np.asarray(render(TEXT)).copy()
    changed[0, 0] = (250, 0, 0)  # one pixel
    Image.fromarray(changed).save(path)
    assert parse(path)[0].id != first


def test_from_bytes(tmp_path: Path, parser: ImageParser) -> None:
    buf = io.BytesIO()
    render(TEXT).save(buf, format="JPEG", quality=90)
    source = Source.from_bytes(buf.getvalue(), name="upload.jpeg")
    [chunk] = parse(source, parser)
    assert recall(TEXT, chunk.text) >= 0.75
    assert chunk.image == ImageRef(blob="upload.jpeg")
    assert chunk.source == "upload.jpeg" and chunk.document_id == source.document_id
    with pytest.raises(ParseError, match="upload.png: file is empty"):
        parse(Source.from_bytes(b"", name="upload.png"))
    # The bytes decide the type, not the name.
    [renamed] = parse(Source.from_bytes(buf.getvalue(), name="photo.png"))
    assert renamed.metadata["format"] == "jpeg"


def test_payload_roundtrip(tmp_path: Path, parser: ImageParser) -> None:
    path = tmp_path / "a.png"
    render(TEXT).save(path)
    [chunk] = parse(path, parser)
    assert chunk.text
    assert Chunk.from_payload(chunk.id, chunk.to_payload()) == chunk
    [plain] = parse(path)
    assert Chunk.from_payload(plain.id, plain.to_payload()) == plain


def test_contract() -> None:
    parser = check_component_contract(ImageParser, role="parser")
    assert isinstance(parser, Parser)
    assert ImageParser(**dataclasses.asdict(parser)) == parser
    assert parser.extensions == IMAGE_EXTENSIONS == (
        ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")
    check_component_contract(ImageParser, {"ocr": False, "max_pixels": 10, "ocr_max_side": 800,
                                           "min_confidence": 0.7}, role="parser")
    for bad in ({"max_pixels": 0}, {"ocr_max_side": 4}, {"min_confidence": 2.0}):
        with pytest.raises(ConfigError):
            ImageParser(**bad)
    parser.close()
