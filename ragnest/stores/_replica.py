"""Read replicas: private copies of a store's committed state, one per reader at a time.

Qdrant Edge allows one opener per shard directory, and even a failed second
``EdgeShard.load`` breaks the first opener (see :mod:`ragnest.stores._commit`). So a reader
never opens the live shard: it checks out a **slot**, a directory under
``<store>/.ragnest-read/<collection>/<n>/`` holding a copy of the shard and of the ragnest
metadata, locked by that reader alone while it uses it::

    <store>/.ragnest-read/lite/0/lock          flock held by the reader using the slot
    <store>/.ragnest-read/lite/0/generation    what the copy was made from (see _commit)
    <store>/.ragnest-read/lite/0/shard/        the copied shard (opened with EdgeShard.load)
    <store>/.ragnest-read/lite/0/meta.json     the copied ragnest metadata

A free slot whose generation matches the live one is used as it is (no copy); otherwise
the live shard is copied into it under the shared commit lock (sparse files stay sparse:
a copy of a 5,500-page store takes ~0.1 s). The first ``SLOTS_KEPT`` slots stay for
later readers; others are removed when released. Without write access to the store
directory, slots live in the temporary directory instead.

The engine recovers a copy from its write-ahead log; the reader then removes, in its
own copy, the points of writes that were not committed (see ``PENDING_KEY`` in
:mod:`ragnest.stores._write`) and calls :meth:`Slot.ready`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ragnest.errors import StoreError
from ragnest.stores._commit import CommitLock, Generation
from ragnest.stores._lock import lock_file, unlock_file

__all__ = ["READ_DIR", "SLOTS_KEPT", "ReplicaPool", "Slot", "copy_tree", "removing_inline"]

log = logging.getLogger(__name__)

#: Folder of the read replicas inside a store directory.
READ_DIR = ".ragnest-read"
#: Slots kept after use (each holds a copy of the store); more are made when needed.
SLOTS_KEPT = 2


@dataclass
class Slot:
    """One checked-out replica directory; its lock is held until :meth:`ReplicaPool.release`."""

    path: Path
    index: int
    fh: IO[str] = field(repr=False)
    #: the generation the copy in ``shard`` was made from, once it is ready
    generation: Generation | None = None
    #: set by a fresh copy: its generation, written by :meth:`ready`
    copied: Generation | None = None

    @property
    def shard(self) -> Path:
        return self.path / "shard"

    @property
    def meta(self) -> Path:
        return self.path / "meta.json"

    def ready(self) -> None:
        """The copy is loaded and cleaned: record its generation, so others may reuse it."""
        if self.copied is not None:
            (self.path / "generation").write_text(f"{self.copied}\n", encoding="utf-8")
            self.generation, self.copied = self.copied, None


class ReplicaPool:
    """The read slots of one collection (``shard_dir`` + ``meta_path``) of a store."""

    def __init__(
        self, root: Path, shard_dir: Path, meta_path: Path, commit: CommitLock, *, wait: float
    ) -> None:
        self.root = root
        self.shard_dir = shard_dir
        self.meta_path = meta_path
        self.commit = commit
        self.wait = wait
        self.base = _slots_dir(root) / shard_dir.name

    def changed(self, slot: Slot) -> bool:
        """Whether the data changed since ``slot`` was copied (a cheap, unlocked check;
        an optimize changes files, not data)."""
        live = self.commit.peek()
        if live is None:  # no writer of this ragnest version wrote here since
            return False
        return slot.generation is None or live.logical != slot.generation.logical

    def checkout(self, *, timeout: float | None = None) -> Slot:
        """A slot holding the last committed state (copied now if needed; then load it,
        remove uncommitted points when ``slot.copied`` is set, and call ``slot.ready()``).

        Waits up to ``timeout`` (default: the pool's ``wait``) for the writer to reach a
        committed state, then raises :class:`StoreLockedError`.
        """
        live = self.commit.peek()
        slot = self._take(live)
        try:
            if live is not None and slot.generation == live:
                return slot
            if live is not None and slot.generation is not None and (
                slot.generation.logical == live.logical
            ):  # same data, other files (an optimize ran): refresh only if it costs no wait
                with contextlib.suppress(StoreError):
                    self._copy(slot, 0.0)
                return slot
            self._copy(slot, self.wait if timeout is None else timeout)
            return slot
        except BaseException:
            self.release(slot)
            raise

    def release(self, slot: Slot) -> None:
        """Give the slot back (slots past ``SLOTS_KEPT`` are removed first)."""
        try:
            if slot.index >= SLOTS_KEPT or slot.generation is None:
                self._discard(slot.path)
        finally:
            unlock_file(slot.fh)
            slot.fh.close()

    def clear(self) -> None:
        """Remove every slot no reader holds (after the collection was dropped)."""
        if not self.base.is_dir():
            return
        for entry in list(self.base.iterdir()):
            slot = self._lock_existing(entry)
            if slot is not None:
                slot.generation = None
                slot.index = SLOTS_KEPT  # removed on release
                self.release(slot)

    # ------------------------------------------------------------------ slots
    def _take(self, live: Generation | None) -> Slot:
        """A free slot: one holding ``live`` if any, else the one closest to it, else new."""
        self.base.mkdir(parents=True, exist_ok=True)
        free: list[Slot] = []
        try:
            trash = []
            for entry in sorted(self.base.iterdir(), key=_slot_order):
                if entry.name.startswith(".trash-"):
                    trash.append(entry)
                    continue
                slot = self._lock_existing(entry)
                if slot is None:
                    continue
                if live is not None and slot.generation == live:
                    free.insert(0, slot)
                    break
                free.append(slot)
            if trash:  # left by readers that exited before they had removed it
                _remove_later(trash)
            if free:
                same = [s for s in free if live and s.generation
                        and s.generation.logical == live.logical]
                best = same[0] if same else free[0]
                free.remove(best)
                return best
            return self._new()
        finally:
            for other in free:
                unlock_file(other.fh)
                other.fh.close()

    def _lock_existing(self, entry: Path) -> Slot | None:
        if not entry.name.isdigit():
            return None
        lock = entry / "lock"
        try:
            fh = open(lock, "r+", encoding="utf-8")  # noqa: SIM115 - kept while checked out
        except OSError:  # being made or removed by another reader
            return None
        if not lock_file(fh):
            fh.close()
            return None
        try:  # the slot may have been removed between our open and our lock
            same = os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino
        except OSError:
            same = False
        if not same:
            unlock_file(fh)
            fh.close()
            return None
        try:
            gen = Generation.parse((entry / "generation").read_text(encoding="utf-8"))
        except OSError:
            gen = None
        return Slot(path=entry, index=int(entry.name), fh=fh, generation=gen)

    def _new(self) -> Slot:
        index = 0
        while True:
            path = self.base / str(index)
            try:
                path.mkdir()
            except FileExistsError:
                index += 1
                continue
            fh = open(path / "lock", "a+", encoding="utf-8")  # noqa: SIM115
            if lock_file(fh):
                return Slot(path=path, index=index, fh=fh)
            fh.close()  # another reader found the new slot first: it is theirs
            index += 1

    # ------------------------------------------------------------------ copying
    def _copy(self, slot: Slot, timeout: float) -> None:
        """Copy the live shard and metadata into ``slot`` while no file changes (a copy
        that fails or times out leaves the slot as it was)."""
        new = slot.path / "shard.new"
        shutil.rmtree(new, ignore_errors=True)
        with self.commit.shared(timeout) as gen:
            if not self.meta_path.is_file() or not self.shard_dir.is_dir():
                raise StoreError(f"no store at {self.root} (it was removed while opening)")
            copy_tree(self.shard_dir, new)
            shutil.copyfile(self.meta_path, slot.path / "meta.new")
        with contextlib.suppress(FileNotFoundError):
            (slot.path / "generation").unlink()
        slot.generation = None
        if slot.shard.exists():
            self._discard(slot.shard)
        os.replace(new, slot.shard)
        os.replace(slot.path / "meta.new", slot.meta)
        slot.copied = gen or Generation("unknown", uuid.uuid4().hex[:16])
        log.debug("copied %s into read slot %s", self.shard_dir, slot.path)

    def _discard(self, path: Path) -> None:
        """Move ``path`` aside at once and remove it in the background (freeing a copy's
        blocks takes longer than making it)."""
        trash = self.base / f".trash-{uuid.uuid4().hex[:12]}"
        try:
            os.replace(path, trash)
        except OSError:
            return
        _remove_later([trash])


_inline = threading.local()


@contextlib.contextmanager
def removing_inline() -> Iterator[None]:
    """Within it, this thread removes discarded copies itself instead of starting a
    thread for it: for finalizers (``__del__``), where the garbage collector may run at
    any point of another thread's start, and starting a thread there can hang."""
    _inline.on = True
    try:
        yield
    finally:
        _inline.on = False


def _remove_later(paths: list[Path]) -> None:
    def remove() -> None:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)

    if getattr(_inline, "on", False):
        remove()
        return
    threading.Thread(target=remove, name="ragnest-replica-cleanup", daemon=True).start()


def _slots_dir(root: Path) -> Path:
    if os.access(root, os.W_OK):
        return root / READ_DIR
    digest = hashlib.sha1(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ragnest-read-{digest}"


def _slot_order(entry: Path) -> tuple[int, str]:
    return (int(entry.name), "") if entry.name.isdigit() else (1 << 30, entry.name)


# ---------------------------------------------------------------------- copying files
def copy_tree(src: Path, dst: Path) -> None:
    """Copy a directory tree, keeping sparse files sparse (the engine's files are)."""
    shutil.copytree(src, dst, copy_function=_copy_file)


def _copy_file(src: str, dst: str) -> str:
    try:
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            _copy_data(fi.fileno(), fo.fileno())
    except (OSError, AttributeError):  # no SEEK_DATA / copy_file_range here: a plain copy
        shutil.copyfile(src, dst)
    return dst


def _copy_data(fdi: int, fdo: int) -> None:
    size = os.fstat(fdi).st_size
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fdi, pos, os.SEEK_DATA)
        except OSError as err:  # ENXIO: nothing but a hole up to the end
            if err.errno == errno.ENXIO:
                break
            raise
        end = os.lseek(fdi, start, os.SEEK_HOLE)
        offset = start
        while offset < end:
            n = os.copy_file_range(fdi, fdo, end - offset, offset, offset)
            if n == 0:
                raise OSError("copy_file_range copied nothing")
            offset += n
        pos = end
    os.ftruncate(fdo, size)
