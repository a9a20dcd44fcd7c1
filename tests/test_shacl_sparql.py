"""The SPARQL-compiled SHACL validator against pySHACL, the reference.

Both validators see the same terms: data is loaded into a pyoxigraph store, and pySHACL
gets the triples read back from it (the store keeps derived integer types as
xsd:integer and lower-cases language tags, and blank node labels must match).
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import sys
import time
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pyshacl
import pytest
import rdflib

from patrolkg import resources, shacl_sparql
from patrolkg.shacl_sparql import CompiledShapes, compile_shapes
from patrolkg.validation import Violation, shacl_violations

EXAMPLES = sorted((Path(__file__).parent / "shapes").glob("*.ttl"))
ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY = ox.NamedNode("urn:test:ontology")
DATA = ox.NamedNode("urn:test:data")

PREFIXES = """
@prefix pk:      <https://w3id.org/patrolkg/ontology#> .
@prefix rdfs:    <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd:     <http://www.w3.org/2001/XMLSchema#> .
@prefix skos:    <http://www.w3.org/2004/02/skos/core#> .
@prefix owl:     <http://www.w3.org/2002/07/owl#> .
@prefix prov:    <http://www.w3.org/ns/prov#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix org:     <http://www.w3.org/ns/org#> .
@prefix sh:      <http://www.w3.org/ns/shacl#> .
@prefix event:   <https://w3id.org/patrolkg/id/event/> .
@prefix state:   <https://w3id.org/patrolkg/id/state/> .
@prefix article: <https://w3id.org/patrolkg/id/article/> .
@prefix statement: <https://w3id.org/patrolkg/id/statement/> .
@prefix stance:  <https://w3id.org/patrolkg/id/stance/> .
@prefix person:  <https://w3id.org/patrolkg/id/person/> .
@prefix actype:  <https://w3id.org/patrolkg/id/aircraft-type/> .
"""

#: Corners of the semantics that no example file reaches: ill-typed literals, blank
#: nodes as focus nodes and values, a focus node of several target classes, two
#: duplicated languages, a value reached by both alternatives of a path, sh:equals on a
#: blank node, language ranges, literals where resources belong.
EDGE_CASES = PREFIXES + """
event:p1 a pk:JointPatrol, pk:Event ;
    rdfs:label "Patrol"@en-GB ;
    pk:ordinal "ninety-nine"^^xsd:integer ;
    pk:aircraftCount 600, 7 ;
    pk:date "2019-02-30"^^xsd:date ;
    pk:participant state:a, [ rdfs:label "someone"@en ], "Russia" ;
    pk:airspaceBreached false, true ;
    pk:breachedAirspaceOf state:a ;
    prov:wasDerivedFrom article:a .
event:p2 a pk:JointPatrol ;
    rdfs:label "Other patrol"@en, "Autre patrouille"@fr, "Patrouille"@fr, "Second name"@en ;
    pk:ordinal 5 ;
    pk:date "2019-7"^^xsd:gYearMonth, "1890"^^xsd:gYear ;
    pk:participant state:a, state:b ;
    pk:airspaceBreached "1"^^xsd:boolean ;
    pk:commemorates "a victory"@en .
state:a a pk:State ; rdfs:label "A"@en ; owl:sameAs <http://www.wikidata.org/entity/Q01>, _:link .
state:b a pk:State ; rdfs:label "B"@en .
article:a a pk:Article ; rdfs:label "Article"@en ; dcterms:identifier "a.txt"^^xsd:token ;
    dcterms:publisher [ rdfs:label "A blank publisher" ] .
[] a pk:Person .
[] a pk:Stance, pk:Role ; rdfs:label "odd"@en ; skos:prefLabel "even"@en ; skos:inScheme pk:StanceScheme .
statement:s a pk:Statement ;
    pk:speaker state:a ;
    pk:stance stance:protest, "protest" ;
    prov:wasDerivedFrom article:a ;
    dcterms:source article:a ;
    pk:about event:p2 ;
    pk:quote "“Unacceptable.”"@en, <https://example.org/quote> ;
    pk:inPost state:a ;
    pk:summary "Said no."@en, "Dit non."@fr .
actype:x a pk:AircraftType ; rdfs:label "X"@en ; pk:nuclearCapable "true", true, false ; pk:operator state:b .
"""


def _to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> rdflib.term.Node:
    """The same term for rdflib, blank node labels kept (so reports name the same node)."""
    if isinstance(term, ox.NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)
    if term.language:
        return rdflib.Literal(term.value, lang=term.language)
    return rdflib.Literal(term.value, datatype=rdflib.URIRef(term.datatype.value))


def _store(*sources: tuple[ox.NamedNode, bytes]) -> ox.Store:
    store = ox.Store()
    for graph, data in sources:
        store.load(data, format=ox.RdfFormat.TURTLE, to_graph=graph)
    return store


def _with_ontology(data: bytes) -> ox.Store:
    return _store((ONTOLOGY, resources.ONTOLOGY_PATH.read_bytes()), (DATA, data))


def _all_invalid_examples() -> tuple[ox.Store, list[ox.NamedNode]]:
    sources = [(ox.NamedNode(f"urn:test:{p.stem}"), p.read_bytes()) for p in EXAMPLES if "-invalid-" in p.name]
    store = _store((ONTOLOGY, resources.ONTOLOGY_PATH.read_bytes()), *sources)
    return store, [ONTOLOGY, *(g for g, _ in sources)]


def _pyshacl(store: ox.Store, graphs: list[ox.NamedNode], shapes: rdflib.Graph) -> list[Violation]:
    data = rdflib.Graph()
    for graph in graphs:
        for quad in store.quads_for_pattern(None, None, None, graph):
            data.add((_to_rdflib(quad.subject), _to_rdflib(quad.predicate), _to_rdflib(quad.object)))
    _, report, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True)
    return shacl_violations(report, shapes)


def _counted(violations: list[Violation]) -> Counter:
    return Counter(
        (v.focus_node, v.node_shape, v.source_shape, v.path, v.value, v.constraint, v.message, v.severity) for v in violations
    )


def _assert_same(store: ox.Store, graphs: list[ox.NamedNode], shapes: rdflib.Graph, compiled: CompiledShapes) -> list[Violation]:
    expected = _counted(_pyshacl(store, graphs, shapes))
    violations = compiled.validate(store, graphs)
    found = _counted(violations)
    assert found == expected, f"missing: {expected - found}\nextra: {found - expected}"
    return violations


@pytest.fixture(scope="module")
def shapes() -> rdflib.Graph:
    # One graph object for both validators: an sh:alternativePath is reported as its
    # blank node, whose label is only stable within one parse.
    return resources.shapes_graph()


@pytest.fixture(scope="module")
def compiled(shapes: rdflib.Graph) -> CompiledShapes:
    return compile_shapes(shapes)


# --- equality with pySHACL -------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_gives_pyshacls_results(example: Path, shapes: rdflib.Graph, compiled: CompiledShapes) -> None:
    store = _with_ontology(example.read_bytes())
    found = _assert_same(store, [ONTOLOGY, DATA], shapes, compiled)
    assert ("-invalid-" in example.name) == bool(found)


def test_all_invalid_examples_at_once_give_pyshacls_results(shapes: rdflib.Graph, compiled: CompiledShapes) -> None:
    found = _assert_same(*_all_invalid_examples(), shapes, compiled)
    # Together, one file's facts can repair another's breach; most breaches remain.
    assert len({v.node_shape for v in found}) >= 12


def test_edge_cases_give_pyshacls_results(shapes: rdflib.Graph, compiled: CompiledShapes) -> None:
    store = _with_ontology(EDGE_CASES.encode())
    found = _assert_same(store, [ONTOLOGY, DATA], shapes, compiled)
    constraints = {v.constraint.rsplit("#", 1)[-1] for v in found if v.constraint}
    # The edge cases do reach every kind of constraint the shapes use.
    assert constraints >= {
        "ClassConstraintComponent", "DatatypeConstraintComponent", "NodeKindConstraintComponent",
        "MinCountConstraintComponent", "MaxCountConstraintComponent", "MinInclusiveConstraintComponent",
        "MaxInclusiveConstraintComponent", "PatternConstraintComponent", "LanguageInConstraintComponent",
        "UniqueLangConstraintComponent", "InConstraintComponent", "OrConstraintComponent", "EqualsConstraintComponent",
    }
    assert any(v.focus_node.startswith("_:") for v in found), "a blank node focus node is reported"


def test_the_bundle_gives_pyshacls_results(shapes: rdflib.Graph, compiled: CompiledShapes) -> None:
    store = ox.Store()
    graphs = []
    for bundled in resources.bundle():
        graphs.append(ox.NamedNode(str(bundled.graph)))
        store.load(bundled.read_bytes(), format=ox.RdfFormat.TURTLE, to_graph=graphs[-1])
    started = time.perf_counter()
    assert _assert_same(store, graphs, shapes, compiled) == []
    print(f"bundle ({len(store)} quads): validated in {time.perf_counter() - started:.3f} s, both engines")
    # The bundle conforms; with the edge cases beside it, breaches meet real facts.
    store.load(EDGE_CASES.encode(), format=ox.RdfFormat.TURTLE, to_graph=DATA)
    assert _assert_same(store, [*graphs, DATA], shapes, compiled)


def test_a_duplicate_in_two_graphs_counts_once(shapes: rdflib.Graph, compiled: CompiledShapes) -> None:
    person = PREFIXES.encode() + b'person:p a pk:Person ; rdfs:label "P"@en .'
    store = _store((ONTOLOGY, resources.ONTOLOGY_PATH.read_bytes()), (DATA, person), (ox.NamedNode("urn:test:copy"), person))
    assert _assert_same(store, [ONTOLOGY, DATA, ox.NamedNode("urn:test:copy")], shapes, compiled) == []


# --- where the two part, and which side this module takes ---------------------------


def test_pattern_follows_sparql_regex_with_the_s_flag(compiled: CompiledShapes) -> None:
    # StatementShape-quoteMarks has sh:flags "s"; pySHACL ignores that flag (Python re
    # without DOTALL) and rejects a quote spanning two lines; SHACL says SPARQL REGEX.
    data = PREFIXES + """statement:s a pk:Statement ; rdfs:label "A speech"@en ; pk:speaker state:a ; pk:stance stance:report ;
        dcterms:source "a speech" ; pk:about state:a ; pk:quote "First line.\\nSecond line."@en .
        state:a a pk:State ; rdfs:label "A"@en ."""
    store = _with_ontology(data.encode())
    assert compiled.validate(store, [ONTOLOGY, DATA]) == []


def test_an_ill_typed_boolean_is_reported_as_stored(compiled: CompiledShapes) -> None:
    # rdflib rewrites the lexical form of "yes"^^xsd:boolean to "false" when it builds
    # the literal, so pySHACL reports the value "false"; the store keeps "yes".
    data = PREFIXES + 'actype:x a pk:AircraftType ; rdfs:label "X"@en ; pk:nuclearCapable "yes"^^xsd:boolean .'
    found = compiled.validate(_with_ontology(data.encode()), [ONTOLOGY, DATA])
    assert [(v.value, v.constraint) for v in found] == [("yes", "http://www.w3.org/ns/shacl#DatatypeConstraintComponent")]


# --- focus ---------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["edge cases", "all invalid examples"])
def test_focus_restricts_results_exactly(dataset: str, compiled: CompiledShapes) -> None:
    store, graphs = (_with_ontology(EDGE_CASES.encode()), [ONTOLOGY, DATA]) if dataset == "edge cases" else _all_invalid_examples()
    everything = compiled.validate(store, graphs)
    named = sorted({v.focus_node for v in everything if not v.focus_node.startswith("_:")})
    assert len(named) >= 4
    for chosen in [[node] for node in named] + [named[1:3], named]:
        assert compiled.validate(store, graphs, focus=chosen) == [v for v in everything if v.focus_node in chosen], chosen
    assert compiled.validate(store, graphs, focus=[]) == []
    assert compiled.validate(store, graphs, focus=["https://w3id.org/patrolkg/id/nothing"]) == []


def test_focus_does_not_evaluate_other_nodes(compiled: CompiledShapes) -> None:
    store = _with_ontology(EDGE_CASES.encode())
    focus = ["https://w3id.org/patrolkg/id/state/b"]
    texts = compiled.sparql(store, [ONTOLOGY, DATA], focus=focus)
    assert all("VALUES ?focus { <https://w3id.org/patrolkg/id/state/b> }" in text for text in texts)
    # The ill-typed ordinal of event/p1 is never looked at.
    shacl_sparql._well_typed.cache_clear()
    compiled.validate(store, [ONTOLOGY, DATA], focus=focus)
    assert shacl_sparql._well_typed.cache_info().currsize == 0
    compiled.validate(store, [ONTOLOGY, DATA], focus=["https://w3id.org/patrolkg/id/event/p1"])
    assert shacl_sparql._well_typed.cache_info().currsize > 0


def test_focus_must_be_iris(compiled: CompiledShapes) -> None:
    with pytest.raises(ValueError):
        compiled.validate(ox.Store(), [DATA], focus=["not an IRI"])


# --- unsupported features --------------------------------------------------------------


UNSUPPORTED = {
    "targetNode": "ex:S a sh:NodeShape ; sh:targetNode ex:x ; sh:message 'm' .",
    "targetObjectsOf": "ex:S a sh:NodeShape ; sh:targetObjectsOf ex:p ; sh:message 'm' .",
    "node": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:node ex:T ; sh:message 'm' . ex:T a sh:NodeShape .",
    "and": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:and ( ex:T ) ; sh:message 'm' . ex:T a sh:NodeShape .",
    "xone": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:xone ( ex:T ) ; sh:message 'm' . ex:T a sh:NodeShape .",
    "minLength": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:minLength 2 ; sh:message 'm' ] .",
    "hasValue": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:hasValue 2 ; sh:message 'm' ] .",
    "lessThan": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:lessThan ex:q ; sh:message 'm' ] .",
    "closed": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:closed true ; sh:message 'm' .",
    "deactivated": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:deactivated true ; sh:message 'm' .",
    "sparql": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:sparql [ sh:select 'SELECT $this {}' ] ; sh:message 'm' .",
    "inversePath": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path [ sh:inversePath ex:p ] ; sh:minCount 1 ; sh:message 'm' ] .",
    "zeroOrMorePath": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path [ sh:zeroOrMorePath ex:p ] ; sh:minCount 1 ; sh:message 'm' ] .",
    "implicit class targets": "ex:S a sh:NodeShape, rdfs:Class ; sh:message 'm' .",
    "sh:message": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:minCount 1 ] .",
    "rdf-schema#Literal": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:datatype rdfs:Literal ; sh:message 'm' ] .",
    "regular expression": "ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:pattern '(?<=a)b' ; sh:message 'm' ] .",
    "entailment": "ex:ontology sh:entailment <http://www.w3.org/ns/entailment/RDFS> .",
    "sh:property ": "ex:S a sh:PropertyShape ; sh:targetClass ex:C ; sh:path ex:p ; sh:property [ sh:path ex:q ; sh:minCount 1 ; sh:message 'm' ] ; sh:message 'm' .",
}


@pytest.mark.parametrize("feature", sorted(UNSUPPORTED))
def test_unsupported_features_are_refused_by_name(feature: str) -> None:
    graph = rdflib.Graph().parse(data=PREFIXES + "@prefix ex: <urn:ex:> .\n" + UNSUPPORTED[feature], format="turtle")
    with pytest.raises(NotImplementedError, match=re.escape(feature.strip())):
        compile_shapes(graph)


def test_non_validating_characteristics_are_accepted() -> None:
    graph = rdflib.Graph().parse(format="turtle", data=PREFIXES + """@prefix ex: <urn:ex:> .
        ex:S a sh:NodeShape ; sh:targetClass ex:C ; rdfs:comment "why" ;
            sh:property [ sh:path ex:p ; sh:name "p" ; sh:description "the p" ; sh:order 1 ; sh:minCount 1 ; sh:message "m" ] .""")
    store = _store((DATA, b"<urn:ex:x> a <urn:ex:C> ."))
    assert [v.message for v in compile_shapes(graph).validate(store, [DATA])] == ["m"]


def test_severity_is_the_shapes() -> None:
    graph = rdflib.Graph().parse(format="turtle", data=PREFIXES + """@prefix ex: <urn:ex:> .
        ex:S a sh:NodeShape ; sh:targetClass ex:C ;
            sh:property [ sh:path ex:p ; sh:minCount 1 ; sh:severity sh:Warning ; sh:message "m" ] .""")
    store = _store((DATA, b"<urn:ex:x> a <urn:ex:C> ."))
    assert [v.severity for v in compile_shapes(graph).validate(store, [DATA])] == ["Warning"]


# --- scale and docs ------------------------------------------------------------------------


def _generator():
    spec = importlib.util.spec_from_file_location("patrolkg_bench_generate", ROOT / "bench" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_scale_smoke_50k_triples(compiled: CompiledShapes) -> None:
    world, stream = _generator().generate(50_000, seed=7)
    data = "".join(f"{s} {p} {o} .\n" for s, p, o in stream).encode()
    store = _store((ONTOLOGY, resources.ONTOLOGY_PATH.read_bytes()))
    store.load(data, format=ox.RdfFormat.N_TRIPLES, to_graph=DATA)
    started = time.perf_counter()
    found = compiled.validate(store, [ONTOLOGY, DATA])
    full = time.perf_counter() - started
    focus = [s.strip("<>") for s in world.statements[:10] + world.events[:3]]
    started = time.perf_counter()
    compiled.validate(store, [ONTOLOGY, DATA], focus=focus)
    focused = time.perf_counter() - started
    print(f"{len(store)} quads: full validation {full:.2f} s, {len(focus)} focus nodes {focused * 1000:.0f} ms")
    assert found == [], found[:3]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(shacl_sparql, optionflags=doctest.ELLIPSIS).failed == 0
