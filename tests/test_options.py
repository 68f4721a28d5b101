"""Options are defined once: the CLI's flags, help, defaults and checks come from the
dataclasses."""

from __future__ import annotations

import logging
import math
from dataclasses import fields

import pytest

from ogad_core._internal import captured_log, log
from ogad_core.cli import COMMAND_OPTIONS, build_parser, flag_of, main, user_message
from ogad_core.errors import ConfigError
from ogad_core.options import ComputeConfig, ScoreOptions, option_fields


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_every_option_has_help_a_flag_and_an_example(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"ogad {command}" in text.split("examples:")[1]
    cls = COMMAND_OPTIONS[command][0]
    for f in option_fields(cls):
        assert f.metadata["help"], f"{command}: {f.name} has no help"
        if not f.metadata.get("positional"):
            assert flag_of(f) in text


def test_help_shows_the_dataclass_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["compute", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: auto)" in text  # --params, the same default as ComputeConfig.params
    assert "(default: 256)" in text and "(default: 32)" in text
    assert ComputeConfig(data="digits").params == "auto"


def test_parsed_flags_build_the_same_config_as_python() -> None:
    args = build_parser().parse_args(
        [
            "compute",
            "--data",
            "digits",
            "--run-dir",
            "r",
            "--proj-dim",
            "8",
            "--detector",
            "l2,loss",
        ]
    )
    from ogad_core.cli import options_from

    config = options_from(args, ComputeConfig)
    assert config == ComputeConfig(data="digits", proj_dim=8, detectors=("l2", "loss"))


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"noise": math.inf}, "noise"),
        ({"noise": 2.5}, "noise"),
        ({"device": "cuda:abc"}, "device"),
        ({"proj_dim": 0}, "proj_dim"),
        ({"lr": -1.0}, "lr"),
        ({"noise_kind": "diagonal"}, "noise_kind"),
        ({"checkpoint": "w.pt"}, "checkpoint"),
    ],
)
def test_library_errors_name_the_parameter_and_the_cli_the_flag(kwargs, param) -> None:
    with pytest.raises(ConfigError) as info:
        ComputeConfig(data="digits", **kwargs)
    err = info.value
    assert err.param == param and str(err).startswith(param)
    assert not str(err).startswith("--")
    shown = user_message(err)
    assert shown.startswith("--" + param.replace("_", "-"))
    if param == "checkpoint":
        assert "--model" in shown


def test_runtime_fields_do_not_change_the_identity() -> None:
    a = ComputeConfig(data="digits", batch_size=8, device="cpu")
    b = ComputeConfig(data="digits", batch_size=64, device="auto", detectors=("l2",))
    assert a.identity() == b.identity()
    assert ComputeConfig(data="digits", seed=1).identity() != a.identity()
    runtime = {f.name for f in fields(ComputeConfig) if f.metadata.get("runtime")}
    assert runtime == {
        "device",
        "batch_size",
        "detectors",
        "per_class",
        "allow_outside",
        "engine",
        "ray_address",
        "workers",
        "max_pixels",
        "holdout",
    }


def test_score_options_validate_like_the_cli(capsys) -> None:
    with pytest.raises(ConfigError, match="embedding must be one of"):
        ScoreOptions(run_dir="x", embedding="middle")
    with pytest.raises(SystemExit) as info:
        main(["score", "x", "--embedding", "middle"])
    assert info.value.code == 2


def test_quiet_and_verbose_set_the_log_level(tmp_path) -> None:
    from ogad_core.cli import setup_output

    setup_output(quiet=True, verbose=False)
    assert log.level == logging.WARNING
    setup_output(quiet=False, verbose=True)
    assert log.level == logging.DEBUG
    setup_output(quiet=False, verbose=False)
    with captured_log() as lines:
        log.info("hello")
    assert lines == ["hello"]
