"""The embedded store: pyoxigraph on a directory, or in memory for tests."""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractContextManager
from pathlib import Path

import pyoxigraph as ox

from ..errors import StoreError
from . import bulk
from .base import QueryResult, query_has_dataset, syntax_error

__all__ = ["OxigraphStore"]

log = logging.getLogger("patrolkg.store")

# Absolute paths in the engine's messages ("While appending to file: /srv/store/000044.log").
_PATH = re.compile(r"(?<![\w<])/[^\s:;,'\"]+")

# How many triples go into one INSERT DATA chunk of an atomic replacement.
_INSERT_CHUNK = 50_000
#: An IRI that can be written between angle brackets in a query as it is.
_IRI_TEXT = re.compile(r'[^\x00-\x20<>"{}|^`\\]+')


class OxigraphStore:
    """A :class:`patrolkg.store.Store` backed by pyoxigraph.

    >>> store = OxigraphStore(None)
    >>> t = ox.Triple(ox.NamedNode("http://e/a"), ox.NamedNode("http://e/p"), ox.Literal("x"))
    >>> store.replace_graphs({"http://e/g": [t]})
    >>> [row["o"].value for row in store.query("SELECT ?o WHERE { ?s ?p ?o }")]
    ['x']

    Before each write to a directory, the store checks that the directory can be
    written and that its disk has ``min_free_bytes`` free, and refuses the write
    otherwise (nothing reaches the engine). When the engine fails a write (the disk
    filled up meanwhile), or fails to flush its memory for a snapshot, it stays
    refusing every write until reopened (RocksDB keeps its error), so the store is
    reopened on next use, or opened read-only while it
    cannot be opened for writing: reads go on, and writes resume once the cause is gone.

    :param path: directory of the persistent store (created if missing), or None for
        a store that lives in memory only.
    :param min_free_bytes: free space the store's disk must keep; writes beyond are
        refused (``PATROLKG_MIN_FREE_BYTES``).
    :param bulk_writes: for a process that holds the store alone (the command line's
        ``load``): additions of :data:`~patrolkg.store.bulk.BULK_QUADS` quads or more are
        bulk-loaded into a copy that then replaces the store (:mod:`patrolkg.store.bulk`),
        four times faster than a transaction and as atomic.
    :raises StoreError: if the directory cannot be opened (locked by another process,
        unreadable, or not a store).
    """

    def __init__(self, path: Path | str | None, *, min_free_bytes: int = 0, bulk_writes: bool = False) -> None:
        self.path = Path(path).absolute() if path is not None else None
        self.min_free_bytes = min_free_bytes
        self.bulk_writes = bulk_writes and self.path is not None
        try:
            if self.path is not None:
                bulk.recover(self.path)
                self.path.mkdir(parents=True, exist_ok=True)
                self._store: ox.Store | None = ox.Store(str(self.path))
            else:
                self._store = ox.Store()
        except OSError as exc:
            raise StoreError(
                f"cannot open the store at {self.path}: {exc}",
                hint="check the directory's permissions, or stop the other patrolkg process using it",
            ) from None
        self._writable, self._closed = True, False
        self._unwritable = ""  # why the engine could not be reopened for writing
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        # One process owns the directory, so the version and the lease live in memory.
        self._version: str | None = None
        self._lease = threading.RLock()

    @classmethod
    def read_only(cls, path: Path | str) -> OxigraphStore:
        """Open a store directory that nothing writes to any more (a snapshot) for reading.

        :raises StoreError: if it cannot be opened.
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        self.min_free_bytes = 0
        self.bulk_writes = False
        try:
            self._store = ox.Store.read_only(str(path))
        except OSError as exc:
            raise StoreError(f"cannot open the snapshot at {path}: {exc}") from None
        self._writable, self._closed = False, False
        self._unwritable = "a snapshot is read-only"
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._version = None
        self._lease = threading.RLock()
        return self

    def snapshot(self, target: Path) -> None:
        """Write a consistent copy of the store to ``target`` (hard links where possible).

        :raises StoreError: for an in-memory store, or if the copy fails.
        """
        if self.path is None:
            raise StoreError("an in-memory store has no snapshots")
        try:
            self._engine().backup(str(target))
        except OSError as exc:
            # A snapshot first flushes the engine's memory into the store's own files;
            # when that fails (a full disk), RocksDB refuses every later write until it
            # is reopened, as after a failed write: it is reopened at its next use. A
            # failure in the target's files alone leaves the engine as it was.
            if any(f"{place}{os.sep}" in str(exc) for place in (self.path, self.path.resolve())):
                log.error("the engine failed to flush for a snapshot (it is reopened at its next use): %s", exc)
                with self._write_lock:
                    self._store = None
            raise StoreError(f"cannot snapshot the store: {self._private(exc)}") from None

    def compact(self) -> bool:
        """Merge the engine's files into one sorted run per index; whether it wrote new
        ones (not for a store that was compact already: that takes microseconds).

        Each commit leaves the engine's memory or a small file that every later read
        consults beside the big ones, until RocksDB merges them; a range scan merges
        them all on the way. At a million triples, 30 small commits made the workers'
        queries 20-25 % slower, and this (2.4 s, while reads and writes go on) made
        them as fast as on a freshly loaded store. Nothing to do for a store in memory.

        Merging needs room for a copy of what it merges: with less free space than the
        store's files take (plus ``min_free_bytes``), it is not tried. Should the disk
        fill up meanwhile, RocksDB does not say so but refuses every later write: the
        engine is then reopened, as after a failed write.

        :raises StoreError: if there is not room enough, or the engine failed (reads go
            on, and nothing held is lost).
        """
        if self.path is None:
            return False
        if not self._writable:
            raise StoreError(f"cannot compact the store: it is open read-only since a failed write ({self._unwritable})", hint="compaction is tried again once writes resume")
        before = self._files()
        try:
            size = sum(os.stat(self.path / name).st_size for name in before)
            stats = os.statvfs(self.path)
        except OSError as exc:
            raise StoreError(f"cannot compact the store: {exc.strerror or exc}") from None
        free = stats.f_bavail * stats.f_frsize
        if free < size + self.min_free_bytes:
            raise StoreError(
                f"cannot compact the store: merging its files needs up to {size + self.min_free_bytes:,} bytes free on its disk, which has {free:,}",
                hint="free space on the store's disk; queries are slower until the store is compacted",
            )
        try:  # (no local reference to the engine: a traceback kept would keep it open)
            self._engine().optimize()
            self._engine().flush()  # raises if the merge failed on a full disk, as the engine then is
        except OSError as exc:
            log.error("the engine failed to compact the store (it is reopened at its next use): %s", exc)
            with self._write_lock:
                self._store = None
            raise StoreError(f"cannot compact the store: {self._private(exc)}", hint="free space on the store's disk: compaction needs room for a copy of what it merges") from None
        return bool(self._files() - before)

    def _files(self) -> set[str]:
        """The engine's sorted files (RocksDB's ``*.sst``)."""
        assert self.path is not None
        try:
            return {name for name in os.listdir(self.path) if name.endswith(".sst")}
        except OSError:
            return set()

    def __repr__(self) -> str:
        return f"OxigraphStore({str(self.path) if self.path else None!r})"

    @property
    def raw(self) -> ox.Store:
        """The underlying pyoxigraph store, for code inside patrolkg that needs it."""
        return self._engine()

    # -- the engine, reopened after a failed write --------------------------------------

    def _engine(self) -> ox.Store:
        store = self._store
        if store is None:
            if self._closed:
                raise StoreError("the store is closed")
            with self._open_lock:
                store = self._store if self._store is not None else self._reopen()
        return store

    def _reopen(self) -> ox.Store:
        """Open the directory again after the engine failed a write: for writing if it
        can be, else read-only (another reference to the failed engine may still be
        alive for a moment: a query being read)."""
        assert self.path is not None
        try:
            store = ox.Store(str(self.path))
            self._writable = True
            log.warning("the store was reopened after a failed write; writes resume")
        except OSError as exc:
            try:
                store = ox.Store.read_only(str(self.path))
            except OSError:
                raise StoreError(
                    f"the store is being reopened after a failed write: {self._private(exc)}",
                    hint="retry in a moment; if it lasts, restart the server",
                ) from None
            self._writable, self._unwritable = False, self._private(exc)
        self._store = store
        return store

    def _private(self, error: OSError) -> str:
        """The engine's message without the server's paths (it is sent to clients)."""
        text = str(error)
        if self.path is not None:
            text = text.replace(str(self.path.resolve()), "<store>").replace(str(self.path), "<store>")
        return _PATH.sub("<path>", text)

    def _check_writable(self) -> None:
        """Refuse a write the store's directory or disk cannot take, before the engine
        sees it (an engine that failed a write refuses all later ones until reopened).

        :raises StoreError: naming the cause and what to do; nothing was written.
        """
        if self.path is None:
            return
        if not self._writable:  # read-only since a write failed: try to open it for writing
            self._store = None
            self._engine()
            if not self._writable:
                raise StoreError(
                    f"cannot write the store: it cannot be opened for writing again after a failed write or snapshot ({self._unwritable}); nothing was written",
                    hint="free space on the store's disk, or make its directory writable; writes resume by themselves, and reads go on meanwhile",
                )
        try:
            stats = os.statvfs(self.path)
            probe = self.path / f".write-probe-{os.getpid()}"
            os.close(os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(
                f"cannot write the store: {exc.strerror or exc}; nothing was written",
                hint="make the store's directory writable by the server (reads go on meanwhile)",
            ) from None
        free = stats.f_bavail * stats.f_frsize
        if free < self.min_free_bytes:
            raise StoreError(
                f"cannot write the store: No space left on device (the store's disk has {free / 2**20:.1f} MiB free, "
                f"writes need {self.min_free_bytes / 2**20:.1f} MiB); nothing was written",
                hint="free space on the store's disk, or lower PATROLKG_MIN_FREE_BYTES; reads go on meanwhile",
            )

    def query(
        self,
        sparql: str,
        *,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base_iri: str | None = None,
    ) -> QueryResult:
        options: dict[str, object] = {"base_iri": base_iri} if base_iri else {}
        if default_graphs is not None or named_graphs is not None:
            options["default_graph"] = [ox.NamedNode(g) for g in (default_graphs or [])]
            if named_graphs is not None:
                options["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
        elif not query_has_dataset(sparql):
            options["use_default_graph_as_union"] = True
        try:
            return self._engine().query(sparql, **options)
        except SyntaxError as exc:
            raise syntax_error(exc) from None
        except OSError as exc:
            raise StoreError(f"cannot read the store: {exc}") from None

    def count_matches(self, predicates: Sequence[str], term: str, limit: int) -> int:
        """How many triples, in all graphs together, have one of ``predicates`` (IRIs)
        and the object ``term`` (an IRI), counted in the engine up to ``limit + 1``;
        ``limit + 1`` for a text that is not an IRI."""
        if not all(_IRI_TEXT.fullmatch(iri) for iri in (*predicates, term)):
            return limit + 1
        path = "|".join(f"<{iri}>" for iri in predicates)
        query = f"SELECT (COUNT(*) AS ?n) WHERE {{ {{ SELECT ?s WHERE {{ ?s {path} <{term}> }} LIMIT {max(limit, 0) + 1} }} }}"
        try:
            solution = next(iter(self._engine().query(query, use_default_graph_as_union=True)))
        except (SyntaxError, OSError):
            return limit + 1
        return int(solution[0].value)

    def graph_names(self) -> list[str]:
        names = (g for g in self._engine().named_graphs() if isinstance(g, ox.NamedNode))
        return sorted(g.value for g in names if next(iter(self._engine().quads_for_pattern(None, None, None, g)), None) is not None)

    def triple_count(self, graph: str | None = None) -> int:
        if graph is None:
            return len(self._engine())
        query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
        return int(next(iter(self._engine().query(query)))["n"].value)

    def quads(self, graph: str | None = None) -> Iterator[ox.Quad]:
        name = ox.NamedNode(graph) if graph is not None else None
        return self._engine().quads_for_pattern(None, None, None, name)

    def quads_in(self, graph: str | None) -> Iterator[ox.Quad]:
        name = ox.NamedNode(graph) if graph is not None else ox.DefaultGraph()
        return self._engine().quads_for_pattern(None, None, None, name)

    def replace_graphs(self, graphs: Mapping[str, Iterable[ox.Triple]], drop: Iterable[str] = ()) -> None:
        # One SPARQL update is one transaction in Oxigraph: readers see all of it or
        # none of it, and a crash leaves the store as it was.
        parts = [f"DROP SILENT GRAPH <{g}>" for g in {*drop, *graphs}]
        for name, triples in graphs.items():
            chunk: list[str] = []
            for triple in triples:
                chunk.append(f"{triple.subject} {triple.predicate} {triple.object} .")
                if len(chunk) >= _INSERT_CHUNK:
                    parts.append(_insert_data(name, chunk))
                    chunk = []
            if chunk:
                parts.append(_insert_data(name, chunk))
        self._update(" ;\n".join(parts))

    def apply(
        self,
        remove: Mapping[str | None, Iterable[ox.Triple]],
        add: Mapping[str | None, Iterable[ox.Triple]],
        *,
        expect_version: str | None = None,
        new_version: str | None = None,
    ) -> bool:
        if self.bulk_writes and not any(remove.values()) and sum(map(_size, add.values())) >= bulk.BULK_QUADS and not self._inside_store(Path.cwd()):
            return self._add_in_bulk(add, expect_version=expect_version, new_version=new_version)
        parts = []
        for graph, triples in remove.items():
            lines = [_triple_text(t) for t in triples]
            if lines:
                parts.append("DELETE DATA { " + _in_graph(graph, lines) + " }")
        for graph, triples in add.items():
            lines = [_triple_text(t) for t in triples]
            if lines:
                parts.append("INSERT DATA { " + _in_graph(graph, lines) + " }")
        return self._update(" ;\n".join(parts), expect_version=expect_version, new_version=new_version)

    def version(self) -> str | None:
        return self._version

    def write_lease(self) -> AbstractContextManager[None]:
        return self._lease

    def quads_with_subjects(self, nodes: Iterable[str]) -> list[ox.Quad]:
        return [q for iri in set(nodes) for q in self._engine().quads_for_pattern(ox.NamedNode(iri), None, None, None)]

    def quads_with_objects(self, nodes: Iterable[str]) -> list[ox.Quad]:
        return [q for iri in set(nodes) for q in self._engine().quads_for_pattern(None, None, ox.NamedNode(iri), None)]

    def _update(self, sparql: str, *, expect_version: str | None = None, new_version: str | None = None) -> bool:
        """Run one update (an empty one only changes the version); with ``new_version``,
        only if the version is still ``expect_version``."""
        with self._write_lock:
            if new_version is not None and self._version != expect_version:
                return False
            if sparql:
                self._check_writable()
                try:
                    self._engine().update(sparql)
                except OSError as exc:
                    # The engine refuses every write after this one until it is reopened.
                    log.error("the engine failed a write (it is reopened at its next use): %s", exc)
                    self._store = None
                    raise StoreError(
                        f"cannot write the store: {self._private(exc)}; nothing was written",
                        hint="free space on the store's disk, or make its directory writable; writes resume by themselves",
                    ) from None
            self._version = new_version or uuid.uuid4().hex
            return True

    def _add_in_bulk(self, add: Mapping[str | None, Iterable[ox.Triple]], *, expect_version: str | None, new_version: str | None) -> bool:
        """:meth:`apply` of a large addition, through :mod:`patrolkg.store.bulk`."""
        assert self.path is not None
        documents = {
            ox.NamedNode(graph) if graph is not None else ox.DefaultGraph(): ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
            for graph, triples in add.items()
            if triples
        }
        with self._write_lock:
            if new_version is not None and self._version != expect_version:
                return False
            self._check_writable()
            with bulk.writing(self.path):
                try:
                    copy = bulk.load_into_copy(self._engine(), self.path, documents)
                except OSError as exc:
                    raise StoreError(
                        f"cannot write the store: {self._private(exc)}; nothing was written",
                        hint="a bulk write needs room on the store's disk for what it adds, and write access to the store's parent directory",
                    ) from None
                self._store = None
                gc.collect()  # the engine closes when its last reference goes
                try:
                    bulk.swap_in(copy, self.path)
                except OSError as exc:
                    raise StoreError(f"cannot write the store: {self._private(exc)}; nothing was written") from None
                finally:
                    try:
                        self._store = ox.Store(str(self.path))
                    except OSError as exc:  # left closed: the next use reopens it, or says why not
                        log.error("cannot reopen the store after a bulk write: %s", exc)
            self._version = new_version or uuid.uuid4().hex
            return True

    def _inside_store(self, directory: Path) -> bool:
        """Whether ``directory`` is the store's directory or inside it (a bulk write
        would move it away: it is not made then)."""
        assert self.path is not None
        return directory.resolve().is_relative_to(self.path.resolve())

    def close(self) -> None:
        if self.path is not None and self._writable:
            try:
                if self._store is not None:
                    self._store.flush()
            except (OSError, RuntimeError):  # RuntimeError: a read-only instance
                pass
        self._store, self._closed = None, True


def _size(triples: Iterable[ox.Triple]) -> int:
    return len(triples) if isinstance(triples, Sized) else 0


def _insert_data(graph: str, lines: list[str]) -> str:
    return f"INSERT DATA {{ GRAPH <{graph}> {{\n" + "\n".join(lines) + "\n} }"


def _triple_text(triple: ox.Triple) -> str:
    return f"{triple.subject} {triple.predicate} {triple.object} ."


def _in_graph(graph: str | None, lines: list[str]) -> str:
    body = "\n".join(lines)
    return body if graph is None else f"GRAPH <{graph}> {{\n{body}\n}}"
