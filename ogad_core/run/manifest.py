"""The typed manifest of a run directory (``manifest.json``).

The pipeline's steps read and update a :class:`Manifest`; :class:`~ogad_core.run.rundir.RunDir`
loads and saves it. Keys this version does not know are kept as they are (``extra``), so an older
or newer ogad's additions survive a rewrite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1

#: the data kind of a run whose manifest names none (the first runs were all of images)
FIRST_DATA_KIND = "image"

#: the pipeline's steps, in the order ``ogad compute`` runs them
STEP_ORDER = ("data", "encode", "train", "predict", "gradients", "scores", "map", "issues")


@dataclass
class StepRecord:
    """One finished step: its input fingerprint, time and step-specific facts."""

    fingerprint: str
    seconds: float | None = None
    finished: str | None = None
    status: str = "done"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        core = {"status": self.status, "fingerprint": self.fingerprint}
        return {**core, "seconds": self.seconds, "finished": self.finished, **self.extra}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StepRecord:
        known = {"status", "fingerprint", "seconds", "finished"}
        return cls(
            fingerprint=str(d.get("fingerprint", "")),
            seconds=d.get("seconds"),
            finished=d.get("finished"),
            status=str(d.get("status", "")),
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass
class Manifest:
    """``manifest.json``: the config, what each step produced and under which fingerprint."""

    schema_version: int = SCHEMA_VERSION
    ogad_version: str = ""
    created: str = ""
    updated: str | None = None
    status: str = "incomplete"
    config: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    params: str | None = None
    dims: dict[str, Any] = field(default_factory=dict)
    detectors: list[str] = field(default_factory=list)
    scoring: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- steps ---------------------------------------------------------------------------
    def is_done(self, step: str, fingerprint: str | None = None) -> bool:
        """The step finished (under ``fingerprint``, when given)."""
        record = self.steps.get(step)
        if record is None or record.status != "done":
            return False
        return fingerprint is None or record.fingerprint == fingerprint

    def mark_done(self, step: str, record: StepRecord) -> None:
        """Record a finished step and its fingerprint."""
        self.steps[step] = record
        self.fingerprints[step] = record.fingerprint

    def step_fingerprint(self, step: str) -> str | None:
        record = self.steps.get(step)
        return record.fingerprint if record else None

    @property
    def n_samples(self) -> int:
        return int(self.data.get("n_samples", 0))

    @property
    def data_kind(self) -> str:
        """The run's data kind (``LoadedData.kind``)."""
        return data_kind(self.data)

    # ---- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name == "steps":
                value = {name: rec.to_json() for name, rec in self.steps.items()}
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        names = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: v for k, v in d.items() if k in names and v is not None}
        kw["steps"] = {k: StepRecord.from_json(v) for k, v in (d.get("steps") or {}).items()}
        kw["extra"] = {k: v for k, v in d.items() if k not in names}
        return cls(**kw)


def data_kind(data: Mapping[str, Any]) -> str:
    """The data kind a manifest's ``data`` section records (:data:`FIRST_DATA_KIND` when it
    names none)."""
    return str(data.get("kind", FIRST_DATA_KIND))
