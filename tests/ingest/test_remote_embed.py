"""The writer is data-only: vectors computed in another process (as a Ray worker would)
and written through a store transaction give the same store as a normal ingest."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ragnest import Pipeline
from ragnest.types import Source

from ._remote import parse_and_embed

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "docs"
DOC = EXAMPLES / "nimbus3_handbook.pdf"


def _plain(value: object) -> object:
    """Engine values as plain lists (the engine's sparse vectors do not compare by value)."""
    if hasattr(value, "indices"):
        return (list(value.indices), list(value.values))  # type: ignore[attr-defined]
    return value


def _dump(rag: Pipeline) -> dict[str, tuple[dict, dict]]:
    """Every point of the store: payload (with the commit marker) and stored vectors."""
    backend = rag.store._require()  # type: ignore[attr-defined]
    names = [s.name for s in rag.vector_specs()]
    ids = backend.ids_where([])
    payloads = dict(backend.retrieve(ids))
    vectors = backend.vectors(ids, names)
    return {
        pid: (payloads[pid], {k: _plain(v) for k, v in vectors.get(pid, {}).items()})
        for pid in ids
    }


def test_vectors_from_another_process_make_the_same_store(tmp_path):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        fingerprint, ids, points = pool.submit(parse_and_embed, str(DOC)).result(timeout=300)
    assert len(points) == len(ids) == 8

    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "local")}) as local:
        report = local.ingest([DOC], progress=False)
        assert report.chunks_added == 8
        expected = _dump(local)

    doc_id = Source.from_path(DOC).document_id
    with Pipeline.from_yaml("lite", env={"RAGNEST_STORE": str(tmp_path / "remote")}) as remote:
        remote.open()
        with remote.store.begin(doc_id, ids, fingerprint=fingerprint) as tx:
            assert sorted(tx.missing) == sorted(ids)
            tx.add(points[:3])
            tx.add(points[3:])
            result = tx.commit()
        assert (result.added, result.unchanged, result.removed) == (8, 0, 0)
        assert remote.store.document_fingerprint(doc_id) == fingerprint
        got = _dump(remote)
        # ingesting the file now finds it complete: nothing is parsed or written again
        assert [d.status for d in remote.ingest([DOC], progress=False).documents] == ["unchanged"]

    assert got.keys() == expected.keys()
    for pid, (payload, vectors) in expected.items():
        assert got[pid][0] == payload
        assert got[pid][1].keys() == vectors.keys()
        for name, value in vectors.items():
            assert got[pid][1][name] == value, (pid, name)
