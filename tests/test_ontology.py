"""The ontology: header, documentation of every term, the axioms docs/model.md asks
for, and OWL 2 RL behaviour. Quality checks are SPARQL queries that must return no rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import owlrl
import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, FOAF, ORG, OWL, PROV, RDF, RDFS, SKOS, Namespace

from patrolkg import resources
from patrolkg.namespaces import PK, PKID

ONTOLOGY = rdflib.URIRef("https://w3id.org/patrolkg/ontology")
VANN = Namespace("http://purl.org/vocab/vann/")
ERRORS = Namespace("http://www.daml.org/2002/03/agents/agent-ont#")  # where owlrl records inconsistencies
MODEL_DOC = Path(__file__).parents[1] / "docs" / "model.md"

STANDARD_NAMESPACES = {
    "rdf": str(RDF), "rdfs": str(RDFS), "owl": str(OWL), "xsd": str(rdflib.XSD), "skos": str(SKOS),
    "dcterms": str(DCTERMS), "dc": "http://purl.org/dc/elements/1.1/", "prov": str(PROV), "org": str(ORG),
    "foaf": str(FOAF), "vann": str(VANN), "sh": "http://www.w3.org/ns/shacl#",
}

# docs/model.md, transcribed. "Sub of" and "subclass of" lists are what must be there
# (the ontology may state more, e.g. superclasses that PROV-O or ORG would entail).
MODEL_SUPERCLASSES: dict[str, tuple[rdflib.URIRef, ...]] = {
    "State": (ORG.Organization, PROV.Agent), "Person": (FOAF.Person, PROV.Person),
    "Organization": (ORG.FormalOrganization, PROV.Organization),
    "Government": (PK.Organization,), "Ministry": (PK.Organization,), "ArmedForce": (PK.Organization,),
    "Alliance": (PK.Organization,), "TreatyAlliance": (PK.Alliance,), "StrategicPartnership": (PK.Organization,),
    "InternationalOrganization": (PK.Organization,), "Group": (PROV.Agent,), "Membership": (ORG.Membership,),
    "Post": (ORG.Post,), "Role": (ORG.Role,), "MilitaryRank": (SKOS.Concept,), "Event": (PROV.Activity,),
    "MilitaryActivity": (PK.Event,), "JointPatrol": (PK.MilitaryActivity,), "Summit": (PK.Event,),
    "Invasion": (PK.Event,), "Declaration": (PK.Event,), "Commemoration": (PK.Event,), "Reaction": (PK.Event,),
    "Statement": (PK.Reaction,), "MilitaryResponse": (PK.Reaction,), "Plan": (PROV.Plan,),
    "Document": (PROV.Entity,), "AircraftType": (SKOS.Concept,), "AircraftCategory": (SKOS.Concept,),
    "Stance": (SKOS.Concept,), "Place": (PROV.Location,), "Article": (PROV.Entity, FOAF.Document),
    "Submission": (PROV.Entity,), "SubmissionStatus": (SKOS.Concept,),
}

# property: (domain, range); None where the model gives none (or a range on purpose left out).
MODEL_DOMAIN_RANGE: dict[str, tuple[rdflib.URIRef | None, rdflib.URIRef | None]] = {
    "memberOf": (PROV.Agent, ORG.Organization), "hasMember": (ORG.Organization, PROV.Agent),
    "allyOf": (PK.State, PK.State), "partOf": (None, None), "militaryRank": (PK.Person, PK.MilitaryRank),
    "ordinal": (PK.JointPatrol, rdflib.XSD.positiveInteger), "date": (PK.Event, None),
    "participant": (PK.Event, PROV.Agent), "aircraftType": (PK.JointPatrol, PK.AircraftType),
    "aircraftCategory": (PK.JointPatrol, PK.AircraftCategory),
    "aircraftCount": (PK.JointPatrol, rdflib.XSD.nonNegativeInteger), "operator": (PK.AircraftType, PK.State),
    "nuclearCapable": (PK.AircraftType, rdflib.XSD.boolean), "flewNear": (PK.JointPatrol, PK.State),
    "approachedAirspaceOf": (PK.JointPatrol, PK.State), "breachedAirspaceOf": (PK.JointPatrol, PK.State),
    "airspaceBreached": (PK.JointPatrol, rdflib.XSD.boolean), "coincidedWith": (PK.Event, PK.Event),
    "location": (PK.Event, PK.Place), "aggressor": (PK.Invasion, PK.State), "invadedState": (PK.Invasion, PK.State),
    "commemorates": (PK.Commemoration, rdflib.XSD.string), "respondsTo": (PK.Reaction, PK.Event),
    "about": (PK.Statement, None), "speaker": (PK.Reaction, PROV.Agent), "inPost": (PK.Statement, ORG.Post),
    "onBehalfOf": (PK.Reaction, PK.State), "addressedTo": (PK.Statement, PROV.Agent),
    "stance": (PK.Reaction, PK.Stance), "quote": (PK.Statement, RDF.langString),
    "summary": (PK.Reaction, RDF.langString), "claimsPartOf": (PK.Statement, None),
    "claimsAlignedWith": (PK.Statement, PK.Event), "sourceText": (None, rdflib.XSD.string), "headline": (PK.Article, None),
    "dataGraph": (PK.Submission, None), "submitter": (PK.Submission, rdflib.XSD.string),
    "status": (PK.Submission, PK.SubmissionStatus), "tripleCount": (PK.Submission, rdflib.XSD.integer),
    "retractedBy": (PK.Submission, rdflib.XSD.string), "retractedAt": (PK.Submission, rdflib.XSD.dateTime),
    "retractedData": (PK.Submission, rdflib.XSD.string),
}
DATATYPE_PROPERTIES = {
    "ordinal", "date", "aircraftCount", "nuclearCapable", "airspaceBreached", "commemorates", "quote", "summary",
    "sourceText", "headline", "submitter", "tripleCount", "retractedBy", "retractedAt", "retractedData",
}
MODEL_SUPERPROPERTIES = {
    "memberOf": ORG.memberOf, "hasMember": ORG.hasMember, "partOf": DCTERMS.isPartOf,
    "participant": PROV.wasAssociatedWith, "speaker": PROV.wasAssociatedWith, "approachedAirspaceOf": PK.flewNear,
    "breachedAirspaceOf": PK.approachedAirspaceOf, "location": PROV.atLocation, "headline": DCTERMS.title,
}
MODEL_CHARACTERISTICS = [
    (PK.ordinal, RDF.type, OWL.FunctionalProperty), (PK.aircraftCount, RDF.type, OWL.FunctionalProperty),
    (PK.airspaceBreached, RDF.type, OWL.FunctionalProperty), (PK.date, RDF.type, OWL.FunctionalProperty),
    (PK.coincidedWith, RDF.type, OWL.SymmetricProperty), (PK.allyOf, RDF.type, OWL.SymmetricProperty),
    (PK.partOf, RDF.type, OWL.TransitiveProperty), (PK.memberOf, OWL.inverseOf, PK.hasMember),
    (PK.status, RDF.type, OWL.FunctionalProperty),
    (PK.Event, OWL.disjointWith, PROV.Agent), (PK.Event, OWL.disjointWith, PK.Article),
]
MODEL_SCHEMES = {
    PK.StanceScheme: ("stance", "protest concern criticism accusation warning justification denial reassurance "
                      "restraint report assessment condemnation"),
    PK.PostRoleScheme: ("role", "president prime-minister chief-cabinet-secretary defense-minister "
                        "foreign-ministry-spokesperson defense-ministry-spokesperson"),
    PK.AircraftCategoryScheme: ("aircraft-category", "strategic-bomber bomber fighter-jet"),
    PK.MilitaryRankScheme: ("rank", "senior-colonel"),
    PK.SubmissionStatusScheme: ("submission-status", "accepted retracted"),
}

PREFIXES = "\n".join(
    f"PREFIX {p}: <{ns}>" for p, ns in {**STANDARD_NAMESPACES, "pk": str(PK), "pkid": str(PKID)}.items()
)
# The terms this ontology defines: its classes, properties, concept schemes and concepts.
TERM = """{
  { ?term a owl:Class } UNION { ?term a owl:ObjectProperty } UNION { ?term a owl:DatatypeProperty }
  UNION { ?term a skos:ConceptScheme } UNION { ?term a/rdfs:subClassOf* skos:Concept }
  FILTER(isIRI(?term) && (STRSTARTS(STR(?term), STR(pk:)) || STRSTARTS(STR(?term), STR(pkid:))))
}"""
CONCEPT = "{ ?term a/rdfs:subClassOf* skos:Concept FILTER(STRSTARTS(STR(?term), STR(pkid:))) }"


def _values(rows: list[tuple[rdflib.URIRef, rdflib.URIRef]]) -> str:
    return " ".join(f"(<{a}> <{b}>)" for a, b in rows)


_DOMAINS = [(PK[p], d) for p, (d, _) in MODEL_DOMAIN_RANGE.items() if d is not None]
_RANGES = [(PK[p], r) for p, (_, r) in MODEL_DOMAIN_RANGE.items() if r is not None]
_SUBCLASSES = [(PK[c], s) for c, supers in MODEL_SUPERCLASSES.items() for s in supers]

QUALITY_CHECKS: dict[str, str] = {
    "terms without an English rdfs:label": f"SELECT ?term WHERE {{ {TERM} FILTER NOT EXISTS {{ ?term rdfs:label ?l FILTER(LANG(?l) = 'en') }} }}",
    "terms with more than one rdfs:label": f"SELECT ?term WHERE {{ {TERM} ?term rdfs:label ?a, ?b FILTER(?a != ?b) }}",
    "labels that are not @en": "SELECT ?term ?l WHERE { ?term rdfs:label ?l FILTER(LANG(?l) != 'en') }",
    "terms without an English skos:definition": f"SELECT ?term WHERE {{ {TERM} FILTER NOT EXISTS {{ ?term skos:definition ?d FILTER(LANG(?d) = 'en') }} }}",
    "terms without rdfs:isDefinedBy the ontology": f"SELECT ?term WHERE {{ {TERM} FILTER NOT EXISTS {{ ?term rdfs:isDefinedBy <{ONTOLOGY}> }} }}",
    "concepts without an English skos:prefLabel": f"SELECT ?term WHERE {{ {CONCEPT} FILTER NOT EXISTS {{ ?term skos:prefLabel ?l FILTER(LANG(?l) = 'en') }} }}",
    "concepts whose rdfs:label is not their skos:prefLabel": f"SELECT ?term WHERE {{ {CONCEPT} ?term rdfs:label ?l FILTER NOT EXISTS {{ ?term skos:prefLabel ?l }} }}",
    "concepts in no declared concept scheme": f"SELECT ?term WHERE {{ {CONCEPT} FILTER NOT EXISTS {{ ?term skos:inScheme ?s . ?s a skos:ConceptScheme }} }}",
    "pk: IRIs used but not declared": """SELECT DISTINCT ?term WHERE {
        { ?term ?p ?o } UNION { ?s ?term ?o } UNION { ?s ?p ?term }
        FILTER(isIRI(?term) && STRSTARTS(STR(?term), STR(pk:)))
        FILTER NOT EXISTS { VALUES ?kind { owl:Class owl:ObjectProperty owl:DatatypeProperty skos:ConceptScheme } ?term a ?kind } }""",
    "properties both object and datatype": "SELECT ?term WHERE { ?term a owl:ObjectProperty, owl:DatatypeProperty }",
    "object properties with a datatype range": """SELECT ?term ?r WHERE { ?term a owl:ObjectProperty ; rdfs:range ?r
        FILTER(STRSTARTS(STR(?r), STR(xsd:)) || ?r IN (rdf:langString, rdfs:Literal)) }""",
    "datatype properties with a class range": """SELECT ?term ?r WHERE { ?term a owl:DatatypeProperty ; rdfs:range ?r
        FILTER(!(STRSTARTS(STR(?r), STR(xsd:)) || ?r IN (rdf:langString, rdfs:Literal))) }""",
    "classes outside the class hierarchy": "SELECT ?term WHERE { ?term a owl:Class FILTER(STRSTARTS(STR(?term), STR(pk:))) FILTER NOT EXISTS { ?term rdfs:subClassOf ?super } }",
    "subclass cycles": "SELECT ?term WHERE { ?term rdfs:subClassOf+ ?term }",
    "subclass axioms of the model that are missing": f"SELECT ?term ?super WHERE {{ VALUES (?term ?super) {{ {_values(_SUBCLASSES)} }} FILTER NOT EXISTS {{ ?term rdfs:subClassOf ?super }} }}",
    "properties without the domain the model gives": f"SELECT ?term ?d WHERE {{ VALUES (?term ?d) {{ {_values(_DOMAINS)} }} FILTER NOT EXISTS {{ ?term rdfs:domain ?d }} }}",
    "domains the model does not give": f"SELECT ?term ?d WHERE {{ ?term rdfs:domain ?d FILTER NOT EXISTS {{ VALUES (?term ?d) {{ {_values(_DOMAINS)} }} }} }}",
    "properties without the range the model gives": f"SELECT ?term ?r WHERE {{ VALUES (?term ?r) {{ {_values(_RANGES)} }} FILTER NOT EXISTS {{ ?term rdfs:range ?r }} }}",
    "ranges the model does not give (pk:about, pk:claimsPartOf, pk:date have none)": f"SELECT ?term ?r WHERE {{ ?term rdfs:range ?r FILTER NOT EXISTS {{ VALUES (?term ?r) {{ {_values(_RANGES)} }} }} }}",
    "sub-property axioms of the model that are missing": f"SELECT ?term ?super WHERE {{ VALUES (?term ?super) {{ {_values([(PK[p], s) for p, s in MODEL_SUPERPROPERTIES.items()])} }} FILTER NOT EXISTS {{ ?term rdfs:subPropertyOf ?super }} }}",
    "characteristics of the model that are missing": f"SELECT ?term ?p ?o WHERE {{ VALUES (?term ?p ?o) {{ {' '.join(f'(<{s}> <{p}> <{o}>)' for s, p, o in MODEL_CHARACTERISTICS)} }} FILTER NOT EXISTS {{ ?term ?p ?o }} }}",
}


@pytest.fixture
def ontology() -> rdflib.Graph:
    return resources.ontology_graph()


@pytest.mark.parametrize("name", sorted(QUALITY_CHECKS))
def test_quality_check_finds_nothing(name: str, ontology: rdflib.Graph) -> None:
    rows = list(ontology.query(PREFIXES + "\n" + QUALITY_CHECKS[name]))
    assert not rows, f"{name}: {[tuple(str(v) for v in row) for row in rows]}"


def test_header(ontology: rdflib.Graph) -> None:
    header = {p: ontology.value(ONTOLOGY, p) for p in (OWL.versionIRI, OWL.versionInfo, DCTERMS.license, DCTERMS.creator)}
    assert (ONTOLOGY, RDF.type, OWL.Ontology) in ontology
    assert header == {
        OWL.versionIRI: rdflib.URIRef("https://w3id.org/patrolkg/ontology/0.1.0"),
        OWL.versionInfo: rdflib.Literal("0.1.0"),
        DCTERMS.license: rdflib.URIRef("https://creativecommons.org/licenses/by/4.0/"),
        DCTERMS.creator: rdflib.Literal("patrolkg contributors"),
    }
    assert ontology.value(ONTOLOGY, VANN.preferredNamespacePrefix) == rdflib.Literal("pk")
    assert ontology.value(ONTOLOGY, VANN.preferredNamespaceUri) == rdflib.Literal(str(PK))
    for prop in (DCTERMS.title, DCTERMS.description):
        assert ontology.value(ONTOLOGY, prop).language == "en", prop


def test_no_build_timestamps(ontology: rdflib.Graph) -> None:
    stamps = (DCTERMS.created, DCTERMS.modified, DCTERMS.issued, DCTERMS.date)
    assert not [p for p in stamps if (ONTOLOGY, p, None) in ontology]


def test_parses_with_rdflib_and_pyoxigraph_alike() -> None:
    data = resources.ONTOLOGY_PATH.read_bytes()
    with_rdflib = rdflib.Graph().parse(data=data, format="turtle")
    with_oxigraph = ox.serialize(ox.parse(data, format=ox.RdfFormat.TURTLE), format=ox.RdfFormat.N_TRIPLES)
    assert isomorphic(with_rdflib, rdflib.Graph().parse(data=with_oxigraph, format="nt"))


def test_no_standard_term_is_redefined(ontology: rdflib.Graph) -> None:
    redefined = sorted(
        {str(s) for s in ontology.subjects() if any(str(s).startswith(ns) for ns in STANDARD_NAMESPACES.values())}
    )
    assert not redefined, f"triples about terms of standard vocabularies: {redefined}"


def test_declared_pk_terms_are_exactly_those_of_the_model(ontology: rdflib.Graph) -> None:
    documented = {PK[name] for name in re.findall(r"`pk:([A-Za-z]+)`", MODEL_DOC.read_text(encoding="utf-8"))}
    declared = {
        s for kind in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, SKOS.ConceptScheme)
        for s in ontology.subjects(RDF.type, kind) if str(s).startswith(str(PK))
    }
    assert declared - documented == set(), "declared but not in docs/model.md"
    assert documented - declared == set(), "in docs/model.md but not declared"


@pytest.mark.parametrize("name", sorted(DATATYPE_PROPERTIES | set(MODEL_DOMAIN_RANGE)))
def test_property_kind(name: str, ontology: rdflib.Graph) -> None:
    kind = OWL.DatatypeProperty if name in DATATYPE_PROPERTIES else OWL.ObjectProperty
    assert (PK[name], RDF.type, kind) in ontology


def test_agent_classes_are_pairwise_disjoint(ontology: rdflib.Graph) -> None:
    groups = [
        set(rdflib.collection.Collection(ontology, ontology.value(node, OWL.members)))
        for node in ontology.subjects(RDF.type, OWL.AllDisjointClasses)
    ]
    assert {PK.State, PK.Person, PK.Organization, PK.Group} in groups


@pytest.mark.parametrize("scheme", sorted(MODEL_SCHEMES), ids=lambda s: s.fragment)
def test_concept_scheme_holds_the_model_concepts(scheme: rdflib.URIRef, ontology: rdflib.Graph) -> None:
    kind, slugs = MODEL_SCHEMES[scheme]
    expected = {PKID[f"{kind}/{slug}"] for slug in slugs.split()}
    assert set(ontology.subjects(SKOS.inScheme, scheme)) == expected
    assert (scheme, RDF.type, SKOS.ConceptScheme) in ontology


# --- OWL 2 RL: the axioms mean what they should, and nothing absurd follows -------

SAMPLE = """
@prefix pk: <https://w3id.org/patrolkg/ontology#> .
@prefix id: <https://w3id.org/patrolkg/id/> .
id:statement\\/s a pk:Statement ; pk:speaker id:person\\/p ; pk:about id:event\\/patrol ;
    pk:claimsPartOf id:plan\\/annual ; pk:respondsTo id:statement\\/earlier ; pk:date "2019-07" .
id:event\\/patrol pk:coincidedWith id:event\\/summit ; pk:participant id:state\\/a .
id:state\\/a pk:allyOf id:state\\/b ; pk:memberOf id:org\\/quad .
id:org\\/small pk:partOf id:org\\/middle . id:org\\/middle pk:partOf id:org\\/large .
"""
ID = Namespace(str(PKID))


def _rl_closure(ontology: rdflib.Graph, data: rdflib.Graph) -> rdflib.Graph:
    closed = rdflib.Graph()
    for triple in ontology:
        closed.add(triple)
    for triple in data:
        closed.add(triple)
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(closed)
    return closed


@pytest.fixture(scope="module")
def sample_closure() -> rdflib.Graph:
    return _rl_closure(resources.ontology_graph(), rdflib.Graph().parse(data=SAMPLE, format="turtle"))


@pytest.mark.parametrize(
    "triple",
    [
        (ID["person/p"], RDF.type, PROV.Agent),
        (ID["statement/s"], RDF.type, PROV.Activity),
        (ID["statement/earlier"], RDF.type, PK.Event),
        (ID["event/summit"], PK.coincidedWith, ID["event/patrol"]),
        (ID["state/b"], PK.allyOf, ID["state/a"]),
        (ID["state/b"], RDF.type, PK.State),
        (ID["org/quad"], PK.hasMember, ID["state/a"]),
        (ID["state/a"], ORG.memberOf, ID["org/quad"]),
        (ID["org/small"], PK.partOf, ID["org/large"]),
        (ID["event/patrol"], PROV.wasAssociatedWith, ID["state/a"]),
    ],
    ids=lambda t: " ".join(str(x).rsplit("/", 1)[-1].rsplit("#", 1)[-1] for x in t),
)
def test_rl_entails(triple: tuple[rdflib.URIRef, rdflib.URIRef, rdflib.URIRef], sample_closure: rdflib.Graph) -> None:
    assert triple in sample_closure


def test_rl_gives_no_type_to_what_a_statement_is_about_or_claims(sample_closure: rdflib.Graph) -> None:
    types = {
        node: set(sample_closure.objects(node, RDF.type)) - {OWL.Thing, RDFS.Resource}
        for node in (ID["plan/annual"], ID["event/patrol"])
    }
    assert types == {ID["plan/annual"]: set(), ID["event/patrol"]: {PK.Event, PROV.Activity}}


def test_rl_closure_of_the_sample_is_consistent(sample_closure: rdflib.Graph) -> None:
    assert not list(sample_closure.objects(None, ERRORS.error))


def test_every_class_is_satisfiable(ontology: rdflib.Graph) -> None:
    # One individual per class; a contradiction in the class axioms would show as an owlrl error.
    individuals = rdflib.Graph()
    for cls in ontology.subjects(RDF.type, OWL.Class):
        if str(cls).startswith(str(PK)):
            individuals.add((rdflib.URIRef(f"urn:example:{cls.fragment}"), RDF.type, cls))
    errors = list(_rl_closure(ontology, individuals).objects(None, ERRORS.error))
    assert not errors, errors


def test_rl_detects_a_state_that_is_also_a_person(ontology: rdflib.Graph) -> None:
    clash = rdflib.Graph()
    clash.add((ID["state/japan"], RDF.type, PK.State))
    clash.add((ID["state/japan"], RDF.type, PK.Person))
    assert list(_rl_closure(ontology, clash).objects(None, ERRORS.error))
