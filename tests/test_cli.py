"""The command line, run as users run it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rdflib

SHAPES = Path(__file__).parent / "shapes"


def patrolkg(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patrolkg", *args], capture_output=True, text=True, input=stdin, timeout=300
    )


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "store"
    result = patrolkg("load", "--store", str(path))
    assert result.returncode == 0, result.stderr
    assert "inferred" in result.stdout
    return path


def test_query_answers_a_shipped_question_as_json(store_dir: Path) -> None:
    result = patrolkg("query", "--store", str(store_dir), "--format", "json", "cq05-quad-members")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["results"]["bindings"]
    assert len(rows) == 4


def test_query_table_format_is_readable(store_dir: Path) -> None:
    query = "SELECT ?o WHERE { <https://w3id.org/patrolkg/id/event/joint-patrol-4> <https://w3id.org/patrolkg/ontology#ordinal> ?o }"
    result = patrolkg("query", "--store", str(store_dir), "--format", "table", query)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].strip() == "o"
    assert result.stdout.splitlines()[2].strip() == "4"
    assert "(1 row)" in result.stdout


def test_query_reads_a_file_and_stdin(store_dir: Path, tmp_path: Path) -> None:
    query_file = tmp_path / "ask.rq"
    query_file.write_text("ASK { ?s a <https://w3id.org/patrolkg/ontology#JointPatrol> }")
    from_file = patrolkg("query", "--store", str(store_dir), "--format", "json", str(query_file))
    from_stdin = patrolkg("query", "--store", str(store_dir), "--format", "json", "-", stdin=query_file.read_text())
    assert json.loads(from_file.stdout)["boolean"] is True
    assert json.loads(from_stdin.stdout)["boolean"] is True


def test_construct_writes_turtle(store_dir: Path) -> None:
    result = patrolkg(
        "query", "--store", str(store_dir), "--format", "turtle",
        "CONSTRUCT { ?s ?p ?o } WHERE { BIND(<https://w3id.org/patrolkg/id/state/japan> AS ?s) ?s ?p ?o }",
    )
    assert result.returncode == 0, result.stderr
    graph = rdflib.Graph().parse(data=result.stdout, format="turtle")
    assert "@prefix pk: <https://w3id.org/patrolkg/ontology#>" in result.stdout
    assert set(graph.subjects()) == {rdflib.URIRef("https://w3id.org/patrolkg/id/state/japan")}
    assert len(graph) > 3


def test_a_syntax_error_is_one_line_and_exit_2(store_dir: Path) -> None:
    result = patrolkg("query", "--store", str(store_dir), "SELECT * WHERE { ?s ?p }")
    assert result.returncode == 2
    assert result.stderr.startswith("error: SPARQL syntax error: line 1, column")
    assert len(result.stderr.strip().splitlines()) == 1


def test_info_lists_graphs_and_counts(store_dir: Path) -> None:
    result = patrolkg("info", "--store", str(store_dir))
    assert result.returncode == 0, result.stderr
    assert "https://w3id.org/patrolkg/graph/inferred" in result.stdout
    assert "total quads" in result.stdout


def test_validate_exit_codes(tmp_path: Path) -> None:
    valid = sorted(SHAPES.glob("*-valid.ttl"))[0]
    invalid = sorted(SHAPES.glob("*-invalid-01.ttl"))[0]
    assert patrolkg("validate", str(valid)).returncode == 0
    failing = patrolkg("validate", str(invalid))
    assert failing.returncode == 1
    assert "Does not conform" in failing.stdout
    broken = tmp_path / "broken.ttl"
    broken.write_text("<urn:a> <urn:b> .\n")
    error = patrolkg("validate", str(broken))
    assert error.returncode == 2
    assert f"{broken}:1:" in error.stderr


def test_validate_json_report_names_the_shape() -> None:
    invalid = sorted(SHAPES.glob("JointPatrolShape-invalid-01.ttl"))[0]
    result = patrolkg("validate", "--format", "json", str(invalid))
    report = json.loads(result.stdout)
    assert report["conforms"] is False
    assert any(v["node_shape"] == "https://w3id.org/patrolkg/shapes#JointPatrolShape" for v in report["violations"])


def test_an_unopenable_store_is_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = patrolkg("info", "--store", str(blocker / "store"))
    assert result.returncode == 3
    assert result.stderr.startswith("error: cannot open the store")


@pytest.mark.parametrize("command", ["load", "query", "validate", "info", "serve", "queries", "submit"])
def test_every_command_has_help(command: str) -> None:
    result = patrolkg(command, "--help")
    assert result.returncode == 0
    assert "Usage: patrolkg " + command in result.stdout


def _quad_count(store_dir: Path) -> str:
    result = patrolkg("query", "--store", str(store_dir), "--format", "csv", "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_load_files_goes_through_the_write_path(tmp_path: Path) -> None:
    store = tmp_path / "store"
    valid = SHAPES / "StatementShape-valid.ttl"
    accepted = patrolkg("load", "--store", str(store), str(valid))
    assert accepted.returncode == 0, accepted.stderr
    assert "https://w3id.org/patrolkg/graph/submission/" in accepted.stdout
    before = _quad_count(store)
    # A second speaker for the statement the valid file made: one too many.
    second = tmp_path / "second-speaker.ttl"
    second.write_text(
        "<https://w3id.org/patrolkg/id/statement/matsuno-serious-concerns> <https://w3id.org/patrolkg/ontology#speaker> "
        "<https://w3id.org/patrolkg/id/state/japan> .\n",
        encoding="utf-8",
    )
    rejected = patrolkg("load", "--store", str(store), str(second))
    assert rejected.returncode == 1, rejected.stdout
    assert "StatementShape" in rejected.stderr
    assert _quad_count(store) == before


def test_validate_in_the_context_of_a_store(store_dir: Path, tmp_path: Path) -> None:
    # A statement whose speaker and patrol exist only in the store.
    data = tmp_path / "statement.ttl"
    data.write_text(
        """@prefix pk: <https://w3id.org/patrolkg/ontology#> .
        <https://w3id.org/patrolkg/id/statement/cli-check> a pk:Statement ;
          <http://www.w3.org/2000/01/rdf-schema#label> "A check"@en ;
          pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;
          pk:respondsTo <https://w3id.org/patrolkg/id/event/joint-patrol-10> ;
          pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;
          <http://purl.org/dc/terms/source> "a test" .""",
        encoding="utf-8",
    )
    alone = patrolkg("validate", str(data))
    in_context = patrolkg("validate", "--store", str(store_dir), str(data))
    assert alone.returncode == 1  # the speaker is not known to be a person
    assert in_context.returncode == 0, in_context.stdout


@pytest.mark.slow
def test_submit_prints_the_verdict_and_exits_by_it(tmp_path: Path) -> None:
    from conftest import LiveServer

    token = "b2" * 16
    server = LiveServer(tmp_path / "store", "--no-seed", env={"PATROLKG_WRITE_TOKEN": "carol:" + token}).start()
    try:
        ok = patrolkg("submit", str(SHAPES / "PersonShape-valid.ttl"), "--url", server.url, "--token", token, "--source", "a test")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("accepted: ")
        # Typed both a person and a state: no fact in the store can make that conform.
        contradiction = tmp_path / "contradiction.ttl"
        contradiction.write_text(
            "<https://w3id.org/patrolkg/id/person/wu-qian> a <https://w3id.org/patrolkg/ontology#State> .\n",
            encoding="utf-8",
        )
        bad = patrolkg("submit", str(contradiction), "--url", server.url, "--token", token)
        assert bad.returncode == 1, bad.stdout
        assert "disjoint" in bad.stderr and "nothing was stored" in bad.stderr
        dry = patrolkg("submit", str(SHAPES / "PersonShape-valid.ttl"), "--url", server.url, "--token", token, "--dry-run")
        assert dry.returncode == 0 and "dry run" in dry.stdout
        unauthorized = patrolkg("submit", str(SHAPES / "PersonShape-valid.ttl"), "--url", server.url, "--token", "wrong" * 5)
        assert unauthorized.returncode == 2 and "401" in unauthorized.stderr
    finally:
        server.stop()
    down = patrolkg("submit", str(SHAPES / "PersonShape-valid.ttl"), "--url", server.url)
    assert down.returncode == 3 and "cannot reach" in down.stderr
