"""Where the time goes: run a Python command under pyinstrument and rank functions.

``hotspots`` reads pyinstrument's JSON tree and gives, for each function, the time of
the calls to it (inclusive, counted once when it recurses) as a share of the whole
run, so that a finding reads "validation.validate: 84 % of the load, of which
pyshacl.validate 66 %".

    python bench/profiling.py prof.json            # rank a saved profile
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Hotspot", "profile_command", "hotspots", "render"]


@dataclass(frozen=True)
class Hotspot:
    """One function: its inclusive time and share of the profiled run."""

    function: str  # "module.function", e.g. "patrolkg/validation.py:validate"
    seconds: float
    share: float


def profile_command(command: Sequence[str], output: Path, *, timeout: float, cwd: Path | None = None) -> bool:
    """Run ``python -m <command...>`` under pyinstrument, writing its JSON to ``output``.

    :returns: False when pyinstrument is not installed or the run passed ``timeout``
        (pyinstrument then writes nothing useful).
    """
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        return False
    try:
        subprocess.run(
            [sys.executable, "-m", "pyinstrument", "-r", "json", "-o", str(output), *command],
            cwd=cwd, timeout=timeout, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return False
    return output.exists() and output.stat().st_size > 0


def _walk(frame: dict, stack: tuple[str, ...]) -> Iterator[tuple[str, float, bool]]:
    name = f"{frame.get('file_path_short', '?')}:{frame['function']}"
    yield name, frame["time"], name in stack
    for child in frame.get("children", []):
        yield from _walk(child, (*stack, name))


def hotspots(profile: Path, *, prefixes: Sequence[str] = ("patrolkg/",), limit: int = 12, include: Sequence[str] = ()) -> tuple[float, list[Hotspot]]:
    """The run's duration and its costliest functions.

    :param prefixes: keep functions whose file starts with one of these (patrolkg's
        own by default), plus any whose name contains one of ``include`` (library entry
        points such as ``pyshacl/entrypoints.py:validate``).
    """
    data = json.loads(profile.read_text())
    total = data["root_frame"]["time"] or 1e-9
    inclusive: dict[str, float] = {}
    for name, seconds, recursive in _walk(data["root_frame"], ()):
        if not recursive:
            inclusive[name] = inclusive.get(name, 0.0) + seconds
    kept = [
        Hotspot(name, seconds, seconds / total)
        for name, seconds in inclusive.items()
        if name.startswith(tuple(prefixes)) or any(part in name for part in include)
    ]
    kept.sort(key=lambda h: -h.seconds)
    return total, kept[:limit]


def render(total: float, spots: list[Hotspot]) -> str:
    lines = [f"profiled run: {total:.1f} s"]
    lines += [f"{h.share:6.1%}  {h.seconds:8.2f} s  {h.function}" for h in spots]
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1])
    print(render(*hotspots(path, include=("pyshacl/entrypoints.py:validate", "owlrl/", "rdflib/graph.py:parse"), limit=25)))
