"""The competency questions (queries/cqNN-*.rq) and their exact answers.

Each expected answer was worked out from the two source articles (and, for the
reference facts, the treaties and the Quad's membership as the CNSNews article names
it), then checked against the query. Rows are compared in order: every query has an
ORDER BY that makes its output deterministic.
"""

from __future__ import annotations

import pytest

from patrolkg.loading import load_bundle
from patrolkg.query import select_rows
from patrolkg.resources import QUERIES_PATH
from patrolkg.store import Store, open_store

ID = "https://w3id.org/patrolkg/id/"
PK = "https://w3id.org/patrolkg/ontology#"
WD = "http://www.wikidata.org/entity/"
CNS = ID + "article/cnsnews-2022-05"
TENTH = ID + "article/tenth-joint-patrol-2025-12"


def iri(kind: str, slug: str) -> str:
    return f"{ID}{kind}/{slug}"


@pytest.fixture(scope="module")
def store() -> Store:
    fresh = open_store(None)
    load_bundle(fresh)
    return fresh


def answer(store: Store, name: str) -> list[dict[str, str]]:
    return select_rows(store, (QUERIES_PATH / name).read_text(encoding="utf-8"))


def test_every_query_file_has_a_title_and_a_description() -> None:
    names = sorted(entry.name for entry in QUERIES_PATH.iterdir() if entry.name.endswith(".rq"))
    # cqNN are the competency questions; exNN the examples of linking (tests/test_links.py
    # and tests/test_federation.py check their answers).
    assert [n[:4] for n in names if n.startswith("cq")] == [f"cq{i:02d}" for i in range(1, 13)]
    assert all(n.startswith(("cq", "ex")) for n in names), names
    for name in names:
        lines = (QUERIES_PATH / name).read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# title: "), name
        assert lines[1].startswith("# description: "), name
        assert "ORDER BY" in (QUERIES_PATH / name).read_text(encoding="utf-8"), name


def test_cq01_patrols_in_order(store: Store) -> None:
    # The fourth patrol and its three predecessors (months as Matsuno gives them),
    # and the tenth; the sources say nothing of the fifth to ninth.
    assert answer(store, "cq01-patrols.rq") == [
        {"patrol": iri("event", "joint-patrol-1"), "label": "First Russia–China joint strategic bomber patrol", "ordinal": "1", "date": "2019-07"},
        {"patrol": iri("event", "joint-patrol-2"), "label": "Second Russia–China joint strategic bomber patrol", "ordinal": "2", "date": "2020-12"},
        {"patrol": iri("event", "joint-patrol-3"), "label": "Third Russia–China joint strategic bomber patrol", "ordinal": "3", "date": "2021-11"},
        {"patrol": iri("event", "joint-patrol-4"), "label": "Fourth Russia–China joint strategic bomber patrol", "ordinal": "4", "date": "2022-05"},
        {"patrol": iri("event", "joint-patrol-10"), "label": "Tenth China–Russia joint bomber patrol", "ordinal": "10", "date": "2025-12"},
    ]


def test_cq02_fourth_patrol_states_aircraft_and_count(store: Store) -> None:
    # "The six aircraft – Russian Tu-95 strategic bombers and Chinese H-6K strategic bombers"
    assert answer(store, "cq02-fourth-patrol-participants.rq") == [
        {"state": iri("state", "china"), "stateLabel": "China", "aircraftType": iri("aircraft-type", "h-6k"), "aircraftTypeLabel": "H-6K", "aircraftCount": "6"},
        {"state": iri("state", "russia"), "stateLabel": "Russia", "aircraftType": iri("aircraft-type", "tu-95"), "aircraftTypeLabel": "Tu-95", "aircraftCount": "6"},
    ]


def test_cq03_fourth_patrol_approached_but_did_not_breach(store: Store) -> None:
    # "approached but did not breach the airspace of the two U.S. treaty allies"
    assert answer(store, "cq03-fourth-patrol-airspace.rq") == [
        {"state": iri("state", "japan"), "stateLabel": "Japan", "breached": "false"},
        {"state": iri("state", "south-korea"), "stateLabel": "South Korea", "breached": "false"},
    ]


def test_cq04_fourth_patrol_coincided_with_the_quad_summit(store: Store) -> None:
    assert answer(store, "cq04-fourth-patrol-coincided.rq") == [
        {
            "event": iri("event", "quad-summit-tokyo-2022"),
            "eventLabel": "Quad leaders’ summit in Tokyo (May 2022)",
            "location": iri("place", "tokyo"),
            "locationLabel": "Tokyo",
        },
    ]


def test_cq05_quad_members(store: Store) -> None:
    # "the Quad – the U.S., Japan, India, and Australia"
    assert answer(store, "cq05-quad-members.rq") == [
        {"member": iri("state", "australia"), "memberLabel": "Australia"},
        {"member": iri("state", "india"), "memberLabel": "India"},
        {"member": iri("state", "japan"), "memberLabel": "Japan"},
        {"member": iri("state", "united-states"), "memberLabel": "United States"},
    ]


def test_cq06_officials_on_the_fourth_patrol(store: Store) -> None:
    # Matsuno for Japan, Zakharova for Russia, Wu Qian for China; Kishida spoke about
    # the invasion of Ukraine, not the patrol.
    assert answer(store, "cq06-fourth-patrol-officials.rq") == [
        {
            "official": iri("person", "hirokazu-matsuno"),
            "officialLabel": "Hirokazu Matsuno",
            "state": iri("state", "japan"),
            "stateLabel": "Japan",
            "post": iri("post", "japan-chief-cabinet-secretary"),
            "postLabel": "Chief Cabinet Secretary of Japan",
        },
        {
            "official": iri("person", "maria-zakharova"),
            "officialLabel": "Maria Zakharova",
            "state": iri("state", "russia"),
            "stateLabel": "Russia",
            "post": iri("post", "russia-foreign-ministry-spokesperson"),
            "postLabel": "Spokesperson of the Russian Ministry of Foreign Affairs",
        },
        {
            "official": iri("person", "wu-qian"),
            "officialLabel": "Wu Qian",
            "state": iri("state", "china"),
            "stateLabel": "China",
            "post": iri("post", "china-defense-ministry-spokesperson"),
            "postLabel": "Spokesperson of the Chinese Ministry of National Defense",
        },
    ]


def test_cq07_protests_concerns_and_justifications(store: Store) -> None:
    def row(ordinal: str, stance: str, statement: str, speaker: str, speaker_label: str) -> dict[str, str]:
        return {
            "ordinal": ordinal,
            "patrol": iri("event", f"joint-patrol-{ordinal}"),
            "stance": iri("stance", stance),
            "statement": iri("statement", statement),
            "speaker": speaker,
            "speakerLabel": speaker_label,
        }

    japan, experts, officials = iri("state", "japan"), iri("org", "chinese-experts-2025-12"), iri("org", "chinese-officials-2025-12")
    assert answer(store, "cq07-protest-and-justification.rq") == [
        row("4", "concern", "japan-serious-concerns-2022-05", japan, "Japan"),
        row("4", "justification", "wu-coordination-aim-2022-05", iri("person", "wu-qian"), "Wu Qian"),
        row("4", "justification", "zakharova-international-law-2022-05", iri("person", "maria-zakharova"), "Maria Zakharova"),
        row("4", "protest", "japan-serious-concerns-2022-05", japan, "Japan"),
        row("10", "concern", "koizumi-regional-stability-2025-12", iri("person", "shinjiro-koizumi"), "Shinjiro Koizumi"),
        row("10", "concern", "koizumi-serious-concerns-2025-12", iri("person", "shinjiro-koizumi"), "Shinjiro Koizumi"),
        row("10", "justification", "chinese-experts-deterrence-2025-12", experts, "Chinese experts cited in the December 2025 report"),
        row("10", "justification", "chinese-experts-unified-resolve-2025-12", experts, "Chinese experts cited in the December 2025 report"),
        row("10", "justification", "chinese-officials-stability-2025-12", officials, "Chinese officials cited in the December 2025 report"),
        row("10", "justification", "guo-annual-plan-2025-12", iri("person", "guo-jiakun"), "Guo Jiakun"),
        row("10", "justification", "guo-coordination-2025-12", iri("person", "guo-jiakun"), "Guo Jiakun"),
        row("10", "protest", "tokyo-protest-2025-12", japan, "Japan"),
    ]


# Every quoted passage of the CNSNews article that a speaker said, exactly as printed
# between the quotation marks. (“Quad” in paragraph 2 is the article's own usage, and
# “no limits” / “forbidden.” are words of the Putin–Xi document, not of a reaction.)
CNS_QUOTES: list[tuple[str, str | None]] = [
    ("japan-criticizes-china-2022-05", "violating international law."),
    ("japan-serious-concerns-2022-05", "serious concerns"),
    ("kishida-indo-pacific-2022-05", "We must not allow the same thing to happen in the Indo-Pacific."),
    ("kishida-invasion-2022-05", "Since we last met in person in September, an incident that overturns the rules-based international order has happened – the Russian invasion of Ukraine,"),
    ("kishida-un-charter-2022-05", "It is a blatant challenge to the conditions set in the United Nations Charter,"),
    ("matsuno-fourth-patrol-2022-05", None),
    ("matsuno-provocation-2022-05", "elevated the level of provocation,"),
    ("matsuno-russia-tensions-2022-05", "we cannot overlook actions that heighten tensions in East Asia when Russia has already increased tensions in Ukraine."),
    ("matsuno-warning-2022-05", "warning."),
    ("military-officials-airspace-2022-05", None),
    ("quad-joint-statement-2022-05", "emphasized that all countries must seek peaceful resolution of disputes in accordance with international law."),
    ("quad-joint-statement-2022-05", "respect for sovereignty and territorial integrity of all states,"),
    ("wu-coordination-aim-2022-05", "strategic mutual trust and practical cooperation."),
    ("wu-no-third-party-2022-05", "any third party"),
    ("wu-no-third-party-2022-05", "the current international and regional situation."),
    ("zakharova-absurd-linkage-2022-05", "absurd linkage"),
    ("zakharova-absurd-linkage-2022-05", "with Russia’s special military operation in Ukraine."),
    (
        "zakharova-hostile-activity-2022-05",
        "We have repeatedly warned that we are closely following such essentially hostile activity of the current "
        "government of Japan and reserve the right to take appropriate measures in response in order to strengthen "
        "the defense capability of our country.",
    ),
    (
        "zakharova-international-law-2022-05",
        "held in strict accordance with the norms of international law and fully meet the objectives of strengthening "
        "peace, stability and security in the Asia-Pacific region and in the world as a whole.",
    ),
    ("zakharova-outsiders-2022-05", "outsiders"),
    (
        "zakharova-outsiders-2022-05",
        "taking other provocative actions that pose a serious challenge and potential threat to the security of the "
        "Russian Federation in the Far East.",
    ),
]

# The December 2025 report quotes no one verbatim.
TENTH_STATEMENTS = [
    "analysts-commemorations-2025-12",
    "analysts-expansion-2025-12",
    "analysts-friction-warning-2025-12",
    "china-confirmation-2025-12",
    "chinese-experts-deterrence-2025-12",
    "chinese-experts-unified-resolve-2025-12",
    "chinese-officials-information-2025-12",
    "chinese-officials-stability-2025-12",
    "guo-annual-plan-2025-12",
    "guo-coordination-2025-12",
    "guo-japan-alarm-2025-12",
    "koizumi-regional-stability-2025-12",
    "koizumi-serious-concerns-2025-12",
    "tokyo-protest-2025-12",
]


def test_cq08_statements_with_article_and_quote(store: Store) -> None:
    expected = []
    for slug, quote in CNS_QUOTES:
        row = {"statement": iri("statement", slug), "article": CNS}
        if quote is not None:
            row["quote"] = quote
        expected.append(row)
    expected += [{"statement": iri("statement", slug), "article": TENTH} for slug in TENTH_STATEMENTS]
    assert answer(store, "cq08-statement-quotes.rq") == expected


def test_cq09_us_treaty_allies_in_the_quad(store: Store) -> None:
    # Japan and South Korea are "the two U.S. treaty allies"; of them only Japan is in the Quad.
    assert answer(store, "cq09-treaty-allies-in-quad.rq") == [
        {"state": iri("state", "japan"), "stateLabel": "Japan"},
    ]


def test_cq10_tenth_patrol_participants_and_claimed_plan(store: Store) -> None:
    # "China confirmed that bombers and fighter jets participated"; Guo: "the patrol
    # formed part of the annual plan between both militaries". No aircraft type is named.
    assert answer(store, "cq10-tenth-patrol.rq") == [
        {"relation": PK + "aircraftCategory", "item": iri("aircraft-category", "bomber")},
        {"relation": PK + "aircraftCategory", "item": iri("aircraft-category", "fighter-jet")},
        {"relation": PK + "claimsPartOf", "item": iri("plan", "china-russia-annual-military-plan")},
        {"relation": PK + "participant", "item": iri("state", "china")},
        {"relation": PK + "participant", "item": iri("state", "russia")},
    ]


def test_cq11_japan_and_south_korea_react_to_the_tenth_patrol(store: Store) -> None:
    japan = {"state": iri("state", "japan"), "stateLabel": "Japan"}
    stability = "Koizumi said the flights threatened regional stability and demanded continued monitoring by Japanese forces."
    protest = "Tokyo protested the flights immediately and warned that the operation increased regional military risks."
    assert answer(store, "cq11-tenth-patrol-reactions.rq") == [
        {**japan, "reaction": iri("statement", "koizumi-regional-stability-2025-12"), "stance": iri("stance", "concern"), "summary": stability},
        {**japan, "reaction": iri("statement", "koizumi-regional-stability-2025-12"), "stance": iri("stance", "criticism"), "summary": stability},
        {
            **japan,
            "reaction": iri("statement", "koizumi-serious-concerns-2025-12"),
            "stance": iri("stance", "concern"),
            "summary": "Japanese Defense Minister Shinjiro Koizumi voiced serious concerns in recent online meetings.",
        },
        {**japan, "reaction": iri("statement", "tokyo-protest-2025-12"), "stance": iri("stance", "protest"), "summary": protest},
        {**japan, "reaction": iri("statement", "tokyo-protest-2025-12"), "stance": iri("stance", "warning"), "summary": protest},
        {
            "state": iri("state", "south-korea"),
            "stateLabel": "South Korea",
            "reaction": iri("event", "south-korea-tracking-2025-12"),
            "stance": iri("stance", "restraint"),
            "summary": "South Korea tracked the aircraft but avoided strong public criticism.",
        },
    ]


def test_cq12_wikidata_items(store: Store) -> None:
    links = [
        ("state", "australia", "Australia", "Q408"),
        ("state", "china", "China", "Q148"),
        ("state", "india", "India", "Q668"),
        ("state", "japan", "Japan", "Q17"),
        ("person", "joe-biden", "Joe Biden", "Q6279"),
        ("org", "nato", "NATO", "Q7184"),
        ("state", "russia", "Russia", "Q159"),
        ("state", "south-korea", "South Korea", "Q884"),
        ("place", "tokyo", "Tokyo", "Q1490"),
        ("state", "ukraine", "Ukraine", "Q212"),
        ("org", "united-nations", "United Nations", "Q1065"),
        ("state", "united-states", "United States", "Q30"),
        ("person", "vladimir-putin", "Vladimir Putin", "Q7747"),
        ("person", "xi-jinping", "Xi Jinping", "Q15031"),
    ]
    assert answer(store, "cq12-wikidata-items.rq") == [
        {"entity": iri(kind, slug), "label": label, "item": WD + qid} for kind, slug, label, qid in links
    ]
