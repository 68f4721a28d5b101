"""The benchmarks ``run_all`` knows: how to run each one and summarise its result in one line.

Paths of the results and the docs page are defined here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
QUICK = RESULTS / "quick"  # --quick results: never mixed into the docs' figures
DOCS = REPO / "docs" / "benchmarks.md"
ALL_JSON = RESULTS / "all.json"

Summary = Callable[[dict[str, Any]], str]


def fmt(v: Any, spec: str = ".3f") -> str:
    """``format(v, spec)``, ``-`` for None."""
    return "-" if v is None else format(v, spec)


def _sum_extraction(r: dict[str, Any]) -> str:
    return (
        f"closed form / forward {r['ratio_closed_over_forward']:.2f}x; "
        f"{r['speedup_closed_vs_loop']:.0f}x faster than one backward per sample"
    )


def _sum_memory(r: dict[str, Any]) -> str:
    gib = 2**30
    return (
        f"{r['rows']:,} x {r['cols']:,} = {r['matrix_bytes'] / gib:.2f} GiB matrix, "
        f"peak RSS {r['peak_rss_bytes'] / gib:.2f} GiB ({r['peak_rss_over_matrix']:.2f}x)"
    )


def _sum_detectors(r: dict[str, Any]) -> str:
    top = max(d["size"] for d in r["detectors"])
    cells = [f"{d['detector']} {d['seconds']:.1f}s" for d in r["detectors"] if d["size"] == top]
    return f"{top:,} rows: " + ", ".join(cells)


def _sum_quality(r: dict[str, Any]) -> str:
    from benchmarks.bench_quality import case_id, read_quality_report
    from ogad_core.evaluation.cost import ratio_same_load

    report = read_quality_report(r)
    c = report.compute
    if c is None:
        raise ValueError("the quality report has no compute section")
    same = c.cleanlab_over_best_gradient_compute_same_load or ratio_same_load(report)
    out = (
        f"best gradient {c.best_gradient_detector} AUROC "
        f"{fmt(c.best_gradient_auroc)} vs cleanlab {fmt(c.cleanlab_auroc)}, "
        f"cleanlab {fmt(c.cleanlab_over_best_gradient_compute, '.1f')}x the compute "
        f"({fmt(same, '.1f')}x timed under the same load)"
    )
    for ck in r.get("checkpoint_studies") or []:
        final = max(x["final_auroc"] for x in ck["final_vs_checkpoints"])
        ckpt = max(x["checkpoints_auroc"] for x in ck["final_vs_checkpoints"])
        out += (
            f"; {case_id(ck['run']['config'])}: checkpoints AUROC {ckpt:.3f} vs final {final:.3f}"
        )
    return out


def _sum_moons(r: dict[str, Any]) -> str:
    by = {row["method"]: row for row in r["rows"]}
    parts = []
    for name in ("iforest", "l2", "cleanlab", "none"):
        if name in by:
            d, a = by[name]["detection_pct"]["mean"], by[name]["test_accuracy_pct"]["mean"]
            p = (by[name].get("paper_metric_pct") or {}).get("mean")
            parts.append(f"{name} {fmt(d, '.0f')}/{fmt(p, '.1f')}/{fmt(a, '.1f')}")
    return "top-20 %/paper's metric %/test acc %: " + ", ".join(parts)


def _sum_dashboard(r: dict[str, Any]) -> str:
    keep = (
        "map_paint_warm",
        "click_to_next_card",
        "click_to_next_card_in_page",
        "confirm_to_next_card",
    )
    rows = [x for x in r.get("results", []) if x["measure"] in keep]
    rows = rows or r.get("results", [])[:4]
    return ", ".join(
        f"{x['measure']}@{x.get('n_samples', r.get('n_samples'))} {x['median_ms']:.0f} ms"
        for x in rows
    )


def _sum_reviewers(r: dict[str, Any]) -> str:
    t, k = r["throughput"], r["check"]
    return (
        f"{t['decisions_per_s']:,.0f} decisions/s with {t['writers']} writers; {k['lost']} of "
        f"{k['acknowledged']:,} acknowledged decisions lost after "
        f"{r['crashes']['kills_while_writing']} kill -9"
    )


def _sum_text(r: dict[str, Any]) -> str:
    out = (
        f"encode {r['encode_texts_per_s']:.0f} texts/s; head gradients "
        f"{r['gradient_last_per_s']:,.0f}/s ({r['gradient_last_over_encode']:.3f}x encoding)"
    )
    if r.get("quality_l2_auroc") is not None:
        out += (
            f"; rotten-tomatoes AUROC l2 {r['quality_l2_auroc']:.3f}, iforest "
            f"{r['quality_iforest_auroc']:.3f}, loss {r['quality_loss_auroc']:.3f}"
        )
    return out


def _sum_generic(r: dict[str, Any]) -> str:
    scalars = [f"{k}={v}" for k, v in r.items() if isinstance(v, int | float | str)][:5]  # unknown
    return ", ".join(scalars)


def _scale_docs() -> Any:
    from benchmarks import scale_docs  # the Ray and map summaries live with their renderer

    return scale_docs


@dataclass(frozen=True)
class Bench:
    """One benchmark module and how to run and summarise it."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    result: str | None = None  # file under benchmarks/results
    summarize: Summary = _sum_generic
    note: str = ""
    extra_results: tuple[str, ...] = field(default_factory=tuple)
    quick_out: tuple[str, ...] = ("--out",)  # flag naming the result file (quick: under QUICK)
    quick_plots: tuple[str, ...] = ()  # flags and file names of plots (quick: under QUICK)

    @property
    def stem(self) -> str:
        """The module's file name without ``.py``."""
        return self.module.rsplit(".", 1)[1]

    def result_files(self, folder: Path) -> list[Path]:
        """Where its result may be, in ``folder`` (none for an unknown module)."""
        names = [self.result, *self.extra_results] if self.result else []
        return [folder / n for n in names if n]


KNOWN: tuple[Bench, ...] = (
    Bench(
        "extraction",
        "benchmarks.bench_extraction",
        (),
        ("--n", "1000", "--repeat", "1"),
        "extraction.json",
        _sum_extraction,
    ),
    Bench(
        "memory",
        "benchmarks.bench_memory",
        ("--rows", "220000", "--hidden", "512"),
        ("--rows", "20000", "--hidden", "512"),
        "memory.json",
        _sum_memory,
        note="a gradient matrix larger than 4 GiB, streamed to disk",
    ),
    Bench(
        "detectors",
        "benchmarks.bench_detectors",
        (),
        ("--sizes", "5000", "--map-sizes", "5000"),
        "detectors.json",
        _sum_detectors,
    ),
    Bench(
        "quality",
        "benchmarks.bench_quality",
        (
            "--retrain",
            "--trim",
            "5,10",
            "--retrain-methods",
            "iforest,l2,loss,cleanlab,tracin",
            "--retrain-seeds",
            "2",
        ),
        ("--skip-checkpoint-study", "--folds", "3"),
        "quality.json",
        _sum_quality,
        quick_plots=("--plots", ""),
    ),
    Bench(
        "synthetic_moons",
        "benchmarks.synthetic_moons",
        (),
        ("--seeds", "2", "--train-seeds", "1"),
        "synthetic_moons.json",
        _sum_moons,
        quick_plots=("--plot", "moons_flags.png"),
    ),
    Bench(
        "synthetic_moons_e200",
        "benchmarks.synthetic_moons",
        (
            "--epochs",
            "200",
            "--out",
            "benchmarks/results/synthetic_moons_e200.json",
            "--plot",
            "docs/moons_flags_e200.png",
        ),
        ("--epochs", "200", "--seeds", "2", "--train-seeds", "1"),
        "synthetic_moons_e200.json",
        _sum_moons,
        note="the same study trained 4x longer (more memorisation)",
        quick_plots=("--plot", "moons_flags_e200.png"),
    ),
    Bench(
        "dashboard",
        "benchmarks.bench_dashboard",
        (),
        ("--n", "5000", "--repeats", "2"),
        "bench_dashboard.json",
        _sum_dashboard,
    ),
    Bench(
        "reviewers",
        "benchmarks.bench_reviewers",
        (),
        ("--writers", "4", "--decisions", "300", "--kill-rounds", "2", "--kill-decisions", "300"),
        "reviewers.json",
        _sum_reviewers,
    ),
    Bench(
        "ray",
        "benchmarks.bench_ray",
        ("--rows", "8000", "--vmap-rows", "800"),
        ("--rows", "1000", "--vmap-rows", "100"),
        "ray.json",
        lambda r: _scale_docs().summary_ray(r),
    ),
    Bench(
        "map",
        "benchmarks.bench_map",
        ("--sizes", "50000,200000,1000000", "--compare-full", "200000"),
        ("--sizes", "30000"),
        "map.json",
        lambda r: _scale_docs().summary_map(r),
        note="synthetic gradients; run it late, with nice: the 1M map takes minutes",
    ),
    Bench(
        "text",
        "benchmarks.bench_text",
        ("--quality",),
        ("--n", "200", "--lora-n", "8"),
        "text.json",
        _sum_text,
    ),
    Bench(
        "review_sim",
        "benchmarks.bench_review_sim",
        (),
        ("--data", "digits", "--estimate-noise", "0.1", "--timing-rows", "5000"),
        "review_sim.json",
        lambda r: _review_sim_summary(r),
        note="simulated reviewer: re-ranking, suggested labels, review target, default detector",
    ),
    Bench(
        "review_keys",
        "benchmarks.bench_review_keys",
        (),
        ("--n", "5000", "--repeats", "2"),
        "review_keys.json",
        lambda r: _review_keys_summary(r),
        note="a key press on the focused card until the next card has the focus, in Chromium",
    ),
    Bench(
        "evidence",
        "benchmarks.bench_evidence",
        (),
        ("--sizes", "30000"),
        "evidence.json",
        lambda r: own_module("bench_evidence").summary(r),
        note="the review page's neighbours, suggestions and re-rank features; synthetic gradients",
    ),
    Bench(
        "images",
        "benchmarks.bench_images",
        (),
        ("--sizes", "1000", "--encoder-n", "32"),
        "images.json",
        lambda r: own_module("bench_images").summary(r),
    ),
    Bench(
        "rehearsal",
        "benchmarks.bench_rehearsal",
        ("--n", "100000", "--out", "/tmp/ogad_rehearsal", "--threads", "1"),
        ("--n", "2000", "--out", "/tmp/ogad_rehearsal_quick", "--sample", "200"),
        "rehearsal.json",
        lambda r: own_module("bench_rehearsal").summary(r),
        note="the ImageNet-size rehearsal: photos through ogad compute and the dashboard",
        quick_out=("--result",),
    ),
    Bench(
        "projection",
        "benchmarks.bench_projection",
        (),
        ("--n", "32", "--resnet-n", "16", "--gauss-cols", "32768"),
        "projection.json",
        lambda r: own_module("bench_projection").summary(r),
    ),
)


def _review_keys_summary(r: dict[str, Any]) -> str:
    from benchmarks.bench_review_keys import summary

    return summary(r)


def own_module(module: str) -> Any:
    """A benchmark module that renders its own summary line and docs section."""
    import importlib

    return importlib.import_module(f"benchmarks.{module}")


def _review_sim_summary(r: dict[str, Any]) -> str:
    from benchmarks.bench_review_sim import summary

    return summary(r)


def discover() -> list[Bench]:
    """The known benchmarks whose module exists, then any other bench_*.py in benchmarks/."""
    present = {p.stem for p in (REPO / "benchmarks").glob("*.py")}
    out = [b for b in KNOWN if b.stem in present]
    known = {b.stem for b in KNOWN}
    for stem in sorted(present):
        if stem.startswith("bench_") and stem not in known:
            out.append(Bench(stem.removeprefix("bench_"), f"benchmarks.{stem}"))
    return out
