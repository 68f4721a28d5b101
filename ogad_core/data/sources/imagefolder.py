"""``imagefolder:PATH``: one sub-folder of image files per class."""

from __future__ import annotations

from pathlib import Path

from ogad_core.data.loaders import LoadedData, load_imagefolder, split_folders
from ogad_core.data.sources import LoadOptions, PrefixSource, register


class ImageFolderSource(PrefixSource):
    prefix, usage = "imagefolder", "imagefolder:PATH"

    def load(self, spec: str, options: LoadOptions) -> LoadedData:
        return load_imagefolder(
            self.path(spec),
            options.image_size,
            options.allow_outside,
            max_pixels=options.max_pixels,
            skip=(options.run_dir,),  # a run directory inside the data is never read as data
        )

    def data_roots(self, spec: str) -> list[Path]:
        """The ImageFolder itself."""
        return [self.path(spec)]

    def held_out_spec(self, spec: str) -> str | None:
        """``imagefolder:PATH/test`` (or ``val``) when PATH holds ``train/`` and ``test/``."""
        splits = split_folders(self.path(spec).expanduser())
        return None if splits is None else f"{self.prefix}:{splits[1]}"


register(ImageFolderSource())
