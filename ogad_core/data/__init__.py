"""Data: every spec (sample sets, ImageFolder, CSV, text) becomes a :class:`LoadedData`; label noise
is injected and recorded for evaluation. Torch-free."""

from ogad_core.data.loaders import (
    IMAGE_SUFFIXES,
    SAMPLE_SETS,
    LoadedData,
    SampleSet,
    labels_from_strings,
    load_csv,
    load_data,
    load_digits_set,
    load_imagefolder,
    load_mnist5k,
    load_moons,
    subsample,
    write_pngs,
)
from ogad_core.data.noise import flip_labels, noise_count, with_noise

__all__ = [
    "IMAGE_SUFFIXES",
    "SAMPLE_SETS",
    "LoadedData",
    "SampleSet",
    "flip_labels",
    "labels_from_strings",
    "load_csv",
    "load_data",
    "load_digits_set",
    "load_imagefolder",
    "load_mnist5k",
    "load_moons",
    "noise_count",
    "subsample",
    "with_noise",
    "write_pngs",
]
