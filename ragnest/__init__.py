"""ragnest: multimodal retrieval-augmented generation over real documents.

    >>> import ragnest, tempfile
    >>> rag = ragnest.Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()})
    >>> report = rag.ingest(["examples/docs"], progress=False)   # PDFs, Markdown, ...
    >>> answer = rag.query("How often should I descale the machine?")
    >>> [c.label() for c in answer.citations][:1]
    ['nimbus3_handbook.pdf p. 5']
    >>> rag.close()

Importing ragnest is light: no torch, no model weights; components load on first use.
"""

from __future__ import annotations

from ragnest import display as display  # registers the notebook HTML renderers (cheap)
from ragnest._version import __version__
from ragnest.config import PipelineConfig, RetrievalConfig, load_config
from ragnest.errors import (
    ComponentNotFoundError,
    ConfigError,
    DocumentNotFoundError,
    EmbeddingError,
    GenerationError,
    MissingDependencyError,
    ModelServerError,
    ParseError,
    RagnestError,
    RerankError,
    StoreError,
    StoreLockedError,
    StoreMismatchError,
    StoreUnavailableError,
)
from ragnest.ingest import IngestReport
from ragnest.pipeline import Pipeline
from ragnest.registry import list_components, register
from ragnest.types import (
    Answer,
    Chunk,
    Citation,
    Hit,
    ImageRef,
    Level,
    Query,
    Segment,
    Source,
    SparseVector,
    VectorSpec,
)

__all__ = [
    "__version__",
    # pipeline
    "Pipeline",
    "PipelineConfig",
    "RetrievalConfig",
    "IngestReport",
    "load_config",
    "list_components",
    "register",
    # data model
    "Source",
    "Chunk",
    "Segment",
    "ImageRef",
    "Query",
    "Hit",
    "Answer",
    "Citation",
    "VectorSpec",
    "Level",
    "SparseVector",
    # errors
    "RagnestError",
    "ConfigError",
    "DocumentNotFoundError",
    "ComponentNotFoundError",
    "MissingDependencyError",
    "ParseError",
    "StoreError",
    "StoreLockedError",
    "StoreMismatchError",
    "StoreUnavailableError",
    "EmbeddingError",
    "RerankError",
    "GenerationError",
    "ModelServerError",
]
