"""Retrieval as library functions: the query planner, image queries, the retriever.

    >>> from ragnest.retrieval import QueryPlanner, Retriever, stage_limits
"""

from __future__ import annotations

from ragnest.retrieval.image import CropQuery, ImageQueryReader, image_query
from ragnest.retrieval.planner import QueryPlanner, as_query, route_weights, stage_limits
from ragnest.retrieval.retriever import Retrieval, Retriever, search_all

__all__ = [
    "CropQuery",
    "ImageQueryReader",
    "QueryPlanner",
    "Retrieval",
    "Retriever",
    "as_query",
    "image_query",
    "route_weights",
    "search_all",
    "stage_limits",
]
