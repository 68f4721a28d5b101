"""Issue types: every kind of bad sample, each with a per-sample score (higher = worse), a flag
at a stated threshold and a one-line explanation — ``label``, ``duplicate`` (sets), ``outlier``
and ``corrupt`` built in, any :class:`IssueType` subclass as a plugin (``module:Class``).
Results go to issues.parquet (:mod:`ogad_core.pipeline.issue_step`). Torch-free.
"""

from ogad_core.issues.base import IssueContext, IssueType
from ogad_core.issues.check import check_issue_type

__all__ = ["IssueContext", "IssueType", "check_issue_type"]
