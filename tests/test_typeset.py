"""Synthetic text lines: fonts (fetched, verified), texts, typesetting and capture."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFont

from hcr.data import fonts as F
from hcr.errors import DataError, HcrError
from hcr.preprocess import preprocess_line
from hcr.texts import ALPHABET, KINDS, fold_to, sample_text
from hcr.typeset import FORMS, SPACINGS, TypesetLine, capture, font_charset, typeset


@pytest.fixture(scope="module")
def font_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pillow's embedded font (Aileron Regular) as a file: a real font on every machine."""
    path = tmp_path_factory.mktemp("font") / "aileron.ttf"
    path.write_bytes(ImageFont.load_default(size=20).font_bytes)  # type: ignore[union-attr]
    return path


def _package(font_file: Path, folder: Path, name: str, kind: str) -> F.FontPackage:
    """A font package tarball laid out like @fontsource's, and its manifest entry."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for member, data in ((f"package/files/{name}-latin-400-normal.woff2", font_file.read_bytes()), ("package/LICENSE", b"SIL Open Font License")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    (folder / f"{name}-1.0.0.tgz").write_bytes(data)
    return F.FontPackage(name, "1.0.0", kind, "OFL-1.1", hashlib.md5(data).hexdigest(), len(data), ("400-normal",))


@pytest.fixture
def fake_fonts(font_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local 'registry' of six small font packages (three of each kind) and an empty fonts folder."""
    registry = tmp_path / "registry"
    registry.mkdir()
    pkgs = tuple(_package(font_file, registry, f"{kind}-{i}", kind) for kind in F.FONT_KINDS for i in range(3))
    for p in pkgs:  # the registry's layout: NAME/-/NAME-VERSION.tgz
        (registry / p.name / "-").mkdir(parents=True)
        (registry / f"{p.name}-1.0.0.tgz").rename(registry / p.name / "-" / p.tarball)
    monkeypatch.setattr(F, "FONTS", pkgs)
    monkeypatch.setattr(F, "_REGISTRY", registry.as_uri())
    monkeypatch.setenv(F.ENV_FONTS_DIR, str(tmp_path / "fonts"))
    return registry


def test_fonts_are_fetched_verified_and_unpacked(fake_fonts: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="handwriting-0-1.0.0.tgz"):  # offline: says what to place where
        F.font_files("handwriting")
    files = F.fetch_fonts("handwriting", progress=False)
    assert [f.package.name for f in files] == ["handwriting-0", "handwriting-1", "handwriting-2"]
    assert all(f.path.is_file() and f.path.suffix == ".woff2" for f in files)
    assert (tmp_path / "fonts" / "handwriting-0-LICENSE.txt").read_text() == "SIL Open Font License"
    assert [f.path for f in F.font_files("handwriting")] == [f.path for f in files]  # now offline too


def test_a_tampered_font_package_is_refused(fake_fonts: Path) -> None:
    tgz = fake_fonts / "printed-0" / "-" / "printed-0-1.0.0.tgz"
    tgz.write_bytes(tgz.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match="checksum mismatch"):
        F.fetch_fonts("printed", names=["printed-0"], progress=False)
    assert not list((Path(F.fonts_dir())).glob("printed-0*"))  # nothing half-written


def test_unknown_fonts_are_named() -> None:
    with pytest.raises(DataError, match="unknown font kind"):
        F.font_files("gothic")
    with pytest.raises(DataError, match="unknown font package"):
        F.font_files("printed", names=["comic-sans"])


def test_every_shipped_font_package_records_a_licence() -> None:
    assert {p.kind for p in F.FONTS} == set(F.FONT_KINDS)
    assert all(p.license in ("OFL-1.1", "Apache-2.0", "UFL-1.0") and len(p.md5) == 32 and p.styles for p in F.FONTS)
    assert len({p.name for p in F.FONTS}) == len(F.FONTS)


def test_texts_are_seeded_and_spelled_in_the_alphabet() -> None:
    texts = [sample_text(np.random.default_rng(i), ALPHABET) for i in range(300)]
    assert texts == [sample_text(np.random.default_rng(i), ALPHABET) for i in range(300)]
    assert all(t and set(t) <= set(ALPHABET) and len(t) <= 32 for t in texts)
    assert len(set(texts)) > 250
    digits = "0123456789"
    dates = [sample_text(np.random.default_rng(i), ALPHABET, kind="date") for i in range(50)]
    assert all(sum(c in digits for c in d) >= 4 for d in dates)
    assert any("/" in d for d in dates) and any("." in d for d in dates)
    upper = [sample_text(np.random.default_rng(i), "ABCDEFGHIJKLMNOPQRSTUVWXYZ -", kind="name") for i in range(50)]
    assert all(set(n) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ -") for n in upper)
    with pytest.raises(HcrError, match="unknown text kind"):
        sample_text(np.random.default_rng(0), ALPHABET, kind="poem")
    assert set(KINDS) >= {"words", "name", "date", "amount", "code", "address"}


def test_accents_outside_the_alphabet_are_folded() -> None:
    assert fold_to("Hélène Noël", ALPHABET) == "Helene Noel"
    assert fold_to("Müller", ALPHABET) == "Müller"  # ü is in the alphabet
    assert fold_to("Łódź", ALPHABET) is None  # Ł has no unaccented form


def test_font_charset_leaves_out_what_the_font_cannot_draw(font_file: Path) -> None:
    cs = font_charset(str(font_file), "AZaz09\u4e00 ")
    assert cs == "AZaz09 "


@pytest.mark.parametrize("spacing", SPACINGS)
def test_typeset_lines_are_ink_bright_and_readable_sizes(font_file: Path, spacing: str) -> None:
    rng = np.random.default_rng(0)
    line = typeset("Anna 2024", font_file, rng, cap=24, spacing=spacing)
    assert line.ink.shape == line.printed.shape and line.ink.dtype == np.float32
    assert line.ink.max() > 0.9 and 0.01 < line.ink.mean() < 0.5
    rows = np.flatnonzero(line.ink.max(axis=1) > 0.5)
    assert 24 <= rows[-1] - rows[0] <= 60  # cap height 24, with slant and jitter
    if spacing == "comb":  # one box per character: vertical walls
        assert (line.printed.sum(axis=0) > 10).sum() >= 9


def test_printed_setting_is_exact_and_handwriting_varies(font_file: Path) -> None:
    a = typeset("NOM :", font_file, np.random.default_rng(1), cap=20, spacing="natural", form="none", hand=False)
    b = typeset("NOM :", font_file, np.random.default_rng(2), cap=20, spacing="natural", form="none", hand=False)
    cols = lambda t: np.flatnonzero(t.ink.max(axis=0) > 0.5)  # noqa: E731
    assert np.array_equal(a.ink.max(axis=1) > 0.5, b.ink.max(axis=1) > 0.5)  # same baseline and height, no jitter
    h1 = typeset("NOM :", font_file, np.random.default_rng(1), cap=20, spacing="natural", form="none")
    h2 = typeset("NOM :", font_file, np.random.default_rng(2), cap=20, spacing="natural", form="none")
    assert not np.array_equal(h1.ink, h2.ink) and len(cols(a)) > 0


@pytest.mark.parametrize("form", FORMS)
def test_captured_lines_come_back_through_the_line_preprocessing(font_file: Path, form: str) -> None:
    rng = np.random.default_rng(3)
    img = capture(typeset("Hello 12", font_file, rng, cap=26, spacing="natural", form=form), rng)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    pre = preprocess_line(img)
    assert not pre.blank and pre.image.shape[0] == 32
    # the writing, not the form: the input is about as wide as the text's ink (8 characters)
    assert 3 * 32 < pre.image.shape[1] < 10 * 32


def test_a_typeset_line_renders_the_same_on_demand(font_file: Path) -> None:
    item = TypesetLine("A1 b2", str(font_file), (0, 1, 2))
    assert np.array_equal(item.render(), item.render())
    assert not np.array_equal(item.render(), TypesetLine("A1 b2", str(font_file), (0, 1, 3)).render())


def test_font_lines_hold_out_whole_font_packages(fake_fonts: Path) -> None:
    from hcr.data import get_line_source
    from hcr.data.lines import fonts_of_split

    F.fetch_fonts(progress=False)
    train = {f.package.name for f in fonts_of_split("handwriting", "train", val_fraction=0.34)}
    val = {f.package.name for f in fonts_of_split("handwriting", "val", val_fraction=0.34)}
    assert train and val and not train & val and train | val == {"handwriting-0", "handwriting-1", "handwriting-2"}
    src = get_line_source("fonts:handwriting", count=12, val_count=4, val_fraction=0.34)
    lines = src.load("train")
    assert len(lines) == 12 and all(set(t) <= set(ALPHABET) for t in lines.texts)
    img = lines.load_image(0)
    assert img.ndim == 2 and img.dtype == np.uint8
    assert "fonts:handwriting" in src.recipe_key("train") and src.recipe_key("train") != src.recipe_key("val")


def test_the_printed_data_set_holds_both_kinds_of_character(fake_fonts: Path, real_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hcr.data.printed: glyph crops of typeset (printed) and real handwritten lines, cut by
    the reader's own segmentation (fonts here: the fake packages of the fixture)."""
    from hcr.data import get_source

    F.fetch_fonts(progress=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(fake_fonts.parent / "cache"))  # the crops cache: a fresh one
    src = get_source("printed", real_data_dir, scale=0.02)
    val = src.load("val")
    counts = val.class_counts()
    assert set(counts) == {"handwritten", "printed"} and min(counts.values()) > 10
    assert all(im.dtype == np.uint8 and im.ndim == 2 and im.max() > 0 for im in val.images)  # ink, bright on black
    assert np.array_equal(src.load("val").targets, val.targets)  # cached, and the same
