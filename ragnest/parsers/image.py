"""Standalone images (PNG, JPEG, TIFF, WebP, BMP, GIF) into ``image`` chunks, with OCR.

One chunk per image, or per frame of a multi-frame TIFF (``page`` = frame number). The
chunk's text is what OCR reads in the image (see :mod:`ragnest.media.ocr`), and its
:class:`~ragnest.types.ImageRef` points at the file, so embedders and generators can
load the pixels later::

    >>> from ragnest.parsers.image import ImageParser
    >>> from ragnest.types import Source
    >>> parser = ImageParser(ocr=True, max_pixels=50_000_000)
    >>> parser.extensions[:3]
    ('.png', '.jpg', '.jpeg')
    >>> chunk = next(parser.parse(Source.from_path("scan.png")))  # doctest: +SKIP
    >>> chunk.kind, chunk.metadata["text_source"]  # doctest: +SKIP
    ('image', 'ocr')

The file's type comes from its bytes (a PNG named ``.jpg`` parses; a PDF named ``.png``
is refused). Its size is read from the header before any pixel is decoded, so a
decompression bomb (a 50000x50000 PNG of a few KB) is refused without allocating it.
For OCR the pixels are decoded to 8-bit RGB: palette, grayscale, CMYK and 16-bit images
are converted, transparency is composited on white, and the EXIF orientation is
applied. Animated GIF, WebP and PNG files give their first frame only.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import struct
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np

from ragnest.errors import ConfigError, MissingDependencyError, ParseError
from ragnest.media.decode import decode_rgb, pillow
from ragnest.media.sniff import SNIFF_BYTES, sniff_bytes
from ragnest.types import Chunk, ImageRef, Segment, Source, make_chunk_id

__all__ = ["ImageParser", "IMAGE_EXTENSIONS"]

logger = logging.getLogger(__name__)

#: File suffixes :class:`ImageParser` accepts.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif",
)

# Sniffed kind -> (Pillow format, the plugin module that registers it).
_FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "PngImagePlugin"),
    "jpeg": ("JPEG", "JpegImagePlugin"),
    "gif": ("GIF", "GifImagePlugin"),
    "webp": ("WEBP", "WebPImagePlugin"),
    "tiff": ("TIFF", "TiffImagePlugin"),
    "bmp": ("BMP", "BmpImagePlugin"),
}
_HEADER_ERRORS = (SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
                  OSError, struct.error)


def _sci(n: float) -> str:
    """``2500000000`` -> ``'2.5e9'``, ``100000000`` -> ``'1e8'``."""
    return f"{n:.3g}".replace("e+0", "e").replace("e+", "e")


def _open_header(fp: IO[bytes], kind: str, name: str) -> Any:
    """Read the header only (size, mode, frames): nothing is decoded or allocated.

    Calls the format's Pillow plugin directly, not ``Image.open``: that one checks the
    size against Pillow's global ``MAX_IMAGE_PIXELS`` (a warning, or an error without
    the dimensions) before this parser can apply its own ``max_pixels``.
    """
    Image = pillow()
    fmt, module = _FORMATS[kind]
    try:
        importlib.import_module(f"PIL.{module}")  # registers the format in Image.OPEN
        factory, _accept = Image.OPEN[fmt]
    except (ImportError, KeyError) as err:
        raise ParseError(name, f"this Pillow build cannot read {fmt} images") from err
    fp.seek(0)
    try:
        return factory(fp, name)
    except Image.DecompressionBombError as err:  # e.g. a GIF frame reaching far outside
        raise ParseError(name, f"{fmt} image refused by Pillow's MAX_IMAGE_PIXELS: "
                               f"{err}") from err
    except _HEADER_ERRORS as err:
        raise ParseError(name, f"not a readable {fmt} image: {err}") from err


@dataclass(kw_only=True)
class ImageParser:
    """Parser for image files: one ``image`` chunk per image (per TIFF frame).

    ``ocr`` reads the image's text into the chunk (otherwise the text is empty).
    ``max_pixels`` refuses larger images (per frame) before decoding them.
    ``ocr_max_side`` downscales images whose longest side is larger before OCR;
    ``min_confidence`` drops OCR lines the recogniser is less sure of.

    Chunk metadata: ``width``/``height`` (pixels, after EXIF orientation), ``format``
    (``png``, ``jpeg``, ``tiff``, ...), ``text_source`` (``"ocr"`` when OCR ran, even
    if it found nothing; ``"none"`` with ``ocr=False``) and ``ocr_lines``.

    Pixels are decoded even with ``ocr=False``, so a corrupt or truncated file fails
    here, not later when an embedder loads it.

    For sources made from bytes the ImageRef's ``blob`` is the display name, so the
    pixels cannot be loaded later unless a file by that name exists.

    >>> ImageParser(ocr=False).extensions[-2:]
    ('.bmp', '.gif')
    """

    ocr: bool = True
    max_pixels: int = 100_000_000
    ocr_max_side: int = 2500
    min_confidence: float = 0.5
    extensions: ClassVar[tuple[str, ...]] = IMAGE_EXTENSIONS

    def __post_init__(self) -> None:
        if self.max_pixels <= 0:
            raise ConfigError("parser/image: max_pixels must be positive")
        if self.ocr_max_side < 32:
            raise ConfigError("parser/image: ocr_max_side must be at least 32")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError("parser/image: min_confidence must be between 0 and 1")
        # Heavy state lives outside the dataclass fields (asdict() must round-trip).
        self._engine: Any = None

    def _ocr_engine(self) -> Any:
        if self._engine is None:
            from ragnest.media.ocr import OcrEngine

            self._engine = OcrEngine(min_confidence=self.min_confidence,
                                     max_side=self.ocr_max_side)
        return self._engine

    def warm_up(self) -> None:
        """Load the OCR models when ``ocr`` is on (idempotent)."""
        if self.ocr:
            self._ocr_engine().warm_up()

    def close(self) -> None:
        """Release the OCR engine handle."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def parse(self, source: Source) -> Iterator[Chunk]:
        """Yield one chunk per image (per TIFF frame); raises :class:`ParseError`."""
        name = source.display_name
        with ExitStack() as stack:
            fp, digest = self._open(source, stack)
            head = fp.read(SNIFF_BYTES)
            kind = sniff_bytes(head)
            if kind not in _FORMATS:
                looks = kind or "unknown binary data"
                raise ParseError(name, f"not a supported image (content looks like {looks})")
            im = _open_header(fp, kind, name)
            stack.callback(im.close)
            yield from self._frames(im, kind, source, digest)

    def _open(self, source: Source, stack: ExitStack) -> tuple[IO[bytes], str]:
        """An open binary stream over the source and the sha256 of its bytes."""
        name = source.display_name
        if source.data is not None:
            data = bytes(source.data)
            if not data:
                raise ParseError(name, "file is empty (0 bytes)")
            return io.BytesIO(data), hashlib.sha256(data).hexdigest()
        if source.path is None:
            raise ParseError(name, "source has neither a path nor data")
        path = Path(source.path)
        if not path.is_file():
            raise ParseError(name, "file not found")
        if path.stat().st_size == 0:
            raise ParseError(name, "file is empty (0 bytes)")
        try:
            fp = stack.enter_context(open(path, "rb"))
            digest = source.fingerprint()
        except OSError as err:
            raise ParseError(name, f"cannot read file: {err}") from err
        return fp, digest

    def _check_size(self, name: str, width: int, height: int, frame: int | None) -> None:
        pixels = width * height
        if pixels > self.max_pixels:
            where = f"frame {frame} of the " if frame else ""
            raise ParseError(
                name,
                f"{where}image is {width}x{height} = {_sci(pixels)} pixels, over the limit "
                f"of {_sci(self.max_pixels)} (max_pixels); refusing to decode it (a "
                f"possible decompression bomb); raise max_pixels if the image is genuine",
            )
        if pixels == 0:
            raise ParseError(name, f"image has no pixels ({width}x{height})")

    def _frames(self, im: Any, kind: str, source: Source, digest: str) -> Iterator[Chunk]:
        name = source.display_name
        fmt = _FORMATS[kind][0]
        # Only TIFF frames are pages; animated GIF/WebP/PNG give their first frame.
        frames = 1
        if kind == "tiff":
            self._check_size(name, *im.size, frame=None)
            try:
                frames = int(getattr(im, "n_frames", 1))
            except _HEADER_ERRORS as err:
                raise ParseError(name, f"corrupt TIFF image (frame directory): {err}") from err
        multi = frames > 1
        blob = name  # the path (readable form): ImageRefs resolve it
        document_id = source.document_id
        for index in range(frames):
            number = index + 1
            if index:
                try:
                    im.seek(index)
                except (*_HEADER_ERRORS, pillow().DecompressionBombError) as err:
                    raise ParseError(name, f"corrupt TIFF image: cannot read frame "
                                           f"{number}: {err}") from err
            self._check_size(name, *im.size, frame=number if multi else None)
            pixels = self._decode(im, name, fmt, number if multi else None)
            height, width = pixels.shape[:2]
            lines: list[Any] = []
            text = ""
            if self.ocr:
                from ragnest.media.ocr import join_lines

                lines = self._read(pixels, name, number if multi else None)
                text = join_lines(lines)
            del pixels
            ref = ImageRef(blob=blob, page=number if multi else None)
            bbox = (0.0, 0.0, float(width), float(height))
            segments = [Segment(kind="image", image=ref, bbox=bbox, page=number)]
            if text:
                segments.append(Segment(kind="text", text=text, page=number))
            yield Chunk(
                id=make_chunk_id(document_id, index, f"{digest}|image|{number}|{text}"),
                document_id=document_id,
                kind="image",
                text=text,
                source=name,
                segments=tuple(segments),
                page=number,
                bbox=bbox,
                image=ref,
                metadata={
                    "width": width,
                    "height": height,
                    "format": kind,
                    "text_source": "ocr" if self.ocr else "none",
                    "ocr_lines": len(lines),
                },
            )
        logger.debug("parsed %s: %d %s frame(s)", name, frames, fmt)

    def _decode(self, im: Any, name: str, fmt: str, frame: int | None) -> np.ndarray:
        Image = pillow()
        where = f" (frame {frame})" if frame else ""
        width, height = im.size
        limit = Image.MAX_IMAGE_PIXELS
        try:
            if limit is not None and width * height > limit:
                # Already checked against max_pixels; Pillow's own (global) limit is
                # lower and would warn again while decoding TIFF tiles.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    return decode_rgb(im)
            return decode_rgb(im)
        except Image.DecompressionBombError as err:
            raise ParseError(name, f"{fmt} image{where} refused by Pillow's MAX_IMAGE_PIXELS: "
                                   f"{err}") from err
        except MemoryError as err:
            raise ParseError(name, f"{fmt} image{where} is too large to decode "
                                   f"({width}x{height})") from err
        except _HEADER_ERRORS as err:
            raise ParseError(name, f"corrupt or truncated {fmt} image{where}: {err}") from err

    def _read(self, pixels: np.ndarray, name: str, frame: int | None) -> list[Any]:
        engine = self._ocr_engine()
        try:
            return engine.read(pixels)
        except MissingDependencyError:
            raise
        except Exception as err:
            where = f" (frame {frame})" if frame else ""
            raise ParseError(name, f"OCR failed{where}: {err}") from err
