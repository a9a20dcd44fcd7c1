"""Large additions to a store on disk, written fast and still all or nothing.

The engine's transactional writes cost about 25 µs a quad (a million quads: 25 s);
its bulk loader writes the same in a quarter of the time, but a crash midway leaves a
store half written. So a large addition is bulk-loaded into a copy of the store (a
checkpoint: hard links, made in a moment), and the copy then takes the store's place:

1. checkpoint the store into ``.<name>.bulk-<pid>-<id>`` beside it and bulk-load the
   quads into the checkpoint;
2. rename the store to ``.<name>.replaced-<pid>-<id>``;
3. rename the checkpoint to the store's name, then delete the replaced store.

A crash before step 2 leaves the store as it was (and a checkpoint to delete); between
steps 2 and 3, no store but the replaced one, which :func:`recover` puts back (the
addition was never acknowledged); after step 3, the new store. :func:`recover` runs
whenever a store directory is opened, and also deletes what dead processes left.

Only a process that holds the store alone may do this (the command line's ``load``):
the engine is closed before the swap and opened again after it
(:class:`patrolkg.store.OxigraphStore` with ``bulk_writes=True``).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import pyoxigraph as ox

__all__ = ["BULK_QUADS", "load_into_copy", "swap_in", "recover"]

log = logging.getLogger("patrolkg.store")

#: Additions of at least this many quads are bulk-loaded into a copy, when allowed.
BULK_QUADS = 50_000


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _leftovers(path: Path, kind: str) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.{kind}-*")) if path.parent.is_dir() else []


def _owner_alive(leftover: Path) -> bool:
    """Whether the process named in ``.<name>.<kind>-<pid>-<id>`` still runs."""
    pid = leftover.name.rsplit(".", 1)[-1].split("-")[1]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(path: Path) -> None:
    """Finish or undo what a process killed during :func:`commit_in_copy` left.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / ".store.replaced-999999999-abcd").mkdir()
    >>> recover(root / "store")
    >>> sorted(p.name for p in root.iterdir())
    ['store']
    """
    replaced = [p for p in _leftovers(path, "replaced") if not _owner_alive(p)]
    if replaced and not path.exists():
        # Killed between the two renames: the old store goes back, whole.
        os.rename(replaced.pop(), path)
        log.warning("a bulk write to %s was interrupted; the store is as it was before it", path.name)
    for leftover in [*replaced, *(p for p in _leftovers(path, "bulk") if not _owner_alive(p))]:
        shutil.rmtree(leftover, ignore_errors=True)


def load_into_copy(engine: ox.Store, path: Path, nquads: bytes) -> Path:
    """Steps 1 of the module's protocol: a checkpoint of ``engine`` (the store at
    ``path``) holding the quads of the N-Quads document ``nquads`` too. The store is
    not changed.

    :raises OSError: if the copy cannot be made or written (it is deleted again).
    :raises SyntaxError: if ``nquads`` is malformed (the copy is deleted again).
    """
    copy = _sibling(path, "bulk")
    try:
        engine.backup(str(copy))
        target = ox.Store(str(copy))
        target.bulk_load(nquads, format=ox.RdfFormat.N_QUADS)
        target.flush()
        del target
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    return copy


def swap_in(copy: Path, path: Path) -> None:
    """Steps 2 and 3: ``copy`` becomes the store at ``path``. Nothing may have the store
    at ``path`` open any more.

    :raises OSError: if a rename fails (the store at ``path`` is then as it was).
    """
    replaced = _sibling(path, "replaced")
    os.rename(path, replaced)
    try:
        os.rename(copy, path)
    except BaseException:
        os.rename(replaced, path)
        shutil.rmtree(copy, ignore_errors=True)
        raise
    shutil.rmtree(replaced, ignore_errors=True)
