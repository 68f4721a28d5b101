"""``rotten-tomatoes``: real review snippets, fresh vs rotten (the full corpus, or the shipped
sample offline; :mod:`ogad_core.data.rotten_tomatoes`)."""

from __future__ import annotations

from ogad_core.data.loaders import LoadedData
from ogad_core.data.sources import LoadOptions, NamedSet, register


class RottenTomatoes(NamedSet):
    name = "rotten-tomatoes"
    subsets_itself = True  # stratified, before its test split

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        from ogad_core.data.rotten_tomatoes import load_rotten_tomatoes

        return load_rotten_tomatoes(limit=options.limit, seed=options.seed)


register(RottenTomatoes())
