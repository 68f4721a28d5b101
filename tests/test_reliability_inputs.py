"""Reliability, class 2 (issue 22): inputs are read as the user sees them — EXIF orientation,
16-bit and float images scaled (not clipped), ImageFolder walks that never loop, hang, skip a
folder they cannot read, drop image files without a word, or read a run directory as data."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ogad_core.data.images import decode_image, write_thumbnail
from ogad_core.data.loaders import load_data
from ogad_core.errors import DataError
from tests.reliability_helpers import error_lines, ogad

# ---- decoding ----------------------------------------------------------------------------------


def _ramp(height: int = 16, width: int = 16) -> np.ndarray:
    """(H, W) float64 in 0..1, brighter to the right."""
    return np.tile(np.linspace(0.0, 1.0, width), (height, 1))


def test_a_16_bit_png_is_scaled_like_its_8_bit_copy(tmp_path: Path) -> None:
    ramp = _ramp()
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray((ramp * 255).round().astype(np.uint8)).save(tmp_path / "flat.png")
    deep = decode_image(str(tmp_path / "deep.png"), 16, 1, 10**6)
    flat = decode_image(str(tmp_path / "flat.png"), 16, 1, 10**6)
    assert (deep >= 1.0).mean() == (flat >= 1.0).mean()  # clipped: 94% would be white
    np.testing.assert_allclose(deep, flat, atol=1.5 / 255)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_a_float_tiff_is_scaled_not_clipped(tmp_path: Path, scale: float) -> None:
    ramp = _ramp()
    Image.fromarray((ramp * scale).astype(np.float32), mode="F").save(tmp_path / "f.tif")
    got = decode_image(str(tmp_path / "f.tif"), 16, 1, 10**6)
    np.testing.assert_allclose(got[0], ramp, atol=1.5 / 255)


def _oriented_jpeg(path: Path) -> Path:
    """A 32 x 16 JPEG, left half black, right half white, EXIF orientation 6 (a viewer turns it
    90 degrees clockwise: 16 x 32, black on top)."""
    pixels = np.zeros((16, 32), dtype=np.uint8)
    pixels[:, 16:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).convert("RGB").save(path, quality=100, exif=exif)
    return path


def test_exif_orientation_is_applied_for_the_model_and_the_thumbnail(tmp_path: Path) -> None:
    path = _oriented_jpeg(tmp_path / "turned.jpg")
    got = decode_image(str(path), 16, 1, 10**6)[0]
    assert got[:6].mean() < 0.1 and got[10:].mean() > 0.9  # black on top, as shown
    write_thumbnail(str(path), tmp_path / "thumb.jpg", max_pixels=10**6)
    with Image.open(tmp_path / "thumb.jpg") as thumb:
        assert thumb.size[0] < thumb.size[1]  # portrait, as shown


# ---- ImageFolder walks ---------------------------------------------------------------------------


def _folder(root: Path, per_class: int = 4) -> Path:
    for c, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            value = 40 + 120 * c + i
            Image.new("L", (8, 8), value).save(root / cls / f"{i}.png")
    return root


def test_a_symlink_loop_is_named_not_walked(tmp_path: Path) -> None:
    root = _folder(tmp_path / "set")
    (root / "cats" / "loop").symlink_to(root / "cats", target_is_directory=True)
    with pytest.raises(DataError, match="symbolic-link loop: cats/loop"):
        load_data(f"imagefolder:{root}", run_dir=tmp_path / "run")


def test_a_fifo_or_device_named_png_is_refused_without_hanging(tmp_path: Path) -> None:
    root = _folder(tmp_path / "set")
    os.mkfifo(root / "cats" / "pipe.png")
    if os.geteuid() == 0:  # a second /dev/zero, named like an image
        os.mknod(root / "dogs" / "zero.png", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    try:
        done = ogad(
            "compute",
            "--data",
            f"imagefolder:{root}",
            "--run-dir",
            str(tmp_path / "run"),
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("compute hangs on a FIFO named *.png")
    assert done.returncode == 2, done.stderr
    assert len(error_lines(done.stderr)) == 1 and "not regular files" in done.stderr
    assert "cats/pipe.png (a FIFO)" in done.stderr
    assert os.geteuid() != 0 or "dogs/zero.png (a character device)" in done.stderr


def test_gif_files_in_an_imagefolder_are_named(tmp_path: Path) -> None:
    root = _folder(tmp_path / "set")
    Image.new("L", (8, 8), 9).save(root / "dogs" / "moving.gif")
    with pytest.raises(DataError, match=r"does not take \(\.gif\): dogs/moving\.gif"):
        load_data(f"imagefolder:{root}", run_dir=tmp_path / "run")


def _as_nobody(work) -> str:
    """Run ``work()`` in a forked child as uid/gid 65534 (no CAP_DAC_OVERRIDE); its result or
    its error as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            text = f"ok {work()}"
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            text = f"{type(err).__name__}: {err}"
        os.write(write, text.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        out = pipe.read()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_unreadable_folders_are_named(tmp_path: Path) -> None:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ogad_unreadable_"))  # tmp_path is root-only
    try:
        os.chmod(base, 0o755)
        root = _folder(base / "set")
        (root / "cats" / "more").mkdir()
        Image.new("L", (8, 8), 3).save(root / "cats" / "more" / "x.png")
        for folder in (root, *root.rglob("*")):
            os.chmod(folder, 0o755 if folder.is_dir() else 0o644)
        import pandas  # noqa: F401 - imported before the child drops its rights

        load_data(f"imagefolder:{root}", run_dir=base / "run")  # imports what the child needs
        os.chmod(root / "cats" / "more", 0o000)
        got = _as_nobody(lambda: load_data(f"imagefolder:{root}", run_dir=base / "run"))
        assert got.startswith("DataError") and "cannot read 1 folder(s): cats/more" in got, got
        os.chmod(root / "cats" / "more", 0o755)
        os.chmod(root / "dogs", 0o000)
        got = _as_nobody(lambda: load_data(f"imagefolder:{root}", run_dir=base / "run"))
        assert got.startswith("DataError") and "cannot read 1 folder(s): dogs" in got, got
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_a_nul_byte_in_a_csv_image_path_is_one_line(tmp_path: Path) -> None:
    Image.new("L", (8, 8), 1).save(tmp_path / "a.png")
    (tmp_path / "d.csv").write_text("image,label\na.png,x\na.png,y\nb\x00.png,x\n")
    done = ogad("compute", "--data", f"csv:{tmp_path / 'd.csv'}", "--run-dir", str(tmp_path / "r"))
    assert done.returncode == 2 and len(error_lines(done.stderr)) == 1, done.stderr
    assert "NUL byte" in done.stderr


@pytest.mark.slow
def test_a_run_directory_inside_the_imagefolder_is_never_data(tmp_path: Path) -> None:
    """The run directory inside the ImageFolder: the rerun reuses everything (no "data
    changed"), and the run's thumbnails never become a class."""
    import pandas as pd

    root = _folder(tmp_path / "set", per_class=6)
    args = ["compute", "--data", f"imagefolder:{root}", "--run-dir", str(root / "run")]
    args += ["--epochs", "1", "--image-size", "8", "--quiet", "--detector", "l2"]
    first = ogad(*args)
    assert first.returncode == 0, first.stderr
    again = ogad(*args)
    assert again.returncode == 0, again.stderr
    samples = pd.read_parquet(root / "run" / "samples.parquet")
    assert len(samples) == 12 and set(samples["label_name"]) == {"cats", "dogs"}


def test_damaged_sample_set_pngs_are_rewritten(tmp_path: Path) -> None:
    load_data("digits", run_dir=tmp_path)
    pngs = sorted((tmp_path / "data").rglob("*.png"))
    originals = {p: p.read_bytes() for p in pngs[:3]}
    pngs[0].write_bytes(originals[pngs[0]][:40])  # truncated
    pngs[1].write_bytes(b"garbage")
    Image.new("L", (8, 8), 255).save(pngs[2])  # a valid PNG with other pixels
    load_data("digits", run_dir=tmp_path)
    for path, data in originals.items():
        assert path.read_bytes() == data, path.name


def test_a_csv_spec_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "d.csv")
    with pytest.raises(DataError, match="is not a regular file"):
        load_data(f"csv:{tmp_path / 'd.csv'}", run_dir=tmp_path / "run")
