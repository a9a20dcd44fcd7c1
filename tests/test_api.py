"""The package's public surface: explicit __all__, runnable docstring examples, settings."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import pkgutil
from types import ModuleType

import click
import pytest

import patrolkg
from patrolkg.settings import SETTINGS, Settings


def _modules() -> list[ModuleType]:
    found = [patrolkg]
    for info in pkgutil.walk_packages(patrolkg.__path__, prefix="patrolkg."):
        if info.name.endswith("__main__"):
            continue
        found.append(importlib.import_module(info.name))
    return found


MODULES = _modules()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names_defined_here(module: ModuleType) -> None:
    if not hasattr(module, "__all__"):
        pytest.fail(f"{module.__name__} has no __all__")
    # Route handlers and CLI commands are reached through ``router`` and ``cli``.
    handlers = {route.endpoint for route in getattr(getattr(module, "router", None), "routes", [])}
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == module.__name__
        and (callable(value) or isinstance(value, type))
        and value not in handlers
        and not isinstance(value, click.Command)
    }
    missing = defined - set(module.__all__)
    assert not missing, f"{module.__name__}: public but not in __all__: {sorted(missing)}"
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.__all__ names {name}, which does not exist"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


def test_every_setting_is_declared_once_with_the_dataclass_default() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert [s.name for s in SETTINGS] == list(fields)
    for setting in SETTINGS:
        assert fields[setting.name] == setting.default, setting.name
        assert setting.env == "PATROLKG_" + setting.name.upper()
        assert setting.help.endswith((".", ")")), setting.name
