"""SELECT results written by the engine when they are small (their rows counted), else
row by row in the four formats, across the writer's chunks, and cut at the row limit:
each body parses back, with every row, as the engine's own serializer writes it."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pyoxigraph as ox
import pytest

from patrolkg.results import _CHUNK_ROWS, SPILL_BYTES, write_natively, write_solutions

ROWS = 2 * _CHUNK_ROWS + 7  # two whole chunks and part of a third
QUERY = "SELECT ?s ?label ?n WHERE { ?s <urn:p> ?n OPTIONAL { ?s <urn:label> ?label } } ORDER BY ?n"


@pytest.fixture(scope="module")
def store() -> ox.Store:
    engine = ox.Store()
    for i in range(ROWS):
        subject = ox.NamedNode(f"urn:s{i}")
        engine.add(ox.Quad(subject, ox.NamedNode("urn:p"), ox.Literal(str(i), datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))))
        if i % 3:  # some rows leave ?label unbound
            engine.add(ox.Quad(subject, ox.NamedNode("urn:label"), ox.Literal(f'label "{i}", with, commas\tand tabs', language="en")))
    return engine


def _rows(body: bytes, media_type: str) -> list[tuple[str | None, ...]]:
    """(s, label, n) of each row, as text, None when unbound."""
    if media_type == "application/sparql-results+json":
        bindings = json.loads(body)["results"]["bindings"]
        return [tuple(b[k]["value"] if k in b else None for k in ("s", "label", "n")) for b in bindings]
    if media_type == "application/sparql-results+xml":
        ns = "{http://www.w3.org/2005/sparql-results#}"
        rows = []
        for result in ElementTree.fromstring(body).iter(ns + "result"):
            values = {b.get("name"): next(iter(b)).text for b in result.iter(ns + "binding")}
            rows.append(tuple(values.get(k) for k in ("s", "label", "n")))
        return rows
    if media_type == "text/csv":
        records = list(csv.reader(io.StringIO(body.decode())))
        assert records[0] == ["s", "label", "n"]
        return [tuple(v or None for v in record) for record in records[1:]]
    lines = body.decode().split("\n")
    assert lines[0] == "?s\t?label\t?n" and lines[-1] == ""
    # TSV writes Turtle terms: an integer either in full or abbreviated, as the engine does.
    return [tuple(_INTEGER.sub(r"\1", v) or None for v in line.split("\t")) for line in lines[1:-1]]


_INTEGER = re.compile(r'^"(-?[0-9]+)"\^\^<http://www\.w3\.org/2001/XMLSchema#integer>$')


MEDIA_TYPES = ["application/sparql-results+json", "application/sparql-results+xml", "text/csv", "text/tab-separated-values"]


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
def test_every_row_is_written_across_chunks_as_the_engine_writes_it(store: ox.Store, media_type: str) -> None:
    written = write_solutions(store.query(QUERY), media_type, limit=ROWS)
    assert (written.rows, written.truncated) == (ROWS, False)
    ours = _rows(written.body, media_type)
    engines = _rows(store.query(QUERY).serialize(format=ox.QueryResultsFormat.from_media_type(media_type)), media_type)
    assert len(ours) == ROWS and ours == engines


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
@pytest.mark.parametrize("limit", [0, 1, _CHUNK_ROWS, _CHUNK_ROWS + 1, ROWS - 1])
def test_a_result_is_cut_at_the_limit_and_says_so(store: ox.Store, media_type: str, limit: int) -> None:
    written = write_solutions(store.query(QUERY), media_type, limit=limit)
    assert (written.rows, written.truncated) == (limit, True)
    full = _rows(write_solutions(store.query(QUERY), media_type, limit=ROWS).body, media_type)
    assert _rows(written.body, media_type) == full[:limit]


def test_the_check_is_called_while_rows_are_read(store: ox.Store) -> None:
    calls = []
    write_solutions(store.query(QUERY), "text/csv", limit=ROWS, check=lambda: calls.append(1))
    assert len(calls) == -(-ROWS // 256)


def test_a_body_past_the_spill_size_is_written_to_a_file_in_the_spool(store: ox.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_memory = write_solutions(store.query(QUERY), "application/sparql-results+xml", limit=ROWS)
    assert in_memory.file is None and len(in_memory.body) > 100_000
    small = write_solutions(store.query(QUERY), "application/sparql-results+xml", limit=ROWS, spool_dir=str(tmp_path))
    assert small.file is None and small.body == in_memory.body  # under SPILL_BYTES: in memory

    monkeypatch.setattr("patrolkg.results.SPILL_BYTES", 100_000)
    spilled = write_solutions(store.query(QUERY), "application/sparql-results+xml", limit=ROWS, spool_dir=str(tmp_path))
    assert spilled.body == b"" and spilled.file is not None and Path(spilled.file).parent == tmp_path
    assert Path(spilled.file).read_bytes() == in_memory.body
    assert (spilled.rows, spilled.truncated) == (ROWS, False)
    assert SPILL_BYTES > 100_000


def test_a_result_abandoned_while_spilling_leaves_no_file(store: ox.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("patrolkg.results.SPILL_BYTES", 10_000)
    calls = []

    def stop_late() -> None:
        calls.append(1)
        if len(calls) * 256 > _CHUNK_ROWS + 256:  # a chunk is written, to a file by now
            assert len(list(tmp_path.iterdir())) == 1
            raise TimeoutError("stopped")

    with pytest.raises(TimeoutError):
        write_solutions(store.query(QUERY), "text/csv", limit=ROWS, check=stop_late, spool_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


NATIVE = ["application/sparql-results+json", "application/sparql-results+xml", "text/tab-separated-values"]


@pytest.mark.parametrize("media_type", NATIVE)
def test_the_engine_writes_a_result_within_the_limits_and_its_rows_are_counted(store: ox.Store, media_type: str) -> None:
    written = write_natively(store.query(QUERY), media_type, limit=ROWS)
    assert written is not None
    assert (written.rows, written.truncated, written.file) == (ROWS, False, None)
    assert _rows(written.body, media_type) == _rows(write_solutions(store.query(QUERY), media_type, limit=ROWS).body, media_type)


def test_rows_are_counted_whatever_their_literals_hold() -> None:
    engine = ox.Store()
    tricky = ['<result>', 'a\nb', 'a\r\nb', '"},{"', '\\"', "<![CDATA[x]]>", '{"o":{"type":"', 'x{', '}},{"o":{"type":"literal"', '{"o":{"type":"uri","value":"x"}}']
    for i, text in enumerate(tricky):
        engine.add(ox.Quad(ox.NamedNode(f"urn:s{i}"), ox.NamedNode("urn:p"), ox.Literal(text)))
    engine.add(ox.Quad(ox.NamedNode("urn:e"), ox.NamedNode("urn:q"), ox.Literal("x")))
    query = "SELECT ?o WHERE { ?s ?p ?any OPTIONAL { ?s <urn:p> ?o } }"  # one row binds nothing
    for media_type in NATIVE:
        written = write_natively(engine.query(query), media_type, limit=100)
        assert written is not None and written.rows == len(tricky) + 1, media_type
    every_row_binds = "SELECT ?o ?s WHERE { ?s <urn:p> ?o }"  # counted without parsing the JSON
    for media_type in NATIVE:
        written = write_natively(engine.query(every_row_binds), media_type, limit=100)
        assert written is not None and written.rows == len(tricky), media_type


def test_json_rows_are_counted_as_a_parser_counts_them() -> None:
    engine = ox.Store()
    engine.add(ox.Quad(ox.NamedNode("urn:a"), ox.NamedNode("urn:p"), ox.Literal('{"type":"x"} {} "s":{"type":"uri"}')))
    engine.add(ox.Quad(ox.NamedNode("urn:b"), ox.NamedNode("urn:p"), ox.Triple(ox.NamedNode("urn:a"), ox.NamedNode("urn:p"), ox.NamedNode("urn:c"))))
    engine.add(ox.Quad(ox.NamedNode("urn:c"), ox.NamedNode("urn:q"), ox.NamedNode("urn:a")))
    for query in (
        "SELECT ?s ?o WHERE { ?s ?p ?o }",
        "SELECT ?o ?s WHERE { ?s <urn:q> ?x OPTIONAL { ?s <urn:p> ?o } }",
        "SELECT ?s ?subject ?type WHERE { ?s <urn:p> ?o OPTIONAL { ?s <urn:none> ?subject } }",
        "SELECT ?subject WHERE { ?subject ?p ?o FILTER(isLiteral(?o)) }",
        "SELECT ?o WHERE { ?s ?p ?o FILTER(isTriple(?o)) }",
        "SELECT * WHERE {}",
        "SELECT ?nothing WHERE { ?s ?p ?o }",
        "SELECT ?s WHERE { ?s ?p ?o FILTER(false) }",
    ):
        body = engine.query(query).serialize(format=ox.QueryResultsFormat.JSON)
        written = write_natively(engine.query(query), "application/sparql-results+json", limit=100)
        assert written is not None and written.rows == len(json.loads(body)["results"]["bindings"]), query


@pytest.mark.parametrize("media_type", NATIVE)
def test_a_result_past_the_limit_or_the_size_is_left_to_the_row_writer(store: ox.Store, media_type: str) -> None:
    assert write_natively(store.query(QUERY), media_type, limit=ROWS - 1) is None
    assert write_natively(store.query(QUERY), media_type, limit=ROWS, max_bytes=10_000) is None


def test_csv_is_left_to_the_row_writer(store: ox.Store) -> None:
    assert write_natively(store.query(QUERY), "text/csv", limit=ROWS) is None


def test_the_check_is_called_as_the_engine_writes_and_can_stop_it(store: ox.Store) -> None:
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise TimeoutError("stop")

    with pytest.raises(TimeoutError):
        write_natively(store.query(QUERY), "application/sparql-results+xml", limit=ROWS, check=check)
    whole: list[int] = []
    write_natively(store.query(QUERY), "application/sparql-results+xml", limit=ROWS, check=lambda: whole.append(1))
    assert 3 <= len(calls) < len(whole) / 2, "stopped where the check raised"
