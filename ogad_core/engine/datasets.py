"""Batches for training, prediction, the encoder pass and gradients: one Dataset item is a batch.

- :class:`TensorBatches`: in-memory (N, ...) inputs sliced by batch (a contiguous run of rows is
  a view; no per-sample indexing, no per-sample collation).
- :class:`ImageBatches`: :class:`~ogad_core.data.images.ImageFiles` decoded lazily, one file at a
  time, in DataLoader worker processes: at most batch x (workers x prefetch + 1) decoded images
  exist at once, whatever N is.
- :class:`SampleBatches`: any map-style dataset of ``(input, label)`` pairs (the Python API),
  collated batch by batch.

:func:`batch_loader` runs any of them through a ``DataLoader`` (``batch_size=None``, a sampler of
row arrays, pinned memory on CUDA) and :func:`device_batches` moves each batch to the device,
copying the next one on a side CUDA stream while the current one computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch.utils.data._utils.collate import default_collate

from ogad_core._internal import last_line, worker_count
from ogad_core.data.images import ImageFiles
from ogad_core.errors import DataError, OgadError

Transform = Callable[[Any], torch.Tensor]


class BatchDataset(Dataset):
    """Base: ``dataset[rows]`` -> ``(x (B, ...), y (B,) int64)`` for an int array ``rows``."""

    #: decoding is CPU work that worker processes parallelise
    decodes_files = False

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_shape(self) -> tuple[int, ...]:
        """One input's shape (decodes sample 0 where needed)."""
        x, _ = self[np.array([0])]
        return tuple(x.shape[1:])

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, *one input's shape), as an in-memory array of the inputs would have."""
        return (len(self), *self.sample_shape())


def _as_index(rows: np.ndarray) -> slice | torch.Tensor:
    """A slice when ``rows`` is one contiguous ascending run (a view), else an index tensor."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and (np.diff(rows) == 1).all():
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return torch.from_numpy(rows)


class TensorBatches(BatchDataset):
    """In-memory inputs (N, ...) and labels (N,), sliced by batch."""

    def __init__(self, inputs: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray):
        self.inputs = torch.as_tensor(inputs)
        self.labels = torch.as_tensor(labels).long()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = _as_index(rows)
        return self.inputs[idx], self.labels[idx]

    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])


class ImageBatches(BatchDataset):
    """Image files decoded one at a time into a batch.

    Args:
        files: the files (decoded to (C, S, S) in [0, 1] when ``transform`` is None).
        labels: (N,) int labels.
        transform: PIL image -> (C', H', W') tensor (a pretrained encoder's or the user's
            preprocessing); the image is RGB (or L when every file is grayscale).
        draft: with a transform, decode JPEGs at the smallest scale >= this size.
    """

    decodes_files = True

    def __init__(
        self,
        files: ImageFiles,
        labels: torch.Tensor | np.ndarray,
        *,
        transform: Transform | None = None,
        draft: int | None = None,
    ) -> None:
        self.files = files
        self.labels = torch.as_tensor(labels).long()
        self.transform = transform
        self.draft = draft

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(rows, dtype=np.int64)
        if self.transform is None:
            x = torch.from_numpy(self.files.decode_rows(rows))
        else:
            x = torch.stack([self._transformed(int(i)) for i in rows])
        return x, self.labels[torch.from_numpy(rows)]

    def _transformed(self, i: int) -> torch.Tensor:
        img = self.files.open(i, draft=self.draft)
        transform = self.transform
        assert transform is not None
        try:
            out = transform(img)
        except Exception as err:  # the user's callable: any failure is reported the same way
            raise DataError(
                f"`transform` failed on {self.files.paths[i]}: {type(err).__name__}: "
                f"{last_line(str(err), 160)}"
            ) from None
        if not isinstance(out, torch.Tensor):
            raise DataError(f"`transform` returned {type(out).__name__}, not a torch.Tensor")
        return out.float()


class SampleBatches(BatchDataset):
    """A map-style dataset (or sequence) of ``(input, label)`` pairs, collated per batch."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.decodes_files = True  # unknown per-sample cost: workers may help

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = default_collate([self.dataset[int(i)] for i in rows])
        return x, torch.as_tensor(y).long()


class RowSubset(BatchDataset):
    """Rows ``rows`` (M,) of a batch dataset with labels ``labels`` (M,): nothing is decoded or
    copied until a batch is asked for (retraining on a subset of streamed files)."""

    def __init__(self, batches: BatchDataset, rows: np.ndarray, labels: Any) -> None:
        self.batches = batches
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = torch.as_tensor(np.asarray(labels)).long()
        self.decodes_files = batches.decodes_files
        if self.labels.shape != self.rows.shape:
            raise DataError(f"{len(self.rows)} rows but labels of shape {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(rows, dtype=np.int64)
        x, _ = self.batches[self.rows[rows]]
        return x, self.labels[torch.from_numpy(rows)]


def take_rows(inputs: Any, labels: Any, rows: np.ndarray) -> BatchDataset:
    """Rows ``rows`` (M,) of model inputs (a tensor or array, image files or a batch dataset)
    with ``labels`` (N,): tensors are indexed, files and streamed datasets stay on disk."""
    rows = np.asarray(rows, dtype=np.int64)
    y = np.asarray(labels)[rows]
    if isinstance(inputs, ImageFiles):
        return as_batches(inputs.subset(rows), y)
    if isinstance(inputs, BatchDataset):
        return RowSubset(inputs, rows, y)
    if isinstance(inputs, torch.Tensor | np.ndarray):
        return TensorBatches(torch.as_tensor(inputs)[torch.from_numpy(rows)], y)
    return RowSubset(as_batches(inputs), rows, y)


class Samples(Dataset):
    """One ``(input, label)`` pair per index from a :class:`BatchDataset` (for code that indexes
    samples one by one, such as ``torch.utils.data.Subset`` in the Ray engine's shards)."""

    def __init__(self, batches: BatchDataset) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batches[np.array([int(i)])]
        return x[0], y[0]


def as_batches(
    inputs: Any,
    labels: Any = None,
    *,
    transform: Transform | None = None,
    draft: int | None = None,
) -> BatchDataset:
    """The batch dataset for ``inputs``.

    Args:
        inputs: (N, ...) tensor or array (with ``labels``), :class:`ImageFiles` (with
            ``labels``), a ``TensorDataset`` of (inputs, labels), a :class:`BatchDataset`, or any
            map-style dataset of ``(input, label)`` pairs.
    """
    if isinstance(inputs, BatchDataset):
        return inputs
    if isinstance(inputs, ImageFiles):
        return ImageBatches(inputs, _labels(labels, len(inputs)), transform=transform, draft=draft)
    if isinstance(inputs, torch.Tensor | np.ndarray):
        return TensorBatches(inputs, _labels(labels, len(inputs)))
    if isinstance(inputs, TensorDataset) and len(inputs.tensors) == 2:
        return TensorBatches(*inputs.tensors)
    return SampleBatches(inputs)


def _labels(labels: Any, n: int) -> torch.Tensor:
    if labels is None:
        raise DataError("inputs without labels: pass labels, or a dataset of (input, label)")
    out = torch.as_tensor(np.asarray(labels)).long()
    if out.shape != (n,):
        raise DataError(f"{n} inputs but labels of shape {tuple(out.shape)}")
    return out


def first_inputs(inputs: Any, labels: Any = None, n: int = 2) -> torch.Tensor:
    """The first ``n`` inputs as one (n, ...) batch (decoded / transformed as in training)."""
    batches = as_batches(inputs, labels)
    x, _ = batches[np.arange(min(n, len(batches)))]
    return x


def row_batches(rows: np.ndarray | int, batch_size: int) -> list[np.ndarray]:
    """Split sample indices (or ``range(n)`` for an int) into consecutive batches."""
    rows = np.arange(rows) if isinstance(rows, int | np.integer) else np.asarray(rows)
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def batch_loader(
    batches: BatchDataset,
    row_groups: Sequence[np.ndarray],
    *,
    device: torch.device | str = "cpu",
    workers: int | None = None,
) -> DataLoader:
    """A DataLoader yielding ``batches[rows]`` for each array in ``row_groups``, in order.

    ``workers``: decoding processes (default :func:`worker_count` for files, none for tensors,
    which are sliced in place). Batches are pinned on CUDA so copies can overlap compute.
    """
    n_workers = 0
    if batches.decodes_files:
        n_workers = worker_count() if workers is None else max(0, int(workers))
    n_workers = min(n_workers, len(row_groups))
    resident = isinstance(batches, TensorBatches) and batches.inputs.device.type != "cpu"
    return DataLoader(
        batches,
        batch_size=None,
        sampler=list(row_groups),
        num_workers=n_workers,
        pin_memory=torch.device(device).type == "cuda" and not resident,
        prefetch_factor=2 if n_workers else None,
    )


def _clean(err: OgadError) -> OgadError:
    """A worker's OgadError comes back with the worker's traceback; keep its own message."""
    text = last_line(str(err), 400)
    prefix = f"{type(err).__module__}.{type(err).__name__}: "
    return type(err)(text.removeprefix(prefix))


def device_batches(
    loader: DataLoader, device: torch.device | str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches on ``device``; on CUDA the next batch is copied on a side stream."""
    dev = torch.device(device)
    it = iter(loader)
    try:
        if dev.type != "cuda":
            yield from it
            return
        stream = torch.cuda.Stream(dev)

        def start_copy(batch: tuple[torch.Tensor, torch.Tensor]):
            with torch.cuda.stream(stream):
                return tuple(t.to(dev, non_blocking=True) for t in batch)

        nxt = None
        for batch in it:
            pending = start_copy(batch)
            if nxt is not None:
                yield nxt
            torch.cuda.current_stream(dev).wait_stream(stream)
            for t in pending:
                t.record_stream(torch.cuda.current_stream(dev))
            nxt = pending
        if nxt is not None:
            yield nxt
    except OgadError as err:
        if "Original Traceback" in str(err) or "\n" in str(err):
            raise _clean(err) from None
        raise


def iterate(
    batches: BatchDataset,
    row_groups: Sequence[np.ndarray],
    *,
    device: torch.device | str = "cpu",
    workers: int | None = None,
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """``(rows, x, y)`` for each group of rows, x and y on ``device``, in order."""
    loader = batch_loader(batches, row_groups, device=device, workers=workers)
    for rows, (x, y) in zip(row_groups, device_batches(loader, device), strict=True):
        yield rows, x, y
