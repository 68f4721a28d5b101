"""Issue types: every kind of bad sample, each with a per-sample score (higher = worse), a flag
at a stated threshold and a one-line explanation — ``label``, ``duplicate`` (sets), ``outlier``
and ``corrupt`` built in, any :class:`IssueType` subclass as a plugin (``module:Class``).
Results go to issues.parquet (:mod:`ogad_core.pipeline.issue_step`). Torch-free.

``IssueType``, ``IssueContext`` and ``check_issue_type`` are loaded on first use (they need
scikit-learn; ``ogad_core.issues.queue`` does not).
"""

from __future__ import annotations

from typing import Any

__all__ = ["IssueContext", "IssueType", "check_issue_type"]


def __getattr__(name: str) -> Any:
    if name in ("IssueContext", "IssueType"):
        from ogad_core.issues import base

        return getattr(base, name)
    if name == "check_issue_type":
        from ogad_core.issues.check import check_issue_type

        return check_issue_type
    raise AttributeError(f"module 'ogad_core.issues' has no attribute {name!r}")
