"""The SHACL shapes, checked against the example files in ``tests/shapes/``.

Every node shape has a ``<Shape>-valid.ttl`` that conforms and one or more
``<Shape>-invalid-NN.ttl`` that fail *on that shape* (not merely fail). Each
example is validated the way user data is: through :func:`patrolkg.validation.validate`,
which adds the ontology to the data graph.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, SH, SKOS

from patrolkg import resources
from patrolkg.namespaces import PK, PKSH
from patrolkg.validation import Report, validate

EXAMPLES = Path(__file__).parent / "shapes"
EXAMPLE_NAME = re.compile(r"^(?P<shape>[A-Za-z]+Shape)-(?:valid|invalid-\d{2})\.ttl$")

VALID = sorted(EXAMPLES.glob("*-valid.ttl"))
INVALID = sorted(EXAMPLES.glob("*-invalid-*.ttl"))


def _shape_named_by(example: Path) -> rdflib.URIRef:
    match = EXAMPLE_NAME.match(example.name)
    assert match, f"{example.name} is not named <ShapeLocalName>-valid.ttl or <ShapeLocalName>-invalid-NN.ttl"
    return PKSH[match["shape"]]


def _load(example: Path) -> rdflib.Graph:
    return rdflib.Graph().parse(example, format="turtle")


def _node_shapes(shapes: rdflib.Graph) -> set[rdflib.term.Node]:
    return set(shapes.subjects(RDF.type, SH.NodeShape))


def _property_shapes(shapes: rdflib.Graph) -> set[rdflib.term.Node]:
    return set(shapes.objects(None, SH.property)) | set(shapes.subjects(RDF.type, SH.PropertyShape))


def _owners(shapes: rdflib.Graph, source_shape: str | None) -> set[str]:
    """The node shapes a report's sh:sourceShape belongs to (itself, if a node shape)."""
    if source_shape is None:
        return set()
    shape = rdflib.URIRef(source_shape)
    if (shape, RDF.type, SH.NodeShape) in shapes:
        return {source_shape}
    return {str(owner) for owner in shapes.subjects(SH.property, shape)}


@pytest.fixture
def shapes() -> rdflib.Graph:
    return resources.shapes_graph()


def test_examples_exist() -> None:
    assert VALID and INVALID, f"no example files in {EXAMPLES}"


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.ttl")), ids=lambda p: p.name)
def test_example_names_an_existing_node_shape(example: Path, shapes: rdflib.Graph) -> None:
    shape = _shape_named_by(example)
    assert shape in _node_shapes(shapes), f"{example.name}: {shape} is not a node shape of the shapes file"


@pytest.mark.parametrize("example", VALID, ids=lambda p: p.name)
def test_valid_example_conforms(example: Path) -> None:
    report = validate(_load(example))
    assert report.conforms, report.text


@pytest.mark.parametrize("example", INVALID, ids=lambda p: p.name)
def test_invalid_example_fails_on_its_shape(example: Path, shapes: rdflib.Graph) -> None:
    expected = str(_shape_named_by(example))
    report: Report = validate(_load(example))

    assert not report.conforms, f"{example.name} conforms but should violate {expected}"
    own = [
        v for v in report.results if v.node_shape == expected or expected in _owners(shapes, v.source_shape)
    ]
    assert own, f"{example.name} fails, but not on {expected}:\n{report.text}"
    messages = {str(m) for m in shapes.objects(None, SH.message)}
    assert any(v.message in messages for v in own), f"the sh:message of the shape is not reported:\n{report.text}"


@pytest.mark.parametrize("example", INVALID, ids=lambda p: p.name)
def test_invalid_example_says_what_it_breaks(example: Path) -> None:
    first_line = example.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith(f"# Breaks {_shape_named_by(example).fragment}: "), first_line


def test_every_node_shape_has_valid_and_invalid_examples(shapes: rdflib.Graph) -> None:
    missing = []
    for shape in sorted(_node_shapes(shapes)):
        name = shape.fragment if isinstance(shape, rdflib.URIRef) else str(shape)
        if not (EXAMPLES / f"{name}-valid.ttl").is_file():
            missing.append(f"{name}-valid.ttl")
        if not list(EXAMPLES.glob(f"{name}-invalid-[0-9][0-9].ttl")):
            missing.append(f"{name}-invalid-01.ttl")
    assert not missing, f"missing examples in {EXAMPLES}: {missing}"


def test_every_shape_is_named_in_the_shapes_namespace(shapes: rdflib.Graph) -> None:
    anonymous = [s for s in _node_shapes(shapes) | _property_shapes(shapes) if not str(s).startswith(str(PKSH))]
    assert not anonymous, f"shapes without a pksh: IRI (reports would not say which rule failed): {anonymous}"


def test_every_shape_has_an_english_message(shapes: rdflib.Graph) -> None:
    silent = [
        str(shape)
        for shape in _node_shapes(shapes) | _property_shapes(shapes)
        if not any(isinstance(m, rdflib.Literal) and m.language == "en" for m in shapes.objects(shape, SH.message))
    ]
    assert not silent, f"shapes without an @en sh:message: {sorted(silent)}"


def test_every_property_shape_belongs_to_exactly_one_node_shape(shapes: rdflib.Graph) -> None:
    # A report names the property shape; the node shape is found through sh:property.
    ambiguous = {
        str(shape): sorted(str(owner) for owner in shapes.subjects(SH.property, shape))
        for shape in _property_shapes(shapes)
        if len(set(shapes.subjects(SH.property, shape))) != 1
    }
    assert not ambiguous, ambiguous


def test_every_node_shape_has_a_target(shapes: rdflib.Graph) -> None:
    targets = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)
    untargeted = [str(s) for s in _node_shapes(shapes) if not any(shapes.value(s, t) for t in targets)]
    assert not untargeted, untargeted


def test_stance_values_are_exactly_the_stance_scheme() -> None:
    shapes = resources.shapes_graph()
    allowed = set(rdflib.collection.Collection(shapes, shapes.value(PKSH["ReactionShape-stance"], SH["in"])))
    ontology = resources.ontology_graph()
    in_scheme = set(ontology.subjects(SKOS.inScheme, PK.StanceScheme))
    assert allowed == in_scheme


def test_shapes_parse_with_rdflib_and_pyoxigraph_alike() -> None:
    data = resources.SHAPES_PATH.read_bytes()
    with_rdflib = rdflib.Graph().parse(data=data, format="turtle")
    with_oxigraph = ox.serialize(ox.parse(data, format=ox.RdfFormat.TURTLE), format=ox.RdfFormat.N_TRIPLES)
    assert isomorphic(with_rdflib, rdflib.Graph().parse(data=with_oxigraph, format="nt"))


def test_shapes_graph_holds_only_shapes_and_its_header(shapes: rdflib.Graph) -> None:
    # The shapes graph is validated against nothing but itself; ontology axioms belong elsewhere.
    subjects = {s for s in shapes.subjects() if isinstance(s, rdflib.URIRef)}
    strays = {s for s in subjects if not str(s).startswith(str(PKSH))} - {rdflib.URIRef("https://w3id.org/patrolkg/shapes")}
    assert not strays, strays
