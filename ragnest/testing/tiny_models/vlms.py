"""Tiny random-weight image-text-to-text models (the VLM reranker and generator tests).

One builder per family, each writing a checkpoint that loads through
``AutoModelForImageTextToText.from_pretrained`` with the real model class, the real chat
template and the real image processor class:

* ``qwen2_vl`` (``Qwen2VLForConditionalGeneration``), ``qwen2_5_vl``
  (``Qwen2_5_VLForConditionalGeneration``) and ``qwen3_vl``
  (``Qwen3VLForConditionalGeneration``, patch 16): tokenizer + ``Qwen2VLImageProcessor``
  saved side by side, no processor object -- ``Qwen2VLProcessor`` and its siblings need a
  video processor, which needs torchvision (not installable beside this torch build), so
  ``AutoProcessor`` cannot load them here and :mod:`ragnest._hf.vlm` assembles the inputs
  itself (the fallback path);
* ``idefics3`` (``Idefics3ForConditionalGeneration``, the SmolVLM-500M architecture): a
  real ``Idefics3Processor`` (no video half), loaded through ``AutoProcessor``.

The tokenizers know the reranker answer words (``yes``, ``no``, ``True``, ``False``) as
single tokens, with and without a leading space, and the evidence labels ``[P1]`` ..
``[P9]`` as added tokens, so a deliberately biased head can answer or cite in one token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragnest.testing.tiny_models._common import (
    QWEN2_VL_CHAT_TEMPLATE,
    QWEN_SPECIALS,
    _bpe,
    _qwen2_vl_config,
    _round_up,
    _torch,
    qwen2_tokenizer,
    transformers,
)

__all__ = [
    "ANSWER_WORDS",
    "IDEFICS3_CHAT_TEMPLATE",
    "LABEL_TOKENS",
    "VLM_BUILDERS",
    "build_idefics3",
    "build_qwen2_5_vl",
    "build_qwen2_vl",
    "build_qwen3_vl",
]

#: Words the reranker presets answer with: single tokens in every tiny tokenizer.
ANSWER_WORDS = ("yes", "no", "True", "False")
#: Evidence labels, one added token each (so a biased head can cite in one token).
LABEL_TOKENS = tuple(f"[P{i}]" for i in range(1, 10))

#: SmolVLM / Idefics3's chat template (as shipped with HuggingFaceTB/SmolVLM-*-Instruct).
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

_IDEFICS3_SPECIALS = (
    ["<|im_start|>", "<|endoftext|>", "<fake_token_around_image>", "<image>",
     "<end_of_utterance>", "<global-img>"]
    + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
)


def _answer_lines() -> list[str]:
    """Lines that make every answer word a single token, at a line start (``yes``) and
    after a space (`` yes``)."""
    words = list(ANSWER_WORDS)
    return [f"{w} " + " ".join(words) for w in words for _ in range(40)]


def _add_labels(tok: Any) -> Any:
    tf = transformers()
    tok.add_tokens([tf.AddedToken(t, special=False, normalized=False) for t in LABEL_TOKENS])
    return tok


def _qwen_tokenizer() -> Any:
    tok = _add_labels(qwen2_tokenizer("left", extra_lines=_answer_lines(),
                                      specials=["<|box_start|>", "<|box_end|>"]))
    tok.chat_template = QWEN2_VL_CHAT_TEMPLATE
    return tok


def _mrope(head_dim: int) -> list[int]:
    half = head_dim // 2
    t = half // 4
    return [half - 2 * ((half - t) // 2), (half - t) // 2, (half - t) // 2]


def _save_qwen(path: Path, model: Any, tok: Any, patch: int) -> Path:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    ip = transformers().Qwen2VLImageProcessor(
        patch_size=patch, merge_size=2,
        size={"shortest_edge": 4 * (2 * patch) ** 2, "longest_edge": 256 * (2 * patch) ** 2})
    ip.save_pretrained(path)
    return Path(path)


def build_qwen2_vl(path: Path) -> Path:
    """A Qwen2-VL checkpoint (2 text layers, width 64; patch 14, merge 2: 28 px a token)."""
    _torch().manual_seed(0)
    tok = _qwen_tokenizer()
    model = transformers().Qwen2VLForConditionalGeneration(_qwen2_vl_config(tok)).eval()
    return _save_qwen(path, model, tok, 14)


def _qwen_ids(tok: Any) -> dict[str, int]:
    return {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}


def _qwen_text_config(tok: Any, hidden: int, rope_dim: int, **extra: Any) -> dict[str, Any]:
    ids = _qwen_ids(tok)
    return {
        "vocab_size": _round_up(len(tok)), "hidden_size": hidden, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                            "mrope_section": _mrope(rope_dim)},
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"], **extra,
    }


def _vision_ids(tok: Any) -> dict[str, int]:
    ids = _qwen_ids(tok)
    return {"image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
            "vision_start_token_id": ids["<|vision_start|>"],
            "vision_end_token_id": ids["<|vision_end|>"]}


def build_qwen2_5_vl(path: Path) -> Path:
    """A Qwen2.5-VL checkpoint (window attention in the vision tower; patch 14, merge 2)."""
    tf = transformers()
    _torch().manual_seed(0)
    tok = _qwen_tokenizer()
    hidden = 64
    config = tf.Qwen2_5_VLConfig(
        text_config=_qwen_text_config(tok, hidden, hidden // 4),
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2,
                       "temporal_patch_size": 2, "window_size": 112,
                       "fullatt_block_indexes": [1]},
        **_vision_ids(tok),
    )
    model = tf.Qwen2_5_VLForConditionalGeneration(config).eval()
    return _save_qwen(path, model, tok, 14)


def build_qwen3_vl(path: Path) -> Path:
    """A Qwen3-VL checkpoint (interleaved M-RoPE, deepstack; patch 16, merge 2: 32 px)."""
    tf = transformers()
    _torch().manual_seed(0)
    tok = _qwen_tokenizer()
    hidden, head_dim = 64, 16
    text = _qwen_text_config(tok, hidden, head_dim, head_dim=head_dim)
    text["rope_parameters"]["mrope_interleaved"] = True
    config = tf.Qwen3VLConfig(
        text_config=text,
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": hidden, "patch_size": 16, "spatial_merge_size": 2,
                       "temporal_patch_size": 2, "num_position_embeddings": 64,
                       "deepstack_visual_indexes": [1]},
        **_vision_ids(tok),
    )
    model = tf.Qwen3VLForConditionalGeneration(config).eval()
    return _save_qwen(path, model, tok, 16)


def build_idefics3(path: Path, *, tile: int = 64) -> Path:
    """An Idefics3 checkpoint (SmolVLM's architecture) with its processor: ``tile`` px tiles
    of 4 visual tokens each (vision patch 16, pixel shuffle 2), images split into tiles plus
    one global tile."""
    tf = transformers()
    _torch().manual_seed(0)
    vocab, merges = _bpe(vocab_size=600, style="bytelevel", extra_lines=_answer_lines())
    tok = tf.GPT2Tokenizer(vocab=vocab, merges=merges, padding_side="left",
                           unk_token="<|endoftext|>", bos_token="<|im_start|>",
                           eos_token="<end_of_utterance>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": [
        tf.AddedToken(t, special=True, normalized=False) for t in _IDEFICS3_SPECIALS]})
    _add_labels(tok)
    patch, scale = 16, 2
    seq_len = (tile // patch) ** 2 // scale**2
    ip = tf.Idefics3ImageProcessor(size={"longest_edge": 4 * tile},
                                   max_image_size={"longest_edge": tile})
    processor = tf.Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=seq_len,
                                     chat_template=IDEFICS3_CHAT_TEMPLATE)
    tok = processor.tokenizer
    config = tf.Idefics3Config(
        text_config={"model_type": "llama", "vocab_size": _round_up(len(tok)), "hidden_size": 64,
                     "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 2048,
                     "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
                     "eos_token_id": tok.convert_tokens_to_ids("<end_of_utterance>")},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": tile, "patch_size": patch},
        scale_factor=scale,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id,
    )
    model = tf.Idefics3ForConditionalGeneration(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return Path(path)


VLM_BUILDERS = {
    "qwen2_vl": build_qwen2_vl,
    "qwen2_5_vl": build_qwen2_5_vl,
    "qwen3_vl": build_qwen3_vl,
    "idefics3": build_idefics3,
}
