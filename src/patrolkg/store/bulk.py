"""Large additions to a store on disk, written fast and still all or nothing.

The engine's transactional writes cost about 25 µs a quad (a million quads: 25 s);
its bulk loader writes the same in a quarter of the time, but a crash midway leaves a
store half written. So a large addition is bulk-loaded into a copy of the store (a
checkpoint: hard links, made in a moment), and the copy then takes the store's place:

1. checkpoint the store into ``.<name>.bulk-<pid>-<id>`` beside it and bulk-load the
   quads into the checkpoint;
2. rename the store to ``.<name>.replaced-<pid>-<id>``;
3. rename the checkpoint to the store's name, then delete the replaced store.

A crash before step 2 leaves the store as it was (and a copy to delete); between steps
2 and 3, no store but the replaced one, which :func:`recover` puts back (the addition
was never acknowledged); after step 3, the new store (and the replaced one to delete).

The writer holds a lock on the file ``.<name>.lock`` beside the store from step 1 to the
end, and :func:`recover`, run whenever a store directory is opened, takes the same lock
before it touches anything: what it finds while it holds the lock was left by a writer
that died. While a writer holds the lock, nothing is touched, and a store directory
missing then (between the two renames) is an error rather than a new empty store.

Only a process that holds the store alone may do this (the command line's ``load``):
the engine is closed before the swap and opened again after it
(:class:`patrolkg.store.OxigraphStore` with ``bulk_writes=True``). It needs write
access to the store's parent directory, and POSIX file locks.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pyoxigraph as ox

from ..errors import StoreError

__all__ = ["BULK_QUADS", "load_into_copy", "swap_in", "recover", "writing"]

log = logging.getLogger("patrolkg.store")

#: Additions of at least this many quads are bulk-loaded into a copy, when allowed.
BULK_QUADS = 50_000


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _leftovers(path: Path, kind: str) -> list[Path]:
    """What bulk writes left beside the store at ``path`` (RocksDB makes a checkpoint
    as ``<name>.tmp`` first, so those count too)."""
    return sorted(path.parent.glob(f".{path.name}.{kind}-*")) if path.parent.is_dir() else []


@contextmanager
def _lock(path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the bulk-write lock of the store at ``path``: yields True when held, False
    when another process holds it (``wait=False``).

    :raises OSError: if the lock file cannot be made (the parent is not writable).
    """
    descriptor = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # releases the lock


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Hold the bulk-write lock of the store at ``path`` while a bulk write runs.

    :raises StoreError: if the lock file cannot be made beside the store.
    """
    path = path.absolute()
    try:
        with _lock(path, wait=True):
            yield
    except OSError as exc:
        raise StoreError(
            f"cannot lock the store for a bulk write: {exc.strerror or exc}; nothing was written",
            hint="a bulk write needs write access to the directory that holds the store",
        ) from None


def recover(path: Path) -> None:
    """Undo or finish what a bulk write that died left beside the store at ``path``.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / ".store.replaced-1-abcd").mkdir()
    >>> recover(root / "store")
    >>> sorted(p.name for p in root.iterdir())
    ['.store.lock', 'store']

    :raises StoreError: if a bulk write is replacing the store at this moment.
    """
    path = path.absolute()
    if not _leftovers(path, "bulk") and not _leftovers(path, "replaced"):
        return
    try:
        with _lock(path, wait=False) as held:
            if not held:
                if not path.exists():
                    raise StoreError("the store is being replaced by a bulk load at this moment", hint="retry when `patrolkg load` has ended")
                return  # a live writer's files: not ours to touch
            replaced = _leftovers(path, "replaced")
            if replaced and not path.exists():
                # Died between the two renames: the old store goes back, whole.
                os.rename(replaced.pop(), path)
                log.warning("a bulk write to %s was interrupted; the store is as it was before it", path.name)
            for leftover in [*replaced, *_leftovers(path, "bulk")]:
                shutil.rmtree(leftover, ignore_errors=True)
    except OSError as exc:
        log.warning("cannot clean up after an interrupted bulk write beside %s: %s", path, exc)


def load_into_copy(engine: ox.Store, path: Path, graphs: Mapping[ox.NamedNode | ox.DefaultGraph, bytes]) -> Path:
    """Step 1 of the module's protocol: a checkpoint of ``engine`` (the store at
    ``path``) holding, in each graph of ``graphs``, the triples of its N-Triples
    document too. The store is not changed. Call it inside :func:`writing`.

    :raises OSError: if the copy cannot be made or written (it is deleted again).
    :raises SyntaxError: if a document is malformed (the copy is deleted again).
    """
    copy = _sibling(path.absolute(), "bulk")
    try:
        engine.backup(str(copy))
        target = ox.Store(str(copy))
        for graph, ntriples in graphs.items():
            target.bulk_load(ntriples, format=ox.RdfFormat.N_TRIPLES, to_graph=graph)
        # A bulk load adds its files beside the existing ones, overlapping them; until
        # they are compacted every read looks in each (queries on a freshly loaded
        # million triples ran 25-70 % slower). Compact before the copy is swapped in:
        # 2 s at a million triples, and the query workers' snapshots start compact.
        target.optimize()
        target.flush()
        del target
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(copy.with_name(copy.name + ".tmp"), ignore_errors=True)
        raise
    return copy


def swap_in(copy: Path, path: Path) -> None:
    """Steps 2 and 3: ``copy`` becomes the store at ``path``. Nothing may have the store
    at ``path`` open any more. Call it inside :func:`writing`.

    :raises OSError: if a rename fails (the store at ``path`` is then as it was, and
        the copy deleted).
    """
    path = path.absolute()
    replaced = _sibling(path, "replaced")
    try:
        os.rename(path, replaced)
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    try:
        os.rename(copy, path)
    except BaseException:
        os.rename(replaced, path)
        shutil.rmtree(copy, ignore_errors=True)
        raise
    shutil.rmtree(replaced, ignore_errors=True)
