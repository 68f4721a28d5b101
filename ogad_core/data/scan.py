"""Listing an ImageFolder safely: classes and image files as torchvision's ImageFolder lists them,
with what a careless walk gets wrong found and named. Torch-free.

* a symbolic link back to a folder already on the walk (``a/loop -> .``) is a loop: the walk
  stops there and the folder is named, never listed again and again;
* a folder that cannot be read is named (never taken for a folder without images);
* files with an image suffix that ImageFolder does not take (``.gif``, ``.ico``, ...) are named,
  not dropped without a word;
* a run directory inside the data (the one being computed, or any folder holding an ogad run)
  is never read as data.

Non-regular files (FIFOs, sockets, devices named ``*.png``) are refused by
:func:`ogad_core.data.images.check_regular_files` before any file is opened.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ogad_core.errors import DataError
from ogad_core.run.rundir import looks_like_run_dir

#: image suffixes PIL reads that ImageFolder's list leaves out (named, never dropped silently)
OTHER_IMAGE_SUFFIXES = (
    ".gif",
    ".apng",
    ".ico",
    ".jp2",
    ".j2k",
    ".jpx",
    ".tga",
    ".psd",
    ".dds",
    ".icns",
    ".pcx",
    ".sgi",
    ".pbm",
    ".pnm",
    ".dib",
    ".jfif",
    ".avif",
    ".heic",
    ".heif",
    ".qoi",
    ".xbm",
)
#: how many paths one error line names
SHOWN = 3


@dataclass
class FolderListing:
    """An ImageFolder listing and what was found wrong on the way (see the module doc)."""

    classes: list[str] = field(default_factory=list)
    samples: list[tuple[str, int]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "path (reason)"
    loops: list[str] = field(default_factory=list)
    other_images: list[str] = field(default_factory=list)
    runs_skipped: list[str] = field(default_factory=list)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # links followed
    except OSError:
        return False


class _Walker:
    """Walks one class folder (links followed), each real folder at most once."""

    def __init__(self, listing: FolderListing, suffixes: tuple[str, ...], skip: set[Path]) -> None:
        self.listing, self.suffixes, self.skip = listing, suffixes, skip

    def skipped(self, path: str) -> bool:
        resolved = Path(path).resolve()
        if resolved in self.skip or looks_like_run_dir(resolved):
            self.listing.runs_skipped.append(path)
            return True
        return False

    def walk(self, top: str) -> list[tuple[str, list[str]]]:
        """(folder, sorted file names) of every folder under ``top``, in os.walk's path order."""
        found: list[tuple[str, list[str]]] = []
        self._visit(top, set(), found)
        return sorted(found)

    def _visit(self, folder: str, on_path: set[tuple[int, int]], found: list) -> None:
        try:
            info = os.stat(folder)
            key = (info.st_dev, info.st_ino)
            if key in on_path:
                self.listing.loops.append(folder)
                return
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            self.listing.unreadable.append(f"{folder} ({err.strerror})")
            return
        dirs = [e for e in entries if _is_dir(e)]
        files = [e.name for e in entries if not _is_dir(e)]
        found.append((folder, files))
        for d in dirs:
            if not self.skipped(d.path):
                self._visit(d.path, on_path | {key}, found)


def list_image_folder(
    root: Path, suffixes: tuple[str, ...], *, skip: Sequence[Path] = ()
) -> FolderListing:
    """Classes (sub-folders, links followed, sorted) and their image files (by suffix, lower
    case, at any depth, in os.walk's sorted order), as torchvision's ImageFolder lists them;
    folders in ``skip`` and run directories are left out, loops and unreadable folders noted."""
    listing = FolderListing()
    walker = _Walker(listing, suffixes, {Path(p).resolve() for p in skip})
    top = sorted(os.scandir(root), key=lambda e: e.name)
    listing.classes = [e.name for e in top if _is_dir(e) and not walker.skipped(e.path)]
    for index, name in enumerate(listing.classes):
        for folder, files in walker.walk(os.path.join(root, name)):
            for file in files:
                lower = file.lower()
                if lower.endswith(suffixes):
                    listing.samples.append((os.path.join(folder, file), index))
                elif lower.endswith(OTHER_IMAGE_SUFFIXES):
                    listing.other_images.append(os.path.join(folder, file))
    return listing


def _named(paths: list[str], root: Path) -> str:
    def rel(p: str) -> str:
        head = p.split(" (")[0]
        shown = os.path.relpath(head, root) if head.startswith(str(root)) else head
        return shown + p[len(head) :]

    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(rel(p) for p in paths[:SHOWN]) + more


def check_listing(listing: FolderListing, root: Path, where: str) -> None:
    """DataError, one line naming the folders, for a loop or an unreadable folder."""
    if listing.loops:
        raise DataError(
            f"{where}: symbolic-link loop: {_named(listing.loops, root)} lead(s) back to a folder "
            "already listed; remove the link(s)"
        )
    if listing.unreadable:
        raise DataError(
            f"{where}: cannot read {len(listing.unreadable)} folder(s): "
            f"{_named(listing.unreadable, root)}; make them readable or move them out"
        )


def check_suffixes(other_images: Sequence[str], root: Path, where: str) -> None:
    """DataError, one line naming the files, for image files an ImageFolder does not take."""
    if other_images:
        suffixes = sorted({Path(p).suffix.lower() for p in other_images})
        raise DataError(
            f"{where}: {len(other_images)} image file(s) with a suffix an ImageFolder "
            f"does not take ({', '.join(suffixes)}): {_named(list(other_images), root)}; "
            "convert them (e.g. to PNG) or list the images in a csv: spec, which reads them"
        )
