"""Text pipeline speed (and, with ``--quality``, label-noise detection) on Rotten Tomatoes.

    python -m benchmarks.bench_text [--n 1000] [--lora-n 32] [--out benchmarks/results/text.json]
    python -m benchmarks.bench_text --quality [--seeds 0,1,2] [--limit 4000]

Speed (real snippets, the default encoder all-MiniLM-L6-v2, CPU as it is):

1. encoding throughput (texts/s) for the built-in ``layers`` features and for the plain
   sentence embedding, no cache;
2. gradient extraction next to encoding: the built-in text head's closed-form last-layer
   gradients, and per-sample LoRA-adapter gradients (torch.func vmap) on ``--lora-n`` texts;
3. the embedding cache: a cold ``encode_texts(cache_dir=...)`` then a warm one (which must not
   call the encoder at all; the number of encoder calls is reported).

Quality (``--quality``): fresh vs rotten, ``--limit`` train samples, 10% symmetric noise; the
built-in head trained with TEXT_HEAD_RECIPE; AUROC of the l2 gradient norm, Isolation Forest
on the gradients and the loss, per seed and averaged; held-out accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ogad_core.data import rotten_tomatoes
from ogad_core.engine import lora as lora_mod
from ogad_core.engine import text_encoder, text_head
from ogad_core.engine.gradients import compute_gradients
from ogad_core.engine.train import TrainRecipe, train_model


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def speed(a: argparse.Namespace) -> dict:
    data = rotten_tomatoes.load_rotten_tomatoes(limit=max(a.n, 8), seed=0)
    texts = list(data.train.inputs)[: a.n]
    labels = torch.as_tensor(data.train.labels[: a.n])
    text_encoder.load_sentence_encoder(a.encoder, device="cpu")  # load once, outside the timings
    text_encoder.encode_texts(texts[:16], encoder=a.encoder, progress=False)  # warm-up

    emb, t_layers = _timed(
        lambda: text_encoder.encode_texts(texts, encoder=a.encoder, progress=False)
    )
    _, t_sentence = _timed(
        lambda: text_encoder.encode_texts(
            texts, encoder=a.encoder, features="sentence", progress=False
        )
    )

    head = text_head.build_text_head(embeddings=emb, n_classes=2, seed=0)
    recipe = TrainRecipe(**text_head.TEXT_HEAD_RECIPE)
    _, t_train = _timed(
        lambda: train_model(
            head,
            torch.as_tensor(emb),
            labels,
            recipe=recipe,
            seed=0,
            device=torch.device("cpu"),
            progress=False,
        )
    )
    ds = list(zip(torch.as_tensor(emb), labels, strict=True))
    _, t_grad = _timed(lambda: compute_gradients(head, ds, "last", batch_size=256, progress=False))

    lora_texts = texts[: a.lora_n]
    lora = lora_mod.build_lora_classifier(encoder=a.encoder, n_classes=2, seed=0).eval()
    with torch.no_grad():  # nonzero B, as after training, so that every adapter has a gradient
        for name, p in lora.named_parameters():
            if ".lora_B." in name:
                p.normal_(0.0, 0.02)
    ids, _ = lora_mod.tokenize(lora_texts, encoder=a.encoder)
    lora_ds = list(zip(ids, labels[: a.lora_n], strict=True))
    params = ",".join(lora_mod.lora_param_patterns())
    lora_dim = sum(
        p.numel() for n, p in lora.named_parameters() if n in lora_mod.lora_adapter_names(lora)
    )
    _, t_lora = _timed(
        lambda: compute_gradients(
            lora, lora_ds, params, batch_size=32, method="vmap", proj_dim=1024, progress=False
        )
    )
    _, t_lora_loop = _timed(
        lambda: compute_gradients(
            lora,
            lora_ds[: max(4, a.lora_n // 4)],
            params,
            batch_size=32,
            method="loop",
            proj_dim=1024,
            progress=False,
        )
    )
    t_lora_loop /= max(4, a.lora_n // 4)

    calls: list[int] = []
    real = text_encoder._encode_batch

    def counting(model, batch, features):
        calls.append(len(batch))
        return real(model, batch, features)

    text_encoder._encode_batch = counting
    try:
        with tempfile.TemporaryDirectory(prefix="ogad-bench-text-") as tmp:
            _, t_cold = _timed(
                lambda: text_encoder.encode_texts(
                    texts, encoder=a.encoder, cache_dir=Path(tmp), progress=False
                )
            )
            cold_calls = len(calls)
            _, t_warm = _timed(
                lambda: text_encoder.encode_texts(
                    texts, encoder=a.encoder, cache_dir=Path(tmp), progress=False
                )
            )
            warm_calls = len(calls) - cold_calls
    finally:
        text_encoder._encode_batch = real

    n = len(texts)
    rows = [
        ("encode, layers features (built-in)", n, t_layers),
        ("encode, sentence embedding", n, t_sentence),
        ("train text head (TEXT_HEAD_RECIPE)", n, t_train),
        ("gradients, head closed form (last)", n, t_grad),
        ("gradients, LoRA adapters, vmap + proj 1024", a.lora_n, t_lora),
        ("gradients, LoRA adapters, loop + proj 1024", 1, t_lora_loop),
        ("embedding cache: cold compute", n, t_cold),
        ("embedding cache: warm compute", n, t_warm),
    ]
    print(f"{'step':44s} {'texts':>6s} {'seconds':>9s} {'texts/s':>10s}")
    for name, k, t in rows:
        print(f"{name:44s} {k:6d} {t:9.3f} {k / t:10.1f}")
    per_text_encode = t_layers / n
    result = {
        "encode_texts_per_s": n / t_layers,
        "gradient_last_over_encode": (t_grad / n) / per_text_encode,
        "gradient_lora_vmap_over_encode": (t_lora / a.lora_n) / per_text_encode,
        "cache_cold_s": t_cold,
        "cache_warm_s": t_warm,
        "cache_warm_encoder_calls": warm_calls,
        "cache_speedup": t_cold / t_warm,
        "encode_sentence_per_s": n / t_sentence,
        "train_head_s": t_train,
        "gradient_last_per_s": n / t_grad,
        "gradient_lora_vmap_per_s": a.lora_n / t_lora,
        "gradient_lora_loop_per_s": 1.0 / t_lora_loop,
        "lora_gradient_dim": lora_dim,
        "n": n,
        "lora_n": a.lora_n,
        "encoder": text_encoder.encoder_id(a.encoder),
        "embedding_dim": int(emb.shape[1]),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "rows": [{"step": s, "texts": k, "seconds": t} for s, k, t in rows],
    }
    print(
        f"head gradients cost {result['gradient_last_over_encode']:.4f}x encoding per text; "
        f"LoRA-adapter gradients {result['gradient_lora_vmap_over_encode']:.1f}x"
    )
    print(
        f"cache: cold {t_cold:.2f} s, warm {t_warm:.3f} s ({result['cache_speedup']:.0f}x), "
        f"encoder calls on the warm run: {warm_calls}"
    )
    return result


def quality(a: argparse.Namespace) -> dict:
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    from ogad_core.data import with_noise

    work = Path(a.work_dir)
    texts, _, _, used = rotten_tomatoes.rotten_tomatoes_corpus(source="auto")
    # one embedding matrix for the whole corpus (cached), indexed per seed
    emb_all = text_encoder.encode_texts(
        texts, encoder=a.encoder, cache_dir=work / "embeddings", progress=True
    )
    row = {t: i for i, t in enumerate(texts)}
    recipe = TrainRecipe(**text_head.TEXT_HEAD_RECIPE)
    per_seed = []
    for seed in a.seeds:
        data = with_noise(
            rotten_tomatoes.load_rotten_tomatoes(limit=a.limit, seed=seed),
            rate=a.noise,
            kind="symmetric",
            seed=seed,
        )
        x = torch.as_tensor(emb_all[[row[t] for t in data.train.inputs]])
        xt = torch.as_tensor(emb_all[[row[t] for t in data.test.inputs]])
        y = torch.as_tensor(data.train.labels)
        head = text_head.build_text_head(embeddings=x.numpy(), n_classes=2, seed=seed)
        t0 = time.perf_counter()
        train_model(
            head, x, y, recipe=recipe, seed=seed, device=torch.device("cpu"), progress=False
        )
        g = compute_gradients(head, list(zip(x, y, strict=True)), "last", progress=False)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            loss = nn.functional.cross_entropy(head(x), y, reduction="none").numpy()
            test_acc = float((head(xt).argmax(1).numpy() == data.test.labels).mean())
        iso = IsolationForest(random_state=seed).fit(g)
        flipped = data.is_flipped
        r = {
            "seed": seed,
            "l2": roc_auc_score(flipped, np.linalg.norm(g, axis=1)),
            "iforest": roc_auc_score(flipped, -iso.score_samples(g)),
            "loss": roc_auc_score(flipped, loss),
            "test_accuracy": test_acc,
            "n_flipped": int(flipped.sum()),
            "train_and_gradients_s": seconds,
        }
        per_seed.append(r)
        print(
            " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()),
            flush=True,
        )
    mean = {
        k: float(np.mean([r[k] for r in per_seed]))
        for k in ("l2", "iforest", "loss", "test_accuracy")
    }
    print(f"mean over seeds {a.seeds}: " + " ".join(f"{k}={v:.4f}" for k, v in mean.items()))
    return {
        "quality_l2_auroc": mean["l2"],
        "quality_iforest_auroc": mean["iforest"],
        "quality_loss_auroc": mean["loss"],
        "quality_test_accuracy": mean["test_accuracy"],
        "quality_bar_l2": 0.85,
        "quality_limit": a.limit,
        "quality_noise": a.noise,
        "quality_source": used,
        "quality_recipe": text_head.TEXT_HEAD_RECIPE,
        "quality_embedding_dim": int(emb_all.shape[1]),
        "quality_per_seed": per_seed,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="texts for the encoding timings")
    ap.add_argument("--lora-n", type=int, default=32, help="texts for LoRA-adapter gradients")
    ap.add_argument("--encoder", default=text_encoder.DEFAULT_ENCODER)
    ap.add_argument("--quality", action="store_true", help="also run the detection study")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    ap.add_argument("--limit", type=int, default=4000)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--work-dir", default="runs/bench_text")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/text.json"))
    a = ap.parse_args(argv)
    result: dict = {}
    if a.out.is_file():  # keep the other half of an earlier run
        result.update(json.loads(a.out.read_text(encoding="utf-8")))
    if not a.skip_speed:
        result.update(speed(a))
    if a.quality:
        result.update(quality(a))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
