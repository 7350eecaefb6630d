"""The runtime core: device and dtype choice, offline loading through ``from_pretrained``
under one process-wide lock, moving processor batches to the device, PIL images from
:class:`~ragnest.types.ImageRef` (through :mod:`ragnest.media`), token counting and cutting,
chat messages from ordered parts. torch and transformers are imported on first use, so
importing this module is cheap::

    >>> from ragnest._hf import resolve_device, resolve_dtype
    >>> resolve_device("auto", cuda=False, mps=False), resolve_dtype("auto", device="cuda", bf16=True)
    ('cpu', 'bfloat16')

A component loads its model once (``warm_up``) and keeps the :class:`LoadedModel`::

    loaded = load_model("vidore/colqwen2-v1.0-hf", "ColQwen2ForRetrieval",
                        processor="ColQwen2Processor", owner="embedder/colqwen2",
                        error=EmbeddingError)
    inputs = loaded.inputs(loaded.processor(images=[image], return_tensors="pt"))
    with loaded.runtime.inference():
        out = loaded.model(**inputs)

Offline: with ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set, or when the model is a
local directory, everything loads with ``local_files_only=True``: no hub call is made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragnest.errors import ConfigError, MissingDependencyError, ParseError, RagnestError
from ragnest.types import ImageRef

if TYPE_CHECKING:
    from ragnest.media.render import Renderer

__all__ = [
    "DEVICES",
    "DTYPES",
    "INSTALL",
    "HfRuntime",
    "LoadedModel",
    "blank_image",
    "chat_messages",
    "check_device",
    "check_dtype",
    "count_tokens",
    "cut_tokens",
    "fit_text_budget",
    "import_hf",
    "load_image",
    "load_kwargs",
    "load_lock",
    "load_model",
    "offline",
    "render_images",
    "resolve_device",
    "resolve_dtype",
    "vision_size",
]

logger = logging.getLogger(__name__)

#: What to install when torch or transformers is missing.
INSTALL = "pip install 'ragnest[hf]'"
#: Accepted ``device`` values (plus ``cuda:N``).
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
#: Accepted ``dtype`` values.
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")

_LOAD_LOCK = threading.RLock()
_TRUE = ("1", "true", "yes", "on")


def import_hf(owner: str = "ragnest") -> tuple[Any, Any]:
    """``(torch, transformers)``, or :class:`MissingDependencyError` naming the extra."""
    try:
        import torch
        import transformers
    except ImportError as err:
        raise MissingDependencyError(
            f"{owner} needs torch and transformers ({err.name or err} is missing): {INSTALL}"
        ) from err
    return torch, transformers


def load_lock() -> threading.RLock:
    """The process-wide lock held around every ``from_pretrained`` (transformers'
    loading is not thread-safe, and two threads must not load one model twice)."""
    return _LOAD_LOCK


def offline() -> bool:
    """Whether the hub must not be contacted (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def load_kwargs(name: str) -> dict[str, Any]:
    """``from_pretrained`` keywords for ``name`` (a hub id or a local directory):
    ``local_files_only`` when offline or when ``name`` is a local directory."""
    if offline() or Path(name).expanduser().is_dir():
        return {"local_files_only": True}
    return {}


# -- device and dtype -------------------------------------------------------------------
def check_device(device: str, owner: str) -> None:
    """:class:`ConfigError` unless ``device`` is auto, cpu, cuda, cuda:N or mps (no torch)."""
    ok = device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit())
    if not ok:
        raise ConfigError(f"{owner}: device must be auto, cpu, cuda[:N] or mps, got {device!r}")


def check_dtype(dtype: str, owner: str) -> None:
    """:class:`ConfigError` unless ``dtype`` is one of :data:`DTYPES` (no torch)."""
    if dtype not in DTYPES:
        raise ConfigError(f"{owner}: dtype must be one of {list(DTYPES)}, got {dtype!r}")


def resolve_device(want: str, *, cuda: bool, mps: bool, owner: str = "ragnest") -> str:
    """The device to run on: ``auto`` picks cuda, else mps, else cpu; an explicit device
    that is not available is a :class:`ConfigError` (not a crash later on ``.to()``).

    >>> resolve_device("auto", cuda=False, mps=True)
    'mps'
    >>> resolve_device("cuda:1", cuda=True, mps=False)
    'cuda:1'
    """
    check_device(want, owner)
    if want == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if want.startswith("cuda") and not cuda:
        raise ConfigError(f"{owner}: device {want!r} asked for, but torch sees no CUDA device")
    if want == "mps" and not mps:
        raise ConfigError(f"{owner}: device 'mps' asked for, but torch sees no MPS device")
    return want


def resolve_dtype(want: str, *, device: str, bf16: bool, owner: str = "ragnest") -> str:
    """The dtype to load weights in: ``auto`` is bfloat16 on a CUDA device that supports
    it, else float32; an explicit dtype is kept.

    >>> resolve_dtype("auto", device="cuda:0", bf16=False), resolve_dtype("float16", device="cpu", bf16=False)
    ('float32', 'float16')
    """
    check_dtype(want, owner)
    if want == "auto":
        return "bfloat16" if device.startswith("cuda") and bf16 else "float32"
    return want


@dataclass(frozen=True)
class HfRuntime:
    """torch and transformers with the chosen device and dtype.

    >>> rt = HfRuntime.create(device="cpu")  # doctest: +SKIP
    >>> rt.device, rt.dtype  # doctest: +SKIP
    (device(type='cpu'), torch.float32)
    """

    torch: Any = field(repr=False)
    transformers: Any = field(repr=False)
    device: Any
    dtype: Any

    @classmethod
    def create(cls, *, device: str = "auto", dtype: str = "auto", owner: str = "ragnest") -> HfRuntime:
        """Import torch/transformers and resolve ``device`` / ``dtype`` (see
        :func:`resolve_device`, :func:`resolve_dtype`)."""
        check_device(device, owner)
        check_dtype(dtype, owner)
        torch, transformers = import_hf(owner)
        mps = getattr(torch.backends, "mps", None)
        dev = resolve_device(
            device,
            cuda=bool(torch.cuda.is_available()),
            mps=bool(mps is not None and mps.is_available()),
            owner=owner,
        )
        bf16 = dev.startswith("cuda") and bool(torch.cuda.is_bf16_supported())
        dt = resolve_dtype(dtype, device=dev, bf16=bf16, owner=owner)
        return cls(torch, transformers, torch.device(dev), getattr(torch, dt))

    def _class(self, class_name: str, owner: str, error: type[RagnestError]) -> Any:
        cls = getattr(self.transformers, class_name, None)
        if cls is None:
            raise error(
                f"{owner}: transformers {self.transformers.__version__} has no {class_name}: "
                "upgrade transformers"
            )
        return cls

    def load(
        self,
        class_name: str,
        name: str,
        *,
        owner: str,
        error: type[RagnestError] = RagnestError,
        model: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``transformers.<class_name>.from_pretrained(name, ...)`` under the load lock,
        offline-aware (:func:`load_kwargs`). ``model=True`` loads weights in the runtime's
        dtype, moves them to its device and sets eval mode. Loading failures become
        ``error`` naming ``owner`` and ``name``."""
        cls = self._class(class_name, owner, error)
        kw = {**load_kwargs(name), **kwargs}
        if model:
            kw.setdefault("dtype", self.dtype)
        with _LOAD_LOCK:
            try:
                obj = cls.from_pretrained(name, **kw)
            except (OSError, ValueError) as err:
                raise error(f"{owner}: cannot load {name!r}: {err}") from err
            if model:
                obj = obj.to(self.device).eval()
        return obj

    def to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """A processor batch on the device; floating tensors take the runtime's dtype."""
        torch = self.torch
        out: dict[str, Any] = {}
        for key, value in dict(batch).items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            out[key] = value
        return out

    def inference(self) -> contextlib.AbstractContextManager[Any]:
        """``torch.inference_mode()``: wrap every forward pass in it."""
        return self.torch.inference_mode()

    def free(self) -> None:
        """Give cached GPU memory back (after the model is dropped)."""
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()


@dataclass
class LoadedModel:
    """A loaded model with its pre-processing: what a transformers component keeps.

    ``processor`` (e.g. ``AutoProcessor``), ``tokenizer`` and ``image_processor`` are
    whichever the component loaded; ``info`` holds numbers read from the config
    (special token ids, merge size, the output dimension).
    """

    runtime: HfRuntime
    model: Any = field(repr=False)
    processor: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)
    image_processor: Any = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    def inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """``batch`` on the model's device and dtype (:meth:`HfRuntime.to_device`)."""
        return self.runtime.to_device(batch)

    def close(self) -> None:
        """Drop the model and free cached GPU memory."""
        self.model = None
        self.runtime.free()


def load_model(
    name: str,
    model_class: str,
    *,
    processor: str | None = None,
    tokenizer: str | None = None,
    image_processor: str | None = None,
    tokenizer_kwargs: Mapping[str, Any] | None = None,
    device: str = "auto",
    dtype: str = "auto",
    owner: str = "ragnest",
    error: type[RagnestError] = RagnestError,
    runtime: HfRuntime | None = None,
) -> LoadedModel:
    """Load a model and the pre-processing classes named (transformers class names) from
    ``name`` (a hub id or a local directory), on ``device`` in ``dtype``."""
    rt = runtime or HfRuntime.create(device=device, dtype=dtype, owner=owner)
    with _LOAD_LOCK:
        model = rt.load(model_class, name, owner=owner, error=error, model=True)
        parts = {
            key: rt.load(cls, name, owner=owner, error=error, **kw)
            for key, cls, kw in (
                ("processor", processor, {}),
                ("tokenizer", tokenizer, dict(tokenizer_kwargs or {})),
                ("image_processor", image_processor, {}),
            )
            if cls
        }
    return LoadedModel(rt, model, **parts)


# -- images -----------------------------------------------------------------------------
def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as err:
        raise MissingDependencyError(f"images for transformers models need pillow: {INSTALL}") from err
    return Image


def load_image(
    ref: ImageRef, *, max_pixels: int, renderer: Renderer | None = None, min_dpi: int | None = None
) -> Any:
    """The RGB ``PIL.Image`` of ``ref`` (rendered or loaded through :mod:`ragnest.media`,
    at most ``max_pixels``), by ``renderer`` (the caller's own, holding its open
    documents) or the process's default one. ``min_dpi`` renders document pages at least
    that sharp (still within ``max_pixels``): a model's pixel budget, not the dpi recorded
    at parse time, then decides the size. Raises :class:`~ragnest.errors.ParseError`
    naming the file."""
    from ragnest.media.render import render_array

    if min_dpi is not None and ref.source is not None and ref.page is not None:
        ref = replace(ref, dpi=max(ref.dpi, min_dpi))
    pixels = (renderer.array(ref, max_pixels=max_pixels) if renderer is not None
              else render_array(ref, max_pixels=max_pixels))
    return _pil().fromarray(pixels).convert("RGB")


def blank_image(size: int = 28, color: tuple[int, int, int] = (255, 255, 255)) -> Any:
    """A ``size`` x ``size`` RGB ``PIL.Image`` of one colour (e.g. DSE's dummy query image)."""
    return _pil().new("RGB", (size, size), color)


def render_images(
    refs: Sequence[ImageRef],
    *,
    max_pixels: int,
    where: Sequence[str] | None = None,
    renderer: Renderer | None = None,
    min_dpi: int | None = None,
) -> list[Any]:
    """:func:`load_image` for each ref; a ref that cannot be rendered (a moved file) gives
    ``None`` and a warning naming ``where[i]`` (e.g. ``"manual.pdf p.3"``)."""
    images = []
    for i, ref in enumerate(refs):
        try:
            images.append(load_image(ref, max_pixels=max_pixels, renderer=renderer,
                                     min_dpi=min_dpi))
        except ParseError as err:
            label = where[i] if where is not None else "image"
            logger.warning("%s: cannot render image: %s", label, err)
            images.append(None)
    return images


def vision_size(image_processor: Any, max_image_tokens: int, *, min_tokens: int = 1) -> dict[str, Any]:
    """Call-time ``size`` that caps a Qwen2-VL-style image processor at ``max_image_tokens``
    visual tokens per image (pixel areas in units of (patch x merge)^2; ``min_tokens`` is
    used when the processor declares no ``shortest_edge``)."""
    unit = int(getattr(image_processor, "patch_size", 14) or 14)
    unit *= int(getattr(image_processor, "merge_size", 2) or 2)
    size = dict(getattr(image_processor, "size", None) or {})
    longest = max_image_tokens * unit * unit
    shortest = min(int(size.get("shortest_edge", min_tokens * unit * unit)), longest)
    return {"size": {"shortest_edge": shortest, "longest_edge": longest}}


# -- tokens and prompts -----------------------------------------------------------------
def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens ``text`` takes, without special tokens."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def cut_tokens(tokenizer: Any, text: str, budget: int) -> tuple[str, int]:
    """``text`` cut to at most ``budget`` tokens at a token boundary, and the tokens kept
    (tokenizers without offsets: about 4 characters a token)."""
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        n = count_tokens(tokenizer, text)
        return (text, n) if n <= budget else (text[: budget * 4].rstrip(), budget)
    if len(offsets) <= budget:
        return text, len(offsets)
    return text[: offsets[budget - 1][1]].rstrip(), budget


def fit_text_budget(
    tokenizer: Any, parts: Sequence[Any], budget: int, *, joiner: str = "\n\n"
) -> list[Any]:
    """Ordered parts with adjacent text parts joined by ``joiner``, then every text part cut
    to a shared budget of ``budget`` tokens, in order (a part past the budget is cut at a
    token boundary, later ones dropped); other parts (images) are kept as they are."""
    merged: list[Any] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] = f"{merged[-1]}{joiner}{p}"
        else:
            merged.append(p)
    left, out = budget, []
    for p in merged:
        if not isinstance(p, str):
            out.append(p)
        elif left > 0:
            text, used = cut_tokens(tokenizer, p, left)
            left -= used
            if text:
                out.append(text)
    return out


def chat_messages(
    parts: Sequence[Any], *, role: str = "user", system: str | None = None
) -> list[dict[str, Any]]:
    """One chat message whose content is ``parts`` in order (strings are text parts,
    anything else an image slot), ready for ``apply_chat_template``.

    >>> chat_messages(["see", None, "and"])[0]["content"][1]
    {'type': 'image'}
    """
    content = [{"type": "text", "text": p} if isinstance(p, str) else {"type": "image"} for p in parts]
    messages: list[dict[str, Any]] = []
    if system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    messages.append({"role": role, "content": content})
    return messages

