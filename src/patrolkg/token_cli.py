"""``patrolkg token``: make, list and revoke the write tokens of a token file."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from .cli import _Command
from .errors import ConfigError
from .tokens import MIN_TOKEN_LENGTH, TokenFile, new_token, token_entry

__all__ = ["token"]

_file_option = click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PATROLKG_WRITE_TOKENS_FILE",
    required=True,
    help="The token file [env PATROLKG_WRITE_TOKENS_FILE].",
)


class _TokenGroup(click.Group):
    command_class = _Command


@click.group(cls=_TokenGroup)
def token() -> None:
    """Write tokens with expiry dates, kept as hashes in a token file.

    The server reads the file again whenever it changes: a new token works and a
    revoked one stops working at once, without a restart.
    """


def _valid_name(name: str) -> str:
    if not name.strip() or ":" in name or "\n" in name:
        raise ConfigError(f"{name!r} cannot name a token holder", hint="use a name without ':' or line breaks")
    return name.strip()


@token.command("new")
@click.argument("name")
@_file_option
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True, help="Days until the token expires.")
@click.option("--never-expires", is_flag=True, help="A token without an expiry date.")
def new(name: str, path: Path, days: int, never_expires: bool) -> None:
    """Make a token for NAME, append its hash to the file and print the token.

    The token is printed once and not kept: give it to NAME, who sends it as
    ``Authorization: Bearer <token>``; NAME is recorded as the submitter.
    """
    name = _valid_name(name)
    expires = None if never_expires else (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0)
    secret = new_token()
    assert len(secret) >= MIN_TOKEN_LENGTH
    TokenFile(path).add(token_entry(name, secret, expires))
    click.echo(secret)
    click.echo(f"a token for {name}, " + ("never expiring" if expires is None else f"valid until {expires:%Y-%m-%d %H:%M} UTC") + f", was added to {path}", err=True)


@token.command("list")
@_file_option
def list_tokens(path: Path) -> None:
    """The holders of the file's tokens and when each expires (never the tokens)."""
    now = datetime.now(timezone.utc)
    for entry in TokenFile(path).entries():
        if entry.expires is None:
            state = "never expires"
        else:
            state = f"{'expired' if entry.expires <= now else 'expires'} {entry.expires:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{entry.name}\t{state}")


@token.command("revoke")
@click.argument("name")
@_file_option
def revoke(name: str, path: Path) -> None:
    """Delete every token of NAME from the file: they stop working at once."""
    if not os.path.exists(path):
        raise ConfigError(f"there is no token file at {path}")
    removed = TokenFile(path).remove(_valid_name(name))
    if not removed:
        raise ConfigError(f"the file holds no token of {name}", hint="`patrolkg token list` shows the holders")
    click.echo(f"revoked {removed} token(s) of {name}", err=True)
