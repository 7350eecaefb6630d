"""Tiny random-weight transformers models for tests, built offline from configs.

Every builder writes a checkpoint directory (``save_pretrained``) that components load
through the real ``from_pretrained`` path, with the same model and processor classes as
the real checkpoints; nothing is downloaded. Tiny models prove plumbing, never quality::

    from ragnest.testing.tiny_models import BUILDERS, VLM_BUILDERS
    path = VLM_BUILDERS["qwen2_vl"](tmp_path / "qwen2-vl")   # ~1 MB, well under a second
    reranker = VlmReranker(model=str(path), device="cpu")

``BUILDERS`` holds the embedder families (colqwen2, colpali, dse, clip, siglip),
``VLM_BUILDERS`` the image-text-to-text families (qwen2_vl, qwen2_5_vl, qwen3_vl,
idefics3). torch and transformers are imported on first use.
"""

from ragnest.testing.tiny_models._common import (
    QWEN2_VL_CHAT_TEMPLATE,
    QWEN_SPECIALS,
    corpus,
    qwen2_tokenizer,
    qwen_image_processor,
)
from ragnest.testing.tiny_models.embedders import (
    BUILDERS,
    build_clip,
    build_colpali,
    build_colqwen2,
    build_dse,
    build_siglip,
)
from ragnest.testing.tiny_models.vlms import (
    ANSWER_WORDS,
    LABEL_TOKENS,
    VLM_BUILDERS,
    build_idefics3,
    build_qwen2_5_vl,
    build_qwen2_vl,
    build_qwen3_vl,
)

__all__ = [
    "ANSWER_WORDS",
    "BUILDERS",
    "LABEL_TOKENS",
    "VLM_BUILDERS",
    "build_idefics3",
    "build_qwen2_5_vl",
    "build_qwen2_vl",
    "build_qwen3_vl",
    "QWEN2_VL_CHAT_TEMPLATE",
    "QWEN_SPECIALS",
    "build_clip",
    "build_colpali",
    "build_colqwen2",
    "build_dse",
    "build_siglip",
    "corpus",
    "qwen2_tokenizer",
    "qwen_image_processor",
]
