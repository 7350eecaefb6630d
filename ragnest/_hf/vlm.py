"""Image-text-to-text models: Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Idefics3 (SmolVLM).

:class:`Vlm` is what the vision-language reranker and generator keep: the model
(``AutoModelForImageTextToText``), its pre-processing, the family's
:class:`VisionLayout` (how pixels become visual tokens) and the calls they make -- a chat
prompt from ordered parts, a left-padded batch, the last-position logits of answer
tokens in one forward pass::

    vlm = Vlm.load("Qwen/Qwen2-VL-2B-Instruct", runtime=HfRuntime.create(device="cpu"),
                   owner="reranker/vlm", error=RerankError)
    prompt = vlm.prompt([None, "Is this page about descaling? Answer yes or no."])
    image = image.resize(vlm.layout.fit_pixels(*image.size, max_pixels=448 * 448))
    logits = vlm.last_logits(vlm.encode([prompt], [image]), [vlm.answer_token("yes")])

Pre-processing: ``AutoProcessor`` when it loads. The Qwen processors need a video
processor, which needs torchvision; where that cannot load (this build machine: torchvision
does not import beside its torch), the inputs are assembled from the tokenizer's chat
template and the image processor exactly as the processor would (``<|image_pad|>``
expanded per image from ``image_grid_thw``, ``mm_token_type_ids`` marking image tokens,
which the forward needs for M-RoPE). Images always reach the processor at their final size
-- multiples of the family's :attr:`VisionLayout.unit` chosen by ragnest -- and are never
resized again, so the visual tokens ragnest counts are the ones the model reads.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragnest._hf.runtime import HfRuntime, LoadedModel, chat_messages, load_kwargs, load_lock
from ragnest.errors import ConfigError, MissingDependencyError, RagnestError

__all__ = [
    "BOX_STYLES",
    "FAMILIES",
    "VisionLayout",
    "Vlm",
    "smart_size",
]

logger = logging.getLogger(__name__)

#: ``config.model_type`` -> the input style ragnest knows for it.
FAMILIES: dict[str, str] = {
    "qwen2_vl": "qwen",
    "qwen2_5_vl": "qwen",
    "qwen3_vl": "qwen",
    "qwen3_vl_moe": "qwen",
    "idefics3": "idefics3",
    "smolvlm": "idefics3",
}
#: How each family writes grounding boxes: Qwen2-VL ``<|box_start|>(x0,y0),(x1,y1)<|box_end|>``
#: in 0..1000; Qwen2.5-VL JSON ``bbox_2d`` in pixels of the image it saw; Qwen3-VL JSON in 0..1000.
BOX_STYLES: dict[str, str] = {
    "qwen2_vl": "qwen2",
    "qwen2_5_vl": "qwen2.5",
    "qwen3_vl": "qwen3",
    "qwen3_vl_moe": "qwen3",
}
_IMAGE_PAD = "<|image_pad|>"
_IDEFICS_MAX_SIDE = 4096  # Idefics3's image processor never goes past this


def smart_size(width: int, height: int, unit: int, *, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """``(w, h)``, multiples of ``unit`` near ``width x height`` with the area within
    ``[min_pixels, max_pixels]``: Qwen2-VL's ``smart_resize`` (which its processor applies).

    >>> smart_size(595, 842, 28, min_pixels=3136, max_pixels=256 * 28 * 28)
    (364, 532)
    """
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    w = max(unit, round(width / unit) * unit)
    h = max(unit, round(height / unit) * unit)
    if w * h > max_pixels:
        beta = math.sqrt(width * height / max_pixels)
        w = max(unit, math.floor(width / beta / unit) * unit)
        h = max(unit, math.floor(height / beta / unit) * unit)
    elif w * h < min_pixels:
        beta = math.sqrt(min_pixels / (width * height))
        w = math.ceil(width * beta / unit) * unit
        h = math.ceil(height * beta / unit) * unit
    return w, h


@dataclass(frozen=True)
class VisionLayout:
    """How a model family turns an image into visual tokens.

    The image is a grid of cells of ``unit`` pixels: a merged 2x2 patch block for the
    Qwen family (one token each: 28 px, 32 for Qwen3-VL), a tile for Idefics3
    (``tokens_per_unit`` tokens each; a split image also gets one global tile).
    ``default_pixels`` is what the processor resizes to by default: ``(min, max)`` pixel
    areas (Qwen) or ``(longest edge, 0)`` (Idefics3).

    >>> qwen = VisionLayout("qwen2_vl", unit=28, default_pixels=(3136, 1280 * 784))
    >>> qwen.tokens(448, 336), qwen.units(300)
    (192, 300)
    >>> smol = VisionLayout("idefics3", unit=512, tokens_per_unit=64, global_tile=True,
    ...                     default_pixels=(2048, 0))
    >>> smol.tokens(1024, 1536), smol.units(64 * 3), smol.default_size(595, 842)
    (448, 2, (1536, 2048))
    """

    family: str
    unit: int
    tokens_per_unit: int = 1
    global_tile: bool = False
    default_pixels: tuple[int, int] = (0, 0)
    max_units: int | None = None

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """``(cols, rows)`` of cells an image of this size takes."""
        return max(1, math.ceil(width / self.unit)), max(1, math.ceil(height / self.unit))

    def tokens(self, width: int, height: int) -> int:
        """Visual tokens the model reads for an image of ``width x height`` (a size this
        layout produced: multiples of :attr:`unit`)."""
        cols, rows = self.grid(width, height)
        cells = cols * rows
        if self.global_tile and cells > 1:
            cells += 1
        return cells * self.tokens_per_unit

    def units(self, tokens: int) -> int:
        """The most grid cells an image can have within ``tokens`` visual tokens (0: not
        even one)."""
        cells = tokens // self.tokens_per_unit
        if self.global_tile:
            cells = cells - 1 if cells >= 3 else min(cells, 1)  # a split image pays a global tile
        return cells if self.max_units is None else min(cells, self.max_units)

    def default_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the processor would resize ``width x height`` to by default."""
        if FAMILIES.get(self.family) == "idefics3":
            longest = self.default_pixels[0] or max(width, height)
            scale = min(longest, _IDEFICS_MAX_SIDE) / max(width, height)
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            return self._cells(w, h, math.ceil)
        low, high = self.default_pixels
        return smart_size(width, height, self.unit, min_pixels=low or self.unit**2,
                          max_pixels=high or 1280 * self.unit**2)

    def fit_pixels(self, width: int, height: int, *, max_pixels: int) -> tuple[int, int]:
        """A size in whole cells near ``width x height`` with at most ``max_pixels``
        pixels (at least one cell): the reranker's image budget."""
        w, h = smart_size(width, height, self.unit, min_pixels=self.unit**2,
                          max_pixels=max(max_pixels, self.unit**2))
        return min(w, _IDEFICS_MAX_SIDE), min(h, _IDEFICS_MAX_SIDE)

    def _cells(self, w: int, h: int, rounding: Any) -> tuple[int, int]:
        u = self.unit
        return max(u, rounding(w / u) * u), max(u, rounding(h / u) * u)


class Vlm:
    """A loaded image-text-to-text model and how to talk to it (see the module docs)."""

    def __init__(self, loaded: LoadedModel, *, name: str, family: str, layout: VisionLayout,
                 owner: str, error: type[RagnestError]) -> None:
        self.loaded = loaded
        self.name = name
        self.family = family
        self.layout = layout
        self.owner = owner
        self.error = error
        tok = self.tokenizer
        cfg = loaded.model.config
        image_token = "<image>" if FAMILIES[family] == "idefics3" else _IMAGE_PAD
        self.image_token_id = int(getattr(cfg, "image_token_id", None)
                                  or tok.convert_tokens_to_ids(image_token))
        specials = [t for t in getattr(tok, "all_special_tokens", []) if t]
        self._specials = re.compile("|".join(re.escape(t) for t in sorted(specials, key=len,
                                                                           reverse=True)))
        self._keep_logits = "logits_to_keep" in inspect.signature(loaded.model.forward).parameters

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        name: str,
        *,
        runtime: HfRuntime,
        owner: str,
        error: type[RagnestError] = RagnestError,
        adapter: str | None = None,
        chat_template: str | None = None,
    ) -> Vlm:
        """Load ``name`` (a hub id or a local directory) with ``AutoModelForImageTextToText``
        and its pre-processing; ``adapter`` is a PEFT adapter (e.g. a LoRA reranker such as
        MonoQwen2-VL) loaded on top. :class:`~ragnest.errors.ConfigError` for a family
        ragnest does not know and for a model without a chat template."""
        with load_lock():
            model = runtime.load("AutoModelForImageTextToText", name, owner=owner, error=error,
                                 model=True)
            model_type = str(getattr(model.config, "model_type", ""))
            if model_type not in FAMILIES:
                raise ConfigError(
                    f"{owner}: {name!r} is a {model_type or 'model of unknown type'}; supported "
                    f"families: {', '.join(sorted(FAMILIES))}")
            if adapter:
                _load_adapter(model, adapter, owner=owner, error=error)
            processor = _auto_processor(runtime, name, owner=owner, style=FAMILIES[model_type])
            if processor is not None:
                tokenizer, image_processor = processor.tokenizer, processor.image_processor
            else:
                tokenizer = runtime.load("AutoTokenizer", name, owner=owner, error=error,
                                         padding_side="left")
                image_processor = runtime.load("AutoImageProcessor", name, owner=owner,
                                               error=error)
        tokenizer.padding_side = "left"
        holder = processor if processor is not None else tokenizer
        if not chat_template and not getattr(holder, "chat_template", None):
            chat_template = _processor_template(runtime, name)  # kept beside the processor
        if chat_template:
            holder.chat_template = chat_template
            tokenizer.chat_template = chat_template
        if not getattr(holder, "chat_template", None):
            raise ConfigError(
                f"{owner}: {name!r} has no chat template (a base checkpoint?); use an instruct "
                "checkpoint or give the template in the 'chat_template' parameter")
        loaded = LoadedModel(runtime, model, processor=processor, tokenizer=tokenizer,
                             image_processor=image_processor)
        layout = _layout(model_type, image_processor, processor, model.config)
        loaded.info.update(model_type=model_type, unit=layout.unit)
        return cls(loaded, name=name, family=model_type, layout=layout, owner=owner, error=error)

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def processor(self) -> Any:
        return self.loaded.processor

    @property
    def box_style(self) -> str | None:
        """How this family writes grounding boxes (:data:`BOX_STYLES`), or ``None``."""
        return BOX_STYLES.get(self.family)

    def close(self) -> None:
        self.loaded.close()

    # -- prompts ----------------------------------------------------------------------
    def clean_text(self, text: str) -> str:
        """``text`` without the tokenizer's special tokens (page text must not smuggle
        image slots or turn markers into a prompt)."""
        return self._specials.sub("", text) if self._specials.pattern else text

    def prompt(self, parts: Sequence[str | None], *, system: str | None = None) -> str:
        """The chat prompt of one user message whose content is ``parts`` in order (a
        string is text, ``None`` an image slot), ending with the generation prompt."""
        clean = [p if p is None else self.clean_text(p) for p in parts]
        holder = self.processor if self.processor is not None else self.tokenizer
        return holder.apply_chat_template(chat_messages(clean, system=system), tokenize=False,
                                          add_generation_prompt=True)

    def answer_token(self, word: str) -> int:
        """The one token the model answers ``word`` with, right after the generation
        prompt (``yes`` after ``assistant\\n``; `` yes`` after ``Assistant:``).
        :class:`~ragnest.errors.ConfigError` when it takes several tokens."""
        head = self.prompt(["?"])
        spaced = head and not head[-1].isspace() and not word[:1].isspace()
        candidate = f" {word}" if spaced else word
        base = self.tokenizer(head, add_special_tokens=False)["input_ids"]
        full = self.tokenizer(head + candidate, add_special_tokens=False)["input_ids"]
        extra = full[len(base):]
        if full[: len(base)] != base or len(extra) != 1:
            pieces = self.tokenizer.convert_ids_to_tokens(
                self.tokenizer(candidate, add_special_tokens=False)["input_ids"])
            raise ConfigError(
                f"{self.owner}: the answer {candidate!r} is {len(pieces)} tokens for the "
                f"tokenizer of {self.name!r} ({pieces}); a one-pass score needs single-token "
                "answers: choose another preset or set yes_token/no_token")
        return int(extra[0])

    # -- inputs -----------------------------------------------------------------------
    def encode(self, prompts: Sequence[str], images: Sequence[Any] = ()) -> dict[str, Any]:
        """A left-padded batch (CPU tensors) for ``prompts``; ``images`` (PIL, multiples
        of :attr:`VisionLayout.unit`) fill the prompts' image slots in order and are not
        resized again."""
        images = list(images)
        if self.processor is not None:
            kwargs: dict[str, Any] = {"images_kwargs": {"do_resize": False}} if images else {}
            batch = self.processor(text=list(prompts), images=images or None, padding=True,
                                   return_tensors="pt", **kwargs)
            return dict(batch)
        return self._assemble(prompts, images)

    def _assemble(self, prompts: Sequence[str], images: Sequence[Any]) -> dict[str, Any]:
        """What the Qwen processors build, from the tokenizer and the image processor."""
        pixels: dict[str, Any] = {}
        counts: list[int] = []
        if images:
            ip = self.loaded.image_processor
            pixels = dict(ip(images=images, return_tensors="pt", do_resize=False))
            merge = int(getattr(ip, "merge_size", 2)) ** 2
            counts = [int(t.prod()) // merge for t in pixels["image_grid_thw"]]
        texts, k = [], 0
        for prompt in prompts:
            pieces = prompt.split(_IMAGE_PAD)
            if k + len(pieces) - 1 > len(counts):
                raise self.error(f"{self.owner}: the prompts have more image slots than images")
            text = pieces[0]
            for piece in pieces[1:]:
                text += _IMAGE_PAD * counts[k] + piece
                k += 1
            texts.append(text)
        if k != len(counts):
            raise self.error(f"{self.owner}: {len(counts)} images for {k} image slots")
        enc = self.tokenizer(texts, padding="longest", return_tensors="pt")
        enc["mm_token_type_ids"] = (enc["input_ids"] == self.image_token_id).long()
        return {**dict(enc), **pixels}

    def visual_tokens(self, batch: dict[str, Any]) -> list[int]:
        """Image tokens in each row of a batch (what the language model reads)."""
        return [int(n) for n in (batch["input_ids"] == self.image_token_id).sum(dim=1).tolist()]

    # -- scoring ----------------------------------------------------------------------
    def last_logits(self, batch: dict[str, Any], token_ids: Sequence[int]) -> list[list[float]]:
        """The last position's logits of ``token_ids`` for every row, from ONE forward pass
        (left padding puts every row's last real token last); float32 values."""
        inputs = self.loaded.inputs(batch)
        extra = {"logits_to_keep": 1} if self._keep_logits else {}
        with self.loaded.runtime.inference():
            logits = self.model(**inputs, **extra).logits[:, -1, :]
            picked = logits[:, list(token_ids)].float().cpu()
        return picked.tolist()


def _auto_processor(runtime: HfRuntime, name: str, *, owner: str, style: str) -> Any:
    """``AutoProcessor`` for ``name``, or ``None`` where it cannot load and ragnest can
    assemble the inputs itself (the Qwen family without torchvision)."""
    try:
        with load_lock():
            proc = runtime.transformers.AutoProcessor.from_pretrained(name, **load_kwargs(name))
    except (ImportError, OSError, ValueError, TypeError, AttributeError, KeyError) as err:
        if style != "qwen":
            raise ConfigError(f"{owner}: cannot load the processor of {name!r}: {err}") from err
        logger.info("%s: AutoProcessor cannot load %s (%s); assembling inputs from its "
                    "tokenizer and image processor", owner, name, str(err).strip().splitlines()[0]
                    if str(err).strip() else type(err).__name__)
        return None
    if not (hasattr(proc, "tokenizer") and hasattr(proc, "image_processor")):
        if style != "qwen":
            raise ConfigError(f"{owner}: {name!r} has no image processor")
        return None
    return proc


def _processor_template(runtime: HfRuntime, name: str) -> str | None:
    """The chat template a checkpoint keeps for its processor (``chat_template.jinja`` or
    the older ``chat_template.json``), for when only its tokenizer could be loaded."""
    import json

    cached_file = runtime.transformers.utils.cached_file
    for filename in ("chat_template.jinja", "chat_template.json"):
        try:
            path = cached_file(name, filename, _raise_exceptions_for_missing_entries=False,
                               _raise_exceptions_for_connection_errors=False, **load_kwargs(name))
        except (OSError, ValueError):
            path = None
        if path:
            text = Path(path).read_text(encoding="utf-8")
            return text if filename.endswith(".jinja") else json.loads(text).get("chat_template")
    return None


def _layout(model_type: str, ip: Any, processor: Any, config: Any) -> VisionLayout:
    if FAMILIES[model_type] == "idefics3":
        tile = int((getattr(ip, "max_image_size", None) or {}).get("longest_edge", 364))
        seq = int(getattr(processor, "image_seq_len", 0) or 0)
        if not seq:
            vis = config.vision_config
            seq = (int(vis.image_size) // int(vis.patch_size)) ** 2 // int(config.scale_factor) ** 2
        split = bool(getattr(ip, "do_image_splitting", True))
        longest = int((getattr(ip, "size", None) or {}).get("longest_edge", 4 * tile))
        return VisionLayout(model_type, unit=tile, tokens_per_unit=seq, global_tile=split,
                            default_pixels=(longest if split else tile, 0),
                            max_units=None if split else 1)
    unit = int(getattr(ip, "patch_size", 14) or 14) * int(getattr(ip, "merge_size", 2) or 2)
    size = dict(getattr(ip, "size", None) or {})
    low = int(size.get("shortest_edge") or getattr(ip, "min_pixels", 0) or 56 * 56)
    high = int(size.get("longest_edge") or getattr(ip, "max_pixels", 0) or 1280 * unit * unit)
    return VisionLayout(model_type, unit=unit, default_pixels=(low, high))


def _load_adapter(model: Any, adapter: str, *, owner: str, error: type[RagnestError]) -> None:
    try:
        import peft  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            f"{owner}: the adapter {adapter!r} needs peft: pip install 'ragnest[hf]' peft") from err
    try:
        model.load_adapter(adapter, **load_kwargs(adapter))
    except (OSError, ValueError) as err:
        raise error(f"{owner}: cannot load the adapter {adapter!r}: {err}") from err
