"""The ``patrolkg`` command line: a thin layer over the library.

Exit codes (a contract, also in the README):

- 0: success (for ``validate``: the data conforms)
- 1: the data does not conform to the shapes or the ontology
- 2: bad usage or bad input (syntax errors, unknown formats, missing files)
- 3: the store or a setting is unusable (cannot open, read or write the store), or an
  allow-listed SERVICE endpoint failed
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import pyoxigraph as ox

from . import __version__, resources
from .errors import ConfigError, InputError, PatrolkgError, QueryTimeout, StoreError, ValidationFailed
from .execution import Limits, check_endpoint, check_query, service_errors
from .linking import KINDS
from .loading import load_bundle
from .query import is_graph_result, render_table, serialize_result
from .rdfio import format_for_path, parse_rdf
from .settings import SETTINGS, Setting, Settings
from .store import Store, default_store_path, open_configured_store, open_store, store_location

__all__ = ["main", "cli"]

EXIT_OK, EXIT_INVALID, EXIT_INPUT, EXIT_STORE = 0, 1, 2, 3

_T = TypeVar("_T")


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


#: The settings that name a remote store instead of --store; its credentials come
#: from the environment only (PATROLKG_STORE_USER, ..._PASSWORD, ..._TOKEN).
_REMOTE_STORE_SETTINGS = ("store_url", "store_update_url", "store_gsp_url", "store_union")


def _remote_store_options(command: click.Command) -> click.Command:
    """--store-url, --update-url, --gsp-url and --store-union, from SETTINGS."""
    for setting in reversed([s for s in SETTINGS if s.name in _REMOTE_STORE_SETTINGS]):
        shown = setting.default or "none"
        command = click.option(setting.flag, setting.name, default=None, metavar="VALUE", help=f"{setting.help} [env {setting.env}; default {shown}]")(command)
    return command


def _open(store_dir: Path | None, *, bulk_writes: bool = False, **settings: str | None) -> Store:
    """The remote store when --store-url or PATROLKG_STORE_URL is set, else the directory
    (``bulk_writes``: this command holds it alone; see :class:`OxigraphStore`)."""
    return open_configured_store(Settings.from_env(None, store=store_dir, **settings), bulk_writes=bulk_writes)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="patrolkg")
def cli() -> None:
    """patrolkg: the knowledge graph of the Russia–China joint bomber patrols.

    Exit codes: 0 success, 1 data does not conform, 2 bad usage or input,
    3 store or setting unusable.
    """


@cli.command()
@store_option
@_remote_store_options
@click.option("--source", help="Source to record for FILES (default: each file's name).")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(store_dir: Path | None, source: str | None, files: tuple[Path, ...], **remote: str | None) -> None:
    """Build or refresh the store from the bundled ontology and data, or add FILES.

    Without FILES: rebuilds the bundled graphs and the inferred graph; every other
    graph is left untouched. With FILES: each file goes through the same validated
    write path as a submission, into its own named graph; a file that does not conform
    is refused with its violations and nothing of it is stored. Either way a malformed
    or invalid file stops the load and the store keeps its previous content.
    """
    store = _open(store_dir, bulk_writes=True, **remote)
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


def _shown_default(setting: Setting) -> str:
    value = setting.default
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return "none" if value is None else str(value)


def _setting_option(name: str) -> Callable[[click.Command], click.Command]:
    """A flag for one setting of :data:`SETTINGS`, with its help, env and default."""
    setting = next(s for s in SETTINGS if s.name == name)
    return click.option(setting.flag, setting.name, default=None, metavar="VALUE", help=f"{setting.help} [env {setting.env}; default {_shown_default(setting)}]")


def _within(seconds: float, work: Callable[[], _T]) -> _T:
    """Run ``work`` in a thread and give up after ``seconds``: a SERVICE call that
    never answers cannot be interrupted inside the engine, so the command exits and
    leaves the thread behind instead of hanging."""
    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as error:  # re-raised in the calling thread
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="patrolkg-query", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise QueryTimeout(f"the query ran longer than {seconds:g}s and was stopped", setting="PATROLKG_QUERY_TIMEOUT", limit=seconds)
    ok, value = outcome[0]
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


@cli.command()
@store_option
@_remote_store_options
@click.option("--format", "fmt", type=click.Choice(_QUERY_FORMATS), help="Output format [default: table in a terminal, else json for SELECT/ASK and turtle for graphs].")
@_setting_option("service_allowlist")
@_setting_option("query_timeout")
@click.argument("query_or_file")
def query(
    store_dir: Path | None, fmt: str | None, query_or_file: str, service_allowlist: str | None, query_timeout: str | None, **remote: str | None
) -> None:
    """Run a SPARQL query: QUERY_OR_FILE is query text, a .rq file, '-' for stdin,
    or the name of a shipped query (see `patrolkg queries`).

    SERVICE reaches only the endpoints of the allow-list, as on the server, and the
    whole query (its SERVICE calls included) is stopped at the query timeout.
    """
    settings = Settings.from_env(None, service_allowlist=service_allowlist, query_timeout=query_timeout)
    text = _read_query(query_or_file)
    endpoints = check_query(text, Limits(timeout=settings.query_timeout, service_allowlist=settings.service_allowlist))
    store = _open(store_dir, query_timeout=query_timeout, **remote)
    terminal = sys.stdout.isatty()

    def run() -> bytes:
        # Results are read lazily and SERVICE is called while reading, so the whole
        # of it runs under the timeout.
        with service_errors(endpoints):
            result = store.query(text)
            chosen = fmt or ("table" if terminal and not is_graph_result(result) else ("turtle" if is_graph_result(result) else "json"))
            if chosen == "table":
                return (render_table(result) + "\n").encode()
            data, _ = serialize_result(result, chosen)
        return data if data.endswith(b"\n") else data + b"\n"

    sys.stdout.buffer.write(_within(settings.query_timeout, run))
    sys.stdout.buffer.flush()


@cli.command()
@store_option
@click.option("--kind", required=True, type=click.Choice(list(KINDS)), help="Which entities to link: " + "; ".join(f"{k.name}: {k.help}" for k in KINDS.values()) + ".")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the link set to this file [default: standard output].")
@click.option("--format", "fmt", type=click.Choice(["turtle", "json"]), default="turtle", show_default=True, help="A Turtle link set to review, or every candidate and its evidence as JSON.")
@click.option("--min-score", type=click.FloatRange(0, 100), default=50.0, show_default=True, help="Leave out candidates scoring less (0-100).")
@click.option("--candidates", "per_entity", type=click.IntRange(1, 20), default=3, show_default=True, help="Most candidates listed per entity.")
@click.option("--include-linked", is_flag=True, help="Also list the links patrolkg already holds.")
@_setting_option("service_allowlist")
@_setting_option("query_timeout")
@click.argument("source")
def link(
    store_dir: Path | None, kind: str, out: Path | None, fmt: str, min_score: float, per_entity: int,
    include_linked: bool, service_allowlist: str | None, query_timeout: str | None, source: str,
) -> None:
    """Propose owl:sameAs links from patrolkg's entities of one kind to SOURCE.

    SOURCE is an RDF file (matched in full: labels, aliases, types, similar names),
    or the URL of a SPARQL endpoint on the service allow-list (asked for the
    entities that bear one of the local names exactly, within the query timeout).
    The result is a Turtle link set to review: confident matches as statements,
    other candidates as "#? " lines, each with its score and evidence. Nothing is
    written to the store: load the reviewed file with `patrolkg load FILE` or send
    it to a server with `patrolkg submit FILE`, where the shapes check every link.
    """
    from .linking import fetch_source, link_set_turtle, local_names, local_records, proposals_json, propose_links, read_source_file, summary

    settings = Settings.from_env(None, service_allowlist=service_allowlist, query_timeout=query_timeout)
    chosen = KINDS[kind]
    remote = source.startswith(("http://", "https://"))
    limits = Limits(timeout=settings.query_timeout, service_allowlist=settings.service_allowlist)
    if remote:
        check_endpoint(source, limits)
    elif not Path(source).is_file():
        raise InputError(f"{source} is neither a file nor an http(s) URL", hint="give an RDF file or an allow-listed SPARQL endpoint")
    store = _open(store_dir)
    try:
        local = local_records(store, chosen, id_space=settings.base_iri + "id/")
        if not local:
            click.echo(f"the store holds no entity of kind {kind}: run `patrolkg load` first", err=True)
        external = fetch_source(source, local_names(local, store), chosen, limits, max_bytes=settings.max_body_bytes) if remote else read_source_file(Path(source))
        proposals = propose_links(local, external, chosen, min_score=min_score, per_entity=per_entity)
    finally:
        store.close()
    if fmt == "json":
        text = json.dumps(proposals_json(proposals), indent=2, ensure_ascii=False) + "\n"
    else:
        text = link_set_turtle(proposals, source=source, kind=chosen, include_linked=include_linked)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
    click.echo(summary(proposals, include_linked=include_linked) + (f" Written to {out}." if out else ""), err=True)


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
@_remote_store_options
def info(store_dir: Path | None, **remote: str | None) -> None:
    """What is in the store: its graphs and triple counts, and the versions."""
    store = _open(store_dir, **remote)
    click.echo(f"patrolkg {__version__} (pyoxigraph {ox.__version__ if hasattr(ox, '__version__') else '?'})")
    click.echo(f"store: {store_location(store)}")
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


@cli.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--no-seed", is_flag=True, help="Serve the store as it is, even empty; by default an empty store is loaded with the bundled data first.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@_setting_options
def serve(store_dir: Path | None, host: str, port: int, no_seed: bool, log_level: str, **overrides: str | None) -> None:
    """Serve the SPARQL endpoint, Linked Data pages and the query UI."""
    from .tokens import WriteTokens
    from .web import server
    from .web.app import create_app

    settings = Settings.from_env(None, store=store_dir or default_store_path(), **overrides)
    # Opened here, not in the app's start-up, so that an unusable store is one line
    # on stderr and exit code 3 rather than a traceback from the server.
    WriteTokens(settings.write_token, settings.write_tokens_file).entries()  # a bad token file: one line, exit 3
    store = open_configured_store(settings)
    try:
        app = create_app(settings, store=store, seed=not no_seed)
        click.echo(f"patrolkg {__version__} serving {settings.store_url or settings.store} on http://{host}:{port}/", err=True)
        server.run(app, host=host, port=port, client_timeout=settings.client_timeout, keep_alive=settings.keep_alive, log_level=log_level)
    finally:
        store.close()


from .token_cli import token  # noqa: E402  (registers on the group defined above)

cli.add_command(token)


def main() -> None:
    """Entry point of the ``patrolkg`` script."""
    cli(prog_name="patrolkg")
