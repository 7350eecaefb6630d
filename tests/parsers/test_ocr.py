"""OcrEngine: real RapidOCR on text rendered with pymupdf (no mocks)."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import textwrap

import numpy as np
import pymupdf
import pytest

import ragnest.media.ocr as ocr_module
from ragnest.errors import MissingDependencyError
from ragnest.media.ocr import OcrEngine, OcrLine, get_engine, join_lines


def render_text(lines: list[tuple[float, float, str]], *, width: float = 420,
                height: float = 140, fontsize: float = 24, dpi: int = 72) -> np.ndarray:
    """An RGB image of ``text`` drawn at ``(x, y)`` baselines (points) on white."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    for x, y, text in lines:
        page.insert_text((x, y), text, fontsize=fontsize, fontname="helv")
    pix = page.get_pixmap(dpi=dpi)
    arr = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
    doc.close()
    return arr.copy()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def recall(expected: str, got: str) -> float:
    want = words(expected)
    have = set(words(got))
    return sum(w in have for w in want) / len(want)


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    eng = OcrEngine()
    eng.warm_up()
    return eng


TWO_LINES = [(20, 50, "Descale the espresso machine"), (20, 105, "every eight weeks please")]


def test_reads_known_words_in_reading_order(engine: OcrEngine) -> None:
    image = render_text(TWO_LINES)
    lines = engine.read(image)
    assert lines and all(isinstance(line, OcrLine) for line in lines)
    text = " ".join(line.text for line in lines)
    assert recall(TWO_LINES[0][2] + " " + TWO_LINES[1][2], text) >= 0.8
    assert recall(TWO_LINES[0][2], lines[0].text) >= 0.75  # top line first
    assert recall(TWO_LINES[1][2], lines[-1].text) >= 0.75
    assert lines[0].bbox[1] < lines[-1].bbox[1]
    height, width = image.shape[:2]
    for line in lines:
        x0, y0, x1, y1 = line.bbox
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert 0.5 <= line.confidence <= 1.0
    # The first line's box sits around its baseline at y=50 pt (= px at 72 dpi).
    assert lines[0].bbox[1] < 50 < lines[0].bbox[3] + 8
    assert engine.text(image).count("\n") == len(lines) - 1


def test_same_row_joined_with_space(engine: OcrEngine) -> None:
    # "Total:" and "42" are far apart on one row; "Thank you" sits below them.
    image = render_text([(330, 45, "1042"), (20, 45, "Total due:"), (20, 110, "Thank you")])
    text = engine.text(image)
    rows = text.split("\n")
    assert len(rows) == 2, text
    assert words(rows[0]) == ["total", "due", "1042"], text
    assert words(rows[1]) == ["thank", "you"], text


def test_downscaled_boxes_map_back(engine: OcrEngine) -> None:
    image = render_text([(30, 80, "Pressure fifteen bar")], width=500, height=150,
                        fontsize=40, dpi=144)  # 1000 x 300 px
    assert image.shape[:2] == (300, 1000)
    full = engine.read(image)
    small = OcrEngine(max_side=500).read(image)  # OCR runs on a 500 x 150 copy
    assert recall("Pressure fifteen bar", " ".join(ln.text for ln in small)) >= 0.6
    assert len(full) == len(small) == 1
    # Boxes are in the input's pixels: the same place, within a few pixels of scale.
    for a, b in zip(full[0].bbox, small[0].bbox):
        assert abs(a - b) <= 12, (full[0].bbox, small[0].bbox)
    assert small[0].bbox[2] > 500  # would be <= 500 if left in the downscaled frame


def test_blank_and_tiny_images(engine: OcrEngine) -> None:
    assert engine.read(np.full((200, 300, 3), 255, dtype=np.uint8)) == []
    assert engine.text(np.zeros((50, 80, 3), dtype=np.uint8)) == ""
    assert engine.read(np.full((1, 1, 3), 255, dtype=np.uint8)) == []
    assert engine.read(np.zeros((0, 10, 3), dtype=np.uint8)) == []
    gray = render_text(TWO_LINES)[:, :, 0]  # 2-D grayscale is accepted too
    assert recall("descale espresso", " ".join(ln.text for ln in engine.read(gray))) >= 0.5


def test_bad_input() -> None:
    engine = OcrEngine()
    with pytest.raises(ValueError, match="uint8"):
        engine.read(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        engine.read(np.zeros((10, 10, 2), dtype=np.uint8))
    with pytest.raises(TypeError):
        engine.read([[0, 0, 0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OcrEngine(min_confidence=1.5)
    with pytest.raises(ValueError):
        OcrEngine(max_side=8)


def test_min_confidence_filters() -> None:
    image = render_text([*TWO_LINES, (20, 130, "faint?")])
    everything = OcrEngine(min_confidence=0.0).read(image)
    assert len(everything) >= 2
    cut = max(line.confidence for line in everything)  # keeps only the surest line(s)
    kept = OcrEngine(min_confidence=cut).read(image)
    assert kept == [line for line in everything if line.confidence >= cut]
    assert 1 <= len(kept) < len(everything)


def test_join_lines_and_order() -> None:
    lines = [
        OcrLine("b", (200.0, 2.0, 260.0, 22.0), 0.9),
        OcrLine("a", (10.0, 0.0, 80.0, 20.0), 0.9),
        OcrLine("c", (10.0, 40.0, 80.0, 60.0), 0.9),
    ]
    ordered = ocr_module.reading_order(lines)
    assert [ln.text for ln in ordered] == ["a", "b", "c"]
    assert join_lines(ordered) == "a b\nc"
    assert join_lines([]) == ""


def test_get_engine_is_shared() -> None:
    assert get_engine() is get_engine()
    assert isinstance(get_engine(), OcrEngine)


def test_engines_own_their_models(engine: OcrEngine) -> None:
    """No model is shared behind the engines' backs: closing one leaves the other
    loaded, and a pickled engine carries its settings, never a model."""
    other = OcrEngine(min_confidence=0.3)
    other.warm_up()
    assert other.loaded and engine.loaded
    other.close()
    assert not other.loaded and engine.loaded
    assert recall(TWO_LINES[0][2], engine.text(render_text(TWO_LINES[:1]))) >= 0.75
    clone = pickle.loads(pickle.dumps(engine))
    assert not clone.loaded and (clone.min_confidence, clone.max_side) == (0.5, 2500)
    assert recall(TWO_LINES[0][2], clone.text(render_text(TWO_LINES[:1]))) >= 0.75
    assert clone.loaded  # it loaded its own model on first use
    clone.close()


def test_bad_settings_are_config_errors() -> None:
    from ragnest.errors import ConfigError

    with pytest.raises(ConfigError, match="min_confidence"):
        OcrEngine(min_confidence=1.5)
    with pytest.raises(ConfigError, match="max_side"):
        OcrEngine(max_side=8)


def test_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # "import rapidocr" now fails
    engine = OcrEngine()  # a fresh engine loads its own model
    with pytest.raises(MissingDependencyError, match=r"pip install 'ragnest\[lite\]'"):
        engine.warm_up()
    with pytest.raises(ImportError):  # MissingDependencyError is an ImportError
        engine.read(np.zeros((10, 10, 3), dtype=np.uint8) + 255)


def test_offline_quiet_and_lazy() -> None:
    """In a fresh process with the network cut: importing is cheap, warm-up loads the
    bundled models without downloading, RapidOCR prints nothing, root logging is untouched."""
    script = textwrap.dedent("""
        import json, logging, socket, sys
        def refuse(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import numpy as np, pymupdf
        from ragnest.media.ocr import OcrEngine
        root = logging.getLogger()
        before = (list(root.handlers), root.level)
        engine = OcrEngine()
        lazy = "rapidocr" not in sys.modules
        engine.warm_up()
        doc = pymupdf.open(); page = doc.new_page(width=300, height=60)
        page.insert_text((10, 40), "Offline models work", fontsize=24)
        pix = page.get_pixmap(dpi=72)
        img = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)
        text = engine.text(img) + "|" + engine.text(np.full((40, 40, 3), 255, np.uint8))
        print(json.dumps({"lazy": lazy, "text": text,
                          "root_same": before == (list(root.handlers), root.level)}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["lazy"] and result["root_same"]
    assert recall("offline models work", result["text"]) >= 0.6, result
    assert result["text"].endswith("|")
    assert proc.stderr.strip() == "", proc.stderr  # RapidOCR stayed quiet
