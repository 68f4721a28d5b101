"""The command line: one clear error line and a non-zero exit on bad input, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ogad_core.cli import main


def _ogad(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ogad_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _one_error_line(stderr: str) -> str:
    """The single error line (progress lines of a compute may come before it)."""
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if "error" in ln]
    assert len(lines) == 1, stderr
    return lines[0]


def test_missing_path_in_a_real_process(tmp_path: Path) -> None:
    proc = _ogad(
        "compute",
        "--data",
        f"imagefolder:{tmp_path / 'nope'}",
        "--run-dir",
        str(tmp_path / "run"),
        "--quiet",
    )
    assert proc.returncode == 2
    assert "path not found" in _one_error_line(proc.stderr)


@pytest.mark.parametrize(
    "args, message",
    [
        (["compute", "--data", "digits", "--run-dir", "{tmp}/r", "--noise", "abc"], "not a number"),
        (["compute", "--data", "digits", "--run-dir", "{tmp}/r", "--noise", "2.5"], "whole number"),
        (
            ["compute", "--data", "digits", "--run-dir", "{tmp}/r", "--checkpoint", "x.pt"],
            "--checkpoint needs --model",
        ),
        (
            [
                "compute",
                "--data",
                "digits",
                "--run-dir",
                "{tmp}/r",
                "--params",
                "nope",
                "--limit",
                "40",
                "--epochs",
                "1",
            ],
            "no parameter matches nope",
        ),
        (["compute", "--data", "digits", "--run-dir", "{tmp}/r", "--device", "tpu"], "--device"),
        (["score", "{tmp}/nowhere"], "run directory not found"),
        (["evaluate", "{tmp}"], "not an ogad run directory"),
        (["map", "{tmp}"], "not an ogad run directory"),
        (["score", "{tmp}", "--detector", ""], "comma-separated"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    try:
        code = main([a.replace("{tmp}", str(tmp_path)) for a in args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in _one_error_line(err)


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["compute", "--data", "digits"])
    assert exc.value.code == 2
    assert "--run-dir" in _one_error_line(capsys.readouterr().err)


def test_evaluate_and_score_commands(digits_run: Path, capsys) -> None:
    assert main(["evaluate", str(digits_run), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["detector"]: r for r in rows}
    assert set(by) >= {"iforest", "l2", "l1", "loss"}
    assert 0.5 < by["l2"]["auroc"] <= 1.0
    assert main(["evaluate", str(digits_run)]) == 0
    assert "auroc" in capsys.readouterr().out


def test_evaluate_without_noise_is_clear(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "compute",
            "--data",
            "moons",
            "--run-dir",
            str(tmp_path / "r"),
            "--epochs",
            "5",
            "--detector",
            "l2",
            "--quiet",
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "r")]) == 2
    assert "no known noise" in _one_error_line(capsys.readouterr().err)


def test_demo_builds_a_noisy_run_without_serving(tmp_path: Path, capsys) -> None:
    run = tmp_path / "demo"
    assert main(["demo", "--data", "moons", "--run-dir", str(run), "--no-dashboard"]) == 0
    out = capsys.readouterr().out
    assert "demo run ready" in out and f"ogad dashboard {run}" in out
    import pandas as pd

    samples = pd.read_parquet(run / "samples.parquet")
    assert samples["is_flipped"].sum() == 20
    assert (run / "map.parquet").is_file() and (run / "scores.parquet").is_file()


def test_dashboard_on_a_missing_run_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["dashboard", str(tmp_path / "nowhere")]) == 2
    assert "run directory not found" in _one_error_line(capsys.readouterr().err)


# ---- what a newcomer meets first (issue 20) ------------------------------------------------


def test_version_and_help_texts_are_literal_and_give_the_numbers(capsys) -> None:
    from ogad_core import __version__
    from ogad_core.engine.text_head import TEXT_HEAD_RECIPE
    from ogad_core.engine.train import default_recipe

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ogad {__version__}"
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    demo_help = capsys.readouterr().out
    assert "10% label noise" in demo_help and "%%" not in demo_help
    with pytest.raises(SystemExit):
        main(["compute", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    epochs = text[text.index("--epochs N training") : text.index("--lr X learning")]
    lr = text[text.index("--lr X learning") : text.index("--image-size N side")]
    import re

    def numbers(part: str) -> set[float]:
        return {float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", part)}

    for kind in ("image", "tabular"):
        assert default_recipe(kind).epochs in numbers(epochs)
        assert default_recipe(kind).lr in numbers(lr)
    assert TEXT_HEAD_RECIPE["epochs"] in numbers(epochs)
    assert TEXT_HEAD_RECIPE["lr"] in numbers(lr)


@pytest.mark.parametrize(
    "spec, guess",
    [("mnist", "mnist5k"), ("rotten", "rotten-tomatoes"), ("folder:x", "imagefolder:x")],
)
def test_a_near_miss_data_spec_gets_a_did_you_mean(
    tmp_path: Path, capsys, spec: str, guess: str
) -> None:
    run = tmp_path / "run"
    assert main(["compute", "--data", spec, "--run-dir", str(run)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"did you mean {guess}?" in line
    assert not run.exists()  # refused before any folder is made


def test_a_bare_path_as_data_spec_gets_its_prefix_named(tmp_path: Path, capsys) -> None:
    """A folder or a file given without ``imagefolder:`` / ``csv:`` is named with the prefix
    it likely lacks; a word near no sample set gets no guess."""
    folder, table = tmp_path / "images", tmp_path / "texts.csv"
    folder.mkdir()
    table.write_text("text,label\n", encoding="utf-8")
    for spec, guess in ((folder, f"imagefolder:{folder}"), (table, f"csv:{table}")):
        assert main(["compute", "--data", str(spec), "--run-dir", str(tmp_path / "r")]) == 2
        assert f"did you mean {guess}?" in _one_error_line(capsys.readouterr().err)
    assert main(["compute", "--data", "foo", "--run-dir", str(tmp_path / "r")]) == 2
    assert "did you mean" not in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("content", "what", "todo"),
    [
        ("", "the file has no header line and no rows", "write the header text,label"),
        ("\n\n", "the file has no header line and no rows", "write the header text,label"),
        ("text,label\n", "only the header line (text,label)", "add one row per sample"),
        ("image,label\n", "only the header line (image,label)", "add one row per sample"),
    ],
)
def test_a_csv_without_samples_gets_one_line_saying_so_and_what_to_do(
    tmp_path: Path, capsys, content: str, what: str, todo: str
) -> None:
    """An empty CSV and a header-only one read alike: one ``ogad: error:`` line, exit 2, that
    names the file, says it holds no samples and why, and what to write; no run folder left."""
    table = tmp_path / "data.csv"
    table.write_text(content, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["compute", "--data", f"csv:{table}", "--run-dir", str(run), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"ogad: error: csv:{table}: no samples: {what}; {todo}"), line
    assert not run.exists()


@pytest.mark.parametrize("command", ["score", "map", "issues", "evaluate"])
def test_a_command_on_a_folder_that_is_no_run_leaves_it_as_it_was(
    tmp_path: Path, capsys, command: str
) -> None:
    """One line naming the folder, exit 2, and no lock file left in it (a lock file would make
    the folder read as a run: an ImageFolder above it would skip it)."""
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    assert main([command, str(folder)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"not an ogad run directory (no manifest.json): {folder}" in line
    assert not list(folder.iterdir())


def test_a_failed_compute_leaves_no_folder_holding_only_the_lock(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    missing = tmp_path / "no_such_folder"
    assert main(["compute", "--data", f"imagefolder:{missing}", "--run-dir", str(run)]) == 2
    assert "path not found" in _one_error_line(capsys.readouterr().err)
    assert not run.exists()
    run.mkdir()  # a folder that was there before stays
    assert main(["compute", "--data", f"imagefolder:{missing}", "--run-dir", str(run)]) == 2
    assert run.is_dir()


def test_compute_prints_the_next_command(digits_run: Path, capsys) -> None:
    from ogad_core.cli import flag_of
    from ogad_core.options import ComputeConfig, option_fields
    from ogad_core.testing import DIGITS_CONFIG

    flags = {f.name: flag_of(f) for f in option_fields(ComputeConfig)}
    args = ["compute", "--run-dir", str(digits_run)]
    for name, value in DIGITS_CONFIG.items():
        if value is None or value is False:
            continue
        flag = flags[name]
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        args += [flag] if value is True else [flag, text]
    assert main(args) == 0  # everything reused
    out = capsys.readouterr().out
    assert f"next: ogad dashboard {digits_run}" in out


@pytest.mark.parametrize("holdout", ["imagefolder:{tmp}/no_val", "csv:{tmp}/no_val.csv"])
def test_a_missing_holdout_is_refused_before_any_work(tmp_path: Path, capsys, holdout: str) -> None:
    """`compute --holdout` naming a path that is not there stops at once (one line, exit 2),
    not after training, gradients, scores and the map (it was read only by the issue step)."""
    run = tmp_path / "run"
    spec = holdout.replace("{tmp}", str(tmp_path))
    args = ["compute", "--data", "digits", "--run-dir", str(run), "--limit", "40"]
    assert main([*args, "--epochs", "1", "--holdout", spec]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("ogad: error: --holdout ") and "path not found" in line
    assert not run.exists()  # refused before any folder is made


def test_score_checkpoints_on_a_run_without_them_is_one_line(tmp_path: Path, capsys) -> None:
    """`ogad score --embedding checkpoints` on a run computed without --checkpoints is refused
    (it wrote `_ckpt` columns that repeated the final scores); scores.parquet is untouched."""
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="tabular", n=60)
    before = (run / "scores.parquet").read_bytes()
    assert main(["score", str(run), "--detector", "l2", "--embedding", "checkpoints"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("ogad: error: ") and "--checkpoints K" in line
    assert (run / "scores.parquet").read_bytes() == before


def test_issues_runs_without_a_recorded_holdout_that_is_gone(
    digits_run: Path, tmp_path: Path, capsys
) -> None:
    """`ogad issues DIR` on a run whose recorded `--holdout` folder was moved since: one warning
    naming the split, the other types still run (it stopped with an error, so no issue type
    could be rerun); the same path given with `--holdout` is still an error."""
    import shutil

    from ogad_core.run.rundir import RunDir

    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    rd = RunDir(run)
    manifest = rd.load_manifest()
    manifest.config["holdout"] = f"imagefolder:{tmp_path / 'moved_val'}"
    rd.save_manifest(manifest)
    capsys.readouterr()
    assert main(["issues", str(run)]) == 0
    err = capsys.readouterr().err
    warned = [ln for ln in err.splitlines() if "moved_val" in ln]
    assert len(warned) == 1 and "warning" in warned[0] and "--holdout" in warned[0]
    issues = rd.read_issues()
    assert {"label", "duplicate", "outlier", "corrupt"} <= set(issues["issue"])
    assert not issues.loc[issues["issue"] == "leakage", "flagged"].any()
    assert main(["issues", str(run), "--holdout", manifest.config["holdout"]]) == 2
    assert "path not found" in _one_error_line(capsys.readouterr().err)
