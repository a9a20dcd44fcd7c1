"""Docs that cannot drift: the CLI reference is generated from --help, every setting is
in the README, and the README's commands exist.

Regenerate docs/cli.md with ``make docs`` (which runs this file as a script).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"


def render_cli_reference() -> str:
    from patrolkg.cli import cli

    parts = [
        "# patrolkg command-line reference\n",
        "Generated from `--help` by `make docs`; a test fails when it is out of date.\n",
    ]
    with click.Context(cli, info_name="patrolkg", terminal_width=100) as context:
        parts.append("```text\n" + cli.get_help(context) + "\n```\n")
        for name in cli.list_commands(context):
            command = cli.get_command(context, name)
            assert command is not None
            with click.Context(command, info_name=f"patrolkg {name}", parent=None, terminal_width=100) as sub:
                parts.append(f"## patrolkg {name}\n\n```text\n{command.get_help(sub)}\n```\n")
    return "\n".join(parts)


def test_cli_reference_is_up_to_date() -> None:
    assert CLI_DOC.read_text(encoding="utf-8") == render_cli_reference(), "docs/cli.md is stale: run `make docs`"


def test_every_setting_is_documented_in_the_readme() -> None:
    from patrolkg.settings import SETTINGS

    readme = README.read_text(encoding="utf-8")
    for setting in SETTINGS:
        row = next((line for line in readme.splitlines() if f"`{setting.env}`" in line and f"`{setting.flag}`" in line), None)
        assert row is not None, f"{setting.env} / {setting.flag} missing from the README's settings table"


def test_readme_quick_start_names_the_two_make_targets() -> None:
    readme = README.read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("serve", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


if __name__ == "__main__" and "--write" in sys.argv:
    CLI_DOC.write_text(render_cli_reference(), encoding="utf-8")
    print(f"wrote {CLI_DOC}")
