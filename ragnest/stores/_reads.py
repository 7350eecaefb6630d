"""The read section of a store handle: a reader moves to the latest committed data only
between reads, never under one."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["read_call"]

T = TypeVar("T")


def read_call(method: Callable[..., T]) -> Callable[..., T]:
    """A read: a reader first moves to the latest committed data, unless another thread
    is reading; no move happens while it runs (all its calls see one committed state)."""

    @functools.wraps(method)
    def read(self: Any, *args: Any, **kwargs: Any) -> T:
        self._enter_read()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._exit_read()

    return read
