"""The transformers runtime: the only part of ragnest that imports torch and transformers.

Every transformers component (embedders, the vision-language reranker and generator)
builds on it instead of on another component. torch and transformers are imported on
first use, so importing it is cheap. Its modules, by job:

* :mod:`ragnest._hf.runtime` -- device and dtype, offline loading under one lock,
  batches on the device, images from refs, token counting, chat messages from parts;
* :mod:`ragnest._hf.vlm` -- image-text-to-text models (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
  Idefics3/SmolVLM): loading with ``AutoProcessor`` (or the tokenizer and image processor
  where the processor cannot load), chat prompts, how a family turns pixels into visual
  tokens, left-padded batches, last-position logits of answer tokens;
* :mod:`ragnest._hf.stream` -- generation in a worker thread with ``TextIteratorStreamer``;
* :mod:`ragnest._hf.prune` -- FastV-style pruning of image tokens inside the model.
"""

from ragnest._hf.runtime import (
    DEVICES,
    DTYPES,
    INSTALL,
    HfRuntime,
    LoadedModel,
    blank_image,
    chat_messages,
    check_device,
    check_dtype,
    count_tokens,
    cut_tokens,
    fit_text_budget,
    import_hf,
    load_image,
    load_kwargs,
    load_lock,
    load_model,
    offline,
    render_images,
    resolve_device,
    resolve_dtype,
    vision_size,
)

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
