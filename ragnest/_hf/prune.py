"""FastV-style pruning of image tokens inside a Qwen2-VL-family model, without breaking M-RoPE.

Before decoder layer ``layer`` (0-based: ``layer`` layers have seen every token), the
attention the last prompt token pays to each image token -- that layer's own queries and
keys, rotary positions applied, averaged over heads -- ranks the image tokens; the
``drop_ratio`` share that gets the least is removed from the sequence for that layer and
every later one. Positions are the delicate part: Qwen's M-RoPE positions (temporal,
height, width) are computed once from the full ``input_ids`` and ``image_grid_thw``, and
passed to every layer as ``(cos, sin)``; a hook that shortened the sequence and let them be
recomputed would shift every later token. Here the layers' ``(cos, sin)`` and attention
mask are cut with the same index as the hidden states, so each kept token keeps the
position it had, and decoding continues from the full prompt's positions (the rope deltas
and the cache length of the unpruned early layers)::

    record: dict[str, Any] = {}
    with fastv(model, layer=2, drop_ratio=0.5, input_ids=batch["input_ids"],
               image_token_id=vlm.image_token_id, record=record):
        model.generate(**batch, max_new_tokens=64)
    record  # {"image_tokens": 256, "dropped": 128}

One prompt at a time (batch size 1); Qwen2-VL and Qwen2.5-VL (Qwen3-VL adds vision
features to early layers at image positions, which pruning before them would misplace).
With ``drop_ratio=0`` the pruning path runs and drops nothing: logits are unchanged.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from ragnest.errors import ConfigError

__all__ = ["FASTV_FAMILIES", "decoder_layers", "fastv"]

#: ``config.model_type`` values FastV pruning supports.
FASTV_FAMILIES = ("qwen2_vl", "qwen2_5_vl")


def decoder_layers(model: Any) -> Any:
    """The language model's decoder layers of a Qwen2-VL-family model."""
    lm = getattr(getattr(model, "model", None), "language_model", None)
    layers = getattr(lm, "layers", None)
    if layers is None:
        raise ConfigError(f"fastv: cannot find the decoder layers of {type(model).__name__}")
    return layers


def _rotate_half(x: Any, torch: Any) -> Any:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _last_token_attention(layer: Any, hidden: Any, cos: Any, sin: Any, torch: Any) -> Any:
    """(seq,) attention weights of the last position over all positions, head-averaged,
    as ``layer``'s self-attention would compute them on ``hidden`` (batch size 1)."""
    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    bsz, length, _ = x.shape
    head_dim = attn.head_dim
    q = attn.q_proj(x[:, -1:]).view(bsz, 1, -1, head_dim)
    k = attn.k_proj(x).view(bsz, length, -1, head_dim)
    if hasattr(attn, "q_norm"):
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = q.transpose(1, 2), k.transpose(1, 2)  # (b, heads, seq, dim)
    cq, sq = cos[:, -1:].unsqueeze(1), sin[:, -1:].unsqueeze(1)
    ck, sk = cos.unsqueeze(1), sin.unsqueeze(1)
    q = q * cq + _rotate_half(q, torch) * sq
    k = k * ck + _rotate_half(k, torch) * sk
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1)
    scores = (q.float() @ k.float().transpose(-1, -2)) * (head_dim ** -0.5)  # (b, h, 1, seq)
    return scores.softmax(dim=-1).mean(dim=1)[0, 0]


@contextlib.contextmanager
def fastv(
    model: Any,
    *,
    layer: int,
    drop_ratio: float,
    input_ids: Any,
    image_token_id: int,
    record: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Prune image tokens in every forward pass of ``model`` inside the block (see the
    module docs); ``record`` receives ``image_tokens``, ``dropped`` and
    ``dropped_positions`` (sequence indices)."""
    import torch

    model_type = str(getattr(model.config, "model_type", ""))
    if model_type not in FASTV_FAMILIES:
        raise ConfigError(f"fastv: supports {', '.join(FASTV_FAMILIES)}, not {model_type!r}")
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise ConfigError(f"fastv: layer must be within [0, {len(layers) - 1}] for this model, "
                          f"got {layer}")
    if not 0.0 <= drop_ratio < 1.0:
        raise ConfigError(f"fastv: drop_ratio must be within [0, 1), got {drop_ratio}")
    if input_ids.shape[0] != 1:
        raise ConfigError("fastv: prunes one prompt at a time (batch size 1)")
    image_pos = (input_ids[0] == image_token_id).nonzero().flatten()
    full = int(input_ids.shape[1])
    state: dict[str, Any] = {"keep": None}
    out = record if record is not None else {}
    out.update(image_tokens=int(image_pos.numel()), dropped=0)

    def choose(hidden: Any, cos: Any, sin: Any) -> Any:
        n_drop = int(math.floor(image_pos.numel() * drop_ratio))
        keep = torch.ones(full, dtype=torch.bool, device=hidden.device)
        if n_drop:
            weights = _last_token_attention(layers[layer], hidden, cos, sin, torch)
            img = image_pos.to(hidden.device)
            order = weights[img].argsort()  # least attended first (stable on ties)
            keep[img[order[:n_drop]]] = False
        out["dropped"] = n_drop
        out["dropped_positions"] = (~keep).nonzero().flatten().tolist()
        return keep.nonzero().flatten()

    def cut_mask(mask: Any, keep: Any) -> Any:
        if mask is None or not hasattr(mask, "ndim") or mask.ndim != 4:
            return mask
        if mask.shape[-1] >= full:  # keys: the kept prompt tokens, then the new ones
            cols = torch.cat([keep, torch.arange(full, mask.shape[-1], device=keep.device)])
            mask = mask.index_select(-1, cols)
        return mask.index_select(-2, keep) if mask.shape[-2] == full else mask

    def hook(index: int) -> Any:
        def pre(module: Any, args: tuple, kwargs: dict) -> Any:
            hidden = args[0] if args else kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"]
            if index == layer and hidden.shape[1] == full:  # the prompt's forward pass
                state["keep"] = choose(hidden, cos, sin)
            keep = state["keep"]
            if keep is None:
                return None
            if hidden.shape[1] == full:  # the first pruned layer: cut the sequence
                hidden = hidden.index_select(1, keep)
            if cos.shape[1] == full:  # every pruned layer of the prompt's pass
                kwargs["position_embeddings"] = (cos.index_select(1, keep),
                                                 sin.index_select(1, keep))
            kwargs["attention_mask"] = cut_mask(kwargs.get("attention_mask"), keep)
            if args:
                return (hidden, *args[1:]), kwargs
            kwargs["hidden_states"] = hidden
            return args, kwargs
        return pre

    handles = [layers[i].register_forward_pre_hook(hook(i), with_kwargs=True)
               for i in range(layer, len(layers))]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
