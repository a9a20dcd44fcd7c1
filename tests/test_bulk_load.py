"""Large additions: the bulk write path of a store on disk, and large focus sets.

- ``patrolkg load --store DIR FILE`` of a generated file above ``BULK_QUADS``: the file's
  triples, its submission record and their entailments arrive, through a copy of the
  store that takes the store directory's place (a new inode), and nothing is left beside;
- the same load killed with SIGKILL at five moments (while the copy is written, at each
  of the two renames, while the old store is deleted, just after the swap): once opened
  again the store holds all of the file with its record, or none of it, the bundle as it
  was, and nothing beside it;
- :func:`patrolkg.store.bulk.recover`: a store a dead process set aside is put back, what
  dead processes left is deleted, what a live process is writing is kept;
- ``OxigraphStore(bulk_writes=True)``: below ``BULK_QUADS``, or with removals, a change is an
  ordinary transaction in the same directory; at ``BULK_QUADS`` it is swapped in, honours
  the version check and leaves the store usable;
- ``CompiledShapes.validate`` and ``find_inconsistencies`` with a focus past their
  ``FOCUS_VALUES_LIMIT`` report exactly what the same nodes in chunks below it report.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
import pytest

from patrolkg import resources
from patrolkg.namespaces import INFERRED_GRAPH, PK
from patrolkg.reasoning import FOCUS_VALUES_LIMIT as OWL_FOCUS_LIMIT
from patrolkg.reasoning import bundled_schema_closure, find_inconsistencies, materialize
from patrolkg.shacl_sparql import FOCUS_VALUES_LIMIT as SHAPES_FOCUS_LIMIT
from patrolkg.errors import StoreError
from patrolkg.store import OxigraphStore, Store
from patrolkg.store.bulk import BULK_QUADS, recover
from patrolkg.submissions import SUBMISSIONS_GRAPH, Submissions
from patrolkg.validation import compiled_shapes
from patrolkg.writes import Writer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import generate  # noqa: E402

#: Above BULK_QUADS with its record and entailments, and small enough for a quick test.
GENERATED_TRIPLES = 60_000
SUBMISSION_PREFIX = "https://w3id.org/patrolkg/graph/submission/"
TIMEOUT = 120

Graphs = dict[str | None, frozenset[ox.Triple]]


# -- helpers ---------------------------------------------------------------------------


def patrolkg(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patrolkg", *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT)


def beside(store_dir: Path) -> frozenset[str]:
    """What is in the store's directory's place and beside it: "store" if the directory
    exists, "bulk" and "replaced" for leftovers of a bulk write."""
    found = {"store"} if store_dir.is_dir() else set()
    for kind in ("bulk", "replaced"):
        if any(store_dir.parent.glob(f".{store_dir.name}.{kind}-*")):
            found.add(kind)
    return frozenset(found)


def graphs_of(store: Store) -> Graphs:
    graphs: Graphs = {name: frozenset(q.triple for q in store.quads(name)) for name in store.graph_names()}
    default = frozenset(q.triple for q in store.quads_in(None))
    return graphs | ({None: default} if default else {})


def what_it_holds(store: Store, bundle: Graphs, file_triples: frozenset[ox.Triple]) -> str:
    """"none" if ``store`` holds exactly ``bundle``; "all" if it holds the bundle plus the
    whole file in one submission graph, its record and more entailments; fails otherwise."""
    graphs = graphs_of(store)
    if graphs == bundle:
        return "none"
    inferred = str(INFERRED_GRAPH)
    assert {g: t for g, t in graphs.items() if g in bundle and g != inferred} == {g: t for g, t in bundle.items() if g != inferred}, "the bundle changed"
    assert graphs[inferred] > bundle[inferred], "the inferred graph did not grow"
    new = set(graphs) - set(bundle)
    assert SUBMISSIONS_GRAPH in new, f"the file's triples came without a submission record: {sorted(map(str, new))}"
    (data_graph,) = new - {SUBMISSIONS_GRAPH}
    assert graphs[data_graph] == file_triples, f"{data_graph} holds {len(graphs[data_graph])} triples, not the file's {len(file_triples)}"
    records, total = Submissions(store, Writer(store)).list()
    assert total == 1
    assert (records[0].graph, records[0].status, records[0].triples) == (data_graph, "accepted", len(file_triples))
    return "all"


def reopened_holds(store_dir: Path, bundle: Graphs, file_triples: frozenset[ox.Triple]) -> str:
    """Open the store as any patrolkg process would (which recovers it) and say what it holds."""
    store = OxigraphStore(store_dir)
    try:
        return what_it_holds(store, bundle, file_triples)
    finally:
        store.close()


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> bool:
    """Poll ``condition`` while ``process`` runs; False if it ended (or time ran out) first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


def numbered(count: int, label: str = "n") -> list[ox.Triple]:
    predicate = ox.NamedNode("urn:test:value")
    return [ox.Triple(ox.NamedNode(f"urn:test:{label}{i}"), predicate, ox.Literal(str(i))) for i in range(count)]


def make_store(path: Path, label: str) -> None:
    """A real store directory at ``path`` holding one triple with ``label``."""
    engine = ox.Store(str(path))
    engine.add(ox.Quad(ox.NamedNode("urn:test:s"), ox.NamedNode("urn:test:label"), ox.Literal(label), ox.NamedNode("urn:test:g")))
    engine.flush()
    del engine


def label_in(store_dir: Path) -> list[str]:
    store = OxigraphStore(store_dir)
    try:
        return [row["l"].value for row in store.query("SELECT ?l WHERE { <urn:test:s> <urn:test:label> ?l }")]
    finally:
        store.close()


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("generated") / "data.nt"
    generate.write(path, GENERATED_TRIPLES, seed=7)
    return path


@pytest.fixture(scope="module")
def file_triples(generated: Path) -> frozenset[ox.Triple]:
    """The file's triples as a store keeps them (derived integer types become xsd:integer)."""
    engine = ox.Store()
    engine.load(generated.read_bytes(), format=ox.RdfFormat.N_TRIPLES)
    triples = frozenset(q.triple for q in engine)
    assert len(triples) >= BULK_QUADS
    return triples


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store directory loaded with the bundle by the command line; copied, never written."""
    path = tmp_path_factory.mktemp("bundle") / "store"
    result = patrolkg("load", "--store", path)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> Graphs:
    store = OxigraphStore(bundle_dir)
    try:
        graphs = graphs_of(store)
    finally:
        store.close()
    assert str(INFERRED_GRAPH) in graphs and SUBMISSIONS_GRAPH not in graphs
    return graphs


@pytest.fixture
def store_dir(bundle_dir: Path, tmp_path: Path) -> Path:
    """A fresh store directory holding the bundle, alone in its parent directory."""
    path = tmp_path / "stores" / "store"
    shutil.copytree(bundle_dir, path)
    return path


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait(TIMEOUT)
    return process.pid


#: Run in a child process: hold the bulk-write lock of the store at argv[1] (as a bulk
#: write does from its copy to its swap), say so, and keep it until stdin closes.
HOLD_LOCK_SCRIPT = """
import sys
from pathlib import Path
from patrolkg.store.bulk import writing

with writing(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def writer_holding_the_lock(tmp_path: Path) -> Iterator[Path]:
    """Another process in the middle of a bulk write to ``tmp_path / "store"``: it holds
    the lock until the test ends."""
    store = tmp_path / "store"
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK_SCRIPT, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        yield store
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(TIMEOUT)


# -- the command line's bulk load ------------------------------------------------------


def test_a_large_file_is_loaded_in_bulk_with_its_record_and_entailments(
    store_dir: Path, generated: Path, file_triples: frozenset[ox.Triple], bundle: Graphs
) -> None:
    inode = store_dir.stat().st_ino
    loaded = patrolkg("load", "--store", store_dir, generated)
    assert loaded.returncode == 0, loaded.stderr
    count, graph = loaded.stdout.split()[:2]
    assert int(count) == len(file_triples) and graph.startswith(SUBMISSION_PREFIX)
    # The bulk path: a checkpoint took the directory's place (a transaction keeps it,
    # see test_below_bulk_quads_a_bulk_writes_store_commits_in_a_transaction).
    assert store_dir.stat().st_ino != inode
    assert beside(store_dir) == {"store"}

    # Another process opens it and answers SPARQL from it.
    statement = "https://w3id.org/patrolkg/id/statement/bench-0000001-1"
    query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ <{statement}> ?p ?o }} }}"
    answered = patrolkg("query", "--store", store_dir, "--format", "csv", query)
    assert answered.returncode == 0, answered.stderr
    expected = sum(1 for t in file_triples if t.subject == ox.NamedNode(statement))
    assert expected > 0 and answered.stdout.split() == ["n", str(expected)]

    assert reopened_holds(store_dir, bundle, file_triples) == "all"
    assert beside(store_dir) == {"store"}


#: Run in a child process: the bulk write of ``patrolkg load`` kills its own process with
#: SIGKILL when it reaches an audit event on a path of a given kind, i.e. at an exact
#: step of the swap. Arguments: the event, the kind (store, bulk, replaced), the store
#: directory's name, then the command line.
KILL_AT_SCRIPT = """
import os, signal, sys
from pathlib import Path

event, kind, store = sys.argv[1:4]

def kind_of(path):
    name = Path(path).name
    return "store" if name == store else name.removeprefix(f".{store}.").split("-")[0]

def die_at(name, args):
    if name == event and kind_of(args[0]) == kind:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(die_at)
from patrolkg.cli import main
sys.argv = ["patrolkg", *sys.argv[4:]]
main()
"""


@dataclass(frozen=True)
class Moment:
    """When a bulk load dies, what is on disk then, and what the store holds once opened."""

    name: str
    outcome: str  # "all" of the file, or "none"
    on_disk: tuple[frozenset[str], ...]  # what may be there when it dies (see beside())
    kill_at: tuple[str, str] | None = None  # the child kills itself at (audit event, kind of path)
    wait_for: tuple[Callable[[Path], bool], ...] = ()  # or the test kills it once these held in turn


def copy_being_loaded(store_dir: Path) -> bool:
    """A copy of the store is complete and being bulk-loaded (RocksDB makes the
    checkpoint as ``<copy>.tmp``, then renames it to its name)."""
    return any(not p.name.endswith(".tmp") for p in store_dir.parent.glob(f".{store_dir.name}.bulk-*"))


MOMENTS = [
    Moment("while the copy is bulk-loaded", "none", (frozenset({"store", "bulk"}),), wait_for=(copy_being_loaded,)),
    Moment("as the store is set aside", "none", (frozenset({"store", "bulk"}),), kill_at=("os.rename", "store")),
    Moment("between the two renames", "none", (frozenset({"bulk", "replaced"}),), kill_at=("os.rename", "bulk")),
    Moment("as the old store is deleted", "all", (frozenset({"store", "replaced"}),), kill_at=("shutil.rmtree", "replaced")),
    Moment(
        "just after the copy took the store's place", "all", (frozenset({"store", "replaced"}), frozenset({"store"})),
        wait_for=(copy_being_loaded, lambda path: "bulk" not in beside(path)),
    ),
]


def kill_load(moment: Moment, store_dir: Path, data: Path, log: Path) -> frozenset[str]:
    """Run ``patrolkg load`` of ``data`` and SIGKILL it at ``moment``; what was on disk
    when it died."""
    if moment.kill_at:
        command = [sys.executable, "-c", KILL_AT_SCRIPT, *moment.kill_at, store_dir.name]
    else:
        command = [sys.executable, "-m", "patrolkg"]
    command += ["load", "--store", str(store_dir), str(data)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        on_disk = None
        for condition in moment.wait_for:
            assert wait_until(lambda c=condition: c(store_dir), process), f"the load ended before {moment.name}:\n{log.read_text()}"
        if moment.wait_for:
            process.send_signal(signal.SIGSTOP)  # frozen: what is on disk now is what it dies with
            on_disk = beside(store_dir)
            process.send_signal(signal.SIGKILL)
        process.wait(TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    assert process.returncode == -signal.SIGKILL, f"the load was not killed {moment.name}:\n{log.read_text()}"
    return on_disk if on_disk is not None else beside(store_dir)


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.name.replace(" ", "-") for m in MOMENTS])
def test_a_bulk_load_killed_leaves_all_of_the_file_or_none(
    moment: Moment, store_dir: Path, generated: Path, file_triples: frozenset[ox.Triple], bundle: Graphs, tmp_path: Path
) -> None:
    on_disk = kill_load(moment, store_dir, generated, tmp_path / "load.log")
    assert on_disk in moment.on_disk, f"killed {moment.name}, but found {sorted(on_disk)} on disk"
    assert reopened_holds(store_dir, bundle, file_triples) == moment.outcome
    assert beside(store_dir) == {"store"}


# -- recover() -------------------------------------------------------------------------


def test_opening_a_store_puts_back_the_store_a_dead_process_set_aside(tmp_path: Path, dead_pid: int) -> None:
    make_store(tmp_path / f".store.replaced-{dead_pid}-1a2b3c4d", "as before the swap")
    make_store(tmp_path / f".store.bulk-{dead_pid}-5e6f7a8b", "the unfinished copy")
    assert label_in(tmp_path / "store") == ["as before the swap"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".store.lock", "store"]


def test_recover_deletes_what_dead_processes_left_beside_the_store(tmp_path: Path, dead_pid: int) -> None:
    make_store(tmp_path / "store", "current")
    make_store(tmp_path / f".store.bulk-{dead_pid}-5e6f7a8b", "a copy")
    make_store(tmp_path / f".store.replaced-{dead_pid}-1a2b3c4d", "the store before a finished swap")
    make_store(tmp_path / f".other.bulk-{dead_pid}-9c0d1e2f", "another store's copy")
    recover(tmp_path / "store")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".other.bulk-{dead_pid}-9c0d1e2f", ".store.lock", "store"]
    assert label_in(tmp_path / "store") == ["current"]


def test_recover_deletes_the_unfinished_checkpoint_of_a_process_killed_while_making_it(tmp_path: Path, dead_pid: int) -> None:
    make_store(tmp_path / "store", "current")
    make_store(tmp_path / f".store.bulk-{dead_pid}-5e6f7a8b.tmp", "a checkpoint being made")
    recover(tmp_path / "store")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".store.lock", "store"]


def test_leftovers_are_recovered_whatever_pid_they_name(tmp_path: Path) -> None:
    # Pids are reused (a restarted container's process is pid 1 again): what decides is
    # the lock, which no writer holds here, so the store set aside comes back.
    make_store(tmp_path / f".store.replaced-{os.getpid()}-1a2b3c4d", "as before the swap")
    make_store(tmp_path / f".store.bulk-{os.getpid()}-5e6f7a8b", "the unfinished copy")
    assert label_in(tmp_path / "store") == ["as before the swap"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".store.lock", "store"]


def test_recover_keeps_what_a_live_writer_is_swapping(writer_holding_the_lock: Path) -> None:
    # Between its two renames, a live writer has no store directory, only the old store
    # set aside and its copy: nothing of it may be touched, and nothing may be opened.
    store = writer_holding_the_lock
    left = sorted([f".store.bulk-{os.getpid()}-5e6f7a8b", f".store.replaced-{os.getpid()}-1a2b3c4d"])
    for name in left:
        make_store(store.parent / name, name)
    with pytest.raises(StoreError, match="being replaced by a bulk load"):
        recover(store)
    with pytest.raises(StoreError, match="being replaced by a bulk load"):
        OxigraphStore(store)
    assert sorted(p.name for p in store.parent.iterdir()) == sorted([".store.lock", *left])
    make_store(store, "current")
    recover(store)
    assert sorted(p.name for p in store.parent.iterdir()) == sorted([".store.lock", *left, "store"])


def test_a_store_opened_by_a_relative_path_is_swapped_in_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = OxigraphStore(Path("store"), bulk_writes=True)
    try:
        added = numbered(BULK_QUADS)
        assert store.apply({}, {"urn:g": added})
        assert store.triple_count("urn:g") == BULK_QUADS
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".store.lock", "store"]


def test_a_store_that_holds_the_working_directory_is_not_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "store").mkdir()
    monkeypatch.chdir(tmp_path / "store")
    store = OxigraphStore(Path("."), bulk_writes=True)
    inode = (tmp_path / "store").stat().st_ino
    try:
        assert store.apply({}, {"urn:g": numbered(BULK_QUADS)})
        assert store.triple_count("urn:g") == BULK_QUADS
    finally:
        store.close()
    assert (tmp_path / "store").stat().st_ino == inode  # a transaction, in place
    assert Path.cwd() == tmp_path / "store"


def test_a_read_only_store_closes_quietly(tmp_path: Path) -> None:
    make_store(tmp_path / "store", "current")
    OxigraphStore.read_only(tmp_path / "store").close()


# -- OxigraphStore(bulk_writes=True) ---------------------------------------------------


def test_below_bulk_quads_a_bulk_writes_store_commits_in_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = OxigraphStore(path, bulk_writes=True)
    try:
        inode = path.stat().st_ino
        assert store.apply({}, {"urn:test:small": numbered(3)})
        assert store.apply({}, {"urn:test:large": numbered(BULK_QUADS - 1)})
        assert store.apply({"urn:test:small": numbered(1)}, {"urn:test:other": numbered(BULK_QUADS, "m")})  # removes too
        assert [store.triple_count(g) for g in ("urn:test:small", "urn:test:large", "urn:test:other")] == [2, BULK_QUADS - 1, BULK_QUADS]
        assert [row["o"].value for row in store.query("SELECT ?o WHERE { GRAPH <urn:test:small> { <urn:test:n2> ?p ?o } }")] == ["2"]
        assert path.stat().st_ino == inode and beside(path) == {"store"}
    finally:
        store.close()


def test_at_bulk_quads_an_addition_is_swapped_in_and_the_store_stays_usable(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = OxigraphStore(path, bulk_writes=True)
    try:
        assert store.apply({}, {"urn:test:small": numbered(3)}, expect_version=None, new_version="v1")
        inode = path.stat().st_ino
        assert not store.apply({}, {"urn:test:stale": numbered(BULK_QUADS)}, expect_version="v0", new_version="v2")
        assert (store.triple_count("urn:test:stale"), path.stat().st_ino, store.version()) == (0, inode, "v1")

        assert store.apply({}, {"urn:test:large": numbered(BULK_QUADS), None: numbered(2, "d")}, expect_version="v1", new_version="v2")
        assert path.stat().st_ino != inode and beside(path) == {"store"}
        assert store.version() == "v2"
        assert [store.triple_count(g) for g in ("urn:test:small", "urn:test:large")] == [3, BULK_QUADS]
        assert len(list(store.quads_in(None))) == 2
        assert store.apply({"urn:test:small": numbered(1)}, {"urn:test:small": numbered(1, "after")})
        assert store.triple_count("urn:test:small") == 3
    finally:
        store.close()
    reopened = OxigraphStore(path)
    try:
        assert reopened.triple_count("urn:test:large") == BULK_QUADS
    finally:
        reopened.close()


# -- focus sets past FOCUS_VALUES_LIMIT ------------------------------------------------

DATA, ONTOLOGY, INFERRED = "urn:test:data", "urn:test:ontology", "urn:test:inferred"
_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_LABEL = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
_XSD_DATE = ox.NamedNode("http://www.w3.org/2001/XMLSchema#date")


def _pk(name: str) -> ox.NamedNode:
    return ox.NamedNode(str(PK[name]))


def _instances(engine: ox.Store, cls: str) -> list[ox.NamedNode]:
    return sorted((q.subject for q in engine.quads_for_pattern(None, _TYPE, _pk(cls), ox.NamedNode(DATA))), key=str)


def break_nodes(engine: ox.Store, statements: list[ox.NamedNode], event: ox.NamedNode, person: ox.NamedNode) -> set[str]:
    """Make the nodes fail the shapes and the OWL rules in several ways each; their IRIs."""
    graph = ox.NamedNode(DATA)
    for quad in list(engine.quads_for_pattern(statements[0], _pk("speaker"), None, graph)):
        engine.remove(quad)  # sh:minCount
    extra = [
        ox.Triple(statements[1], _pk("inPost"), person),  # sh:class org:Post
        ox.Triple(statements[2], _pk("quote"), ox.Literal("“Quoted.”", language="en")),  # sh:pattern
        ox.Triple(event, _LABEL, ox.Literal("Another name", language="en")),  # sh:maxCount, sh:uniqueLang
        ox.Triple(event, _pk("date"), ox.Literal("1999-01-01", datatype=_XSD_DATE)),  # sh:maxCount, prp-fp
        ox.Triple(event, _TYPE, _pk("Article")),  # cax-dw
        ox.Triple(person, _TYPE, _pk("State")),  # cax-adc
        ox.Triple(person, _LABEL, ox.Literal("Un nom", language="fr")),  # sh:languageIn, sh:maxCount
    ]
    engine.extend(ox.Quad(t.subject, t.predicate, t.object, graph) for t in extra)
    return {node.value for node in (*statements, event, person)}


@dataclass(frozen=True)
class BrokenWorld:
    engine: ox.Store
    focus: list[str]  # every subject but the ``outside`` ones
    inside: set[str]  # broken nodes in the focus
    outside: set[str]  # broken nodes out of it


@pytest.fixture(scope="module")
def broken_world(generated: Path) -> BrokenWorld:
    engine = ox.Store()
    engine.load(resources.ONTOLOGY_PATH.read_bytes(), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(ONTOLOGY))
    engine.load(generated.read_bytes(), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(DATA))
    statements, patrols, persons = (_instances(engine, c) for c in ("Statement", "JointPatrol", "Person"))
    inside = break_nodes(engine, statements[0:3], patrols[0], persons[0])
    outside = break_nodes(engine, statements[-3:], patrols[-1], persons[-1])
    materialize(engine, [DATA], ONTOLOGY, INFERRED, schema=bundled_schema_closure())
    subjects = {q.subject.value for q in engine.quads_for_pattern(None, None, None, ox.NamedNode(DATA)) if isinstance(q.subject, ox.NamedNode)}
    focus = sorted(subjects - outside)
    assert len(focus) > max(SHAPES_FOCUS_LIMIT, OWL_FOCUS_LIMIT) and inside <= set(focus)
    return BrokenWorld(engine, focus, inside, outside)


def chunks(nodes: list[str], size: int) -> list[list[str]]:
    return [nodes[i : i + size] for i in range(0, len(nodes), size)]


def test_shapes_on_a_focus_past_the_limit_report_what_chunks_below_it_report(broken_world: BrokenWorld) -> None:
    shapes, graphs, focus = compiled_shapes(), [ox.NamedNode(DATA), ox.NamedNode(ONTOLOGY)], broken_world.focus
    everywhere = shapes.validate(broken_world.engine, graphs)
    assert {v.focus_node for v in everywhere} == broken_world.inside | broken_world.outside  # the generated data conforms

    large = shapes.validate(broken_world.engine, graphs, focus=focus)
    kept = set(focus)
    assert large == [v for v in everywhere if v.focus_node in kept]
    pieces = chunks(focus, SHAPES_FOCUS_LIMIT)
    assert len(pieces) > 1
    chunked = [v for piece in pieces for v in shapes.validate(broken_world.engine, graphs, focus=piece)]
    assert sorted(large, key=repr) == sorted(chunked, key=repr)
    assert {v.focus_node for v in large} == broken_world.inside
    components = {v.constraint.rsplit("#", 1)[-1] for v in large if v.constraint}
    assert {"MinCountConstraintComponent", "MaxCountConstraintComponent", "UniqueLangConstraintComponent",
            "ClassConstraintComponent", "PatternConstraintComponent", "LanguageInConstraintComponent"} <= components


def test_owl_checks_on_a_focus_past_the_limit_report_what_chunks_below_it_report(broken_world: BrokenWorld) -> None:
    graphs, focus = [DATA, ONTOLOGY, INFERRED], broken_world.focus
    everywhere = find_inconsistencies(broken_world.engine, graphs)
    assert {i.focus_node for i in everywhere} <= broken_world.inside | broken_world.outside
    assert {i.focus_node for i in everywhere} & broken_world.outside

    large = find_inconsistencies(broken_world.engine, graphs, focus=focus)
    kept = set(focus)
    assert sorted(large, key=repr) == sorted((i for i in everywhere if i.focus_node in kept), key=repr)
    pieces = chunks(focus, OWL_FOCUS_LIMIT)
    assert len(pieces) > 1
    chunked = [i for piece in pieces for i in find_inconsistencies(broken_world.engine, graphs, focus=piece)]
    assert sorted(large, key=repr) == sorted(chunked, key=repr)
    assert {i.rule for i in large} == {"cax-dw", "cax-adc", "prp-fp"}
