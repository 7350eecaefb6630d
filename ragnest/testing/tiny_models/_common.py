"""What every tiny-model builder shares: a synthetic corpus, small BPE tokenizers in the
styles real checkpoints use, Qwen2-VL's chat template and special tokens, a tiny Qwen2-VL
configuration. transformers and torch come through :func:`ragnest._hf.import_hf`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ragnest._hf import import_hf

__all__ = [
    "QWEN2_VL_CHAT_TEMPLATE",
    "QWEN_SPECIALS",
    "corpus",
    "qwen2_tokenizer",
    "transformers",
]


def transformers() -> Any:
    """The transformers module (imported on first use)."""
    return import_hf("ragnest.testing.tiny_models")[1]


def _torch() -> Any:
    return import_hf("ragnest.testing.tiny_models")[0]


QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>", "<|vision_pad|>",
]

_WORDS = (
    "the espresso machine descaling water tank warranty repair coffee beans grind tamp brew "
    "page figure table chart invoice total amount date report quarterly revenue growth "
    "describe image query question what is shown in this picture a photo of cat dog red "
    "blue green manual chapter section install remove filter pump pressure valve steam"
).split()


def corpus(n: int = 400) -> list[str]:
    """Deterministic synthetic lines over a small vocabulary (plus digits/punctuation)."""
    out = []
    for i in range(n):
        words = [_WORDS[(i * 7 + j * 13) % len(_WORDS)] for j in range(5 + i % 7)]
        out.append(" ".join(words) + f" {i % 97}. Query: Question? Describe!")
    return out


def _bpe(
    *, vocab_size: int, style: str, extra_lines: Sequence[str] = ()
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a BPE on :func:`corpus` (plus ``extra_lines``): ``bytelevel`` (Qwen2/GPT2),
    ``metaspace`` (Gemma, byte fallback) or ``clip`` (byte-level with a ``</w>`` suffix)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if style == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False)
    elif style == "metaspace":
        tok = Tokenizer(models.BPE(byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never")
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False)
    elif style == "clip":
        tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=alphabet, end_of_word_suffix="</w>",
            show_progress=False)
    else:  # pragma: no cover
        raise ValueError(style)
    lines = corpus() + list(extra_lines)
    if style == "clip":
        lines = [s.lower() for s in lines]
    tok.train_from_iterator(lines, trainer)
    data = json.loads(tok.to_str())["model"]
    vocab: dict[str, int] = dict(data["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["merges"]]

    def add(token: str) -> None:
        if token not in vocab:
            vocab[token] = len(vocab)

    if style == "metaspace":
        for b in range(256):
            add(f"<0x{b:02X}>")
    if style == "clip":
        for ch in pre_tokenizers.ByteLevel.alphabet():
            add(ch)
            add(ch + "</w>")
    # re-number densely (ids must be 0..n-1)
    vocab = {t: i for i, t in enumerate(sorted(vocab, key=vocab.__getitem__))}
    return vocab, merges


def _round_up(n: int, to: int = 64) -> int:
    return -(-n // to) * to


def qwen2_tokenizer(
    padding_side: str = "left", *, extra_lines: Sequence[str] = (), specials: Sequence[str] = ()
) -> Any:
    """A Qwen2 tokenizer on a tiny byte-level BPE with Qwen's special tokens (and
    ``specials``), trained on :func:`corpus` plus ``extra_lines``."""
    tf = transformers()
    vocab, merges = _bpe(vocab_size=600, style="bytelevel", extra_lines=extra_lines)
    tok = tf.Qwen2Tokenizer(vocab=vocab, merges=merges, padding_side=padding_side)
    wanted = [t for t in QWEN_SPECIALS if t != "<|endoftext|>"] + list(specials)
    tok.add_special_tokens(
        {"additional_special_tokens": [tf.AddedToken(t, special=True, normalized=False)
                                       for t in wanted]})
    return tok


def _qwen2_vl_config(tok: Any, *, hidden: int = 64) -> Any:
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    heads, head_dim = 4, hidden // 4  # mrope_section must sum to head_dim / 2
    half = head_dim // 2
    t = half // 4
    mrope = [half - 2 * ((half - t) // 2), (half - t) // 2, (half - t) // 2]
    return transformers().Qwen2VLConfig(
        text_config={
            "vocab_size": _round_up(len(tok)), "hidden_size": hidden, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": heads, "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": mrope},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2, "embed_dim": 32, "hidden_size": hidden, "num_heads": 2, "mlp_ratio": 2,
            "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )


def qwen_image_processor(max_tokens: int = 16) -> Any:
    return transformers().Qwen2VLImageProcessor(
        size={"shortest_edge": 4 * 28 * 28, "longest_edge": max_tokens * 28 * 28})


def _randomize_biases(model: Any, seed: int = 0) -> None:
    """Random models have zero biases; give the projection small random values so padded
    rows are not 0/0 (see measured-facts: the ColQwen2 pitfall)."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and ("proj" in name or "custom_text" in name):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def tf_names(*names: str) -> Any:
    """``transformers.<name>`` for each name, as a tuple (one name: the object itself)."""
    tf = transformers()
    found = tuple(getattr(tf, n) for n in names)
    return found[0] if len(found) == 1 else found
