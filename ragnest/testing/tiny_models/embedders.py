"""Tiny random-weight models for the transformers embedder tests, built offline from configs.

Each builder writes a checkpoint directory (``save_pretrained``) that the embedders load
through the real ``from_pretrained`` path. Recipes follow ``shared/notes/measured-facts.md``:
a small BPE trained with ``tokenizers`` is handed to the model's own tokenizer class, every
token id the config needs comes from that tokenizer, and ``vocab_size`` covers it.
Tiny models prove plumbing, never quality.
"""

from __future__ import annotations

import io
from pathlib import Path

from ragnest.testing.tiny_models._common import (
    QWEN2_VL_CHAT_TEMPLATE,
    _bpe,
    _qwen2_vl_config,
    _randomize_biases,
    _round_up,
    _torch,
    corpus,
    qwen2_tokenizer,
    qwen_image_processor,
    tf_names,
)

__all__ = [
    "BUILDERS",
    "build_clip",
    "build_colpali",
    "build_colqwen2",
    "build_dse",
    "build_siglip",
]


def build_colqwen2(path: Path, *, embedding_dim: int = 128) -> Path:
    torch = _torch()
    ColQwen2Config, ColQwen2ForRetrieval, ColQwen2Processor = tf_names(
        "ColQwen2Config", "ColQwen2ForRetrieval", "ColQwen2Processor")

    torch.manual_seed(0)
    tok = qwen2_tokenizer("left")
    config = ColQwen2Config(vlm_config=_qwen2_vl_config(tok), embedding_dim=embedding_dim)
    model = ColQwen2ForRetrieval(config).eval()
    _randomize_biases(model)
    processor = ColQwen2Processor(image_processor=qwen_image_processor(), tokenizer=tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return Path(path)


def build_dse(path: Path) -> Path:
    """A Qwen2-VL checkpoint (``Qwen2VLForConditionalGeneration``) for the DSE embedder:
    model, tokenizer (with the real chat template) and image processor. No processor
    object: ``Qwen2VLProcessor`` needs torchvision for its video processor, and the
    embedder assembles inputs from the tokenizer and image processor itself."""
    torch = _torch()
    Qwen2VLForConditionalGeneration = tf_names("Qwen2VLForConditionalGeneration")

    torch.manual_seed(0)
    tok = qwen2_tokenizer("left")
    tok.chat_template = QWEN2_VL_CHAT_TEMPLATE
    model = Qwen2VLForConditionalGeneration(_qwen2_vl_config(tok)).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    qwen_image_processor().save_pretrained(path)
    return Path(path)


def build_colpali(path: Path, *, embedding_dim: int = 128) -> Path:
    torch = _torch()
    (
        AddedToken,
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        GemmaTokenizer,
        PaliGemmaConfig,
        SiglipImageProcessor,
    ) = tf_names(
        "AddedToken",
        "ColPaliConfig",
        "ColPaliForRetrieval",
        "ColPaliProcessor",
        "GemmaTokenizer",
        "PaliGemmaConfig",
        "SiglipImageProcessor",
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
    torch = _torch()
    CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer = tf_names(
        "CLIPConfig", "CLIPImageProcessor", "CLIPModel", "CLIPProcessor", "CLIPTokenizer")

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
    torch = _torch()
    SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor, SiglipTokenizer = tf_names(
        "SiglipConfig", "SiglipImageProcessor", "SiglipModel", "SiglipProcessor", "SiglipTokenizer")

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
