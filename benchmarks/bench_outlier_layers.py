"""Image outliers in SmallCNN's EARLIER layers (Lee et al. 2018's feature ensemble over layers,
Sastry & Oore 2020's Gram matrices), measured offline on kept image runs of both mixes.

Per run: the run's checkpoint (``model/final.pt``) and its image files, decoded as the model
step decodes them (the hidden layer reproduces ``features.npy`` to float precision: checked),
give per image the conv block's output (64 x 4 x 4), each conv layer's per-channel means and
Gram matrices. Each candidate space's distance (Mahalanobis to the nearest class on unit rows,
as the outlier type measures the model's spaces, or the mean distance to the k = 1% nearest)
is scored alone (AUROC against the clean digits, per kind) and in the outlier type: in the
model's view beside the features and gradients, or replacing the features (each run's corrupt
and duplicate types fitted first, top-K per outlier kind in the outlier queue, flags, clean
flags). A per-glyph table of the held-out mix's other scripts says which glyphs miss, with a
contact sheet (``--sheet``). Torch is used here only: the issue step stays torch-free.

    python -m benchmarks.bench_outlier_layers --runs DIR [--sheet docs/outlier_glyphs.png]

``DIR`` holds ``{main,alt}/images_run_{0,1,2}`` and ``{main,alt}/images_truth_{N}.parquet``
(``bench_issues --tmp-dir``'s layout). Read-only on the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_issues import _in_sample_order, mix_kinds
from ogad_core.issues.base import IssueContext, default_k
from ogad_core.issues.mahalanobis import class_mahalanobis
from ogad_core.issues.outlier import MODEL_VIEW, OutlierIssue, _distance, _undecoded
from ogad_core.issues.tail import upper_z

RESULTS = Path(__file__).resolve().parent / "results" / "outlier_layers.json"
#: SmallCNN.features: the ReLU outputs of the two conv layers, and the pooled block output
CONV1, CONV2, BLOCK = 1, 4, 6
#: candidate spaces put in the model's view (or in place of the features)
CANDIDATES = ("conv", "conv_knn", "channels", "gram1", "gram2", "gram_dev")
REPLACING = ("conv", "conv_knn", "channels")


def activations(run: Path) -> dict[str, np.ndarray]:
    """Per image of ``run`` (sample order): (N, 1024) conv block output, (N, 96) per-channel
    means of conv1 and conv2, (N, C(C+1)/2) Gram matrices of each (powers 1 and 2), (N, 128)
    hidden layer and (N, C) logits, from model/final.pt."""
    import torch

    from ogad_core.data.images import UndecodableImage, decode_image
    from ogad_core.engine.models import SmallCNN

    manifest = json.loads((run / "manifest.json").read_text())
    refs = pd.read_parquet(run / "samples.parquet")["ref"].tolist()
    channels, side = manifest["dims"]["input"][:2]
    X = np.zeros((len(refs), channels, side, side), np.float32)
    for i, ref in enumerate(refs):
        try:
            X[i] = decode_image(ref, side, channels, manifest["config"]["max_pixels"])
        except UndecodableImage:
            pass  # the model step's stand-in: zeros
    model = SmallCNN(in_channels=channels, n_classes=len(manifest["label_names"]))
    model.load_state_dict(torch.load(run / "model" / "final.pt", weights_only=True))
    model.eval()
    acts: dict[int, torch.Tensor] = {}
    for i in (CONV1, CONV2, BLOCK):
        model.features[i].register_forward_hook(lambda _m, _x, y, i=i: acts.__setitem__(i, y))
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(X), 512):
            logits = model(torch.from_numpy(X[start : start + 512]))
            batch = _batch_spaces(acts, model, logits)
            for name, value in batch.items():
                parts.setdefault(name, []).append(value)
    return {name: np.concatenate(v) for name, v in parts.items()}


def _batch_spaces(acts: dict[int, Any], model: Any, logits: Any) -> dict[str, np.ndarray]:
    """One batch's activations as the candidate spaces' raw columns."""
    c1, c2 = acts[CONV1], acts[CONV2]
    return {
        "block": acts[BLOCK].flatten(1).numpy(),
        "channels": np.column_stack([c1.mean((2, 3)).numpy(), c2.mean((2, 3)).numpy()]),
        "gram1_p1": gram(c1, 1),
        "gram2_p1": gram(c2, 1),
        "gram1": gram(c1, 2),
        "gram2": gram(c2, 2),
        "hidden": model.hidden(acts[BLOCK]).numpy(),
        "logits": logits.numpy(),
    }


def gram(a: Any, power: int) -> np.ndarray:
    """(B, C(C+1)/2) upper triangle of (A^p A^p^T)^(1/p) / HW for (B, C, H, W) activations
    (Sastry & Oore 2020's p-th order Gram matrix)."""
    import torch

    b, c = a.shape[:2]
    A = a.reshape(b, c, -1).double() ** power
    G = torch.bmm(A, A.transpose(1, 2)) / A.shape[-1]
    G = G.sign() * G.abs() ** (1.0 / power)
    iu = torch.triu_indices(c, c)
    return G[:, iu[0], iu[1]].float().numpy()


def unit(X: np.ndarray) -> np.ndarray:
    """(N, d) rows scaled to unit length."""
    X = np.asarray(X, np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def standardised(X: np.ndarray) -> np.ndarray:
    """(N, d) columns at zero median and unit standard deviation."""
    X = np.asarray(X, np.float64)
    scale = X.std(0)
    return (X - np.median(X, 0)) / np.where(scale > 1e-9, scale, 1.0)


def knn_distance(X: np.ndarray, k: int) -> np.ndarray:
    """(N,) mean distance to the k nearest other rows (exact)."""
    from sklearn.neighbors import NearestNeighbors

    d = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)[0]
    return d[:, 1:].mean(1)


def gram_deviation(G: np.ndarray, pred: np.ndarray, q: float = 0.01) -> np.ndarray:
    """(N,) Sastry & Oore's deviation: per predicted class, each Gram entry's relative distance
    outside the class's [q, 1 - q] quantiles (their min / max, robust to the outliers being
    among the rows), summed over the entries."""
    out = np.zeros(len(G))
    for c in np.unique(pred):
        rows = pred == c
        lo, hi = np.quantile(G[rows], [q, 1 - q], axis=0)
        below = np.maximum(lo - G[rows], 0) / (np.abs(lo) + 1e-6)
        above = np.maximum(G[rows] - hi, 0) / (np.abs(hi) + 1e-6)
        out[rows] = (below + above).sum(1)
    return out


def distances(acts: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, np.ndarray]:
    """Candidate space -> (N,) distance from the data."""
    k = default_k(len(labels))
    pred = acts["logits"].argmax(1)
    out = {
        "conv": class_mahalanobis(unit(acts["block"]), labels),
        "conv_knn": knn_distance(unit(acts["block"]), k),
        "channels": class_mahalanobis(unit(acts["channels"]), labels),
        "channels_knn": knn_distance(standardised(acts["channels"]), k),
        "hidden": class_mahalanobis(unit(acts["hidden"]), labels),
    }
    for name in ("gram1", "gram2", "gram1_p1", "gram2_p1"):
        out[name] = knn_distance(standardised(np.log1p(acts[name])), k)
    grams = [gram_deviation(acts[n], pred) for n in ("gram1", "gram2", "gram1_p1", "gram2_p1")]
    out["gram_dev"] = np.sum([g / max(float(g.mean()), 1e-12) for g in grams], 0) + 1e-3
    return out


class LayerOutlier(OutlierIssue):
    """The outlier type with precomputed candidate distances as extra spaces: ``model`` ones
    averaged in the model's view, the others in the input's."""

    def __init__(self, spaces: tuple[str, ...], extra: dict[str, np.ndarray]) -> None:
        super().__init__(spaces=spaces)
        self.extra = extra

    def fit(self, context: IssueContext) -> LayerOutlier:
        zs, used = [], []
        for space in self.spaces:
            dist = self.extra[space] if space in self.extra else _distance(context, space)
            if dist is not None:
                zs.append(upper_z(np.log(np.maximum(dist, 1e-12))))
                used.append(space)
        self.spaces_used_, self.space_z_ = used, np.stack(zs, axis=1)
        self._add_size_bonus(context, used)  # the library's small-object bonus, as there
        model = np.isin(used, MODEL_VIEW + CANDIDATES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            views = [np.nanmean(self.space_z_[:, m], 1) for m in (model, ~model) if m.any()]
            scores = np.nan_to_num(np.nanmean(np.column_stack(views), 1), nan=0.0)
        scores[_undecoded(context)] = 0.0
        self._finish(self._primary(context, scores), self.threshold)
        return self


def variants() -> Iterator[tuple[str, tuple[str, ...]]]:
    """(name, spaces): today's outlier type, each candidate added to the model's view, some
    in place of the features."""
    yield "today", ("features", "gradients", "statistics")
    for c in CANDIDATES:
        yield f"+{c}", ("features", "gradients", c, "statistics")
    for c in REPLACING:
        yield f"{c} for features", (c, "gradients", "statistics")


def run_contexts(root: Path) -> Iterator[tuple[str, int, Path, IssueContext, pd.DataFrame]]:
    """Each kept image run with its truth in sample order, corrupt and duplicate fitted."""
    from ogad_core.issues.table import fit_issue_types
    from ogad_core.pipeline.issue_step import load_context
    from ogad_core.run.rundir import RunDir

    for mix in ("main", "alt"):
        for seed in (0, 1, 2):
            rd = RunDir(root / mix / f"images_run_{seed}")
            truth = pd.read_parquet(root / mix / f"images_truth_{seed}.parquet")
            truth = _in_sample_order("images", rd, truth)
            context = load_context(rd, rd.load_manifest(), seed=seed)
            fit_issue_types(context, ["corrupt", "duplicate"])
            yield mix, seed, rd.path, context, truth


def queue_figures(mix: str, issue: OutlierIssue, truth: pd.DataFrame) -> dict[str, float]:
    """Per outlier kind: top-K share and flagged share; clean flags and clean in the top K."""
    kind = truth["kind"].astype(str).to_numpy()
    k = int((truth["expected"] == "outlier").sum())
    top = np.argsort(-issue.scores_, kind="stable")[:k]
    out: dict[str, float] = {}
    for name, (_, expected) in mix_kinds("images", mix).items():
        if expected == "outlier":
            rows = np.flatnonzero(kind == name)
            out[name] = float(np.isin(rows, top).mean())
            out[name + ":flag"] = float(issue.flagged_[rows].mean())
    out["clean_flags"] = float(issue.flagged_[kind == "clean"].sum())
    out["clean_topk"] = float((kind[top] == "clean").sum())
    return out


def alone_auroc(space_z: dict[str, np.ndarray], truth: pd.DataFrame) -> list[dict[str, Any]]:
    """Per space and outlier kind: AUROC of the space's z against the clean digits."""
    from sklearn.metrics import roc_auc_score

    kind = truth["kind"].astype(str).to_numpy()
    clean = kind == "clean"
    rows = []
    for name in sorted(set(kind[truth["expected"].to_numpy() == "outlier"])):
        these = kind == name
        y = np.r_[np.ones(these.sum()), np.zeros(clean.sum())]
        for space, z in space_z.items():
            rows.append(
                {"kind": name, "space": space, "auroc": roc_auc_score(y, np.r_[z[these], z[clean]])}
            )
    return rows


def glyph_rows(
    seed: int, issue: OutlierIssue, truth: pd.DataFrame, acts: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """The held-out glyphs: which one (matched against renders), rank, score, each space's z,
    the model's prediction."""
    from PIL import Image

    kind = truth["kind"].astype(str).to_numpy()
    k = int((truth["expected"] == "outlier").sum())
    rank = np.empty(len(kind), int)
    rank[np.argsort(-issue.scores_, kind="stable")] = np.arange(1, len(kind) + 1)
    logits = acts["logits"] - acts["logits"].max(1, keepdims=True)
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names, renders = _glyph_renders()
    out = []
    for i in np.flatnonzero(kind == "ood_script"):
        img = np.asarray(Image.open(truth["path"][i]).convert("L"), np.float64)
        z = dict(zip(issue.spaces_used_, issue.space_z_[i].tolist(), strict=True))
        out.append(
            {
                "seed": seed,
                "glyph": names[int(np.argmax(renders @ _centred(img.ravel())))],
                "label": int(truth["label"][i]),
                "pred": int(prob[i].argmax()),
                "confidence": float(prob[i].max()),
                "rank": int(rank[i]),
                "hit": bool(rank[i] <= k),
                "score": float(issue.scores_[i]),
                **{f"z_{s}": v for s, v in z.items()},
                "path": str(truth["path"][i]),
            }
        )
    return out


def _centred(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64) - np.mean(v)
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _glyph_renders() -> tuple[list[str], np.ndarray]:
    """Every SCRIPT_GLYPHS glyph at the mix's sizes and angles (2-degree steps), centred unit
    rows: a drawn glyph is the best-correlated render."""
    from PIL import Image, ImageDraw, ImageFont

    from benchmarks.issue_mixes_alt import FONT, SCRIPT_GLYPHS

    names, rows = [], []
    for ch in SCRIPT_GLYPHS:
        for size in range(18, 24):
            img = Image.new("L", (28, 28), 0)
            font = ImageFont.truetype(str(FONT), size)
            ImageDraw.Draw(img).text((14, 14), ch, fill=255, font=font, anchor="mm")
            for angle in range(-12, 13, 2):
                names.append(ch)
                rows.append(_centred(np.asarray(img.rotate(float(angle), Image.BILINEAR)).ravel()))
    return names, np.stack(rows)


def contact_sheet(glyphs: list[dict[str, Any]], path: Path) -> None:
    """The glyphs, misses first (red frame) then hits (green), each with its rank, score and
    the model's prediction."""
    from PIL import Image, ImageDraw, ImageFont

    from benchmarks.issue_mixes_alt import FONT

    side, caption, cols = 112, 44, 9
    glyphs = sorted(glyphs, key=lambda g: (g["hit"], g["score"]))
    n_rows = -(-len(glyphs) // cols)
    sheet = Image.new("RGB", (cols * (side + 8), n_rows * (side + caption + 8)), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.truetype(str(FONT), 11)
    for k, g in enumerate(glyphs):
        x, y = (k % cols) * (side + 8) + 4, (k // cols) * (side + caption + 8) + 4
        img = Image.open(g["path"]).convert("L").resize((side, side), Image.NEAREST)
        sheet.paste(img.convert("RGB"), (x, y))
        colour = "green" if g["hit"] else "red"
        draw.rectangle([x - 2, y - 2, x + side + 1, y + side + 1], outline=colour, width=3)
        lines = (
            f"{g['glyph']} seed {g['seed']}, rank {g['rank']}",
            f"z {g['score']:.1f}, filed {g['label']}",
            f"model: {g['pred']} at {g['confidence']:.2f}",
        )
        for j, line in enumerate(lines):
            draw.text((x, y + side + 2 + 13 * j), line, fill="black", font=font)
    sheet.save(path)


def measure(root: Path) -> dict[str, Any]:
    """Every run: the candidate spaces alone and in the outlier type; the glyph table."""
    queues, aurocs, glyphs = [], [], []
    for mix, seed, run, context, truth in run_contexts(root):
        acts = activations(run)
        err = float(np.abs(acts["hidden"] - np.asarray(context.space("features"))).max())
        extra = distances(acts, np.asarray(context.labels))
        today = OutlierIssue().fit(context)
        space_z = {s: today.space_z_[:, j] for j, s in enumerate(today.spaces_used_)}
        space_z.update({s: upper_z(np.log(np.maximum(d, 1e-12))) for s, d in extra.items()})
        for row in alone_auroc(space_z, truth):
            aurocs.append({"mix": mix, "seed": seed, **row})
        for name, spaces in variants():
            _refit_corrupt(context)  # the outlier type defers to it: each variant from scratch
            issue = LayerOutlier(spaces, extra).fit(context)
            queues.append(
                {"mix": mix, "seed": seed, "variant": name, **queue_figures(mix, issue, truth)}
            )
        if mix == "alt":
            _refit_corrupt(context)
            issue = LayerOutlier(("features", "gradients", "statistics"), extra).fit(context)
            glyphs += glyph_rows(seed, issue, truth, acts)
        print(f"{mix} seed {seed}: hidden layer vs features.npy max |diff| {err:.1e}", flush=True)
    return {"queues": queues, "auroc": aurocs, "glyphs": glyphs}


def _refit_corrupt(context: IssueContext) -> None:
    from ogad_core.issues.registry import resolve_issue_type

    corrupt = resolve_issue_type("corrupt")
    corrupt.fit(context)
    context.results["corrupt"] = corrupt


def report(result: dict[str, Any]) -> str:
    """The tables: queue figures per variant and mix, alone AUROC per space, glyph misses."""
    q = pd.DataFrame(result["queues"])
    lines = []
    for mix, group in q.groupby("mix", sort=False):
        cols = [c for c in group.columns if c not in ("mix", "seed", "variant")]
        table = group.groupby("variant", sort=False)[cols].mean().dropna(axis=1, how="all")
        lines.append(f"{mix} (means over seeds)\n{table.round(3).to_string()}")
    a = pd.DataFrame(result["auroc"]).groupby(["space", "kind"])["auroc"].mean().unstack()
    lines.append(f"AUROC against the clean digits, alone\n{a.round(3).to_string()}")
    g = pd.DataFrame(result["glyphs"]).drop(columns="path").sort_values(["hit", "score"])
    lines.append(f"held-out glyphs\n{g.round(2).to_string(index=False)}")
    return "\n\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="{main,alt}/images_run_N")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG")
    args = parser.parse_args(argv)
    if not (args.runs / "alt" / "images_run_0").is_dir():
        print(f"error: {args.runs} has no alt/images_run_0 (bench_issues' layout)", file=sys.stderr)
        return 2
    result = measure(args.runs)
    args.out.write_text(json.dumps(result, indent=1))
    if args.sheet is not None:
        contact_sheet(result["glyphs"], args.sheet)
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
