"""The document lifecycle beyond adding: delete documents, and sync folders with the store.

:func:`run_sync` ingests what is new or changed under some roots, re-points documents
whose files moved (nothing re-embedded), and removes the stored documents under those
roots whose files are gone; documents outside the roots are never removed.
:func:`delete_documents` removes documents named by path, folder or id::

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from ragnest import Pipeline
    >>> from ragnest.ingest.lifecycle import delete_documents, run_sync
    >>> docs = Path(tempfile.mkdtemp()) / "docs"
    >>> _ = shutil.copytree("examples/docs", docs)
    >>> with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": tempfile.mkdtemp()}) as rag:
    ...     rag.open()
    ...     kw = dict(parsers=rag.parsers, embedders=rag.embedders, store=rag.store)
    ...     added = run_sync([docs], **kw)
    ...     (docs / "travel_faq.md").unlink()
    ...     plan = run_sync([docs], dry_run=True, **kw)
    ...     synced = run_sync([docs], **kw)
    ...     gone = delete_documents(rag.store, [docs / "lab_safety_guide.pdf"])
    >>> added.files, plan.documents_removed, plan.skipped, synced.documents_removed
    (3, 1, [], 1)
    >>> gone.documents_removed, gone.removed[0].status
    (1, 'removed')
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ragnest._paths import local_path, readable_path
from ragnest.config import IngestConfig
from ragnest.errors import DocumentNotFoundError
from ragnest.ingest.identity import files_gone, has_catalog
from ragnest.ingest.report import DocumentReport, IngestReport
from ragnest.ingest.run import ProgressCallback, run_ingest
from ragnest.protocols import Embedder, Parser, Store, StoredDocument
from ragnest.types import Source

__all__ = ["delete_documents", "find_documents", "run_sync", "under"]

logger = logging.getLogger(__name__)

Target = str | os.PathLike[str]


def _absolute(path: Target) -> str:
    """A path spelled as ingest stores it (``Source.from_path``: absolute, not resolved)."""
    return str(Path(path).expanduser().absolute())


def under(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or lies below it (lexically, ``..`` normalised)."""
    if not os.path.isabs(path):
        return False
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def find_documents(store: Store, target: Target,
                   cache: dict[str, list[StoredDocument]] | None = None) -> list[StoredDocument]:
    """The stored documents ``target`` names: a file path (present or gone), a document
    id, or a folder (every document under it, present or gone); ``[]`` when none.

    ``cache`` keeps the store's full catalog between calls (read only for folders).
    """
    key = str(target)
    if not has_catalog(store):  # a store without a catalog: derived ids only
        for doc_id in (Source.from_path(key).document_id, key):
            n = len(store.chunk_ids(doc_id))
            if n:
                return [StoredDocument(doc_id, {key: n}, n)]
        return []
    catalog = store.catalog  # type: ignore[attr-defined]
    path = _absolute(target)
    found = catalog(source=path)
    if not found and key != path:
        found = catalog(source=key)  # a document ingested from bytes, by its name
    if not found:  # chunks citing no path (a parser that sets no chunk.source)
        found = [d for d in catalog(document_id=Source.from_path(path).document_id)
                 if not any(os.path.isabs(s) for s in d.sources)]
    if not found and not isinstance(target, os.PathLike):
        found = catalog(document_id=key)
    if not found and not os.path.isfile(path):
        cache = {} if cache is None else cache
        if "all" not in cache:
            cache["all"] = catalog()
        found = [d for d in cache["all"] if any(under(s, path) for s in d.sources)]
    return found


def delete_documents(store: Store, targets: Iterable[Target], *,
                     dry_run: bool = False) -> IngestReport:
    """Remove the stored documents named by ``targets`` (file paths, folders, document
    ids; see :func:`find_documents`).

    Every target is looked up first: one that names nothing stored raises
    :class:`~ragnest.errors.DocumentNotFoundError` naming it, and nothing is removed.
    The report lists the removed documents (``report.removed``); ``dry_run`` only says
    which they would be.
    """
    start = time.perf_counter()
    docs: dict[str, StoredDocument] = {}
    unknown: list[str] = []
    cache: dict[str, list[StoredDocument]] = {}
    for target in targets:
        found = find_documents(store, target, cache)
        if not found:
            unknown.append(str(target))
        docs.update((d.document_id, d) for d in found)
    if unknown:
        names = ", ".join(repr(t) for t in unknown)
        raise DocumentNotFoundError(
            f"not in the store: {names} (neither the path of a stored file or folder nor a "
            "document id); nothing was deleted"
        )
    report = IngestReport(dry_run=dry_run)
    for doc in docs.values():
        n = doc.chunks if dry_run else store.delete_document(doc.document_id)
        report.removed.append(DocumentReport(doc.source, doc.document_id, 0, 0, 0, n, "removed"))
    report.seconds = time.perf_counter() - start
    return report


def run_sync(
    roots: Iterable[Target] | Target,
    *,
    parsers: Sequence[Parser],
    embedders: Mapping[str, Embedder],
    store: Store,
    config: IngestConfig | None = None,
    workers: int | str | None = None,
    progress: bool = False,
    on_file: ProgressCallback | None = None,
    dry_run: bool = False,
) -> IngestReport:
    """Make the store match the files under ``roots`` (files or folders).

    New and changed files are ingested, moved files re-point their documents (see
    :mod:`ragnest.ingest.identity`), and stored documents citing a path under a root
    whose file is gone are removed (``report.removed``). Documents outside the roots
    are never removed. A root that no longer exists removes what was stored under it
    (it is reported as skipped only when nothing was). ``dry_run`` reports the plan and
    changes nothing. Other arguments as :func:`~ragnest.ingest.run.run_ingest`.
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    roots = list(roots)
    if not has_catalog(store):
        raise TypeError(f"{type(store).__name__} cannot list its documents; sync needs it")
    start = time.perf_counter()
    claimed: set[str] = set()
    report = run_ingest(roots, parsers=parsers, embedders=embedders, store=store,
                        config=config, workers=workers, progress=progress, on_file=on_file,
                        dry_run=dry_run, claimed=claimed)
    paths = [readable_path(_absolute(r)) for r in roots]  # stored paths are readable text
    for doc in store.catalog():  # type: ignore[attr-defined]
        if doc.document_id in claimed or not files_gone(doc):
            continue
        if not any(under(s, root) for s in doc.sources for root in paths):
            continue
        n = doc.chunks if dry_run else store.delete_document(doc.document_id)
        report.removed.append(DocumentReport(doc.source, doc.document_id, 0, 0, 0, n, "removed"))
        logger.info("%s: %s (file gone, %d chunks)", doc.source,
                    "would remove" if dry_run else "removed", n)
        if on_file is not None:
            on_file(doc.source, "removed")
    emptied = {root for root in paths if not os.path.lexists(local_path(root))
               and any(under(d.path, root) for d in report.removed)}
    report.skipped = [s for s in report.skipped
                      if readable_path(_absolute(s.path)) not in emptied]
    report.seconds = time.perf_counter() - start
    return report
