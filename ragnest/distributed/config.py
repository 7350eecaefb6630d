"""The settings of a Ray ingest job (the ``pipeline.ingest.ray`` mapping of a pipeline
or profile, see ``configs/profiles/ray.yaml``).

    >>> from ragnest.distributed.config import RayConfig
    >>> cfg = RayConfig.from_mapping({"actors": 2, "gpus_per_actor": 1})
    >>> cfg.actors, cfg.gpus_per_actor, cfg.embed_batch_size
    (2, 1.0, 8)
    >>> RayConfig.from_mapping({"embed_batch_size": 2.5})
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: pipeline.ingest.ray.embed_batch_size: expects an integer, got 2.5 (a number)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from ragnest._validate import AtLeast, validate_params

__all__ = ["RayConfig"]


@dataclass(kw_only=True)
class RayConfig:
    """Where and how wide a Ray ingest runs.

    * ``address``: ``None`` starts a local Ray instance in this process (``num_cpus`` /
      ``num_gpus`` size it; a GPU count on a machine without one is a logical GPU),
      ``"auto"`` joins the cluster this machine belongs to, ``"ray://head:10001"`` a
      remote one through Ray Client.
    * ``actors``: embedding actors (each loads the embedders once), ``gpus_per_actor`` /
      ``cpus_per_actor`` what each reserves, ``embed_batch_size``: documents per call
      (an integer: Ray requires one for GPU actors).
    * ``parse_concurrency``: parse tasks at a time (default: Ray decides from free CPUs).
    * ``write_concurrency``: write tasks at a time (default: 1 for the embedded store,
      whose writer lock admits one process; Ray decides for a server);
      ``write_batch_points`` / ``max_request_bytes``: the upsert size limits (a request
      is split before it passes either, and split further when the server refuses it
      as too large).
    * ``progress``: Ray Data's progress bars.
    """

    address: str | None = None
    num_cpus: Annotated[int, AtLeast(1)] | None = None
    num_gpus: Annotated[int, AtLeast(0)] | None = None
    actors: Annotated[int, AtLeast(1)] = 1
    gpus_per_actor: Annotated[float, AtLeast(0)] = 0.0
    cpus_per_actor: Annotated[float, AtLeast(0)] = 1.0
    embed_batch_size: Annotated[int, AtLeast(1)] = 8
    parse_concurrency: Annotated[int, AtLeast(1)] | None = None
    write_concurrency: Annotated[int, AtLeast(1)] | None = None
    write_batch_points: Annotated[int, AtLeast(1)] = 256
    max_request_bytes: Annotated[int, AtLeast(1024)] = 16 * 1024 * 1024
    progress: bool = True

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        validate_params(type(self), values, where="RayConfig", noun="key")
        self.gpus_per_actor = float(self.gpus_per_actor)
        self.cpus_per_actor = float(self.cpus_per_actor)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None,
                     where: str = "pipeline.ingest.ray") -> RayConfig:
        """Validate a YAML mapping (unknown keys get a did-you-mean) and build it."""
        data = dict(data or {})
        validate_params(cls, data, where=where, noun="key")
        return cls(**data)
