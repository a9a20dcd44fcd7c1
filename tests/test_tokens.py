"""Write tokens with expiry dates: a token file of hashes, read again when it changes.

An expired token is refused with RFC 6750's ``invalid_token``; a revoked one stops
working without a restart; a new one works at once; the file never holds a token.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import seeded
from patrolkg.errors import ConfigError
from patrolkg.settings import Settings
from patrolkg.store import Store, open_store
from patrolkg.tokens import TokenFile, WriteTokens, check_token, parse_token_file, token_entry
from patrolkg.web.app import create_app

NOW = datetime.now(timezone.utc)
ALICE, BOB, CAROL = "alice-" + "a" * 30, "bob-" + "b" * 30, "carol-" + "c" * 30
STATEMENT = b"""@prefix pk: <https://w3id.org/patrolkg/ontology#> .
<https://w3id.org/patrolkg/id/statement/token-%s> a pk:Statement ;
  <http://www.w3.org/2000/01/rdf-schema#label> "Token statement"@en ;
  pk:speaker <https://w3id.org/patrolkg/id/person/shinjiro-koizumi> ;
  pk:respondsTo <https://w3id.org/patrolkg/id/event/joint-patrol-10> ;
  pk:stance <https://w3id.org/patrolkg/id/stance/concern> ;
  pk:summary "Submitted by the token tests."@en ;
  <http://purl.org/dc/terms/source> "test_tokens" ."""


def _submit(client: TestClient, token: str, key: str) -> object:
    return client.post("/submissions", content=STATEMENT % key.encode(), headers={"Content-Type": "text/turtle", "Authorization": "Bearer " + token})


@pytest.fixture
def token_file(tmp_path: Path) -> TokenFile:
    tokens = TokenFile(tmp_path / "tokens")
    tokens.add(token_entry("alice", ALICE, NOW + timedelta(days=30)))
    tokens.add(token_entry("bob", BOB, NOW - timedelta(minutes=1)))
    return tokens


@pytest.fixture
def api(bundle_store: Store, token_file: TokenFile) -> Iterator[TestClient]:
    store = seeded(bundle_store, open_store(None))
    app = create_app(Settings.from_env({}, write_tokens_file=str(token_file.path)), store=store, seed=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_the_file_holds_hashes_and_expiry_dates_never_tokens(token_file: TokenFile) -> None:
    text = token_file.path.read_text()
    assert ALICE not in text and BOB not in text
    assert [(e.name, e.expires is not None) for e in token_file.entries()] == [("alice", True), ("bob", True)]
    assert token_file.path.stat().st_mode & 0o077 == 0, "only its owner may read the file"


def test_a_token_matches_its_holder_until_it_expires() -> None:
    entry = token_entry("alice", ALICE, NOW + timedelta(hours=1))
    assert check_token(ALICE, [entry]).holder == "alice"
    assert check_token(ALICE, [entry], now=NOW + timedelta(hours=2)).expired
    assert check_token(ALICE + "x", [entry]).holder is None
    assert not check_token(ALICE + "x", [entry]).expired
    # An expired and a valid token of the same holder: the valid one counts.
    assert check_token(ALICE, [token_entry("alice", ALICE, NOW - timedelta(days=1)), token_entry("alice", ALICE)]).holder == "alice"


def test_a_malformed_line_is_reported_with_its_file_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_token_file("# holders\nalice:" + "0" * 64 + ":\nbob:not-a-hash:\n", "tokens.txt")
    assert "tokens.txt, line 3" in caught.value.message
    with pytest.raises(ConfigError, match="line 1"):
        parse_token_file("carol:" + "0" * 64 + ":next tuesday\n", "tokens.txt")


def test_an_expired_token_is_refused_with_invalid_token(api: TestClient) -> None:
    response = _submit(api, BOB, "expired")
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "token_expired"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "expired" in response.headers["www-authenticate"]
    listed = api.get("/submissions").json()
    assert listed["total"] == 0


def test_a_valid_token_writes_and_names_its_holder(api: TestClient) -> None:
    response = _submit(api, ALICE, "valid")
    assert response.status_code == 201, response.text
    record = api.get(response.headers["location"], headers={"Accept": "application/json"}).json()
    assert record["submitter"] == "alice"


def test_revoking_and_adding_tokens_needs_no_restart(api: TestClient, token_file: TokenFile) -> None:
    assert _submit(api, ALICE, "before-revocation").status_code == 201
    assert token_file.remove("alice") == 1
    refused = _submit(api, ALICE, "after-revocation")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    token_file.add(token_entry("carol", CAROL))
    assert _submit(api, CAROL, "new-holder").status_code == 201


def test_a_token_file_that_went_missing_refuses_writes(api: TestClient, token_file: TokenFile) -> None:
    token_file.path.unlink()
    response = _submit(api, ALICE, "no-file")
    assert response.status_code == 503 and response.json()["error"]["code"] == "tokens_unavailable"
    assert str(token_file.path) not in response.text


def test_the_environment_tokens_and_the_file_work_together(token_file: TokenFile) -> None:
    tokens = WriteTokens((("ops", "o" * 32),), token_file.path)
    assert tokens.check("o" * 32).holder == "ops"
    assert tokens.check(ALICE).holder == "alice"
    assert not WriteTokens().configured


def test_patrolkg_token_new_prints_a_token_that_writes(bundle_store: Store, tmp_path: Path) -> None:
    path = tmp_path / "made" / "tokens"
    made = subprocess.run([sys.executable, "-m", "patrolkg", "token", "new", "dana", "--file", str(path), "--days", "1"], capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert len(secret) >= 32 and secret not in path.read_text()
    listed = subprocess.run([sys.executable, "-m", "patrolkg", "token", "list", "--file", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert listed.stdout.startswith("dana\texpires ")
    app = create_app(Settings.from_env({}, write_tokens_file=str(path)), store=seeded(bundle_store, open_store(None)), seed=False)
    with TestClient(app) as client:
        assert _submit(client, secret, "made").status_code == 201
    revoked = subprocess.run([sys.executable, "-m", "patrolkg", "token", "revoke", "dana", "--file", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert revoked.returncode == 0, revoked.stderr
    assert TokenFile(path).entries() == []


def test_serve_with_a_malformed_token_file_stops_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "tokens"
    bad.write_text("alice:short:\n")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "patrolkg", "serve", "--store", str(tmp_path / "store"), "--port", "0", "--write-tokens-file", str(bad)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stderr
    assert "line 1" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 120
