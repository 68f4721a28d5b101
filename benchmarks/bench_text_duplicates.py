"""The duplicate type's text verification measured on kept text runs of ``bench_issues``.

``python -m benchmarks.bench_text_duplicates DIR [DIR ...] --out F.json``: each DIR holds
``text_run_N`` and ``text_truth_N.parquet`` (``bench_issues --tmp-dir``). For every run:

- the word edits of each injected duplicate against its source (the edit kinds of the held-out
  mix: case, punctuation, a word dropped; the main mix's exact copies) and whether the source
  is among its candidates (its ``verify_k`` nearest in the encoder's embeddings);
- the word edits of every candidate pair of two clean reviews (the hardest look-alikes: each
  review's nearest), and for each words-per-edit N how many of either pass the rule;
- the CPU cost of the words (per text) and of the edit distance (per candidate pair).

Only reads the runs (no issues.parquet written). ``--scale N`` (without DIR: 100,000) instead
times the words and the edit distance on N synthetic texts (the shipped Rotten Tomatoes sample,
three words of each replaced by rare tokens, so the vocabulary grows with N) and 6 random
candidates a text.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: synthetic texts timed when no kept runs are given
DEFAULT_SCALE = 100_000
#: words-per-edit values whose passes are counted
RULES = (3, 4, 5, 6, 8, 10)


def _runs(dirs: list[Path]) -> list[tuple[str, int, Path, Path]]:
    out = []
    for d in dirs:
        for run in sorted(d.glob("text_run_*")):
            seed = int(run.name.rsplit("_", 1)[1])
            truth = d / f"text_truth_{seed}.parquet"
            if truth.is_file():
                out.append((d.name, seed, run, truth))
    return out


def _pair_edits(coded: list[str], pairs: np.ndarray) -> np.ndarray:
    """(M, 2) int: word edits and the longer length of each pair."""
    from rapidfuzz.distance import Levenshtein

    return np.array(
        [
            (Levenshtein.distance(coded[i], coded[j]), max(len(coded[i]), len(coded[j])))
            for i, j in pairs
        ],
        dtype=np.int64,
    ).reshape(-1, 2)


def measure_run(run: Path, truth_path: Path, seed: int) -> dict[str, Any]:
    """One kept run: injected and clean candidate pairs' word edits, and the cost."""
    from ogad_core.issues.duplicate import DuplicateIssue
    from ogad_core.issues.text_match import edit_ratio, word_strings
    from ogad_core.pipeline.issue_step import load_context
    from ogad_core.run.rundir import RunDir

    rd = RunDir(run)
    ctx = load_context(rd, rd.load_manifest(), seed=seed)
    truth = pd.read_parquet(truth_path)
    texts = ctx.samples["ref"].astype(str).tolist()
    est = DuplicateIssue()
    pairs = est._verify_candidates(ctx, est.text_spaces)
    t0 = time.process_time()
    coded = word_strings(texts)
    t1 = time.process_time()
    edit_ratio(coded, pairs, est.words_per_edit)
    t2 = time.process_time()
    kind = truth["kind"].to_numpy(dtype=str)
    key = truth["set_key"].to_numpy()
    variant = truth["variant"].to_numpy(dtype=str) if "variant" in truth else kind
    candidates = {(int(i), int(j)) for i, j in pairs}
    injected = []
    for d in np.flatnonzero(np.char.startswith(kind, "dup_") & ~np.char.endswith(kind, "_source")):
        src = int(next(s for s in np.flatnonzero(key == key[d]) if s != d))
        edits, longer = _pair_edits(coded, np.array([[d, src]]))[0]
        injected.append(
            dict(
                variant=str(variant[d]),
                edits=int(edits),
                words=int(longer),
                candidate=(min(d, src), max(d, src)) in candidates,
            )
        )
    clean = kind == "clean"
    both = pairs[clean[pairs[:, 0]] & clean[pairs[:, 1]]]
    ce = _pair_edits(coded, both)
    ce = ce[ce[:, 0] > 0]  # a review in the data twice is a real duplicate, not a look-alike
    inj = pd.DataFrame(injected)
    n = est.words_per_edit
    inj_ratio = (inj["edits"] + 0.5) / (inj["words"] // n + 1)
    clean_ratio = (ce[:, 0] + 0.5) / (ce[:, 1] // n + 1)
    closest = np.argsort(ce[:, 0] / np.maximum(ce[:, 1], 1), kind="stable")[:5]
    return {
        "run": str(run),
        "seed": seed,
        "texts": len(texts),
        "candidate_pairs": len(pairs),
        "clean_pairs": len(both),
        "words_cpu_s": t1 - t0,
        "edits_cpu_s": t2 - t1,
        "injected": injected,
        "injected_max_edits_per_word": float((inj["edits"] / inj["words"]).max()),
        "clean_closest": [[int(e), int(w)] for e, w in ce[closest]],
        "injected_ratio": sorted(inj_ratio.round(3).tolist()),
        "clean_ratio_smallest": np.sort(clean_ratio)[:10].round(3).tolist(),
        "passes": {
            str(n): {
                "injected": int(((inj["edits"] <= inj["words"] // n) & inj["candidate"]).sum()),
                "clean": int((ce[:, 0] <= ce[:, 1] // n).sum()),
            }
            for n in RULES
        },
    }


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the runs: passes per rule, cost per pair and per text."""
    pairs = sum(r["candidate_pairs"] for r in results)
    texts = sum(r["texts"] for r in results)
    edits = sum(r["edits_cpu_s"] for r in results)
    words = sum(r["words_cpu_s"] for r in results)
    per_text = (edits + words) / texts
    return {
        "runs": len(results),
        "injected": sum(len(r["injected"]) for r in results),
        "passes": {
            n: {k: sum(r["passes"][n][k] for r in results) for k in ("injected", "clean")}
            for n in map(str, RULES)
        },
        "cpu_us_per_pair": 1e6 * edits / max(pairs, 1),
        "cpu_us_per_text_words": 1e6 * words / texts,
        "pairs_per_text": pairs / texts,
        "cpu_us_per_text": 1e6 * per_text,
        "cpu_s_at_1m_texts": per_text * 1e6,
        "load_average": list(os.getloadavg()),
    }


def scale_run(n: int, seed: int = 0) -> dict[str, Any]:
    """CPU us a text (its words) and a candidate pair (the edit distance) at N texts."""
    from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV
    from ogad_core.issues.registration import neighbour_pairs
    from ogad_core.issues.text_match import edit_ratio, word_strings

    base = pd.read_csv(RT_SAMPLE_CSV)["text"].astype(str).tolist()
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        w = base[i % len(base)].split()
        for _ in range(3):
            w[int(rng.integers(len(w)))] = f"w{int(rng.integers(10**6))}"
        texts.append(" ".join(w))
    t0 = time.process_time()
    coded = word_strings(texts)
    t1 = time.process_time()
    pairs = neighbour_pairs(rng.integers(0, n, size=(n, 6)), undirected=True)
    t2 = time.process_time()
    edit_ratio(coded, pairs)
    t3 = time.process_time()
    return {
        "texts": n,
        "pairs": len(pairs),
        "cpu_us_per_text_words": 1e6 * (t1 - t0) / n,
        "cpu_us_per_pair": 1e6 * (t3 - t2) / len(pairs),
        "load_average": list(os.getloadavg()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="*", type=Path)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--scale",
        type=int,
        default=0,
        help=f"time N synthetic texts (default without DIRs: {DEFAULT_SCALE:,})",
    )
    a = p.parse_args()
    if a.scale or not a.dirs:  # without kept runs (as run_all calls it): the cost alone
        scaled = scale_run(a.scale or DEFAULT_SCALE)
        print(json.dumps(scaled, indent=1))
        if a.out:
            a.out.write_text(json.dumps(scaled, indent=1), encoding="utf-8")
        return
    results = [measure_run(run, truth, seed) for _, seed, run, truth in _runs(a.dirs)]
    out = {"results": results, "summary": summary(results)}
    print(json.dumps(out["summary"], indent=1))
    for r in results:
        print(
            r["run"],
            "injected max edits/word",
            round(r["injected_max_edits_per_word"], 3),
            "clean closest (edits, words)",
            r["clean_closest"],
        )
        print(
            "  ratio: injected largest",
            r["injected_ratio"][-4:],
            "clean smallest",
            r["clean_ratio_smallest"][:4],
        )
    if a.out:
        a.out.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
