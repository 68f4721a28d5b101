"""User images: header scan, the pixel limit, lazy decoding with bounded memory, fingerprints,
thumbnails, pretrained encoders (random-init weights saved to a file), transforms."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from ogad_core.data import load_data
from ogad_core.data.images import scan_images, write_thumbnails
from ogad_core.engine import image_encoder
from ogad_core.engine.datasets import ImageBatches, as_batches, iterate, row_batches
from ogad_core.engine.train import predict
from ogad_core.errors import ConfigError, DataError, ModelError


def _write_images(folder: Path, n: int, size: int = 24, classes: int = 2) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sub = folder / f"class_{i % classes}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    _write_images(root, 12, size=40, classes=3)
    return root


@pytest.fixture(scope="module")
def few(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small images: the encoder runs at 224 px whatever the file size, so keep N low."""
    root = tmp_path_factory.mktemp("few")
    _write_images(root, 4, size=40, classes=2)
    return root


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from torchvision import models

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18_random.pth"
    torch.save(models.resnet18(weights=None).state_dict(), path)
    return path


def test_folder_is_scanned_not_decoded_and_decodes_per_file(folder: Path) -> None:
    from PIL import Image

    data = load_data(f"imagefolder:{folder}", run_dir=folder, image_size=16)
    files = data.train.inputs
    assert files.shape == (12, 3, 16, 16) and data.label_names == ["class_0", "class_1", "class_2"]
    one = files.decode(0)
    with Image.open(files.paths[0]) as img:
        expected = np.asarray(img.convert("RGB").resize((16, 16), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(one, expected.transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert files[2:4].paths == files.paths[2:4]


def test_pixel_limit_names_the_file_and_the_flag(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "big"
    _write_images(root, 2, size=20)
    huge = root / "class_0" / "huge.png"
    Image.new("1", (20_000, 20_000)).save(huge)  # 400 MP: PIL's DecompressionBombError
    with pytest.raises(DataError) as err:
        load_data(f"imagefolder:{root}", run_dir=tmp_path)
    message = str(err.value)
    assert "huge.png" in message and "`max_pixels`" in message and "\n" not in message
    raised = load_data(f"imagefolder:{root}", run_dir=tmp_path, max_pixels=400_000_000)
    assert len(raised.train) == 3  # the header passes: nothing was decoded
    with pytest.raises(DataError, match="max_pixels"):
        load_data(f"imagefolder:{root}", run_dir=tmp_path, max_pixels=100)


def test_cli_errors_are_one_line_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from ogad_core.cli import main

    root = tmp_path / "cli"
    _write_images(root, 4, size=20)
    big = root / "class_1" / "big.png"
    Image.new("L", (300, 300)).save(big)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    base = ["compute", "--data", f"imagefolder:{root}", "--quiet"]
    cases = [
        (["--run-dir", str(tmp_path / "a"), "--max-pixels", "50000"], ["big.png", "--max-pixels"]),
        (["--run-dir", str(tmp_path / "b"), "--encoder", "torchvision:resnet50"], ["--weights"]),
        (["--run-dir", str(tmp_path / "c"), "--transform", "x:y"], ["--transform", "--model"]),
    ]
    for extra, words in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ogad: error: ") and "\n" not in err
        assert all(w in err for w in words), err


def test_fingerprint_follows_size_and_mtime(tmp_path: Path) -> None:
    root = tmp_path / "fp"
    paths = _write_images(root, 4)
    first = load_data(f"imagefolder:{root}", run_dir=tmp_path).fingerprint()
    assert load_data(f"imagefolder:{root}", run_dir=tmp_path).fingerprint() == first
    st = paths[1].stat()
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_data(f"imagefolder:{root}", run_dir=tmp_path).fingerprint() != first


def test_streaming_memory_is_bounded_by_the_batch(tmp_path: Path) -> None:
    """2,000 images decoded at 64 px would take 98 MB at once; a streamed pass holds a batch."""
    root = tmp_path / "many"
    _write_images(root, 2000, size=16, classes=4)
    data = load_data(f"imagefolder:{root}", run_dir=tmp_path, image_size=64)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64 * 64, 4))
    full_bytes = 2000 * 3 * 64 * 64 * 4
    tracemalloc.start()
    pred, *_ = predict(
        model, data.train.inputs, data.train.labels, batch_size=32, device="cpu", workers=0
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert pred.shape == (2000,)
    assert peak < full_bytes / 10, f"peak {peak / 2**20:.1f} MiB"


def test_worker_errors_come_back_as_one_line(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    paths = _write_images(root, 6)
    files = scan_images(paths, 8, "test")
    paths[3].unlink()  # gone after the scan (an undecodable file decodes as blank instead)
    batches = as_batches(files, np.zeros(6, dtype=np.int64))
    with pytest.raises(DataError) as err:
        for _ in iterate(batches, row_batches(6, 2), workers=2):
            pass
    assert str(paths[3]) in str(err.value) and "\n" not in str(err.value)


def test_thumbnails_are_small_and_written_once(folder: Path, tmp_path: Path) -> None:
    from PIL import Image

    from dashboard.run_view import load_card_image
    from ogad_core.run.rundir import RunDir

    files = load_data(f"imagefolder:{folder}", run_dir=folder).train.inputs
    run = RunDir(tmp_path / "run")
    assert write_thumbnails(files, run.thumbnail_path, size=24) == 12
    assert write_thumbnails(files, run.thumbnail_path, size=24) == 0
    thumb = run.thumbnail_path(files.paths[0])
    with Image.open(thumb) as img:
        assert max(img.size) <= 24
    # the dashboard shows the thumbnail (the original lies outside this run's data folders)
    picture, problem = load_card_image(run, files.paths[0], size=48)
    assert problem is None and max(picture.size) == 48


# ---- pretrained encoders ------------------------------------------------------------------


def test_encoder_features_are_cached_and_resume(
    few: Path, resnet18_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = load_data(f"imagefolder:{few}", run_dir=few).train.inputs
    kw = dict(weights=resnet18_weights, batch_size=2, workers=0, progress=False)
    plain = image_encoder.encode_images(files, "torchvision:resnet18", **kw)
    assert plain.shape == (4, 512) and np.isfinite(plain).all()
    cache = tmp_path / "emb"
    cached = image_encoder.encode_images(files, "torchvision:resnet18", cache_dir=cache, **kw)
    np.testing.assert_allclose(cached, plain, rtol=1e-5, atol=1e-6)
    # an interrupted pass: half the rows not done -> only those are computed again
    (done_path,) = cache.glob("*.done.npy")
    done = np.load(done_path)
    done[2:] = False
    np.save(done_path, done)
    seen: list[int] = []
    real_iterate = image_encoder.iterate

    def counting(batches, groups, **k):
        for rows, x, y in real_iterate(batches, groups, **k):
            seen.extend(rows.tolist())
            yield rows, x, y

    monkeypatch.setattr(image_encoder, "iterate", counting)
    resumed = image_encoder.encode_images(files, "torchvision:resnet18", cache_dir=cache, **kw)
    assert seen == [2, 3]
    np.testing.assert_allclose(resumed, plain, rtol=1e-5, atol=1e-6)

    def fail(*_a, **_k):
        raise AssertionError("the encoder was loaded despite a complete cache")

    monkeypatch.setattr(image_encoder, "load_backbone", fail)
    again = image_encoder.encode_images(files, "torchvision:resnet18", cache_dir=cache, **kw)
    np.testing.assert_array_equal(again, resumed)


def test_weights_errors(
    resnet18_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    spec = image_encoder.parse_encoder("torchvision:resnet50")
    with pytest.raises(ModelError) as err:
        image_encoder.weights_file(spec, None)
    where = tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    assert str(where) in str(err.value) and "`weights`" in str(err.value)
    with pytest.raises(ModelError, match="file not found"):
        image_encoder.weights_file(spec, tmp_path / "nope.pth")
    with pytest.raises(ModelError, match="does not fit convnext_tiny"):
        image_encoder.load_backbone(
            image_encoder.parse_encoder("torchvision:convnext_tiny"), resnet18_weights
        )
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot load"):
        image_encoder.load_backbone(spec, junk)
    for bad in ("resnet18", "torchvision:nonet", "torchvision:resnet18:NOPE"):
        with pytest.raises(ConfigError):
            image_encoder.parse_encoder(bad)


def test_last_block_finetuning_trains_only_the_last_block(resnet18_weights: Path) -> None:
    model, tf = image_encoder.build_encoder_classifier(
        "torchvision:resnet18", weights=resnet18_weights, n_classes=3
    )
    trainable = {n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"layer4", "weight", "bias"}  # backbone.layer4.* and head.*
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 3)
    assert tf.crop_size == [224]


def test_transforms(folder: Path, tmp_path: Path) -> None:
    files = load_data(f"imagefolder:{folder}", run_dir=folder).train.inputs
    for spec in ("ResNet18_Weights.IMAGENET1K_V1", "torchvision:resnet18"):
        tf = image_encoder.load_transform(spec)
        x, _ = ImageBatches(files, np.zeros(12, dtype=np.int64), transform=tf)[np.arange(2)]
        assert x.shape == (2, 3, 224, 224)
    module = tmp_path / "my_tf.py"
    module.write_text(
        "import torch\nimport numpy as np\n"
        "def gray_half(img):\n"
        "    a = np.asarray(img.convert('L').resize((10, 10)), dtype=np.float32) / 510.0\n"
        "    return torch.from_numpy(a)[None]\n"
        "def broken(img):\n    raise RuntimeError('boom')\n"
    )
    tf = image_encoder.load_transform(f"{module}:gray_half")
    x, _ = ImageBatches(files, np.zeros(12, dtype=np.int64), transform=tf)[np.array([0, 5])]
    assert x.shape == (2, 1, 10, 10) and float(x.max()) <= 0.5
    broken = image_encoder.load_transform(f"{module}:broken")
    with pytest.raises(DataError, match="boom"):
        ImageBatches(files, np.zeros(12, dtype=np.int64), transform=broken)[np.array([0])]
    for bad in ("", "nocolon", f"{module}:missing", "NoSuch_Weights.X"):
        with pytest.raises(ConfigError):
            image_encoder.load_transform(bad)


@pytest.mark.slow
def test_pipeline_with_an_encoder_caches_features_and_reuses_them(
    folder: Path, resnet18_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    config = ComputeConfig(
        data=f"imagefolder:{folder}",
        encoder="torchvision:resnet18",
        weights=str(resnet18_weights),
        workers=0,
        device="cpu",
        epochs=2,
        detectors=("l2", "loss"),
    )
    run = tmp_path / "run"
    manifest = compute(config, run, progress=False)
    assert manifest["status"] == "complete" and manifest["model"]["spec"] == config.encoder
    assert manifest["dims"]["gradient"] == 3 * (512 + 2)  # the linear head on 512 features
    assert len(list((run / "embeddings").glob("*.npy"))) == 2  # features + done mask
    assert len(list((run / "thumbs").glob("*.jpg"))) == 12

    def fail(*_a, **_k):
        raise AssertionError("the encoder was loaded again")

    monkeypatch.setattr(image_encoder, "load_backbone", fail)
    again = compute(config, run, progress=False)
    assert json.dumps(again["fingerprints"], sort_keys=True) == json.dumps(
        manifest["fingerprints"], sort_keys=True
    )
    encode = manifest["steps"]["encode"]
    assert encode["images"] == 12 and encode["images_per_s"] > 0 and encode["engine"] == "local"
    assert again["steps"]["encode"] == encode  # reused by its fingerprint: the same record


def test_a_killed_encoder_step_resumes_at_the_first_batch_not_done(
    folder: Path, resnet18_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder pass is a step of its own: killed after two batches, the rerun computes only
    the rest, and the features equal an uninterrupted run's."""
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute
    from ogad_core.pipeline.data_step import data_step
    from ogad_core.pipeline.encode_step import encode_step
    from ogad_core.pipeline.state import RunState, open_run
    from ogad_core.run.rundir import RunDir

    config = ComputeConfig(
        data=f"imagefolder:{folder}",
        encoder="torchvision:resnet18",
        weights=str(resnet18_weights),
        workers=0,
        device="cpu",
        batch_size=4,
        epochs=1,
        detectors=("l2",),
    )
    real_run = image_encoder.ImageEncodeTask.run
    computed: list[int] = []

    def dies_after_two_batches(self, rows, write):
        def counted(r, v):
            if len(computed) >= 8:
                raise KeyboardInterrupt  # "killed"
            computed.extend(r.tolist())
            write(r, v)

        real_run(self, rows, counted)

    monkeypatch.setattr(image_encoder.ImageEncodeTask, "run", dies_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        compute(config, tmp_path / "run", progress=False)
    assert computed == list(range(8))
    monkeypatch.setattr(image_encoder.ImageEncodeTask, "run", real_run)
    rd = RunDir(tmp_path / "run")
    state = RunState(config=config, rd=rd, manifest=open_run(config, rd), progress=False)
    state.device = torch.device("cpu")
    data_step(state)
    record = encode_step(state)
    assert record.extra["images"] == 4  # only the 4 rows not done
    (features,) = [p for p in rd.embeddings_dir.glob("*.npy") if ".done" not in p.name]
    files = load_data(f"imagefolder:{folder}", run_dir=folder).train.inputs
    whole = image_encoder.encode_images(
        files, config.encoder, weights=resnet18_weights, batch_size=4, workers=0, progress=False
    )
    np.testing.assert_allclose(np.load(features), whole, rtol=1e-5, atol=1e-6)


def test_the_encoder_task_gives_the_same_features_channels_last_and_in_bf16(
    few: Path, resnet18_weights: Path
) -> None:
    """The GPU-side choices run on CPU too: channels-last equals the default layout (float
    tolerance), bf16 autocast stays close (bf16 keeps ~3 significant digits)."""
    from ogad_core.engine.executors import LocalExecutor
    from ogad_core.run.store import ArrayRows

    files = load_data(f"imagefolder:{few}", run_dir=few).train.inputs
    spec = image_encoder.parse_encoder("torchvision:resnet18")
    backbone, dim = image_encoder.load_backbone(spec, resnet18_weights)
    batches = image_encoder.encoder_batches(files, spec)
    out = {}
    for name, kw in {
        "plain": {"channels_last": False},
        "channels_last": {"channels_last": True},
        "bf16": {"precision": "bf16"},
    }.items():
        task = image_encoder.ImageEncodeTask(backbone, batches, batch_size=2, workers=0, **kw)
        sink = ArrayRows(len(files), dim)
        LocalExecutor(progress=False).map_rows(task, sink)
        out[name] = sink.array().copy()
    np.testing.assert_allclose(out["channels_last"], out["plain"], rtol=1e-4, atol=1e-5)
    scale = np.abs(out["plain"]).max()
    assert not np.array_equal(out["bf16"], out["plain"])  # bf16 really ran
    np.testing.assert_allclose(out["bf16"], out["plain"], atol=0.05 * scale)


# ---- a train / test image folder, and retraining on it ---------------------------------------


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/`` (3 classes, 80 images) and ``test/`` (2 of the classes, 8 images)."""
    root = tmp_path_factory.mktemp("split")
    _write_images(root / "train", 80, size=12, classes=3)
    from PIL import Image

    rng = np.random.default_rng(1)
    for i in range(8):
        sub = root / "test" / f"class_{1 + i % 2}"  # class_1 and class_2 only
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(sub / f"{i}.png")
    return root


def test_an_image_folder_with_train_and_test_folders_has_a_test_split(
    split_folder: Path, tmp_path: Path
) -> None:
    data = load_data(f"imagefolder:{split_folder}", run_dir=tmp_path, image_size=16)
    assert data.label_names == ["class_0", "class_1", "class_2"]
    assert len(data.train) == 80 and data.test is not None and len(data.test) == 8
    # the test split's labels are the training split's class indices, by folder name
    names = [Path(p).parent.name for p in data.test.refs]
    assert [data.label_names[i] for i in data.test.labels] == names
    (split_folder / "test" / "class_9").mkdir()
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (8, 8)).save(split_folder / "test" / "class_9" / "x.png")
    try:
        with pytest.raises(DataError, match="classes the training split lacks: class_9"):
            load_data(f"imagefolder:{split_folder}", run_dir=tmp_path, image_size=16)
    finally:
        (split_folder / "test" / "class_9" / "x.png").unlink()
        (split_folder / "test" / "class_9").rmdir()


def test_evaluate_retrain_on_an_image_folder_streams_the_files(
    split_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ogad evaluate --retrain`` (and the cleanlab baseline's cross-validation) on a user
    image folder: the retrained models read batches of files, never the whole folder."""
    from ogad_core.evaluation.report import evaluate_run
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    config = ComputeConfig(
        data=f"imagefolder:{split_folder}",
        image_size=16,
        noise=0.2,
        epochs=1,
        workers=0,
        batch_size=8,
        detectors=("l2", "loss"),
    )
    compute(config, tmp_path / "run", progress=False)
    decoded: list[int] = []
    real_getitem = ImageBatches.__getitem__

    def counting(self, rows):
        decoded.append(len(rows))
        return real_getitem(self, rows)

    monkeypatch.setattr(ImageBatches, "__getitem__", counting)
    report = evaluate_run(
        tmp_path / "run", retrain=True, baselines=True, trim_percents=(10,), seeds=1
    )
    assert report.retrain is not None and report.retrain.rows
    assert all(r.accuracy is not None for r in report.retrain.rows)
    # one batch of files at a time (the recipe's 64 or --batch-size), never all 80 at once
    assert decoded and max(decoded) <= 64


def test_jpegs_decoded_on_the_device_match_the_pil_path(
    tmp_path: Path, resnet18_weights: Path
) -> None:
    """The GPU input path (bytes read by the workers, ``decode_jpeg`` + the weights' transforms
    on the device) runs on CPU too: the same preprocessed pixels as the PIL path up to resampling
    differences, and the same features within that tolerance."""
    from PIL import Image

    from ogad_core.engine.executors import LocalExecutor
    from ogad_core.run.store import ArrayRows

    rng = np.random.default_rng(2)
    for i in range(4):
        small = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((300, 260), Image.BILINEAR)
        (tmp_path / "jpg" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        img.save(tmp_path / "jpg" / f"c{i % 2}" / f"{i}.jpg", quality=95)
    files = load_data(f"imagefolder:{tmp_path / 'jpg'}", run_dir=tmp_path).train.inputs
    spec = image_encoder.parse_encoder("torchvision:resnet18")
    batches = image_encoder.encoder_batches(files, spec)
    assert image_encoder.all_jpeg(batches.files)
    pil, _ = batches[np.arange(4)]
    data, lengths = image_encoder.FileBytes(batches.files)[np.arange(4)]
    device = image_encoder.decode_jpegs(data, lengths, torch.device("cpu"), batches.transform)
    assert device.shape == pil.shape == (4, 3, 224, 224)
    assert (device - pil).abs().mean() < 0.02  # normalised units (about 1/200 of the range)
    backbone, dim = image_encoder.load_backbone(spec, resnet18_weights)
    feats = {}
    for on_device in (False, True):
        task = image_encoder.ImageEncodeTask(
            backbone, batches, batch_size=2, workers=0, decode_on_device=on_device
        )
        sink = ArrayRows(4, dim)
        LocalExecutor(progress=False).map_rows(task, sink)
        feats[on_device] = sink.array().copy()
    assert not np.array_equal(feats[True], feats[False])  # really another path
    scale = np.abs(feats[False]).max()
    np.testing.assert_allclose(feats[True], feats[False], atol=0.05 * scale)
