"""patrolkg's OWL 2 RL materialization against owlrl, the reference."""

from __future__ import annotations

import owlrl
import pyoxigraph as ox
import pytest
import rdflib

from patrolkg import resources
from patrolkg.namespaces import INFERRED_GRAPH, LINKS_GRAPH, ONTOLOGY_GRAPH
from patrolkg.reasoning import find_inconsistencies, is_boilerplate, materialize
from patrolkg.store import Store

PK = "https://w3id.org/patrolkg/ontology#"
ID = "https://w3id.org/patrolkg/id/"


def _inferred(store: Store) -> set[tuple[rdflib.term.Node, ...]]:
    data = ox.serialize((q.triple for q in store.quads(str(INFERRED_GRAPH))), format=ox.RdfFormat.N_TRIPLES)
    return set(rdflib.Graph().parse(data=data, format="nt"))


@pytest.fixture(scope="module")
def owlrl_closure() -> tuple[set, set]:
    """(asserted, derived) for the bundled data without the link set, by owlrl."""
    graph = rdflib.Graph()
    for item in resources.bundle():
        if item.graph != LINKS_GRAPH:
            graph.parse(data=item.read_bytes(), format="turtle")
    asserted = set(graph)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(graph)
    return asserted, set(graph) - asserted


def _canonical(triples: set) -> set:
    # The store writes derived integer types as xsd:integer; compare values, not spellings.
    def fix(term: rdflib.term.Node) -> rdflib.term.Node:
        if isinstance(term, rdflib.Literal) and term.datatype and str(term.datatype).endswith(("Integer", "#int")):
            return rdflib.Literal(str(term), datatype=rdflib.XSD.integer)
        return term

    return {tuple(fix(t) for t in triple) for triple in triples}


def test_materialization_contains_everything_owlrl_derives(bundle_store: Store, owlrl_closure: tuple[set, set]) -> None:
    asserted, derived = owlrl_closure
    meaningful = {t for t in derived if not is_boilerplate(*t)}
    missing = _canonical(meaningful) - _canonical(_inferred(bundle_store)) - _canonical(asserted)
    assert not missing, f"{len(missing)} owlrl entailments missing, e.g. {sorted(map(str, missing))[:5]}"
    assert len(meaningful) > 100  # the comparison is not vacuous


def test_materialization_derives_nothing_owlrl_does_not(bundle_store: Store, owlrl_closure: tuple[set, set]) -> None:
    asserted, derived = owlrl_closure
    extra = _canonical(_inferred(bundle_store)) - _canonical(derived) - _canonical(asserted)
    assert not extra, f"entailments owlrl does not make: {sorted(map(str, extra))[:5]}"


def test_inferred_graph_holds_no_asserted_triple(bundle_store: Store) -> None:
    inferred = _inferred(bundle_store)
    for item in resources.bundle():
        asserted = set(rdflib.Graph().parse(data=item.read_bytes(), format="turtle"))
        assert not (_canonical(asserted) & _canonical(inferred)), item.label


def test_subproperty_and_subclass_entailments_are_in_the_inferred_graph(bundle_store: Store) -> None:
    # pk:memberOf is a sub-property of org:memberOf; pk:State a sub-class of prov:Agent.
    quad_members = {
        row["m"].value
        for row in bundle_store.query(
            f"SELECT ?m WHERE {{ GRAPH <{INFERRED_GRAPH}> {{ ?m <http://www.w3.org/ns/org#memberOf> ?quad }} "
            f"?quad a <{PK}StrategicPartnership> }}"
        )
    }
    assert {ID + "state/japan", ID + "state/united-states", ID + "state/india", ID + "state/australia"} <= quad_members
    agent = bundle_store.query(
        f"ASK {{ GRAPH <{INFERRED_GRAPH}> {{ <{ID}state/japan> a <http://www.w3.org/ns/prov#Agent> }} }}"
    )
    assert bool(agent)


def _scratch(turtle: str) -> ox.Store:
    store = ox.Store()
    store.load(resources.ONTOLOGY_PATH.read_bytes(), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(str(ONTOLOGY_GRAPH)))
    prefixes = f"@prefix pk: <{PK}> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
    store.load((prefixes + turtle).encode(), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode("urn:data"))
    return store


def _check(store: ox.Store) -> list:
    materialize(store, ["urn:data"], str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH))
    return find_inconsistencies(store, ["urn:data", str(ONTOLOGY_GRAPH), str(INFERRED_GRAPH)])


def test_a_thing_typed_state_and_person_is_inconsistent() -> None:
    found = _check(_scratch("<urn:x> a pk:State , pk:Person ."))
    assert found and {f.rule for f in found} <= {"cax-adc", "cax-dw"}
    assert {f.focus_node for f in found} == {"urn:x"}


def test_a_second_ordinal_for_one_patrol_is_inconsistent() -> None:
    found = _check(_scratch('<urn:p> a pk:JointPatrol ; pk:ordinal 4 , 5 .'))
    assert [(f.rule, f.focus_node) for f in found] == [("prp-fp", "urn:p")]
    assert "ordinal" in found[0].message


def test_a_subclass_instance_inherits_disjointness() -> None:
    # A ministry is an organization, and organizations are not persons.
    found = _check(_scratch("<urn:m> a pk:Ministry , pk:Person ."))
    assert found and {f.focus_node for f in found} == {"urn:m"}


def test_consistent_data_has_no_inconsistencies(bundle_store: Store) -> None:
    assert _check(_scratch("<urn:p> a pk:JointPatrol ; pk:ordinal 4 .")) == []


# Every instance rule, on a small ontology that uses what patrolkg's does not (yet):
# restrictions with owl:hasValue, owl:someValuesFrom and owl:allValuesFrom, chains of a
# transitive property, inverses both ways, a symmetric property, ranges with literals.
_RULES_ONTOLOGY = """
@prefix : <urn:o#> . @prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
:partOf a owl:ObjectProperty , owl:TransitiveProperty .
:locatedIn rdfs:subPropertyOf :partOf .
:contains owl:inverseOf :partOf .
:borders a owl:SymmetricProperty ; rdfs:domain :Place ; rdfs:range :Place .
:name rdfs:domain :Named ; rdfs:range rdfs:Literal .
:Region rdfs:subClassOf :Place . :Place rdfs:subClassOf :Named .
:Allied owl:equivalentClass [ a owl:Restriction ; owl:onProperty :side ; owl:hasValue :blue ] .
:Patrolled owl:equivalentClass [ a owl:Restriction ; owl:onProperty :patrolledBy ; owl:someValuesFrom :Bomber ] .
:Busy owl:equivalentClass [ a owl:Restriction ; owl:onProperty :flight ; owl:someValuesFrom owl:Thing ] .
:Guarded rdfs:subClassOf [ a owl:Restriction ; owl:onProperty :guard ; owl:allValuesFrom :Soldier ] .
"""
_RULES_DATA = """
@prefix : <urn:o#> .
:a :locatedIn :b . :b :partOf :c . :c :partOf :d . :x :partOf :a .
:e :contains :f .
:g :borders :h . :g :name "G" .
:r a :Region .
:s :side :blue . :t a :Allied .
:u :patrolledBy :v . :v a :Bomber . :w :patrolledBy :y .
:z :flight "f1" .
:k a :Guarded ; :guard :m , "not a node" .
"""


def test_every_instance_rule_derives_what_owlrl_does() -> None:
    ontology = ox.NamedNode("urn:ontology")
    store = ox.Store()
    store.load(_RULES_ONTOLOGY.encode(), format=ox.RdfFormat.TURTLE, to_graph=ontology)
    store.load(_RULES_DATA.encode(), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode("urn:data"))
    ours = materialize(store, ["urn:data"], "urn:ontology", "urn:inferred").triples

    graph = rdflib.Graph()
    graph.parse(data=_RULES_ONTOLOGY, format="turtle")
    graph.parse(data=_RULES_DATA, format="turtle")
    asserted = set(graph)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics, axiomatic_triples=False, datatype_axioms=False).expand(graph)
    theirs = {t for t in set(graph) - asserted if not is_boilerplate(*t)}
    ours_rdflib = set(rdflib.Graph().parse(data=ox.serialize(ours, format=ox.RdfFormat.N_TRIPLES), format="nt"))
    assert ours_rdflib == theirs
    expected = {
        "<urn:o#x> <urn:o#partOf> <urn:o#d>",  # a chain of four through a sub-property
        "<urn:o#d> <urn:o#contains> <urn:o#x>",  # its inverse
        "<urn:o#f> <urn:o#partOf> <urn:o#e>",  # the inverse the other way
        "<urn:o#h> <urn:o#borders> <urn:o#g>",  # symmetric
        "<urn:o#h> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <urn:o#Named>",  # range, then sub-class
        "<urn:o#s> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <urn:o#Allied>",  # hasValue, by the value
        "<urn:o#t> <urn:o#side> <urn:o#blue>",  # hasValue, by the class
        "<urn:o#u> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <urn:o#Patrolled>",  # someValuesFrom
        "<urn:o#z> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <urn:o#Busy>",  # someValuesFrom owl:Thing
        "<urn:o#m> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <urn:o#Soldier>",  # allValuesFrom
    }
    assert expected <= {str(t) for t in ours}
    assert "<urn:o#w> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <urn:o#Patrolled>" not in {str(t) for t in ours}
