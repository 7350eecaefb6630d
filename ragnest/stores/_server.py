"""A Qdrant server's or cluster's collection settings and multitenancy, from YAML (the
store's ``server:`` mapping), as plain values the qdrant-client backend passes on.

    store:
      type: store/qdrant
      params:
        url: ${QDRANT_URL}
        server:
          shard_number: 6            # shards over the cluster's nodes
          replication_factor: 2      # copies of each shard
          write_consistency_factor: 1
          on_disk_payload: true
          on_disk_vectors: [dense-mid, dense-fine]   # or true: every vector
          tenant: ${TENANT}          # this handle's tenant: writes carry it, reads filter on it
          shard_key: ${TENANT}       # a big tenant on its own shard(s) (custom sharding)
          write_ordering: strong
          read_consistency: majority
          prefer_grpc: true

Quantization is set per ladder level (``quantization: binary | scalar`` in the ladder);
``quantization_always_ram`` keeps the quantized copies in RAM while the originals may
live on disk. Tenants share one collection (payload key ``tenant_key``, indexed with
``is_tenant`` so Qdrant stores each tenant's points together); their documents need
distinct document ids (file paths differ, or ``document_id_override``), since point ids
derive from them. A tenant big enough for its own shards gets a custom ``shard_key``
(the collection is then created with custom sharding; every write and read of this
handle names the key).

    >>> from ragnest.stores._server import ServerSettings
    >>> s = ServerSettings.from_mapping({"tenant": "acme", "shard_number": 3})
    >>> s.create_kwargs(), s.tenant_payload()
    ({'shard_number': 3}, {'tenant': 'acme'})
    >>> ServerSettings.from_mapping({"replication": 3})
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: QdrantStore server: unknown key 'replication' for ServerSettings; did you mean 'replication_factor'? (known: check_compatibility, grpc_port, on_disk_payload, on_disk_vectors, prefer_grpc, quantization_always_ram, read_consistency, replication_factor, shard_key, shard_number, tenant, tenant_key, write_consistency_factor, write_ordering)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from ragnest._validate import AtLeast, validate_params
from ragnest.stores._filters import Condition

__all__ = ["ServerSettings"]


@dataclass(kw_only=True)
class ServerSettings:
    """Collection settings and tenancy for ``QdrantStore(url=..., server={...})``."""

    shard_number: Annotated[int, AtLeast(1)] | None = None
    replication_factor: Annotated[int, AtLeast(1)] | None = None
    write_consistency_factor: Annotated[int, AtLeast(1)] | None = None
    on_disk_payload: bool | None = None
    on_disk_vectors: bool | list[str] | None = None
    quantization_always_ram: bool | None = None
    tenant_key: str = "tenant"
    tenant: str | None = None
    shard_key: str | None = None
    write_ordering: Literal["weak", "medium", "strong"] | None = None
    read_consistency: Annotated[int, AtLeast(1)] | Literal["majority", "quorum", "all"] | None = None
    prefer_grpc: bool = False
    grpc_port: Annotated[int, AtLeast(1)] = 6334
    check_compatibility: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None,
                     where: str = "QdrantStore server") -> ServerSettings:
        """Validate a YAML mapping (unknown keys get a did-you-mean) and build it."""
        data = dict(data or {})
        validate_params(cls, data, where=where, noun="key")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The non-default settings (what ``describe()`` shows)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}

    def client_kwargs(self) -> dict[str, Any]:
        """Extra ``QdrantClient`` arguments (gRPC, the version check)."""
        return {"prefer_grpc": self.prefer_grpc, "grpc_port": self.grpc_port,
                "check_compatibility": self.check_compatibility}

    def create_kwargs(self) -> dict[str, Any]:
        """Extra ``create_collection`` arguments (``sharding_method`` as its value)."""
        out = {k: getattr(self, k) for k in ("shard_number", "replication_factor",
                                             "write_consistency_factor", "on_disk_payload")
               if getattr(self, k) is not None}
        if self.shard_key is not None:
            out["sharding_method"] = "custom"
        return out

    def vector_on_disk(self, name: str) -> bool | None:
        """Whether the named vector's originals live on disk (``None``: server default)."""
        if isinstance(self.on_disk_vectors, list):
            return name in self.on_disk_vectors
        return self.on_disk_vectors

    def tenant_payload(self) -> dict[str, Any]:
        """What every point written by this handle carries."""
        return {self.tenant_key: self.tenant} if self.tenant is not None else {}

    def scoped(self, conditions: Sequence[Condition]) -> list[Condition]:
        """``conditions`` limited to this handle's tenant (every read and filtered delete)."""
        if self.tenant is None:
            return list(conditions)
        return [*conditions, Condition(self.tenant_key, "match", self.tenant)]

    def write_kwargs(self) -> dict[str, Any]:
        """Extra arguments of every write call (ordering, shard key)."""
        out: dict[str, Any] = {}
        if self.write_ordering is not None:
            out["ordering"] = self.write_ordering
        if self.shard_key is not None:
            out["shard_key_selector"] = self.shard_key
        return out

    def read_kwargs(self, *, consistency: bool = True) -> dict[str, Any]:
        """Extra arguments of every read call (read consistency, shard key); ``count``
        takes no consistency."""
        out: dict[str, Any] = {}
        if consistency and self.read_consistency is not None:
            out["consistency"] = self.read_consistency
        if self.shard_key is not None:
            out["shard_key_selector"] = self.shard_key
        return out
