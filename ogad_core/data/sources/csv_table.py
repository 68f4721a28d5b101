"""``csv:PATH``: columns ``image,label`` (paths relative to the CSV) or ``text,label``."""

from __future__ import annotations

from pathlib import Path

from ogad_core.data.loaders import LoadedData, load_csv
from ogad_core.data.sources import LoadOptions, PrefixSource, register


class CsvSource(PrefixSource):
    prefix, usage = "csv", "csv:PATH"

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        return load_csv(
            self.path(spec),
            options.image_size,
            options.allow_outside,
            max_pixels=options.max_pixels,
        )

    def data_roots(self, spec: str) -> list[Path]:
        """The CSV's folder (image paths are relative to it)."""
        return [self.path(spec).parent]


register(CsvSource())
