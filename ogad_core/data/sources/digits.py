"""``digits``: scikit-learn's 1,797 8x8 digits (1,437 train / 360 test)."""

from __future__ import annotations

from ogad_core.data.loaders import LoadedData, load_digits_set
from ogad_core.data.sources import LoadOptions, NamedSet, register


class Digits(NamedSet):
    name = "digits"

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        return load_digits_set(options.run_dir)


register(Digits())
