"""The ``patrolkg`` command line: a thin layer over the library.

Exit codes (a contract, also in the README):

- 0: success (for ``validate``: the data conforms)
- 1: the data does not conform to the shapes or the ontology
- 2: bad usage or bad input (syntax errors, unknown formats, missing files)
- 3: the store or a setting is unusable (cannot open, read or write the store)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import pyoxigraph as ox

from . import __version__, resources
from .errors import ConfigError, InputError, PatrolkgError, StoreError, ValidationFailed
from .loading import load_bundle
from .query import is_graph_result, render_table, serialize_result
from .rdfio import format_for_path, parse_rdf
from .settings import SETTINGS, Setting, Settings
from .store import Store, default_store_path, open_store

__all__ = ["main", "cli"]

EXIT_OK, EXIT_INVALID, EXIT_INPUT, EXIT_STORE = 0, 1, 2, 3


def _fail(error: PatrolkgError) -> None:
    """Print one clear line (plus violations, if any) and exit with the documented code."""
    click.echo(f"error: {error}", err=True)
    if isinstance(error, ValidationFailed):
        click.echo(error.report.text, err=True)
        sys.exit(EXIT_INVALID)
    if isinstance(error, InputError):
        sys.exit(EXIT_INPUT)
    if isinstance(error, (StoreError, ConfigError)):
        sys.exit(EXIT_STORE)
    sys.exit(EXIT_INPUT)


class _Command(click.Command):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PatrolkgError as error:
            _fail(error)


class _Group(click.Group):
    command_class = _Command


store_option = click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PATROLKG_STORE",
    help="Directory of the persistent store [env PATROLKG_STORE; default $XDG_DATA_HOME/patrolkg/store].",
)


def _open(store_dir: Path | None) -> Store:
    return open_store(store_dir or default_store_path())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="patrolkg")
def cli() -> None:
    """patrolkg: the knowledge graph of the Russia–China joint bomber patrols.

    Exit codes: 0 success, 1 data does not conform, 2 bad usage or input,
    3 store or setting unusable.
    """


@cli.command()
@store_option
@click.option("--source", help="Source to record for FILES (default: each file's name).")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(store_dir: Path | None, source: str | None, files: tuple[Path, ...]) -> None:
    """Build or refresh the store from the bundled ontology and data, or add FILES.

    Without FILES: rebuilds the bundled graphs and the inferred graph; every other
    graph is left untouched. With FILES: each file goes through the same validated
    write path as a submission, into its own named graph; a file that does not conform
    is refused with its violations and nothing of it is stored. Either way a malformed
    or invalid file stops the load and the store keeps its previous content.
    """
    store = _open(store_dir)
    try:
        if files:
            _load_files(store, files, source)
        else:
            _load_bundle(store)
    finally:
        store.close()


def _load_bundle(store: Store) -> None:
    steps = 4 + len(resources.bundle())
    with click.progressbar(length=steps, label="loading", file=sys.stderr, show_pos=True) as bar:
        report = load_bundle(store, progress=lambda _step: bar.update(1))
        bar.update(steps)
    for graph, count in report.graphs.items():
        click.echo(f"{count:>8}  {graph}")
    click.echo(f"{report.inferred:>8}  inferred")
    click.echo(f"loaded in {report.seconds:.2f}s")


def _load_files(store: Store, files: tuple[Path, ...], source: str | None) -> None:
    from .submissions import Submissions, parse_submission
    from .writes import Writer

    submissions = Submissions(store, Writer(store))
    submitter = os.environ.get("USER") or "cli"
    for path in files:
        media_type = format_for_path(path).media_type
        triples = parse_submission(path.read_bytes(), media_type, source=str(path))
        record, outcome = submissions.submit(triples, submitter=submitter, source=source or path.name)
        click.echo(f"{outcome.added:>8}  {record.graph}  ({path}, submission {record.id})")


_QUERY_FORMATS = ["table", "json", "xml", "csv", "tsv", "turtle", "ntriples", "jsonld", "rdfxml"]


def _read_query(query_or_file: str) -> str:
    if query_or_file == "-":
        return sys.stdin.read()
    path = Path(query_or_file)
    if path.suffix in (".rq", ".sparql") or (len(query_or_file) < 256 and path.is_file()):
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read the query file {query_or_file}: {exc.strerror}") from None
    shipped = {q.id: q for q in resources.named_queries()}
    if query_or_file in shipped:
        return shipped[query_or_file].text
    return query_or_file


@cli.command()
@store_option
@click.option("--format", "fmt", type=click.Choice(_QUERY_FORMATS), help="Output format [default: table in a terminal, else json for SELECT/ASK and turtle for graphs].")
@click.argument("query_or_file")
def query(store_dir: Path | None, fmt: str | None, query_or_file: str) -> None:
    """Run a SPARQL query: QUERY_OR_FILE is query text, a .rq file, '-' for stdin,
    or the name of a shipped query (see `patrolkg queries`)."""
    text = _read_query(query_or_file)
    store = _open(store_dir)
    result = store.query(text)
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() and not is_graph_result(result) else ("turtle" if is_graph_result(result) else "json")
    if fmt == "table":
        click.echo(render_table(result))
        return
    data, _ = serialize_result(result, fmt)
    sys.stdout.buffer.write(data)
    if not data.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")


@cli.command()
def queries() -> None:
    """List the shipped example queries (the competency questions)."""
    for item in resources.named_queries():
        click.echo(f"{item.id:<28} {item.title}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "turtle"]), default="text", show_default=True, help="How to print the report.")
@click.option("--store", "store_dir", type=click.Path(file_okay=False, path_type=Path), help="Validate in the context of this store's facts (as a submission would be).")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(fmt: str, store_dir: Path | None, files: tuple[Path, ...]) -> None:
    """SHACL-validate data files (together) against the shapes and the ontology.

    With --store, the files are checked as a submission to that store would be: with
    the facts they refer to. Exit 0 when they conform, 1 when they do not, 2 when a
    file cannot be read.
    """
    from .errors import ValidationFailed as Failed
    from .writes import Change, Writer, skolemize

    triples = []
    for path in files:
        quads = parse_rdf(path.read_bytes(), format_for_path(path), source=str(path), base_iri=path.resolve().as_uri())
        triples += [q.triple for q in quads]
    store = open_store(store_dir) if store_dir else open_store(None)
    try:
        report = Writer(store).write(Change().adding(None, skolemize(triples)), dry_run=True).report
    except Failed as failure:
        report = failure.report
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    elif fmt == "turtle":
        click.echo(report.rdf().serialize(format="turtle"))
    else:
        click.echo(report.text)
    sys.exit(EXIT_OK if report.conforms else EXIT_INVALID)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, envvar="PATROLKG_URL", help="Base URL of a running patrolkg server [env PATROLKG_URL].")
@click.option("--token", envvar="PATROLKG_TOKEN", help="Write token [env PATROLKG_TOKEN].")
@click.option("--source", help="Where the facts come from: an article URL or a citation.")
@click.option("--comment", help="A note on the submission.")
@click.option("--dry-run", is_flag=True, help="Validate on the server, store nothing.")
def submit(file: Path, url: str, token: str | None, source: str | None, comment: str | None, dry_run: bool) -> None:
    """Submit FILE to a running server and print its verdict readably.

    Exit 0 accepted (or conforms, with --dry-run), 1 rejected with violations,
    2 refused for another reason (bad input, auth), 3 server unreachable or failing.
    """
    import httpx

    media_type = format_for_path(file).media_type
    headers = {"Content-Type": media_type, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    params = {k: v for k, v in {"source": source, "comment": comment, "dry_run": "true" if dry_run else None}.items() if v}
    try:
        response = httpx.post(url.rstrip("/") + "/submissions", content=file.read_bytes(), headers=headers, params=params, timeout=120)
    except httpx.HTTPError as exc:
        click.echo(f"error: cannot reach {url}: {exc}", err=True)
        sys.exit(EXIT_STORE)
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code == 201:
        click.echo(f"accepted: {body['triples']} triples as submission {body['id']} in <{body['graph']}>")
        click.echo(f"record: {url.rstrip('/')}{response.headers.get('location', '')}")
        sys.exit(EXIT_OK)
    if response.status_code == 200 and dry_run:
        click.echo(("conforms" if body.get("conforms") else "does not conform") + " (dry run: nothing stored)")
        for violation in body.get("violations", []):
            click.echo("  " + _describe(violation))
        sys.exit(EXIT_OK if body.get("conforms") else EXIT_INVALID)
    error = body.get("error", {})
    if response.status_code == 422:
        violations = error.get("report", {}).get("violations", [])
        click.echo(f"rejected: {len(violations)} violation(s); nothing was stored", err=True)
        for violation in violations:
            click.echo("  " + _describe(violation), err=True)
        sys.exit(EXIT_INVALID)
    message = error.get("message") or response.text[:500]
    click.echo(f"error: {response.status_code}: {message}" + (f" ({error['hint']})" if error.get("hint") else ""), err=True)
    sys.exit(EXIT_INPUT if response.status_code < 500 else EXIT_STORE)


def _describe(violation: dict[str, str | None]) -> str:
    where = (violation.get("focus_node") or "") + (f" {violation['path']}" if violation.get("path") else "")
    shape = violation.get("node_shape") or violation.get("constraint") or ""
    return f"{where}: {violation.get('message')}" + (f" [{shape}]" if shape else "")


@cli.command()
@store_option
def info(store_dir: Path | None) -> None:
    """What is in the store: its graphs and triple counts, and the versions."""
    store = _open(store_dir)
    click.echo(f"patrolkg {__version__} (pyoxigraph {ox.__version__ if hasattr(ox, '__version__') else '?'})")
    click.echo(f"store: {getattr(store, 'path', None) or 'in memory'}")
    names = store.graph_names()
    if not names:
        click.echo("the store is empty: run `patrolkg load`")
        return
    for name in names:
        click.echo(f"{store.triple_count(name):>8}  {name}")
    click.echo(f"{store.triple_count():>8}  total quads")


def _setting_options(command: click.Command) -> click.Command:
    """Add one flag per setting (except --store, declared above), from SETTINGS."""
    for setting in reversed(SETTINGS):
        if setting.name == "store":
            continue
        command = click.option(
            setting.flag,
            setting.name,
            default=None,
            metavar="VALUE",
            help=f"{setting.help} [env {setting.env}; default {_shown_default(setting)}]",
        )(command)
    return command


def _shown_default(setting: Setting) -> str:
    value = setting.default
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return "none" if value is None else str(value)


@cli.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--no-seed", is_flag=True, help="Serve the store as it is, even empty; by default an empty store is loaded with the bundled data first.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@_setting_options
def serve(store_dir: Path | None, host: str, port: int, no_seed: bool, log_level: str, **overrides: str | None) -> None:
    """Serve the SPARQL endpoint, Linked Data pages and the query UI."""
    import uvicorn

    from .web.app import create_app

    settings = Settings.from_env(None, store=store_dir or default_store_path(), **overrides)
    app = create_app(settings, seed=not no_seed)
    click.echo(f"patrolkg {__version__} serving {settings.store} on http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


def main() -> None:
    """Entry point of the ``patrolkg`` script."""
    cli(prog_name="patrolkg")
