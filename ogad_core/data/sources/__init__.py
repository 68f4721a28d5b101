"""Data sources as objects: each spec form (``mnist5k``, ``imagefolder:PATH``, ...) is one
:class:`DataSource` in one module of this package, registered once; :func:`source_for` finds
the source of a spec and ``load_data`` asks it, with no branch on spec names anywhere else.

A new data source is one module plus one registration::

    from ogad_core.data.sources import LoadOptions, PrefixSource, register

    class NpzSource(PrefixSource):
        prefix, usage = "npz", "npz:PATH"

        def load(self, spec, options):
            ...  # -> LoadedData(kind="tabular" | "image" | "text", ...)

    register(NpzSource())

The built-in sources are registered when this package is imported (the imports at the end).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ogad_core.errors import ConfigError, DataError
from ogad_core.options import DEFAULT_MAX_PIXELS, REGISTERED_SPECS

if TYPE_CHECKING:
    from ogad_core.data.loaders import LoadedData
    from ogad_core.run.rundir import RunDir

__all__ = [
    "SOURCES",
    "DataSource",
    "LoadOptions",
    "NamedSet",
    "PrefixSource",
    "register",
    "run_data_roots",
    "source_for",
    "spec_data_roots",
    "spec_held_out",
    "unregister",
]


@dataclass(frozen=True)
class LoadOptions:
    """What every source may use while loading (the ``ogad compute`` options that apply)."""

    #: the run directory: sample sets write their images under ``run_dir/data``
    run_dir: Path
    #: side length user images are resized to
    image_size: int = 32
    #: keep a seeded subset of this many train samples
    limit: int | None = None
    seed: int = 0
    #: folders outside the data's own folder that image files may lie in
    allow_outside: Sequence[str | Path] = ()
    #: image files with more pixels (width x height) are refused
    max_pixels: int = DEFAULT_MAX_PIXELS


@runtime_checkable
class DataSource(Protocol):
    """One form of data spec: parses it and loads it into a ``LoadedData``.

    ``LoadedData.kind`` (``image``, ``text`` or ``tabular``) then decides the model inputs, the
    built-in model and recipe (:mod:`ogad_core.engine.kinds`) and what a card shows.
    """

    @property
    def name(self) -> str:
        """Unique name (the spec itself for a sample set, the prefix for a path spec)."""
        ...

    @property
    def usage(self) -> str:
        """How a spec names it, for help and errors (``mnist5k``, ``imagefolder:PATH``)."""
        ...

    @property
    def subsets_itself(self) -> bool:
        """The source applies ``limit`` itself (e.g. a stratified subset before its split)."""
        ...

    def matches(self, spec: str) -> bool:
        """Whether ``spec`` is this source's."""
        ...

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        """The spec's samples (no label noise)."""
        ...

    def data_roots(self, spec: str) -> list[Path]:
        """The folders the spec's image files may lie in (the dashboard serves only files
        there); none when the samples are no files of the user's."""
        ...


class NamedSet:
    """Base of a source named by one fixed spec (a shipped sample set)."""

    name: str = ""
    subsets_itself: bool = False

    @property
    def usage(self) -> str:
        return self.name

    def matches(self, spec: str) -> bool:
        return spec == self.name

    def data_roots(self, spec: str) -> list[Path]:
        """None: a sample set's images are written into the run's data/."""
        return []

    def held_out_spec(self, spec: str) -> str | None:
        """None: a sample set's test split is drawn from its own samples."""
        return None


class PrefixSource:
    """Base of a source named ``<prefix>:PATH``."""

    prefix: str = ""
    usage: str = ""
    subsets_itself: bool = False

    @property
    def name(self) -> str:
        return self.prefix

    def matches(self, spec: str) -> bool:
        return spec.startswith(self.prefix + ":")

    def path(self, spec: str) -> Path:
        """The PATH part of the spec."""
        return Path(spec.split(":", 1)[1])

    def data_roots(self, spec: str) -> list[Path]:
        """None unless the source says otherwise (its PATH holds no images of its own)."""
        return []

    def held_out_spec(self, spec: str) -> str | None:
        """None unless the source says otherwise (the spec carries no held-out split)."""
        return None


#: every registered source, in registration order (the first that matches a spec wins)
SOURCES: list[DataSource] = []


def register(source: DataSource) -> DataSource:
    """Add a source (once per name); returns it."""
    if not isinstance(source, DataSource):
        raise ConfigError(
            f"{source!r} is not a DataSource (name, usage, matches, load, data_roots)"
        )
    if any(s.name == source.name for s in SOURCES):
        raise ConfigError(f"a data source named {source.name!r} is registered already")
    SOURCES.append(source)
    REGISTERED_SPECS.append(source.matches)  # ComputeConfig's --data check accepts its specs
    return source


def unregister(name: str) -> None:
    """Remove the source called ``name`` (a plugin's tests clean up with it)."""
    for source in [s for s in SOURCES if s.name == name]:
        SOURCES.remove(source)
        REGISTERED_SPECS.remove(source.matches)


def source_for(spec: str) -> DataSource:
    """The registered source of ``spec``; DataError naming every known form when none."""
    for source in SOURCES:
        if source.matches(spec):
            return source
    usages = [s.usage for s in SOURCES]
    known = f"{', '.join(usages[:-1])} or {usages[-1]}" if len(usages) > 1 else usages[0]
    raise DataError(f"unknown data spec {spec!r}; use one of {known}")


def spec_data_roots(spec: str, allow_outside: object = None) -> list[Path]:
    """The folders a data spec's images may lie in, as its source names them, plus the
    ``allow_outside`` folders (a list or one ``os.pathsep``-separated string); absolute
    folders only, never a file system's root. An unknown spec has none of its own."""
    known = [s for s in SOURCES if s.matches(spec)]
    roots = known[0].data_roots(spec) if known else []
    if isinstance(allow_outside, str):
        allow_outside = [p for p in allow_outside.split(os.pathsep) if p]
    if isinstance(allow_outside, list | tuple):
        roots += [Path(str(p)).expanduser() for p in allow_outside]
    return [r for r in roots if r.is_absolute() and r != Path(r.anchor)]


def spec_held_out(spec: str) -> str | None:
    """The spec of the held-out split a data spec carries with it (an ImageFolder's ``test/``
    beside its ``train/``), which the ``leakage`` issue type compares the training data with
    when no ``--holdout`` is given; None when its source has none (``held_out_spec`` is
    optional for a plugin source)."""
    known = [s for s in SOURCES if s.matches(spec)]
    held_out = getattr(known[0], "held_out_spec", None) if known else None
    return held_out(spec) if held_out is not None else None


def check_spec_path(spec: str, flag: str) -> None:
    """DataError naming ``flag`` when ``spec`` is ``<prefix>:PATH`` of a registered source and
    PATH does not exist (``compute`` checks ``--holdout`` so before any work)."""
    known = [s for s in SOURCES if s.matches(spec)]
    if known and isinstance(known[0], PrefixSource):
        path = known[0].path(spec).expanduser()
        if not path.exists():
            raise DataError(f"{flag} {spec}: path not found: {path}")


def run_data_roots(rd: RunDir) -> list[Path]:
    """Folders from which a run's image refs may be served (``RunDir.resolve_ref``), resolved:
    the run's data/, the folders its data spec names (the ImageFolder's, the CSV's) and the
    ones the user allowed with ``--allow-outside``. A ``data_roots`` list in manifest.json is
    ignored (a hand-edited ``["/"]`` must not open the whole machine)."""
    roots = [rd.data_dir]
    if rd.has_manifest():
        manifest = rd.read_manifest()
        spec = str(manifest.get("data", {}).get("spec", ""))
        roots += spec_data_roots(spec, (manifest.get("config") or {}).get("allow_outside"))
    return [r.resolve() for r in roots]


# the built-in sources, each registered by its own module (this order is the help's order)
from ogad_core.data.sources import (  # noqa: E402, F401, I001
    mnist5k,
    digits,
    moons,
    rotten_tomatoes,
    imagefolder,
    csv_table,
)
