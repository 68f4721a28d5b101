"""Reliability, class 3 (issue 22): every error the user can fix is one line naming the fix,
exit 2 — options out of range (checked on the option, before any work), encoders that do not
apply, failures and sys.exit() inside the user's model or factory, a full disk (see
test_reliability_dataloss), a manifest missing keys, messages of several lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from ogad_core.cli import main
from tests.reliability_helpers import error_lines, ogad


def _one_line_exit_2(capfd: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capfd.readouterr().err
    assert code == 2, err
    assert len(error_lines(err)) == 1, err
    return err


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--seed", "-1", "--seed must be in 0..4294967295"),
        ("--seed", "12345678901234567890123", "--seed must be in 0..4294967295"),
        ("--image-size", "2000", "--image-size must be in 4..1024"),
        ("--proj-dim", "100000000", "--proj-dim must be in 1..65536"),
        ("--encoder", "resnet18", "does not apply to tabular data"),
        ("--encoder", "no-such-model", "does not apply to tabular data"),
    ],
)
def test_options_out_of_range_are_refused_before_any_work(
    tmp_path: Path, capfd, flag: str, value: str, says: str
) -> None:
    run = tmp_path / "run"
    err = _one_line_exit_2(
        capfd, ["compute", "--data", "moons", "--run-dir", str(run), flag, value]
    )
    assert says in err
    assert not run.exists()  # nothing was done


def test_an_encoder_without_its_torchvision_prefix_is_refused(tmp_path, capfd) -> None:
    run = tmp_path / "run"
    argv = ["compute", "--data", "mnist5k", "--run-dir", str(run), "--encoder", "resnet18"]
    err = _one_line_exit_2(capfd, argv)
    assert "images take torchvision:NAME (e.g. torchvision:resnet18)" in err
    assert not run.exists()


@pytest.mark.parametrize("command", ["score", "map"])
def test_seed_range_holds_for_every_command(tmp_path: Path, capfd, command: str) -> None:
    err = _one_line_exit_2(capfd, [command, str(tmp_path), "--seed", "-1"])
    assert "--seed must be in" in err


def test_proj_dim_wider_than_the_gradient_is_refused_before_training(tmp_path, capfd) -> None:
    run = tmp_path / "run"
    argv = ["compute", "--data", "moons", "--run-dir", str(run), "--proj-dim", "60000", "-q"]
    err = _one_line_exit_2(capfd, argv)
    assert "not smaller than the gradient's width 130" in err
    assert not (run / "model").exists() and not (run / "gradients.npy").exists()


USER_MODEL = """
import sys

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.mode = mode

    def forward(self, x):
        if x.shape[0] > 2 and self.mode == "big":
            raise ValueError("batches above 2 are not supported\\nsee the docs")
        if x.shape[0] > 2 and self.mode == "exit":
            sys.exit(0)
        return self.fc(x)


def big():
    return Net("big")


def exiting():
    return Net("exit")


def broken():
    raise RuntimeError("line one\\nline two\\nline three")


def quits():
    sys.exit(3)


class Hungry(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        import torch

        if x.shape[0] > 2:
            torch.empty(10**13)  # 40 TB: the allocator refuses
        return self.fc(x)


def hungry():
    return Hungry()
"""


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        ("big", "your code failed at net.py:15: ValueError: batches above 2 are not supported / "),
        ("exiting", "net.py:17 called sys.exit(0) during `ogad compute`"),
        ("broken", "the factory failed: RuntimeError: line one / line two / line three"),
        ("quits", "the factory failed: SystemExit: 3"),
        ("hungry", "out of memory ("),
    ],
)
def test_failures_inside_the_users_model_are_one_line(tmp_path, factory, says) -> None:
    (tmp_path / "net.py").write_text(USER_MODEL)
    run = tmp_path / "run"
    done = ogad(
        "compute", "--data", "moons", "--run-dir", str(run), "--quiet",
        "--model", f"{tmp_path / 'net.py'}:{factory}",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(error_lines(done.stderr)) == 1, done.stderr
    assert says in done.stderr
    assert not (run / "gradients.npy").exists()


def test_export_of_a_manifest_missing_keys_is_one_line(tmp_path: Path, capfd) -> None:
    import json

    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["data"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    err = _one_line_exit_2(capfd, ["export", str(run), "--out", str(tmp_path / "o.csv")])
    assert "has no data.label_names" in err


def test_control_characters_and_several_lines_are_folded() -> None:
    from ogad_core._internal import folded

    assert folded("a\nb\x00c\n\n d \x1b[31m") == "a / b\\x00c / d \\x1b[31m"


def test_a_negative_seed_on_images_is_refused_before_training(tmp_path: Path, capfd) -> None:
    run = tmp_path / "run"
    err = _one_line_exit_2(
        capfd, ["compute", "--data", "mnist5k", "--run-dir", str(run), "--seed", "-1"]
    )
    assert "--seed must be in 0..4294967295" in err and not run.exists()
