"""Ingest beyond one machine: the same pipeline YAML on a Ray Data job
(``pip install 'ragnest[ray]'``; Ray is imported only when a job runs, in
:mod:`ragnest.distributed._ray`).

``ragnest ingest DIR --profile ray`` (or ``--engine ray``) runs it; in Python::

    >>> from ragnest.distributed import RayConfig, ray_ingest
    >>> RayConfig(actors=2, gpus_per_actor=1).embed_batch_size
    8

See :mod:`ragnest.distributed.run` for what runs where, and
:mod:`ragnest.distributed.write` for the write transaction each document gets.
"""

from __future__ import annotations

from ragnest.distributed.config import RayConfig
from ragnest.distributed.run import ray_ingest
from ragnest.distributed.stages import DocTask

__all__ = ["DocTask", "RayConfig", "ray_ingest"]
