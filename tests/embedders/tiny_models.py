"""Tiny random-weight models for the hf embedder tests, built offline from configs.

Each builder writes a checkpoint directory (``save_pretrained``) that the embedders load
through the real ``from_pretrained`` path. Recipes follow ``shared/notes/measured-facts.md``:
a small BPE trained with ``tokenizers`` is handed to the model's own tokenizer class, every
token id the config needs comes from that tokenizer, and ``vocab_size`` covers it.
Tiny models prove plumbing, never quality.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

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


def _bpe(*, vocab_size: int, style: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a BPE on :func:`corpus`: ``bytelevel`` (Qwen2/GPT2), ``metaspace`` (Gemma,
    byte fallback) or ``clip`` (byte-level with a ``</w>`` suffix)."""
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
    lines = corpus()
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


def qwen2_tokenizer(padding_side: str = "left") -> Any:
    from transformers import AddedToken, Qwen2Tokenizer

    vocab, merges = _bpe(vocab_size=600, style="bytelevel")
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, padding_side=padding_side)
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False)
                                       for t in QWEN_SPECIALS if t != "<|endoftext|>"]})
    return tok


def _qwen2_vl_config(tok: Any, *, hidden: int = 64) -> Any:
    from transformers import Qwen2VLConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    heads, head_dim = 4, hidden // 4  # mrope_section must sum to head_dim / 2
    half = head_dim // 2
    t = half // 4
    mrope = [half - 2 * ((half - t) // 2), (half - t) // 2, (half - t) // 2]
    return Qwen2VLConfig(
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


def _qwen_image_processor(max_tokens: int = 16) -> Any:
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor(
        size={"shortest_edge": 4 * 28 * 28, "longest_edge": max_tokens * 28 * 28})


def _randomize_biases(model: Any, seed: int = 0) -> None:
    """Random models have zero biases; give the projection small random values so padded
    rows are not 0/0 (see measured-facts: the ColQwen2 pitfall)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and ("proj" in name or "custom_text" in name):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def build_colqwen2(path: Path, *, embedding_dim: int = 128) -> Path:
    import torch
    from transformers import ColQwen2Config, ColQwen2ForRetrieval, ColQwen2Processor

    torch.manual_seed(0)
    tok = qwen2_tokenizer("left")
    config = ColQwen2Config(vlm_config=_qwen2_vl_config(tok), embedding_dim=embedding_dim)
    model = ColQwen2ForRetrieval(config).eval()
    _randomize_biases(model)
    processor = ColQwen2Processor(image_processor=_qwen_image_processor(), tokenizer=tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return Path(path)


def build_dse(path: Path) -> Path:
    """A Qwen2-VL checkpoint (``Qwen2VLForConditionalGeneration``) for the DSE embedder:
    model, tokenizer (with the real chat template) and image processor. No processor
    object: ``Qwen2VLProcessor`` needs torchvision for its video processor, and the
    embedder assembles inputs from the tokenizer and image processor itself."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    torch.manual_seed(0)
    tok = qwen2_tokenizer("left")
    tok.chat_template = QWEN2_VL_CHAT_TEMPLATE
    model = Qwen2VLForConditionalGeneration(_qwen2_vl_config(tok)).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    _qwen_image_processor().save_pretrained(path)
    return Path(path)


def build_colpali(path: Path, *, embedding_dim: int = 128) -> Path:
    import torch
    from transformers import (
        AddedToken,
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        GemmaTokenizer,
        PaliGemmaConfig,
        SiglipImageProcessor,
    )

    torch.manual_seed(0)
    vocab, merges = _bpe(vocab_size=600, style="metaspace")
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    vocab = {t: i for i, t in enumerate(specials + [t for t in vocab if t not in specials])}
    tok = GemmaTokenizer(vocab=vocab, merges=merges, padding_side="right")
    tok.add_special_tokens({"additional_special_tokens": [
        AddedToken("<image>", special=True, normalized=False)]})
    image_size, patch = 56, 14
    ip = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    ip.image_seq_length = (image_size // patch) ** 2
    processor = ColPaliProcessor(image_processor=ip, tokenizer=tok)  # adds loc/seg tokens
    tok = processor.tokenizer
    hidden = 64
    vlm = PaliGemmaConfig(
        text_config={
            "model_type": "gemma", "vocab_size": _round_up(len(tok)), "hidden_size": hidden,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 1, "head_dim": 16,
            "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        vision_config={
            "model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": image_size,
            "patch_size": patch, "projection_dim": hidden,
        },
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        projection_dim=hidden,
        vocab_size=_round_up(len(tok)),
    )
    config = ColPaliConfig(vlm_config=vlm, embedding_dim=embedding_dim)
    model = ColPaliForRetrieval(config).eval()
    _randomize_biases(model)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return Path(path)


def build_clip(path: Path) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(0)
    vocab, merges = _bpe(vocab_size=1000, style="clip")
    for t in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(t, len(vocab))
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    config = CLIPConfig(
        text_config={
            "vocab_size": _round_up(len(tok)), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
            "eos_token_id": tok.convert_tokens_to_ids("<|endoftext|>"),
            "bos_token_id": tok.convert_tokens_to_ids("<|startoftext|>"),
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=24,
    )
    model = CLIPModel(config).eval()
    ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = CLIPProcessor(image_processor=ip, tokenizer=tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return Path(path)


def build_siglip(path: Path) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    torch.manual_seed(0)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([s.lower() for s in corpus()]), model_writer=buf,
        vocab_size=300, model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", minloglevel=2,
        hard_vocab_limit=False)
    spm_file = path / "spiece_src.model"
    spm_file.write_bytes(buf.getvalue())
    tok = SiglipTokenizer(vocab_file=str(spm_file), model_max_length=16)
    config = SiglipConfig(
        text_config={"vocab_size": _round_up(len(tok)), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 16, "pad_token_id": tok.pad_token_id,
                     "eos_token_id": tok.eos_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )
    model = SiglipModel(config).eval()
    ip = SiglipImageProcessor(size={"height": 32, "width": 32})
    processor = SiglipProcessor(image_processor=ip, tokenizer=tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    spm_file.unlink()
    return path


BUILDERS = {
    "colqwen2": build_colqwen2,
    "colpali": build_colpali,
    "dse": build_dse,
    "clip": build_clip,
    "siglip": build_siglip,
}
