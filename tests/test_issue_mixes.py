"""The injected mixes of bench_issues: the main recipe stays as measured, the held-out one
(``--mix alt``) has the same sizes per issue type and builds each kind from its own source."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from benchmarks import issue_mixes_alt as alt
from benchmarks.bench_issues import mix_kinds, summary_table
from benchmarks.issue_mixes import IMAGE_KINDS, TEXT_KINDS, image_mix, text_mix
from ogad_core.issues.properties import normalise_text

REVIEWS = [
    f"review {i} says the film was {'good' if i % 2 else 'bad'}, and long" for i in range(400)
]
REVIEW_LABELS = ["pos" if i % 2 else "neg" for i in range(400)]


def _per_type(kinds: dict[str, tuple[int, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, issue in kinds.values():
        out[issue] = out.get(issue, 0) + n
    return out


@pytest.fixture(scope="module")
def alt_images(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return alt.alt_image_mix(tmp_path_factory.mktemp("alt") / "images", 0)


def test_the_main_mix_is_unchanged(tmp_path: Path) -> None:
    """The main recipe's files and truth (seed 0) are those the issue's figures were measured
    on (digests taken when each out-of-distribution input became distinct: session 7)."""
    truth = image_mix(tmp_path / "images", 0)
    digest = hashlib.sha256()
    for path in truth["path"]:
        digest.update(np.asarray(Image.open(path)).tobytes())
    digest.update(truth.drop(columns="path").to_csv(index=False).encode())
    assert digest.hexdigest() == (
        "541337dba1ce2f189d930d3085bb1220b1ad9a59e99f051f0b12ef66abc1c9e3"
    )
    text_mix(tmp_path / "t.csv", REVIEWS, REVIEW_LABELS, 0)
    assert hashlib.sha256((tmp_path / "t.csv").read_bytes()).hexdigest() == (
        "cf2240c3509b69b75c555c6e8a40c5ee5434607e57519867cd41a333583aaedc"
    )


def test_the_held_out_mix_keeps_the_sizes_per_issue_type() -> None:
    """Same K per issue type as the main mix, so the top-K figures compare; other kinds."""
    assert _per_type(alt.ALT_IMAGE_KINDS) == _per_type(IMAGE_KINDS)
    assert _per_type(alt.ALT_TEXT_KINDS) == _per_type(TEXT_KINDS)
    assert mix_kinds("images", "alt") is alt.ALT_IMAGE_KINDS
    assert mix_kinds("text", "main") is TEXT_KINDS
    assert set(alt.ALT_IMAGE_KINDS) - {"flipped", "dup_conflict", "dup_same"} != set()
    assert not set(alt.ALT_IMAGE_KINDS) & {"ood_photo", "ood_letter", "corrupt_noise"}


def test_held_out_images_follow_their_recipe(alt_images: pd.DataFrame) -> None:
    truth = alt_images
    counts = truth["kind"].value_counts()
    for kind, (n, issue) in alt.ALT_IMAGE_KINDS.items():
        assert counts[kind] == n, kind
        assert (truth.loc[truth["kind"] == kind, "expected"] == issue).all()
    assert (truth["path"].map(lambda p: Path(p).parent.name) == truth["label"].astype(str)).all()
    flipped = truth[truth["kind"] == "flipped"]
    assert (flipped["label"] == flipped["clean_label"].map(alt.CONFUSABLE)).all()
    digits8 = truth[truth["kind"] == "ood_digits8"]
    assert (digits8["label"] == digits8["clean_label"]).all()  # a domain shift, true digits
    for kind in ("corrupt_truncated", "corrupt_tiny", "clean"):
        for path in truth.loc[truth["kind"] == kind, "path"][:5]:
            if kind == "corrupt_truncated":
                with pytest.raises(OSError):
                    Image.open(path).load()
            else:
                size = Image.open(path).size
                assert size == ((3, 3) if kind == "corrupt_tiny" else (28, 28))


def test_held_out_duplicates_are_transformed_copies(alt_images: pd.DataFrame) -> None:
    """Every copy pairs with its source (set_key); only the PNG re-save keeps the pixels, the
    others differ yet stay close to the source; conflicts carry another label."""
    truth = alt_images
    for kind in ("dup_conflict", "dup_same"):
        copies = truth[truth["kind"] == kind]
        assert set(copies["variant"]) == set(alt.DUP_VARIANTS)
        for _, copy in copies.iterrows():
            source = truth[
                (truth["set_key"] == copy["set_key"]) & (truth["kind"] == kind + "_source")
            ]
            assert len(source) == 1
            a, b = Image.open(copy["path"]).convert("L"), Image.open(source["path"].iloc[0])
            same = np.array_equal(np.asarray(a), np.asarray(b))
            assert same == (copy["variant"] == "png"), copy["variant"]
            smooth = [
                np.asarray(x.filter(ImageFilter.GaussianBlur(2)), float).ravel() for x in (a, b)
            ]
            assert np.corrcoef(*smooth)[0, 1] > 0.7, copy["variant"]
            conflict = copy["label"] != source["label"].iloc[0]
            assert conflict == (kind == "dup_conflict")


def test_held_out_text_follows_its_recipe(tmp_path: Path) -> None:
    truth = alt.alt_text_mix(tmp_path / "t.csv", REVIEWS, REVIEW_LABELS, 0)
    counts = truth["kind"].value_counts()
    for kind, (n, _) in alt.ALT_TEXT_KINDS.items():
        assert counts[kind] == n, kind
    written = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert written["text"].tolist() == truth["text"].tolist()
    for _, copy in truth[truth["kind"] == "dup_edit"].iterrows():
        source = truth[(truth["set_key"] == copy["set_key"]) & (truth["kind"] == "dup_edit_source")]
        src = source["text"].iloc[0]
        assert copy["text"] != src and copy["label"] != source["label"].iloc[0]
        same = normalise_text(copy["text"]) == normalise_text(src)
        assert same == (copy["variant"] == "case")
    ood = truth[truth["kind"].str.startswith("ood_")]
    assert not ood["text"].isin(REVIEWS).any() and ood["text"].is_unique
    code = truth.loc[truth["kind"] == "ood_code", "text"]
    assert code.str.contains(r"[=()\[\]:]").all()
    digits = truth.loc[truth["kind"] == "corrupt_digits", "text"]
    assert digits.str.fullmatch(r"[0-9 ]+").all()
    short = truth.loc[truth["kind"] == "corrupt_short", "text"]
    assert (short.str.len() <= 3).all()


def test_summary_table_reads_the_kinds_of_the_results_mix() -> None:
    """An alt result renders its own kinds (the main mix's kinds would be missing rows)."""
    kinds = {k: {"top_k": 1.0, "flagged": 1.0, "any": 1.0} for k in alt.ALT_IMAGE_KINDS}
    result = {"data": "images", "mix": "alt", "ours": {"kinds": kinds}, "datalab": {"kinds": {}}}
    table = summary_table([result])
    assert "ood_script (outlier)" in table and "ood_photo" not in table


def test_duplicates_are_scored_per_transform() -> None:
    """The held-out mix's duplicate recall per variant, with the type's whole K."""
    from benchmarks.bench_issues import _variant_recalls

    truth = pd.DataFrame(
        {
            "kind": ["clean"] * 2 + ["dup_same_source", "dup_same"] * 2,
            "expected": ["", "", "", "duplicate", "", "duplicate"],
            "variant": ["", "", "", "shift", "", "jpeg"],
        }
    )  # K = 4: both pairs' members; a clean sample outranks the JPEG copy
    scores = {"duplicate": np.array([0.0, 0.7, 0.9, 0.8, 0.95, 0.1])}
    flags = {"duplicate": scores["duplicate"] > 0.5}
    out = _variant_recalls(scores, flags, truth, {"dup_same": (2, "duplicate")})
    assert out["dup_same/shift"]["top_k"] == 1.0 and out["dup_same/jpeg"]["top_k"] == 0.0
    assert out["dup_same/shift"]["flagged"] == 1.0 and out["dup_same/jpeg"]["flagged"] == 0.0
    assert _variant_recalls(scores, flags, truth.drop(columns="variant"), {}) == {}


def _fake_result(data: str, mix: str, kinds: dict, seed: int = 0) -> dict:
    recall = {"n": 5, "top_k": 0.5, "flagged": 0.25, "any": 1.0}
    return {
        "data": data,
        "seed": seed,
        "mix": mix,
        "ours": {
            "kinds": {k: dict(recall) for k in kinds},
            "variants": {"dup_same/shift": dict(recall)} if data == "images" else {},
            "top_k_kinds": {"outlier": {"clean": 3, "corrupt_block": 2, "ood_shape": 4}},
            "pairs_recovered": 0.5,
            "all_precision": 0.8,
            "all_flagged": 90,
            "k_all": 100,
            "label_auroc": 0.99,
        },
        "datalab": {"kinds": {k: dict(recall, top_k=0.6) for k in kinds}, "pairs_recovered": 1.0},
    }


def test_the_held_out_subsection_renders_both_mixes_side_by_side() -> None:
    from benchmarks.issues_alt_docs import HEADING, alt_section

    alt_results = [_fake_result(d, "alt", mix_kinds(d, "alt")) for d in ("images", "text")]
    main_results = [_fake_result(d, "main", mix_kinds(d, "main")) for d in ("images", "text")]
    alt_doc = {"results": alt_results, "load_average": [5.0], "commit": "abcdef0123456"}
    text = alt_section(alt_doc, {"results": main_results})
    assert text.startswith(HEADING) and "commit abcdef0123" in text
    assert "| images | ood_script (outlier) | 15 | 0.50 | 0.25 |" in text
    assert "| images | dup_same/shift | 5 | 0.50 | 0.25 |" in text
    assert "images ood_script 0.50 < 0.9" in text and "below Datalab (0.50 < 0.60)" in text
    assert "images outlier: clean 3.0, corrupt_block 2.0" in text  # not its own ood_shape
    assert "| images | outlier | ood_photo 0.50, ood_letter 0.50 | ood_shape 0.50" in text
    assert "**Text near duplicates: word-level verification**" in text  # tdup7's paragraph
    start = {"results": [dict(r, ours=dict(r["ours"], kinds={})) for r in alt_results]}
    with_start = alt_section(alt_doc, {"results": main_results}, start)
    assert "code before the held-out session |" in with_start
    assert "ood_digits8 0.50 | ood_shape -, ood_script -, ood_digits8 - |" in with_start


def test_no_two_photo_crops_are_one_input_twice() -> None:
    """Two crops of one photo overlap little, so each is an outlier of its own and not a copy
    of another (an overlapping pair is a real duplicate the truth would not list); a blank
    patch (a near-constant input: the corrupt type's) is not drawn as a photo."""
    from benchmarks.issue_mixes import MIN_CROP_STD, _photo_crops

    crops = _photo_crops(np.random.default_rng(0), 25)
    assert min(float(c.std()) for c in crops) >= MIN_CROP_STD
    from benchmarks.issue_mixes import MAX_CROP_IOU, _iou, crop_boxes

    assert _iou((0, 0, 10), (0, 0, 10)) == 1.0
    assert _iou((0, 0, 10), (5, 0, 10)) == pytest.approx(50 / 150)
    assert _iou((0, 0, 10), (10, 10, 10)) == 0.0
    for seed in range(5):
        boxes = crop_boxes(np.random.default_rng(seed), [(427, 640), (427, 640)], 25)
        assert len(boxes) == 25
        wide = crop_boxes(np.random.default_rng(seed), [(427, 640)], 5, lambda b: b[3] > 150)
        assert all(side > 150 for _, _, _, side in wide)  # only the crops ``usable`` accepts
        for i, (w, y, x, s) in enumerate(boxes):
            assert 0 <= y <= 427 - s and 0 <= x <= 640 - s
            for v, b, a, t in boxes[i + 1 :]:
                assert w != v or _iou((y, x, s), (b, a, t)) <= MAX_CROP_IOU


def test_no_two_held_out_shapes_are_one_shape_twice() -> None:
    """A brighter copy of one star is a duplicate, not a second outlier: the held-out mix
    draws another shape instead."""
    star = (3, 200, None, (3, 3, 22, 22))
    assert alt.same_shape(star, (3, 150, 150, (4, 2, 23, 21)))  # a star is always filled
    assert not alt.same_shape(star, (3, 150, 150, (8, 2, 23, 21)))
    assert not alt.same_shape(star, (0, 200, None, (3, 3, 22, 22)))
    for seed in range(10):
        specs = alt.shape_specs(np.random.default_rng(seed), 20)
        assert len(specs) == 20
        assert not any(alt.same_shape(a, b) for i, a in enumerate(specs) for b in specs[i + 1 :])


def test_each_letter_and_glyph_is_drawn_once() -> None:
    """The out-of-distribution letters and glyphs are distinct characters (one drawn twice at a
    close angle is a duplicate set): drawn upright from the whole alphabet, no two images of a
    mix's full draw are equal."""
    from benchmarks.issue_mixes import _letters

    letters = _letters(np.random.default_rng(0), 26)
    glyphs = alt.script_glyphs(np.random.default_rng(0), len(alt.SCRIPT_GLYPHS))
    for images in (letters, glyphs):
        assert len(images) == len({img.tobytes() for img in images})
    with pytest.raises(ValueError):
        _letters(np.random.default_rng(0), 27)
