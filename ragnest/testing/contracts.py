"""The component contract as a reusable check, for ragnest's own components and plugins.

    >>> from ragnest.testing.contracts import check_component_contract
    >>> from ragnest.embedders.bm25 import Bm25Embedder
    >>> check_component_contract(Bm25Embedder, role="embedder")
    Bm25Embedder(language='english', k=1.2, b=0.75, avg_len=256.0)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ragnest.protocols import Component, Embedder, Generator, Parser, Reranker, Store

__all__ = ["check_component_contract", "ROLE_PROTOCOLS"]

ROLE_PROTOCOLS: dict[str, type] = {
    "parser": Parser,
    "embedder": Embedder,
    "store": Store,
    "reranker": Reranker,
    "generator": Generator,
}


def check_component_contract(cls: type, params: dict[str, Any] | None = None,
                             role: str | None = None) -> Any:
    """Assert the contract on ``cls``; returns the instance it built.

    * a keyword-only dataclass whose init fields hold JSON-basic values;
    * ``__init__`` with ``params`` succeeds without touching disk or network (callers
      check that side of it by passing paths that do not exist);
    * ``warm_up``/``close`` exist;
    * rebuilding from its own fields gives an equal object;
    * it satisfies the role's Protocol when ``role`` is given.
    """
    assert dataclasses.is_dataclass(cls), f"{cls.__name__} must be a dataclass"
    for f in dataclasses.fields(cls):
        if f.init:
            assert f.kw_only, f"{cls.__name__}.{f.name} must be keyword-only"
    obj = cls(**(params or {}))
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
    json.dumps(fields)  # JSON-basic
    assert cls(**fields) == obj, f"{cls.__name__} does not round-trip through its fields"
    assert isinstance(obj, Component), f"{cls.__name__} lacks warm_up()/close()"
    if role is not None:
        proto = ROLE_PROTOCOLS[role]
        assert isinstance(obj, proto), f"{cls.__name__} does not satisfy the {role} protocol"
    return obj
