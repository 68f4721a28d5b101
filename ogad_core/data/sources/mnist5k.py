"""``mnist5k``: 5,000 real MNIST digits shipped with ogad (4,000 train / 1,000 test)."""

from __future__ import annotations

from ogad_core.data.loaders import LoadedData, load_mnist5k
from ogad_core.data.sources import LoadOptions, NamedSet, register


class Mnist5k(NamedSet):
    name = "mnist5k"

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        return load_mnist5k(options.run_dir)


register(Mnist5k())
