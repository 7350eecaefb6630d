"""ragnest._hf: the transformers runtime (device and dtype choice, offline loading under
one lock, batches to the device, images, tokens, chat messages)."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from ragnest import _hf
from ragnest._hf import (
    chat_messages,
    check_device,
    check_dtype,
    load_kwargs,
    resolve_device,
    resolve_dtype,
)
from ragnest.errors import ConfigError, EmbeddingError
from ragnest.testing import tiny_models
from ragnest.types import ImageRef


@pytest.mark.parametrize(
    ("want", "cuda", "mps", "expected"),
    [
        ("auto", True, True, "cuda"),
        ("auto", False, True, "mps"),
        ("auto", False, False, "cpu"),
        ("cpu", True, True, "cpu"),
        ("cuda", True, False, "cuda"),
        ("cuda:1", True, False, "cuda:1"),
        ("mps", False, True, "mps"),
    ],
)
def test_device_choice(want: str, cuda: bool, mps: bool, expected: str) -> None:
    assert resolve_device(want, cuda=cuda, mps=mps) == expected


@pytest.mark.parametrize(
    ("want", "device", "bf16", "expected"),
    [
        ("auto", "cuda", True, "bfloat16"),
        ("auto", "cuda:0", False, "float32"),
        ("auto", "cpu", True, "float32"),
        ("auto", "mps", True, "float32"),
        ("float16", "cpu", False, "float16"),
        ("bfloat16", "cuda", False, "bfloat16"),
        ("float32", "cuda", True, "float32"),
    ],
)
def test_dtype_choice(want: str, device: str, bf16: bool, expected: str) -> None:
    assert resolve_dtype(want, device=device, bf16=bf16) == expected


def test_bad_or_unavailable_devices_and_dtypes_name_the_owner() -> None:
    for bad in ("tpu", "cuda:x", "gpu", ""):
        with pytest.raises(ConfigError, match="reranker/vlm: device must be"):
            check_device(bad, "reranker/vlm")
    with pytest.raises(ConfigError, match="embedder/dse: dtype must be one of"):
        check_dtype("int8", "embedder/dse")
    with pytest.raises(ConfigError, match="x: device 'cuda:0' asked for, but torch sees no CUDA"):
        resolve_device("cuda:0", cuda=False, mps=True, owner="x")
    with pytest.raises(ConfigError, match="no MPS device"):
        resolve_device("mps", cuda=True, mps=False)


def test_offline_and_local_directories_load_local_files_only(tmp_path, monkeypatch) -> None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert not _hf.offline() and load_kwargs("org/model") == {}
    assert load_kwargs(str(tmp_path)) == {"local_files_only": True}  # a local checkpoint
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert _hf.offline() and load_kwargs("org/model") == {"local_files_only": True}
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    assert load_kwargs("org/model") == {"local_files_only": True}


def test_one_reentrant_load_lock() -> None:
    lock = _hf.load_lock()
    assert lock is _hf.load_lock()
    with lock, lock:  # a loader may load its parts while holding it
        seen = []
        t = threading.Thread(target=lambda: seen.append(lock.acquire(timeout=0.05)))
        t.start()
        t.join()
        assert seen == [False]  # other threads wait


def test_chat_messages_keep_part_order() -> None:
    msgs = chat_messages(["intro", None, "between", object()], system="Be brief.")
    assert msgs[0] == {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}
    assert [c["type"] for c in msgs[1]["content"]] == ["text", "image", "text", "image"]
    assert msgs[1]["role"] == "user" and msgs[1]["content"][2]["text"] == "between"


# -- with torch and transformers --------------------------------------------------------
@pytest.fixture
def torch():
    pytest.importorskip("transformers")
    pytest.importorskip("PIL")
    return pytest.importorskip("torch")


def test_runtime_on_this_machine_and_batches_to_device(torch) -> None:
    rt = _hf.HfRuntime.create(device="cpu")
    assert rt.device.type == "cpu" and rt.dtype == torch.float32
    if not torch.cuda.is_available():
        assert _hf.HfRuntime.create().device.type in ("cpu", "mps")
        with pytest.raises(ConfigError, match="embedder/x: device 'cuda'"):
            _hf.HfRuntime.create(device="cuda", owner="embedder/x")
    half = _hf.HfRuntime.create(device="cpu", dtype="bfloat16")
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long),
             "pixel_values": torch.zeros(2, 4), "note": "kept"}
    out = half.to_device(batch)
    assert out["input_ids"].dtype == torch.long  # ids stay integers
    assert out["pixel_values"].dtype == torch.bfloat16 and out["note"] == "kept"
    with half.inference():
        assert torch.is_inference_mode_enabled()


def test_load_model_offline_in_dtype_with_named_errors(torch, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = str(tiny_models.build_clip(tmp_path / "clip"))
    loaded = _hf.load_model(path, "CLIPModel", processor="CLIPProcessor", device="cpu",
                            dtype="bfloat16", owner="embedder/clip")
    assert not loaded.model.training and loaded.processor is not None
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    assert loaded.runtime.dtype == torch.bfloat16 and loaded.tokenizer is None
    loaded.close()
    assert loaded.model is None
    with pytest.raises(EmbeddingError, match="reranker/x: cannot load '/nonexistent/model'"):
        _hf.load_model("/nonexistent/model", "CLIPModel", device="cpu", owner="reranker/x",
                       error=EmbeddingError)
    with pytest.raises(EmbeddingError, match="reranker/x: transformers .* has no NoSuchModel"):
        _hf.load_model(path, "NoSuchModel", device="cpu", owner="reranker/x",
                       error=EmbeddingError)


def test_images_from_refs(torch, tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    path = tmp_path / "gray.png"
    Image.fromarray(np.full((40, 60), 128, np.uint8)).save(path)
    img = _hf.load_image(ImageRef(blob=str(path)), max_pixels=10_000)
    assert img.mode == "RGB" and img.size == (60, 40)
    small = _hf.load_image(ImageRef(blob=str(path)), max_pixels=600)
    assert small.size[0] * small.size[1] <= 600
    with caplog.at_level(logging.WARNING, logger="ragnest._hf"):
        out = _hf.render_images([ImageRef(blob=str(path)), ImageRef(blob=str(tmp_path / "gone.png"))],
                                max_pixels=10_000, where=["a.pdf p.1", "b.pdf p.2"])
    assert out[0] is not None and out[1] is None
    assert "b.pdf p.2: cannot render image" in caplog.text
    dummy = _hf.blank_image(28)
    assert dummy.size == (28, 28) and dummy.getpixel((3, 3)) == (255, 255, 255)


def test_tokens_cut_and_shared_budget(torch) -> None:
    tok = tiny_models.qwen2_tokenizer()
    text = " ".join(tiny_models.corpus(20))
    n = _hf.count_tokens(tok, text)
    assert n > 40
    assert _hf.cut_tokens(tok, "the pump", 50) == ("the pump", _hf.count_tokens(tok, "the pump"))
    cut, used = _hf.cut_tokens(tok, text, 10)
    assert used == 10 and text.startswith(cut) and _hf.count_tokens(tok, cut) <= 11
    img = object()
    parts = _hf.fit_text_budget(tok, ["a pump", "the valve", img, text, img, "never"], 12)
    assert parts[0] == "a pump\n\nthe valve" and parts[1] is img and parts[3] is img
    assert "never" not in parts  # the budget is spent in order; images are kept
    total = sum(_hf.count_tokens(tok, p) for p in parts if isinstance(p, str))
    assert total <= 12 + 1


def test_vision_size_caps_visual_tokens(torch) -> None:
    ip = tiny_models.qwen_image_processor(max_tokens=16)
    assert _hf.vision_size(ip, 64) == {
        "size": {"shortest_edge": 4 * 28 * 28, "longest_edge": 64 * 28 * 28}
    }
    assert _hf.vision_size(ip, 2)["size"]["shortest_edge"] == 2 * 28 * 28  # never above longest
