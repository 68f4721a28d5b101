"""``moons``: two half-moons, 250 train / 100 test, as in the paper's synthetic study."""

from __future__ import annotations

from ogad_core.data.loaders import LoadedData, load_moons
from ogad_core.data.sources import LoadOptions, NamedSet, register


class Moons(NamedSet):
    name = "moons"

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        return load_moons(seed=options.seed)


register(Moons())
