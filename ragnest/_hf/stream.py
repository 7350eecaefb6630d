"""Generation with ``TextIteratorStreamer``: ``model.generate`` runs in a worker thread and
the caller iterates over decoded text as it is produced::

    stream = generate_stream(vlm.loaded, batch, params={"max_new_tokens": 256})
    for piece in stream:          # text, special tokens included (the caller cleans them)
        print(piece, end="")
    stream.prompt_tokens, stream.completion_tokens

An error inside ``generate`` ends the iteration and is raised in the caller's thread; a
caller that stops iterating early stops ``generate`` at its next token (and waits for it).
:data:`GENERATION_KEYS` lists the generation parameters a component accepts from YAML;
:func:`check_generation` rejects others with a "did you mean" (without importing torch).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from ragnest._hf.runtime import LoadedModel
from ragnest._validate import did_you_mean
from ragnest.errors import ConfigError

__all__ = ["GENERATION_KEYS", "GenerationStream", "check_generation", "generate_stream"]

logger = logging.getLogger(__name__)

#: Generation parameters accepted from YAML (passed to ``model.generate``).
GENERATION_KEYS: frozenset[str] = frozenset({
    "max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_p", "top_k", "min_p",
    "repetition_penalty", "no_repeat_ngram_size", "num_beams", "length_penalty",
    "sequence_bias", "bad_words_ids", "suppress_tokens", "early_stopping",
})


def check_generation(params: Mapping[str, Any], *, owner: str) -> None:
    """:class:`ConfigError` for a key outside :data:`GENERATION_KEYS` or a bad bound.

    >>> check_generation({"max_new_tokens": 64, "min_new_tokens": 4}, owner="generator/vlm")
    >>> check_generation({"max_tokens": 64}, owner="generator/vlm")
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: generator/vlm: generation parameter 'max_tokens' is not one of ragnest's generation keys; did you mean 'max_new_tokens' or 'min_new_tokens' or 'suppress_tokens'?
    """
    for key in params:
        if key not in GENERATION_KEYS:
            raise ConfigError(
                f"{owner}: generation parameter {key!r} is not one of ragnest's generation keys"
                + (did_you_mean(key, sorted(GENERATION_KEYS)) or
                   f" ({', '.join(sorted(GENERATION_KEYS))})"))
    low, high = params.get("min_new_tokens", 0), params.get("max_new_tokens", 1)
    for key in ("min_new_tokens", "max_new_tokens"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"{owner}: generation.{key} must be a whole number >= 0, got {value!r}")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise ConfigError(f"{owner}: generation.min_new_tokens ({low}) exceeds max_new_tokens ({high})")


class GenerationStream:
    """Text pieces from a ``generate`` call running in a worker thread (see the module docs).

    After the iteration ends: :attr:`prompt_tokens` (per row, the longest padded row),
    :attr:`completion_tokens` (new tokens of the first row).
    """

    def __init__(self, streamer: Any, thread: threading.Thread, state: dict[str, Any],
                 prompt_tokens: int, stop: threading.Event) -> None:
        self._streamer = streamer
        self._thread = thread
        self._state = state
        self._stop = stop
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0

    def __iter__(self) -> Iterator[str]:
        done = False
        try:
            for piece in self._streamer:
                if piece:
                    yield piece
            done = True
        finally:
            if not done:  # the caller stopped early: stop generating, drain, wait
                self._stop.set()
                for _ in self._streamer:
                    pass
            self._thread.join()
        if self._state.get("error") is not None:
            raise self._state["error"]
        self.completion_tokens = int(self._state.get("new_tokens", 0))


def generate_stream(
    loaded: LoadedModel,
    batch: Mapping[str, Any],
    *,
    params: Mapping[str, Any],
    context: contextlib.AbstractContextManager[Any] | None = None,
    timeout: float | None = None,
) -> GenerationStream:
    """Start ``loaded.model.generate(**batch, **params)`` in a worker thread, streaming its
    decoded text (special tokens kept; the prompt skipped). ``context`` is entered around
    ``generate`` in the worker (e.g. in-model pruning hooks)."""
    tf = loaded.runtime.transformers
    tokenizer = loaded.tokenizer
    streamer = tf.TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=False,
                                       timeout=timeout)
    inputs = loaded.inputs(batch)
    prompt_len = int(inputs["input_ids"].shape[1])
    stop = threading.Event()

    class _Stop(tf.StoppingCriteria):  # type: ignore[misc, name-defined]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return loaded.runtime.torch.full((input_ids.shape[0],), stop.is_set(),
                                             dtype=loaded.runtime.torch.bool,
                                             device=input_ids.device)

    kwargs = {"pad_token_id": tokenizer.pad_token_id, **dict(params), "streamer": streamer,
              "stopping_criteria": tf.StoppingCriteriaList([_Stop()])}
    state: dict[str, Any] = {"error": None}

    def run() -> None:
        try:
            with loaded.runtime.inference(), (context or contextlib.nullcontext()):
                out = loaded.model.generate(**inputs, **kwargs)
            sequences = out.sequences if hasattr(out, "sequences") else out
            state["new_tokens"] = _new_tokens(sequences[0].tolist()[prompt_len:], tokenizer)
        except Exception as err:  # re-raised in the caller's thread
            state["error"] = err
            streamer.on_finalized_text("", stream_end=True)

    thread = threading.Thread(target=run, name="ragnest-generate", daemon=True)
    thread.start()
    return GenerationStream(streamer, thread, state, prompt_len, stop)


def _new_tokens(ids: list[int], tokenizer: Any) -> int:
    """Generated tokens, without the padding that follows an early end of sequence."""
    pad = tokenizer.pad_token_id
    n = len(ids)
    while n and pad is not None and ids[n - 1] == pad:
        n -= 1
    return n
