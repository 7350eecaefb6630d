"""The checks on ``QdrantStore``'s arguments (``__init__`` does nothing else)."""

from __future__ import annotations

import re
from typing import Any

from ragnest.errors import ConfigError
from ragnest.stores._server import ServerSettings

__all__ = ["check_arguments"]

_COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_arguments(store: Any) -> None:
    """Raise :class:`ConfigError` naming the first argument of ``store`` that is wrong."""
    chosen = [n for n in ("path", "url", "location") if getattr(store, n) is not None]
    if len(chosen) != 1:
        raise ConfigError(
            "QdrantStore needs exactly one of path= (Qdrant Edge on disk), url= (a Qdrant "
            "server) or location=':memory:' (local mode, tests only)"
            + (f"; got {', '.join(chosen)}" if chosen else "")
        )
    if store.location is not None and store.location != ":memory:":
        raise ConfigError(
            f"QdrantStore location={store.location!r}: only ':memory:' is supported; "
            "use path= for an on-disk store"
        )
    if not isinstance(store.collection, str) or not _COLLECTION_RE.match(store.collection):
        raise ConfigError(
            f"QdrantStore collection={store.collection!r}: use letters, digits, '_', '-', '.' "
            "(it names a directory)"
        )
    for name in ("hnsw_m", "hnsw_ef_construct", "hnsw_ef"):
        value = getattr(store, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (0 if name == "hnsw_m" else 1)
        ):
            raise ConfigError(f"QdrantStore {name}={value!r}: expected a positive integer")
    fst = store.full_scan_threshold
    if fst is not None and (isinstance(fst, bool) or not isinstance(fst, int) or fst < 0):
        raise ConfigError(f"QdrantStore full_scan_threshold={fst!r}: expected an integer >= 0")
    t = store.timeout
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < float("inf"):
        raise ConfigError(f"QdrantStore timeout={t!r}: expected a number of seconds > 0")
    r = store.retries
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise ConfigError(f"QdrantStore retries={r!r}: expected an integer >= 0")
    if store.mode not in ("auto", "read", "write"):
        raise ConfigError(f"QdrantStore mode={store.mode!r}: use 'auto', 'read' or 'write'")
    w = store.wait
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < float("inf"):
        raise ConfigError(f"QdrantStore wait={w!r}: expected a number of seconds >= 0")
    if store.server is not None:
        if store.path is not None:
            raise ConfigError("QdrantStore server=...: collection settings need url= (a server)")
        settings = ServerSettings.from_mapping(store.server, where="QdrantStore server")
        if settings.shard_key is not None and store.url is None:
            raise ConfigError("QdrantStore server.shard_key: custom shard keys need url= "
                              "(qdrant-client local mode has no shards)")
    kb = store.exact_search_kb
    if isinstance(kb, bool) or not isinstance(kb, int) or kb < 0:
        raise ConfigError(f"QdrantStore exact_search_kb={kb!r}: expected an integer >= 0")
    share = store.funnel_share
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ConfigError(f"QdrantStore funnel_share={share!r}: expected a number in (0, 1]")
