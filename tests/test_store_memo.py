"""What pages compute from the whole store is kept until the next commit
(:mod:`patrolkg.store_memo`): computed once per version, by one caller at a time, and
never served stale after a write."""

from __future__ import annotations

import doctest
import threading
import time
from collections.abc import Iterator

import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient

import patrolkg.store_memo
from conftest import statement_turtle
from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.store_memo import StoreMemo
from patrolkg.web.app import create_app

SECRET = "e5" * 16
AUTH = {"Authorization": "Bearer " + SECRET}
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")


def _write(store: Store, n: int) -> None:
    store.apply({}, {None: [ox.Triple(ox.NamedNode(f"http://example.org/s{n}"), ox.NamedNode("http://example.org/p"), ox.Literal(str(n)))]})


def test_a_value_is_computed_once_per_version_of_the_store() -> None:
    store, memo, calls = open_store(None), StoreMemo(), []

    def count() -> int:
        calls.append(1)
        return store.triple_count()

    assert [memo.get(store, "count", count) for _ in range(3)] == [0, 0, 0] and len(calls) == 1
    _write(store, 1)
    assert [memo.get(store, "count", count) for _ in range(3)] == [1, 1, 1] and len(calls) == 2
    assert memo.get(store, "other", lambda: "x") == "x", "each key has its own value"


def test_callers_that_come_together_wait_for_one_computation() -> None:
    store, memo, calls = open_store(None), StoreMemo(), []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "done"

    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(memo.get(store, "slow", slow))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == ["done"] * 8 and len(calls) == 1


def test_a_failure_is_not_kept() -> None:
    store, memo, calls = open_store(None), StoreMemo(), []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the store went away")
        return "fine"

    with pytest.raises(RuntimeError):
        memo.get(store, "flaky", flaky)
    assert memo.get(store, "flaky", flaky) == "fine" and len(calls) == 2


def test_it_keeps_the_values_used_last() -> None:
    store, memo, calls = open_store(None), StoreMemo(maxsize=2), []

    def value(key: str) -> str:
        calls.append(key)
        return key

    for key in ["a", "b", "a", "c", "a", "b"]:
        memo.get(store, key, lambda key=key: value(key))  # type: ignore[misc]
    assert calls == ["a", "b", "c", "b"], "b was dropped for c, a was kept as used last"


@pytest.fixture
def client(seeded_store: Store) -> Iterator[TestClient]:
    app = create_app(Settings.from_env({"PATROLKG_WRITE_TOKEN": "erin:" + SECRET}), store=seeded_store, seed=False)
    with TestClient(app) as test_client:
        yield test_client


def _void_triples(client: TestClient) -> int:
    graph = rdflib.Graph().parse(data=client.get("/.well-known/void", headers={"Accept": "text/turtle"}).text, format="turtle")
    dataset = next(s for s in graph.subjects(VOID.sparqlEndpoint, None))
    return int(graph.value(dataset, VOID.triples))  # type: ignore[arg-type]


def test_pages_kept_until_the_next_commit_show_it_at_once(client: TestClient) -> None:
    def suggested() -> list[str]:
        return [item["name"] for item in client.get("/reconcile/suggest/entity", params={"prefix": "Memoized"}).json()["result"]]

    triples = _void_triples(client)
    assert suggested() == [] and "Memoized statement" not in client.get("/timeline").text
    assert _void_triples(client) == triples and suggested() == []  # asked again: kept
    subject = "https://w3id.org/patrolkg/id/statement/memoized"
    written = client.post("/submissions", content=statement_turtle(subject, "Memoized statement", "Kept until a commit.", "test_store_memo"), headers={"Content-Type": "text/turtle", **AUTH})
    assert written.status_code == 201, written.text
    assert suggested() == ["Memoized statement"]
    assert "Memoized statement" in client.get("/timeline").text
    assert _void_triples(client) > triples


def test_doctests() -> None:
    assert doctest.testmod(patrolkg.store_memo).failed == 0
