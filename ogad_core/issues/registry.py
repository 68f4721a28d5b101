"""The issue-type registry, and plugins named ``module:Class`` (as ``--detector``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ogad_core._internal import import_user_module, one_line
from ogad_core.errors import ConfigError
from ogad_core.issues.base import IssueType
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.duplicate import DuplicateIssue
from ogad_core.issues.label import LabelIssue
from ogad_core.issues.leakage import LeakageIssue
from ogad_core.issues.outlier import OutlierIssue
from ogad_core.options import DEFAULT_ISSUE_TYPES

__all__ = ["DEFAULT_ISSUE_TYPES", "ISSUE_TYPES", "resolve_issue_type", "resolve_issue_types"]

#: built-in issue types by name, in the dashboard's order
ISSUE_TYPES: dict[str, type[IssueType]] = {
    "label": LabelIssue,
    "duplicate": DuplicateIssue,
    "outlier": OutlierIssue,
    "corrupt": CorruptIssue,
    "leakage": LeakageIssue,
}
assert DEFAULT_ISSUE_TYPES == tuple(ISSUE_TYPES), "options.DEFAULT_ISSUE_TYPES is the registry"


def resolve_issue_type(spec: str | type | IssueType) -> IssueType:
    """An issue-type instance from a registry name, ``module:Class`` / ``module.Class``, a
    class or an instance; ConfigError naming the problem otherwise."""
    if isinstance(spec, IssueType):
        return spec
    if isinstance(spec, type):
        return _instantiate(spec, spec.__name__)
    name = str(spec).strip()
    if name.lower() in ISSUE_TYPES:
        return ISSUE_TYPES[name.lower()]()
    if ":" not in name and "." not in name:
        raise ConfigError(
            f"unknown issue type {name!r}; known: {', '.join(ISSUE_TYPES)}, or module:Class",
            param="issue_types",
        )
    return _instantiate(_import(name), name)


def resolve_issue_types(specs: Sequence[str | type | IssueType]) -> list[IssueType]:
    """Each spec resolved (:func:`resolve_issue_type`); ConfigError when two name the same
    type (``label,label``, or a plugin whose ``name`` is a built-in's): issues.parquet holds
    one set of rows per name."""
    types = [resolve_issue_type(spec) for spec in specs]
    names = [t.name for t in types]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"issue type {twice[0]!r} is listed twice ({', '.join(map(str, specs))}); "
            "name each type once (a plugin's `name` must differ from the built-in ones)",
            param="issue_types",
        )
    return types


def _import(path: str) -> Any:
    """The class ``module:Class`` names, its module imported as the user's code (a failure in
    it is named by file:line); the current folder is searched, as for ``--model``."""
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"issue type {path!r}: give module:Class", param="issue_types")
    try:
        module = import_user_module(module_name)
    except (Exception, SystemExit) as err:  # a missing module, or one that fails at import
        raise ConfigError(
            f"issue type {path!r}: cannot import {module_name} ({one_line(err)})",
            param="issue_types",
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"issue type {path!r}: {module_name} has no {attr}", param="issue_types"
        ) from None


def _instantiate(cls: Any, spec: str) -> IssueType:
    if not (isinstance(cls, type) and issubclass(cls, IssueType)):
        raise ConfigError(
            f"issue type {spec!r} is not a subclass of ogad_core.issues.IssueType",
            param="issue_types",
        )
    if not cls.name:
        raise ConfigError(f"issue type {spec!r} has no `name`", param="issue_types")
    built_in = ISSUE_TYPES.get(cls.name)
    if built_in is not None and not issubclass(cls, built_in):
        raise ConfigError(
            f"issue type {spec!r} is named {cls.name!r}, a built-in type's name; give it "
            "another `name` (or subclass the built-in to change it)",
            param="issue_types",
        )
    return cls()
