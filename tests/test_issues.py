"""Issue types (ogad_core.issues): the contract, each built-in type, the pipeline step, the CLI
and the export's ``issues`` column."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ogad_core.errors import ConfigError
from ogad_core.issues.base import IssueType
from ogad_core.issues.check import check_issue_type, small_context
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.duplicate import DuplicateIssue
from ogad_core.issues.features import features_from_gradients
from ogad_core.issues.outlier import OutlierIssue
from ogad_core.issues.properties import array_properties, text_properties
from ogad_core.issues.registry import ISSUE_TYPES, resolve_issue_type
from ogad_core.issues.table import all_queue, fit_issue_types, flagged_names, issues_table
from ogad_core.run.rundir import RunDir

CONTRACT_COLUMNS = ["sample_id", "issue", "score", "rank", "flagged", "set_id"]


# ---- features ---------------------------------------------------------------------------


def test_features_are_recovered_exactly_from_last_layer_gradients() -> None:
    rng = np.random.default_rng(0)
    n, c, h = 50, 4, 7
    feats = rng.normal(size=(n, h))
    logits = rng.normal(size=(n, c)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, c, n)
    dz = p.copy()
    dz[np.arange(n), y] -= 1
    grads = np.hstack([(dz[:, :, None] * feats[:, None, :]).reshape(n, c * h), dz])
    np.testing.assert_allclose(features_from_gradients(grads, c), feats, rtol=1e-5, atol=1e-5)


# ---- the contract and the registry --------------------------------------------------------


@pytest.mark.parametrize("name", list(ISSUE_TYPES))
def test_builtin_issue_types_follow_the_contract(name: str) -> None:
    check_issue_type(ISSUE_TYPES[name])


class _NoSelf(IssueType):
    name = "noself"
    title = "No self"
    threshold_doc = "never"

    def fit(self, context):  # type: ignore[no-untyped-def]
        self._finish(np.zeros(context.n), 1.0)

    def explain(self, i: int) -> str:
        return "x"


class _BadFlags(_NoSelf):
    name = "badflags"

    def fit(self, context):  # type: ignore[no-untyped-def]
        self._finish(np.arange(context.n, dtype=float), 10.0)
        self.flagged_ = np.zeros(context.n, dtype=bool)  # flags contradict the threshold
        return self


@pytest.mark.parametrize(("cls", "message"), [(_NoSelf, "return self"), (_BadFlags, "unflagged")])
def test_check_issue_type_names_the_broken_rule(cls: type, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_issue_type(cls)


def test_a_plugin_issue_type_is_named_module_colon_class(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "myissues.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from ogad_core.issues import IssueType

            class Loud(IssueType):
                name = "loud"
                title = "Loud"
                threshold_doc = "loss above 0.2"

                def __init__(self, cut=0.2):
                    self.cut = cut

                def fit(self, context):
                    return self._finish(context.samples["loss"].to_numpy(), self.cut)

                def explain(self, i):
                    return f"loss {self.scores_[i]:.2f}"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    est = resolve_issue_type("myissues:Loud")
    check_issue_type(est)
    assert est.name == "loud"
    with pytest.raises(ConfigError, match="unknown issue type"):
        resolve_issue_type("nonsense")
    with pytest.raises(ConfigError, match="not a subclass"):
        resolve_issue_type("collections:OrderedDict")
    sys.modules.pop("myissues", None)


# ---- each type ---------------------------------------------------------------------------


def test_duplicates_form_sets_and_conflicting_sets_rank_first() -> None:
    ctx = small_context()
    ctx.samples.loc[1, "label"] = 2  # the exact pair 0 / 1 now disagrees
    ctx.signatures[10] = ctx.signatures[11] + 1e-4  # a near pair in pixel space, same label?
    ctx.samples.loc[10, "label"] = ctx.samples.loc[11, "label"]
    est = DuplicateIssue().fit(ctx)
    assert est.set_ids_[0] == est.set_ids_[1] == 0
    assert est.set_ids_[10] == est.set_ids_[11] == 10
    assert est.flagged_.sum() == 4
    assert min(est.scores_[[0, 1]]) > max(est.scores_[[10, 11]])  # the conflict first
    assert "labels differ" in est.explain(0) and "#1" in est.explain(0)
    assert "near duplicate" in est.explain(10)


def test_label_issues_leave_samples_another_type_explains() -> None:
    """The highest losses belong to a conflicting duplicate pair (0 / 1), a blank image (2) and
    a far-away input (59): reviewed as duplicates, corrupt and outlier, not as wrong labels;
    the label flags go to the next wrong-looking samples, one fewer per sample left out."""
    from ogad_core.issues.table import fit_issue_types

    ctx = small_context()
    ctx.samples.loc[1, "label"] = 2
    loss = ctx.scores["loss_score"].to_numpy().copy()
    loss[[0, 1, 2, 59]] = [9.0, 8.0, 7.0, 6.0]
    loss[[30, 31, 32]] = [5.0, 4.0, 3.0]
    ctx.scores["loss_score"] = loss
    ctx_alone = small_context()
    ctx_alone.samples.loc[1, "label"] = 2
    ctx_alone.scores["loss_score"] = loss
    alone = fit_issue_types(ctx_alone, ["label"])[0]
    n_alone = int(alone.flagged_.sum())
    assert alone.flagged_[[0, 1, 2, 59]].all()  # by itself the label type flags them
    fitted = {e.name: e for e in fit_issue_types(ctx, list(ISSUE_TYPES))}
    label = fitted["label"]
    assert not label.flagged_[[0, 1, 2, 59]].any()
    assert label.flagged_[[30, 31, 32]].all()
    assert int(label.flagged_.sum()) == n_alone - 4
    order = list(np.argsort(-label.scores_, kind="stable"))
    assert order[:3] == [30, 31, 32]
    n_flag = int(label.flagged_.sum())  # the four come right after the flags, in their order
    four = sorted([0, 1, 2, 59], key=lambda i: (-alone.scores_[i], i))
    assert order[n_flag : n_flag + 4] == four
    assert label.explain(2).startswith("left to")


def test_outlier_flags_the_far_sample() -> None:
    ctx = small_context()
    est = OutlierIssue().fit(ctx)
    assert est.flagged_[-1] and int(est.scores_.argmax()) == ctx.n - 1
    assert "feature z = " in est.explain(ctx.n - 1)


def test_corrupt_images_and_texts() -> None:
    est = CorruptIssue().fit(small_context())
    assert est.flagged_[2] and est.flagged_.sum() == 1  # the constant black image only
    assert est.explain(2).startswith("very dark, near-constant input")  # black
    texts = [f"a fine {w} film with a good cast and a story" for w in "abcdefghijklmnopqrst"]
    texts += ["", "zq#x 8kw% vvpq", "ok"]
    ctx = small_context(n=len(texts))
    ctx.samples["ref"] = texts
    ctx.inputs = text_properties(texts)
    est = CorruptIssue().fit(ctx)
    assert list(np.flatnonzero(est.flagged_)) == [20, 21, 22]
    assert est.explain(20) == "empty input"
    assert est.parts_.loc[22, "very short"] >= est.threshold
    assert "not language" in est.explain(21) or "few letters" in est.explain(21)


def test_a_near_constant_image_is_explained_by_what_the_reviewer_sees() -> None:
    """A digit at 5% brightness is near-constant (pixel std < 0.02) because it is dark: its
    line says "very dark" (its mean's z, -2.8 on MNIST, is not what flagged it, so the line
    also names near-constant); a white image "very bright"; a flat grey one near-constant
    only. MNIST-like data: digits' mean brightness about 0.13, below the absolute dark bound."""
    ctx = small_context()
    rng = np.random.default_rng(1)
    ctx.inputs["mean"] = rng.normal(0.13, 0.04, ctx.n).clip(0.03, 0.3)
    ctx.inputs["std"] = rng.uniform(0.25, 0.35, ctx.n)
    faint, white, grey = 2, 3, 4
    ctx.inputs.loc[[faint, white, grey], "mean"] = [0.005, 0.99, 0.5]
    ctx.inputs.loc[[faint, white, grey], "std"] = [0.015, 0.01, 0.005]
    est = CorruptIssue().fit(ctx)
    assert est.flagged_[[faint, white, grey]].all()
    assert est.parts_.loc[faint, "very dark"] < est.threshold  # near-constant decided
    assert est.explain(faint).startswith("very dark, near-constant input (brightness 0.01")
    assert est.explain(white).startswith("very bright, near-constant input (brightness 0.99")
    assert est.explain(grey) == "near-constant input"


def test_a_text_of_one_word_said_over_and_over_is_corrupt() -> None:
    """A word repeated is language by every other property (letters, known words); a review
    that repeats itself a little ("not ... not ... not") is not flagged."""
    rng = np.random.default_rng(0)
    vocab = "a fine film with good cast and story that is not slow but sure to its end".split()
    texts = [" ".join(rng.choice(vocab, size=12, replace=False)) for _ in range(60)]
    texts.append("not a film that is not good, not a cast that is not fine")
    texts.append("good good good good good good good good good good")
    ctx = small_context(n=len(texts))
    ctx.samples["ref"] = texts
    ctx.inputs = text_properties(texts)
    est = CorruptIssue().fit(ctx)
    assert list(np.flatnonzero(est.flagged_)) == [61]
    assert est.explain(61).startswith("repetitive input")
    assert int(est.scores_.argmax()) == 61


def test_image_properties_see_blur_noise_and_copies() -> None:
    rng = np.random.default_rng(0)
    sharp = (rng.random((1, 1, 28, 28)) > 0.7).astype(np.float32)
    blurred = sharp.copy()
    for _ in range(4):
        blurred[0, 0, 1:-1, 1:-1] = (
            blurred[0, 0, :-2, 1:-1] + blurred[0, 0, 2:, 1:-1] + blurred[0, 0, 1:-1, 1:-1]
        ) / 3
    table, sig = array_properties(np.concatenate([sharp, blurred, sharp]))
    assert table["sharpness"][1] < table["sharpness"][0]
    assert table["content_hash"][0] == table["content_hash"][2] != table["content_hash"][1]
    assert sig.shape == (3, 256) and sig.dtype == np.float32


# ---- the table, the "All" queue, the export names ----------------------------------------


def test_issues_table_follows_the_contract_and_all_interleaves() -> None:
    ctx = small_context()
    fitted = [ISSUE_TYPES[n]().fit(ctx) for n in ISSUE_TYPES]
    table = issues_table(fitted, ctx.samples["sample_id"].to_numpy())
    assert list(table.columns[:6]) == CONTRACT_COLUMNS
    assert len(table) == len(ISSUE_TYPES) * ctx.n
    for _, part in table.groupby("issue"):
        assert sorted(part["rank"]) == list(range(1, ctx.n + 1))
    dup = table[table["issue"] == "duplicate"]
    assert dup["set_id"].isna().sum() == ctx.n - 2
    queue = all_queue(table)
    assert queue["sample_id"].is_unique
    assert set(queue["sample_id"]) == set(table.loc[table["flagged"], "sample_id"])
    # ordered by the relative position within each issue's own flagged list, label flags last
    assert queue["position"].is_monotonic_increasing
    n_dup = int(table.loc[table["issue"] == "duplicate", "flagged"].sum())
    assert queue["position"].iloc[0] == pytest.approx(1 / n_dup)
    names = flagged_names(table, ctx.n)
    assert "duplicate" in names[0].split(";") and names[5] in ("", "label")


# ---- the pipeline, the CLI and the export --------------------------------------------------


@pytest.fixture
def issue_run(digits_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    return run


def test_compute_writes_issues_and_the_cli_reuses_them(issue_run: Path, capsys) -> None:
    from ogad_core.cli import main
    from ogad_core.run.rundir import RunDir

    rd = RunDir(issue_run)
    table = rd.read_issues()
    assert list(table.columns[:6]) == CONTRACT_COLUMNS
    assert set(table["issue"]) == set(ISSUE_TYPES)
    assert rd.features_path.is_file() and rd.inputs_path.is_file()
    assert rd.load_manifest().is_done("issues")
    # label: the default detector's ranking, less the samples another type explains
    label = table[table["issue"] == "label"].set_index("sample_id")
    scores = rd.read_scores().set_index("sample_id")
    flags = table[table["flagged"]]
    deferred = set(flags.loc[flags["issue"].isin(["corrupt", "outlier"]), "sample_id"])
    dup = flags[flags["issue"] == "duplicate"].copy()
    dup["label"] = rd.read_samples().set_index("sample_id").loc[dup["sample_id"], "label"].values
    mixed = dup.groupby("set_id")["label"].transform("nunique") > 1
    deferred |= set(dup.loc[mixed, "sample_id"])
    kept = label.drop(index=sorted(deferred))
    n_flagged = int(label["flagged"].sum())
    expected = pd.Series(_label_score(rd), index=scores.index).loc[kept.index]
    top = expected.sort_values(ascending=False, kind="stable").index[:n_flagged]
    assert 0 < n_flagged < len(label)
    assert set(label.index[label["flagged"]]) == set(top)
    assert list(kept.sort_values("rank").index) == list(
        expected.sort_values(ascending=False, kind="stable").index
    )
    assert (label.loc[sorted(deferred), "rank"] > n_flagged).all()
    rd.issues_path.unlink()
    assert main(["issues", str(issue_run), "--issue-type", "duplicate,corrupt"]) == 0
    assert "flagged: duplicate" in capsys.readouterr().out
    assert set(rd.read_issues()["issue"]) == {"duplicate", "corrupt"}


def _label_score(rd: RunDir) -> np.ndarray:
    """(N,) the label type's score by its documented rule: the loss, joined by the neighbours'
    label vote where the vote errs at most 1.25x as often as the model; the samples whose
    given label is not the first choice of that averaged probability q first, by the
    geometric mean of the class-pair posterior of a wrong label and of the likeliest other
    class (T from cleanlab's confident joint of q, one pseudo-count a pair), those whose input
    looks unlike the data after the others."""
    from cleanlab.count import compute_confident_joint

    from ogad_core.issues.label import KNN_ERROR_RATIO, label_neighbours, neighbour_vote
    from ogad_core.issues.outlier import _distance
    from ogad_core.issues.tail import upper_z
    from ogad_core.pipeline.issue_step import load_context
    from ogad_core.scoring.target import pseudo_pred_probs

    ctx = load_context(rd, rd.load_manifest())
    loss = ctx.scores["loss_score"].to_numpy(dtype=np.float64)
    found = label_neighbours(ctx)
    assert found is not None
    y, k, rows = ctx.labels, len(ctx.label_names), np.arange(ctx.n)
    q = pseudo_pred_probs(ctx.samples, k)[1]
    agree, knn_error = neighbour_vote(found[0], y)
    score = loss
    if knn_error <= KNN_ERROR_RATIO * np.mean(ctx.samples["pred"].to_numpy() != y):
        shares = np.stack([(y[found[0]] == c).mean(axis=1) for c in range(k)], axis=1)
        q = 0.5 * q + 0.5 * shares
        score = -np.log(np.maximum(0.5 * np.exp(-loss) + 0.5 * agree, 1e-12))
    counts = compute_confident_joint(y, q) + (1 - np.eye(k))
    rates = counts / counts.sum(axis=0, keepdims=True)
    true_class = rates[y] * q / (rates[y] * q).sum(axis=1, keepdims=True)
    right = true_class[rows, y]
    true_class[rows, y] = 0.0
    both = np.sqrt((1.0 - right) * true_class.max(axis=1))
    # an input unlike the data (input statistics' upper-tail z of the log kNN distance at
    # least the outlier flag's 2.5) after the others q gives another class
    stats = _distance(ctx, "statistics")
    assert stats is not None
    far = upper_z(np.log(np.maximum(stats, 1e-12))) >= 2.5
    doubted = np.where(far, np.log(k) + 0.5 + 0.4 * both, np.log(k) + 1.0 + both)
    return np.where(q.argmax(axis=1) != y, doubted, score)


def test_cli_refuses_an_unknown_issue_type_in_one_line(issue_run: Path, capsys) -> None:
    from ogad_core.cli import main

    assert main(["issues", str(issue_run), "--issue-type", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown issue type 'bogus'" in err[0]


PLUGIN = """
import numpy as np
from ogad_core.issues import IssueType


class Boom(IssueType):
    name = "boom"
    title = "Boom"
    threshold_doc = "never"

    def fit(self, context):
        raise ValueError("kaboom inside fit")

    def explain(self, i):
        return ""


class Clash(IssueType):
    name = "label"
    title = "Clash"
    threshold_doc = "never"

    def fit(self, context):
        return self._finish(np.zeros(len(context.samples)), 1.0)

    def explain(self, i):
        return ""
"""


@pytest.mark.parametrize(
    "spec, message",
    [
        ("label,label", "issue type 'label' is listed twice"),
        ("qa_plug:Clash", "a built-in type's name"),
        (":Boom", "give module:Class"),
        ("qa_plug:Boom", "your code failed at qa_plug.py:12: ValueError: kaboom inside fit"),
    ],
)
def test_a_bad_issue_type_plugin_is_one_line_and_writes_nothing(
    issue_run: Path, tmp_path: Path, spec: str, message: str
) -> None:
    """`ogad issues DIR --issue-type` (the console script, run in the plugin's folder as the
    README says): a type listed twice or a plugin named like a built-in (they wrote two sets of
    rows, or replaced the built-in), an empty module (an internal error) and an exception in a
    plugin's fit (an internal error, exit 1) are one line naming the problem, exit 2; the
    plugin is found in the current folder; issues.parquet is left as it was."""
    import subprocess

    (tmp_path / "qa_plug.py").write_text(PLUGIN)
    before = (issue_run / "issues.parquet").read_bytes()
    ogad = Path(sys.executable).parent / "ogad"
    proc = subprocess.run(
        [str(ogad), "issues", str(issue_run), "--issue-type", spec, "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and err[0].startswith("ogad: error: ") and message in err[0], err
    assert (issue_run / "issues.parquet").read_bytes() == before


def test_export_gains_the_issues_column(issue_run: Path) -> None:
    from ogad_core.review.export import EXPORT_COLUMNS, build_export_frame
    from ogad_core.run.rundir import RunDir

    frame = build_export_frame(issue_run)
    assert list(frame.columns) == [*EXPORT_COLUMNS, "issues"]
    issues = RunDir(issue_run).read_issues()
    flagged = issues[issues["flagged"]]
    for sid, names in flagged.groupby("sample_id")["issue"]:
        assert set(frame.loc[frame["sample_id"] == sid, "issues"].iloc[0].split(";")) == set(names)
    assert (frame.loc[~frame["sample_id"].isin(flagged["sample_id"]), "issues"] == "").all()
    RunDir(issue_run).issues_path.unlink()
    assert list(build_export_frame(issue_run).columns) == EXPORT_COLUMNS


def test_an_old_run_gets_its_inputs_recorded(issue_run: Path) -> None:
    from ogad_core.pipeline.issue_step import find_issues
    from ogad_core.run.rundir import RunDir

    rd = RunDir(issue_run)
    before = pd.read_parquet(rd.inputs_path)
    for path in (rd.inputs_path, rd.signatures_path, rd.issues_path):
        path.unlink()
    find_issues(issue_run)
    after = pd.read_parquet(rd.inputs_path)
    assert len(after) == len(before)
    # 8x8 digits from the PNGs in data/: the same properties as from the arrays
    np.testing.assert_allclose(after["mean"], before["mean"], atol=0.01)


def test_the_issues_step_records_the_label_types_detector(issue_run: Path) -> None:
    """The manifest's issues step names the detector the label type ranked with: the
    dashboard's Label issues queue follows the label type's order with that detector."""
    from dashboard.issue_view import load_issue_view
    from ogad_core.pipeline.issue_step import find_issues
    from ogad_core.run.rundir import RunDir

    rd = RunDir(issue_run)
    rd.issues_path.unlink()
    find_issues(issue_run)
    types = rd.read_manifest()["steps"]["issues"]["types"]
    assert types["label"]["detector"] == "loss" and "detector" not in types["outlier"]
    view = load_issue_view(issue_run)
    assert view is not None and view.label_detector == "loss"


def test_corrupt_inputs_are_left_out_of_outliers_and_duplicate_sets() -> None:
    from ogad_core.issues.table import fit_issue_types

    ctx = small_context()
    # sample 5 and 6: two blank images, identical (a pair in every space) and far away
    ctx.inputs["content_hash"] = np.where(
        np.isin(np.arange(ctx.n), [5, 6]), "blank", ctx.inputs["content_hash"]
    )
    ctx.inputs["std"] = np.where(np.isin(np.arange(ctx.n), [5, 6]), 0.0, ctx.inputs["std"])
    ctx.features[[5, 6]] = 0.0
    ctx.features[[5, 6], 7] = 9.0
    alone = DuplicateIssue().fit(small_context())
    fitted = {e.name: e for e in fit_issue_types(ctx, ["outlier", "duplicate", "corrupt"])}
    assert fitted["corrupt"].flagged_[[5, 6]].all()
    assert (fitted["duplicate"].set_ids_[[5, 6]] == -1).all()
    assert fitted["duplicate"].set_ids_[0] == alone.set_ids_[0] == 0  # the real pair stays
    order = np.argsort(-fitted["outlier"].scores_, kind="stable")  # far and blank: corrupt
    last = np.flatnonzero(fitted["outlier"].last_)  # corrupt first, flagged here or not
    assert order[0] == ctx.n - 1 and {5, 6} <= set(last)  # first, ranked last here
    assert set(order[-len(last) :]) == set(last)
    assert not fitted["outlier"].flagged_[[5, 6]].any()
    assert fitted["outlier"].explain(5).endswith("corrupt first (ranked last here)")


def test_image_files_are_inspected_in_the_thumbnail_pass(tmp_path: Path) -> None:
    from PIL import Image

    from ogad_core.data.images import scan_images
    from ogad_core.issues.inputs import record_inputs
    from ogad_core.run.rundir import RunDir

    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        pixels = (rng.random((40, 30)) * 255).astype(np.uint8) if i != 3 else np.zeros((40, 30))
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(path)
    files = scan_images(paths, 16, "test")
    data = paths[5].read_bytes()
    paths[5].write_bytes(data[: len(data) // 2])  # the header reads, the pixels do not
    rd = RunDir(tmp_path / "run")
    assert record_inputs(rd, files)
    table = pd.read_parquet(rd.inputs_path)
    assert list(table["decoded"]) == [True] * 5 + [False]
    assert (table.loc[:4, ["width", "height"]].to_numpy() == [30, 40]).all()
    assert table.loc[3, "std"] == 0.0 and table.loc[0, "std"] > 0.2
    assert np.load(rd.signatures_path).shape == (6, 256)
    assert all(rd.thumbnail_path(str(p)).is_file() for p in paths[:5])
    assert not record_inputs(rd, files)  # recorded once


def test_the_features_map_is_drawn_on_demand(issue_run: Path, capsys) -> None:
    from ogad_core.cli import main
    from ogad_core.run.rundir import RunDir

    rd = RunDir(issue_run)
    assert not rd.features_map_path.is_file()  # compute draws only the gradient map
    assert main(["issues", str(issue_run), "--features-map"]) == 0
    assert "map_features.parquet" in capsys.readouterr().out
    table = pd.read_parquet(rd.features_map_path)
    assert list(table.columns) == ["sample_id", "x", "y"]
    assert len(table) == len(rd.read_samples()) and np.isfinite(table[["x", "y"]]).all().all()
    assert rd.load_manifest().is_done("features_map")


def test_duplicates_on_many_rows_search_a_pca_and_measure_in_the_space() -> None:
    from ogad_core.issues.base import IssueContext
    from ogad_core.space.knn import ANN_MIN_ROWS

    rng = np.random.default_rng(0)
    n = ANN_MIN_ROWS + 5000
    feats = np.abs(rng.normal(size=(n, 64))).astype(np.float32)
    sources = rng.choice(n - 40, 20, replace=False)
    for j, s in enumerate(sources):  # 20 near copies at the end
        feats[n - 20 + j] = feats[s] + rng.normal(0, 0.01, 64).astype(np.float32)
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": rng.integers(0, 10, n)})
    ctx = IssueContext(samples=samples, label_names=[str(i) for i in range(10)], features=feats)
    est = DuplicateIssue().fit(ctx)
    assert est.flagged_.sum() == 40
    for j, s in enumerate(sources):
        assert est.set_ids_[s] == est.set_ids_[n - 20 + j] >= 0
    assert any(name == "features/unit/pca" for name, _, _ in ctx._knn)  # candidates: the PCA


def test_undecodable_image_files_are_flagged_and_left_out_of_training(
    sample_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """A truncated JPEG and a text file named .png in an ImageFolder: the run goes on without
    them (not trained on), they are flagged corrupt with the reason and exported, and one
    warning line names them."""
    import logging

    from PIL import Image

    import ogad_core.engine.train as train
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute
    from ogad_core.review.export import build_export_frame
    from ogad_core.run.rundir import RunDir

    folder = tmp_path / "folder"
    shutil.copytree(sample_data / "digits_folder", folder)
    first = sorted(p for p in folder.iterdir() if p.is_dir())[0]
    jpeg = first / "zz_truncated.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), np.uint8)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    (first / "zz_notes.png").write_text("this is not an image\n", encoding="utf-8")
    trained_on: list[int] = []
    real_train = train.train_model

    def spy(model, inputs, labels=None, **kw):  # type: ignore[no-untyped-def]
        trained_on.append(len(labels))
        return real_train(model, inputs, labels, **kw)

    monkeypatch.setattr(train, "train_model", spy)
    config = ComputeConfig(
        data=f"imagefolder:{folder}", image_size=16, epochs=1, detectors=("loss",), workers=0
    )
    with caplog.at_level(logging.WARNING, logger="ogad"):
        compute(config, tmp_path / "run", progress=False)
    rd = RunDir(tmp_path / "run")
    samples = rd.read_samples()
    bad = [i for i, r in enumerate(samples["ref"]) if "zz_" in str(r)]
    assert len(bad) == 2 and trained_on == [len(samples) - 2]
    warnings = [r.getMessage() for r in caplog.records if "cannot be decoded" in r.getMessage()]
    assert (
        len(warnings) == 1 and "zz_notes.png" in warnings[0] and "zz_truncated.jpg" in warnings[0]
    )
    issues = rd.read_issues()
    corrupt = issues[(issues["issue"] == "corrupt") & issues["sample_id"].isin(bad)]
    assert corrupt["flagged"].all()
    assert all(e.startswith("undecodable input (") for e in corrupt["explanation"]), list(
        corrupt["explanation"]
    )
    assert "truncated" in " ".join(corrupt["explanation"]).lower()
    frame = build_export_frame(tmp_path / "run")
    assert all("corrupt" in str(x) for x in frame.loc[frame["sample_id"].isin(bad), "issues"])


def test_training_copies_of_held_out_files_are_flagged_as_leakage(
    sample_data: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """`--holdout imagefolder:PATH`: an exact and a re-encoded near copy of training images in
    the held-out split are flagged `leakage` naming the held-out file; other held-out images
    flag nothing; `ogad issues DIR` reuses the recorded split; a bad spec is one line, exit 2.
    An exact copy stays "exact copy" (score at most 1) when its aligned NCC rounds past 1."""
    from PIL import Image

    import ogad_core.issues.registration as registration
    from ogad_core.cli import main

    real_correlation = registration.aligned_correlation

    def rounding_past_one(images, pairs, *args, **kwargs):  # type: ignore[no-untyped-def]
        ncc = real_correlation(images, pairs, *args, **kwargs)
        return np.where(ncc > 0.99999, ncc + 7e-6, ncc)  # float32 sums of a copy: 1.000007

    monkeypatch.setattr(registration, "aligned_correlation", rounding_past_one)
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute
    from ogad_core.run.rundir import RunDir

    train = tmp_path / "train"
    shutil.copytree(sample_data / "digits_folder", train)
    files = sorted(train.rglob("*.png"))
    held = tmp_path / "val"
    rng = np.random.default_rng(0)
    for j, cls in enumerate(sorted(p.name for p in train.iterdir())):
        (held / cls).mkdir(parents=True)
        for m in range(3):  # unrelated held-out images
            noise = rng.integers(0, 255, (28, 28), dtype=np.uint8)
            Image.fromarray(noise).save(held / cls / f"other_{j}{m}.png")
    exact, near = files[3], files[40]
    shutil.copy(exact, held / exact.parent.name / "copy.png")
    with Image.open(near) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.int16)
    noisy = np.clip(pixels + rng.integers(-3, 4, pixels.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(held / near.parent.name / "reencoded.jpg", quality=95)
    config = ComputeConfig(
        data=f"imagefolder:{train}",
        image_size=16,
        epochs=1,
        detectors=("loss",),
        workers=0,
        holdout=f"imagefolder:{held}",
    )
    compute(config, tmp_path / "run", progress=False)
    rd = RunDir(tmp_path / "run")
    refs = [str(r) for r in rd.read_samples()["ref"]]
    ids = {refs.index(str(exact.resolve())), refs.index(str(near.resolve()))}
    issues = rd.read_issues()
    leak = issues[issues["issue"] == "leakage"].sort_values("sample_id")
    assert set(leak.loc[leak["flagged"], "sample_id"]) == ids
    why = dict(zip(leak["sample_id"], leak["explanation"], strict=True))
    assert why[refs.index(str(exact.resolve()))].startswith("exact copy of held-out ")
    assert "copy.png" in why[refs.index(str(exact.resolve()))]
    assert why[refs.index(str(near.resolve()))].startswith("near copy of held-out ")
    _assert_the_card_shows_the_held_out_copy(rd, refs.index(str(exact.resolve())))
    assert leak["score"].max() <= 1.0
    assert leak.loc[leak["flagged"], "set_id"].notna().all()
    before = rd.load_manifest().steps["issues"].fingerprint
    (held / exact.parent.name / "copy.png").unlink()  # the split changed: the step reruns
    assert main(["issues", str(rd.path)]) == 0
    assert rd.load_manifest().steps["issues"].fingerprint != before
    again = rd.read_issues()
    flagged = again[(again["issue"] == "leakage") & again["flagged"]]
    assert set(flagged["sample_id"]) == {refs.index(str(near.resolve()))}
    capsys.readouterr()
    assert main(["issues", str(rd.path), "--holdout", str(held)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ogad: error: ") and "--holdout" in err and "\n" not in err


def _assert_the_card_shows_the_held_out_copy(rd: RunDir, sid: int) -> None:
    """The leaking sample's card sets the held-out image beside it: the file named in the
    leakage reason, from the thumbnail the issue pass wrote (not the held-out file itself)."""
    from dashboard.cards import card_kind
    from dashboard.issue_view import load_issue_view

    view = load_issue_view(rd.path)
    assert view is not None
    ref = view.held_out_ref(sid)
    assert Path(ref).name == "copy.png" and rd.thumbnail_path(ref).is_file()
    body = card_kind("image").held_out_html(str(rd.path), ref)
    assert '<img class="ogad-img" src="data:image/' in body
    assert f'title="{ref}"' in body and "its held-out copy" in body
    assert card_kind("text").held_out_html(str(rd.path), ref) == ""  # its reason quotes it


def test_the_dashboard_shows_leakage_only_when_found() -> None:
    """The selector lists Leakage only when it flags something; a leaking member of a
    duplicate set carries the reason (the duplicate card's line)."""
    from dashboard.issue_view import IssueView

    def table(leaks: bool) -> pd.DataFrame:
        rows = []
        for sid in range(4):
            rows.append((sid, "duplicate", 1.0, sid + 1, sid < 2, 0 if sid < 2 else None, "dup"))
            leak = leaks and sid == 1
            why = "exact copy of held-out val/7/a.png" if leak else ""
            rows.append((sid, "leakage", 1.0 if leak else 0.0, sid + 1, leak, None, why))
        cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
        return pd.DataFrame(rows, columns=cols)

    quiet = IssueView(table=table(False), names=["duplicate", "leakage"])
    assert list(quiet.options()) == ["duplicate", "all"] and quiet.leak(1) == ""
    found = IssueView(table=table(True), names=["duplicate", "leakage"])
    assert found.options()["leakage"] == "Leakage 1"
    assert found.leak(1) == "exact copy of held-out val/7/a.png" and found.leak(0) == ""
    assert found.duplicate_sets() == [[0, 1]]


def test_outliers_on_many_rows_rank_first() -> None:
    """Above ANN_MIN_ROWS rows (the issue pass at scale: the covariance fitted on a subsample,
    every row whitened in chunks) inputs off every class's directions still rank first."""
    from ogad_core.issues.base import IssueContext
    from ogad_core.space.knn import ANN_MIN_ROWS

    rng = np.random.default_rng(0)
    n, c = ANN_MIN_ROWS + 2000, 8
    labels = rng.integers(0, c, n)
    feats = np.abs(rng.normal(0, 0.3, size=(n, 64))).astype(np.float32)
    feats[np.arange(n), labels] += 3.0
    far = np.arange(n - 10, n)
    feats[far] = np.abs(rng.normal(0, 0.3, size=(10, 64))) + 2.0 * (np.arange(64) >= 48)
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": labels})
    ctx = IssueContext(samples=samples, label_names=[str(i) for i in range(c)], features=feats)
    est = OutlierIssue().fit(ctx)
    assert set(np.argsort(-est.scores_)[:10]) == set(far)
    assert est.flagged_[far].all() and est.flagged_.sum() < 0.02 * n


def test_an_imagefolder_with_a_test_split_is_checked_for_leakage_without_holdout(
    sample_data: Path, tmp_path: Path
) -> None:
    """`imagefolder:ROOT` holding train/ and test/: the test split is the held-out split the
    `leakage` type compares with when no `--holdout` is given; a flat folder carries none."""
    from PIL import Image

    from ogad_core.data.sources import spec_held_out
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute
    from ogad_core.run.rundir import RunDir

    root = tmp_path / "photos"
    shutil.copytree(sample_data / "digits_folder", root / "train")
    assert spec_held_out(f"imagefolder:{root / 'train'}") is None
    rng = np.random.default_rng(1)
    classes = sorted(p.name for p in (root / "train").iterdir())
    for j, cls in enumerate(classes):
        (root / "test" / cls).mkdir(parents=True)
        noise = rng.integers(0, 255, (28, 28), dtype=np.uint8)
        Image.fromarray(noise).save(root / "test" / cls / f"other_{j}.png")
    leaked = sorted((root / "train").rglob("*.png"))[7]
    shutil.copy(leaked, root / "test" / leaked.parent.name / "copy.png")
    assert spec_held_out(f"imagefolder:{root}") == f"imagefolder:{root / 'test'}"
    config = ComputeConfig(
        data=f"imagefolder:{root}", image_size=16, epochs=1, detectors=("loss",), workers=0
    )
    compute(config, tmp_path / "run", progress=False)
    rd = RunDir(tmp_path / "run")
    refs = [str(r) for r in rd.read_samples()["ref"]]
    issues = rd.read_issues()
    flagged = issues[(issues["issue"] == "leakage") & issues["flagged"]]
    assert set(flagged["sample_id"]) == {refs.index(str(leaked.resolve()))}


def test_neighbours_among_a_subset_is_the_one_knn_search(monkeypatch) -> None:
    """``neighbours_among`` (the outlier type's search of the bulk) is ``_knn_excluding_self``
    given the queries: one search function, exact on small data (a query among the rows
    never returns itself; one outside them keeps its k nearest)."""
    import ogad_core.issues.base as base

    rng = np.random.default_rng(0)
    n, k = 200, 5
    feats = rng.normal(size=(n, 8)).astype(np.float32)
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": rng.integers(0, 3, n)})
    ctx = base.IssueContext(samples=samples, label_names=["a", "b", "c"], features=feats)
    rows, queries = np.arange(0, n, 2), np.array([0, 1, 4, 7, 199])
    calls: list[np.ndarray | None] = []
    search = base._knn_excluding_self

    def counted(z: np.ndarray, kk: int, *args: Any, **kwargs: Any) -> tuple:
        calls.append(kwargs.get("queries"))
        return search(z, kk, *args, **kwargs)

    monkeypatch.setattr(base, "_knn_excluding_self", counted)
    found = ctx.neighbours_among("features", k, rows, queries)
    assert found is not None and len(calls) == 1 and np.array_equal(calls[0], queries)
    dist, idx = found
    for q, d_row, i_row in zip(queries, dist, idx, strict=True):
        others = rows[rows != q]
        exact = np.linalg.norm(feats[others] - feats[q], axis=1)
        order = np.argsort(exact)[:k]
        assert np.array_equal(i_row, others[order])
        np.testing.assert_allclose(d_row, exact[order], rtol=1e-4)


@pytest.mark.parametrize("embeddings", [False, True], ids=["image", "encoder"])
def test_the_pass_releases_each_search_once_no_later_type_reads_it(
    embeddings: bool, monkeypatch
) -> None:
    """The issue pass drops a cached neighbour search once no type still to be fitted reads
    it (the types say which spaces they read): after the duplicate type only the label type's
    space is kept (its pixel spaces go), nothing after the last type; no search is repeated
    and every score, flag and set is the pass's without the release."""
    import ogad_core.issues.base as base
    from ogad_core.issues.registry import DEFAULT_ISSUE_TYPES, resolve_issue_types
    from ogad_core.issues.table import fit_in_turn

    def context() -> base.IssueContext:
        ctx = small_context(n=200)
        rng = np.random.default_rng(1)
        ctx.registration = rng.integers(0, 255, (200, 32, 32), dtype=np.uint8)
        if embeddings:
            ctx.embeddings = ctx.features + rng.normal(0, 0.1, ctx.features.shape)
        return ctx

    searched: list[int] = []
    search = base._knn_excluding_self

    def counted(z: np.ndarray, k: int, *args: Any, **kwargs: Any) -> tuple:
        searched.append(k)
        return search(z, k, *args, **kwargs)

    monkeypatch.setattr(base, "_knn_excluding_self", counted)
    ctx = context()
    kept = {}
    for est in fit_in_turn(ctx, resolve_issue_types(DEFAULT_ISSUE_TYPES)):
        kept[est.name] = {name for name, _, _ in ctx._knn}
    released = (ctx, len(searched))
    monkeypatch.setattr(base.IssueContext, "release_neighbours", lambda self, keep: None)
    whole = context()
    fitted = {e.name: e for e in fit_issue_types(whole, list(DEFAULT_ISSUE_TYPES))}
    assert released[1] == len(searched) - released[1] > 0  # the same searches, none again
    label = "embeddings/unit" if embeddings else "features/unit"
    assert kept["duplicate"] == {label}  # the label type's (the outlier type's: not yet)
    assert kept["label"] == set() and {"pixels", "pixels/fourier/unit"} <= {
        name for name, _, _ in whole._knn
    }
    for name, est in released[0].results.items():
        assert np.array_equal(est.scores_, fitted[name].scores_), name
        assert np.array_equal(est.set_ids_, fitted[name].set_ids_), name


def test_a_density_search_among_a_reference_of_many_rows_uses_an_inverted_file(
    monkeypatch,
) -> None:
    """Above REFERENCE_ROWS (here lowered to 500) a density estimate's search of a /pca space
    among the seeded reference (the label and outlier types' k nearest) is an inverted file
    scanning IVF_REFERENCE_PROBE of its lists, no graph built; its neighbours are reference
    rows other than the query and nearly all the exact ones. At or below REFERENCE_ROWS
    rows (every kept run) the search is the one it was: exact, no inverted file."""
    import ogad_core.issues.base as base
    import ogad_core.space.knn as knn

    monkeypatch.setattr(base, "REFERENCE_ROWS", 500)
    monkeypatch.setattr(knn, "IVF_REFERENCE_PROBE", 4)
    built: list[tuple[str, int]] = []
    indexes: list[Any] = []
    ivf, graph = base.ivf_index, knn.hnsw_index

    def inverted(z: np.ndarray, seed: int = 0) -> Any:
        indexes.append(ivf(z, seed))
        built.append(("ivf", len(z)))
        return indexes[-1]

    monkeypatch.setattr(base, "ivf_index", inverted)
    monkeypatch.setattr(knn, "hnsw_index", lambda z: built.append(("hnsw", len(z))) or graph(z))
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (10, 32))
    labels = rng.integers(0, 10, 1200)
    feats = (centres[labels] + rng.normal(0, 1, (1200, 32))).astype(np.float32)
    samples = pd.DataFrame({"sample_id": np.arange(1200), "label": labels})
    ctx = base.IssueContext(samples=samples, label_names=list("abcdefghij"), features=feats)
    dist, idx = ctx.neighbours("features/unit/pca", 10, reference=500)
    assert built == [("ivf", 500)] and (indexes[0].nlist, indexes[0].nprobe) == (12, 4)
    rows = ctx.reference_rows(500)
    assert np.isin(idx, rows).all() and not (idx == np.arange(1200)[:, None]).any()
    Z = ctx.space("features/unit/pca")
    exact = base._knn_excluding_self(Z, 10, rows)[1]
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(idx, exact, strict=True)])
    assert recall > 0.9, recall
    small = base.IssueContext(
        samples=samples[:500], label_names=ctx.label_names, features=feats[:500]
    )
    built.clear()
    found = small.neighbours("features/unit/pca", 10, reference=500)
    assert built == [] and found is not None  # 500 rows: exact, as before


def test_some_rows_of_a_space_are_those_rows_of_the_whole_space() -> None:
    """``IssueContext.space(name, rows=...)`` (the outlier type standardises only the rows it
    searches) equals the whole space's rows bit for bit; the statistics and a PCA are fitted
    on every row."""
    from ogad_core.issues.base import IssueContext

    rng = np.random.default_rng(0)
    n = 300
    signatures = rng.uniform(0, 1, (n, 256)).astype(np.float32)
    signatures[5] = np.nan  # an undecodable image
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": rng.integers(0, 3, n)})
    ctx = IssueContext(
        samples=samples,
        label_names=["a", "b", "c"],
        features=rng.normal(size=(n, 8)).astype(np.float32),
        signatures=signatures,
    )
    rows = np.array([250, 3, 5, 17, 17, 299])
    for name in ("pixels/standard", "pixels/fourier/unit", "features/unit"):
        whole = ctx.space(name)
        assert whole is not None
        np.testing.assert_array_equal(ctx.space(name, rows=rows), whole[rows])
    for name in ("pixels/pca", "pixels/stats"):
        with pytest.raises(ValueError, match="every row"):
            ctx.space(name, rows=rows)


def test_the_label_type_reuses_the_pca_the_duplicate_type_searched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On many rows the duplicate type's candidates and the label type's vote both search
    ``features/unit/pca``: its PCA is fitted once in a pass, and dropped with the searches
    once no type still to be fitted reads the space."""
    import ogad_core.issues.base as base
    import ogad_core.issues.label as label
    import ogad_core.space.pca as pca_module
    from ogad_core.issues.base import IssueContext
    from ogad_core.issues.label import LabelIssue
    from ogad_core.space.knn import ANN_MIN_ROWS

    for module in (base, label):  # the vote searches a reference, not the candidates' rows
        monkeypatch.setattr(module, "REFERENCE_ROWS", 5000)

    fitted = []
    transform = pca_module.pca_transform

    def counted(X, *args, **kwargs):
        fitted.append(X.shape)
        return transform(X, *args, **kwargs)

    monkeypatch.setattr(pca_module, "pca_transform", counted)
    rng = np.random.default_rng(0)
    n = ANN_MIN_ROWS + 1000
    labels = rng.integers(0, 4, n)
    feats = (rng.normal(size=(4, 32))[labels] + rng.normal(size=(n, 32))).astype(np.float32)
    loss = rng.uniform(0, 2, n)
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "label": labels,
            "pred": labels,
            "confidence": np.exp(-loss),
            "loss": loss,
        }
    )
    ctx = IssueContext(
        samples=samples,
        label_names=list("abcd"),
        features=feats,
        scores=pd.DataFrame({"sample_id": np.arange(n), "loss_score": loss}),
        detector="loss",
    )
    DuplicateIssue(spaces=("features/unit",), verify=0).fit(ctx)
    assert len(fitted) == 1 and "features/unit/pca" in ctx._pca_spaces
    LabelIssue().fit(ctx)
    assert len(fitted) == 1  # the label type's vote searched the same PCA
    assert {(name, ref) for name, _, ref in ctx._knn} == {
        ("features/unit/pca", None),
        ("features/unit/pca", 5000),
    }
    ctx.release_neighbours(set())
    assert not ctx._pca_spaces and not ctx._knn
