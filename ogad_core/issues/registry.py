"""The issue-type registry, and plugins named ``module:Class`` (as ``--detector``)."""

from __future__ import annotations

import importlib
from typing import Any

from ogad_core.errors import ConfigError
from ogad_core.issues.base import IssueType
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.duplicate import DuplicateIssue
from ogad_core.issues.label import LabelIssue
from ogad_core.issues.leakage import LeakageIssue
from ogad_core.issues.outlier import OutlierIssue
from ogad_core.options import DEFAULT_ISSUE_TYPES

__all__ = ["DEFAULT_ISSUE_TYPES", "ISSUE_TYPES", "resolve_issue_type"]

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


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"issue type {path!r}: cannot import {module_name} ({err})", param="issue_types"
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
    return cls()
