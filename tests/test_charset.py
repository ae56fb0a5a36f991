"""Charset restriction and case-insensitive answers: parsing, the maths on hand-made
probability arrays, and the Predictor on the packaged ``chars`` / ``digits`` models."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest

from hcr.charset import AnswerFilter, case_groups, describe_symbols, merge_case, parse_charset, restrict_probs
from hcr.errors import HcrError
from hcr.labels import LabelMap
from hcr.predictor import Predictor

from helpers_train import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CHARS = LabelMap(tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase))
DIGITS = LabelMap(tuple(string.digits))
AZ = LabelMap(tuple(string.ascii_uppercase))


def _syms(lm: LabelMap, spec: str, **kw: bool) -> str:
    return "".join(parse_charset(spec, lm, **kw).symbols)


# --------------------------------------------------------------------------- parsing


def test_named_sets_against_the_chars_classes() -> None:
    assert _syms(CHARS, "digits") == string.digits
    assert _syms(CHARS, "upper") == string.ascii_uppercase
    assert _syms(CHARS, "lower") == string.ascii_lowercase
    assert _syms(CHARS, "letters") == string.ascii_uppercase + string.ascii_lowercase
    assert _syms(CHARS, "alnum") == "".join(CHARS.symbols)
    cs = parse_charset("upper", CHARS)
    assert cs.spec == "upper" and cs.indices == tuple(range(10, 36))
    assert cs.mask(62).sum() == 26 and cs.mask(62)[10] and not cs.mask(62)[9]


def test_named_sets_keep_what_the_model_has() -> None:
    assert _syms(DIGITS, "alnum") == string.digits
    assert _syms(AZ, "letters") == string.ascii_uppercase
    with pytest.raises(HcrError, match=r"charset 'letters'.*shares no class with this model.*0-9"):
        parse_charset("letters", DIGITS)
    with pytest.raises(HcrError, match="shares no class"):
        parse_charset("lower", AZ)


def test_literal_strings() -> None:
    assert _syms(CHARS, "0123456789ABCDEF") == "0123456789ABCDEF"
    assert _syms(CHARS, "F E 0 0\tE") == "0EF"  # label-map order, duplicates and whitespace ignored
    # only the exact names are named sets: anything else is the characters themselves
    assert _syms(CHARS, "Digits") == "Dgist"
    assert _syms(CHARS, "DIGITS") == "DGIST"
    assert _syms(DIGITS, "7") == "7"


def test_unknown_characters_are_named() -> None:
    with pytest.raises(HcrError) as e:
        parse_charset("AB#", CHARS)
    msg = str(e.value)
    assert "'#' is not a class of this model" in msg and "0-9, A-Z, a-z" in msg
    assert "'A'" not in msg.split("model")[0]  # only the unknown one is blamed
    with pytest.raises(HcrError, match=r"'#', '\$' are not classes of this model"):
        parse_charset("A#$#", CHARS)
    with pytest.raises(HcrError, match=r"'x' is not a class"):
        parse_charset("12x", DIGITS)
    for empty in ("", "   "):
        with pytest.raises(HcrError, match="empty"):
            parse_charset(empty, CHARS)


def test_ignore_case_makes_charset_membership_case_insensitive() -> None:
    with pytest.raises(HcrError, match="letter case matters"):
        parse_charset("abc", AZ)
    assert _syms(AZ, "abc", ignore_case=True) == "ABC"
    assert _syms(CHARS, "o", ignore_case=True) == "Oo"
    assert _syms(CHARS, "upper", ignore_case=True) == string.ascii_uppercase + string.ascii_lowercase
    with pytest.raises(HcrError, match="'#'"):
        parse_charset("a#", CHARS, ignore_case=True)


def test_describe_symbols() -> None:
    assert describe_symbols(CHARS.symbols) == "0-9, A-Z, a-z"
    assert describe_symbols(("0", "1", "A", "C", "D", "E", "x")) == "0, 1, A, C-E, x"
    assert describe_symbols(("alpha", "b", "c", "d")) == "alpha, b-d"


# --------------------------------------------------------------------------- maths


def test_restrict_renormalises_over_the_allowed_classes() -> None:
    p = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    r = restrict_probs(p, [0, 2])
    np.testing.assert_allclose(r, [[0.25, 0.0, 0.75, 0.0], [2 / 3, 0.0, 1 / 3, 0.0]])
    np.testing.assert_allclose(restrict_probs(p, np.array([True, False, True, False])), r)
    np.testing.assert_allclose(restrict_probs(p, [0, 1, 2, 3]), p)  # everything allowed: unchanged
    # softmax underflow: the allowed classes all have probability 0 -> uniform over them, no NaN
    under = restrict_probs(np.array([[1.0, 0.0, 0.0, 0.0]]), [1, 3])
    np.testing.assert_allclose(under, [[0.0, 0.5, 0.0, 0.5]])
    with pytest.raises(ValueError):
        restrict_probs(p, np.zeros(4, bool))
    with pytest.raises(ValueError):
        restrict_probs(p[0], [0])


def test_case_groups_and_merging_sum_and_pick_the_more_probable_member() -> None:
    symbols = ("0", "O", "o", "S", "s", "x")
    groups = case_groups(symbols)
    assert groups == [(0,), (1, 2), (3, 4), (5,)]
    p = np.array([[0.30, 0.10, 0.25, 0.05, 0.02, 0.28],
                  [0.10, 0.50, 0.20, 0.01, 0.09, 0.10]])
    merged, member = merge_case(p, groups)
    np.testing.assert_allclose(merged, [[0.30, 0.35, 0.07, 0.28], [0.10, 0.70, 0.10, 0.10]])
    np.testing.assert_array_equal(member, [[0, 2, 3, 5], [0, 1, 4, 5]])
    assert case_groups(symbols, np.array([True, False, True, True, True, False])) == [(0,), (2,), (3, 4)]

    # merging changes the winner: '0' (0.30) loses to o/O (0.35), reported as 'o'
    f = AnswerFilter(LabelMap(symbols), ignore_case=True)
    assert f.num_answers == 4
    top = f.decode(p, top_k=10)
    assert top[0] == [("o", pytest.approx(0.35)), ("0", pytest.approx(0.30)), ("x", pytest.approx(0.28)), ("S", pytest.approx(0.07))]
    assert top[1][0] == ("O", pytest.approx(0.70))
    assert AnswerFilter(LabelMap(symbols)).decode(p, top_k=1)[0] == [("0", pytest.approx(0.30))]


def test_charset_and_ignore_case_combine() -> None:
    lm = LabelMap(("0", "O", "o", "S", "s", "x"))
    p = np.array([[0.30, 0.10, 0.25, 0.05, 0.02, 0.28]])
    f = AnswerFilter(lm, "letters", ignore_case=True)
    assert f.active and f.charset is not None and f.charset.symbols == ("O", "o", "S", "s", "x")
    # allowed mass 0.70: o/O 0.35/0.7, x 0.28/0.7, S/s 0.07/0.7 reported as 'S' (0.05 > 0.02)
    assert f.decode(p, top_k=5)[0] == [("o", pytest.approx(0.5)), ("x", pytest.approx(0.4)), ("S", pytest.approx(0.1))]
    np.testing.assert_allclose(f.restrict(p), [[0, 0.1 / 0.7, 0.25 / 0.7, 0.05 / 0.7, 0.02 / 0.7, 0.28 / 0.7]])
    # a charset in one case reports merged answers in that case, whichever shape was likelier
    up = AnswerFilter(lm, "upper", ignore_case=True)
    assert up.decode(p, top_k=5)[0] == [("O", pytest.approx(0.5)), ("x", pytest.approx(0.4)), ("S", pytest.approx(0.1))]
    assert AnswerFilter(lm, "os", ignore_case=True).decode(p, top_k=1)[0] == [("o", pytest.approx(0.35 / 0.42))]
    p2 = np.array([[0.0, 0.1, 0.0, 0.01, 0.09, 0.0]])  # 's' likelier than 'S'
    assert AnswerFilter(lm, "S", ignore_case=True).decode(p2, top_k=1)[0] == [("S", pytest.approx(1.0))]
    g = AnswerFilter(lm, "Sx")  # case-sensitive: 'S' only, not 's'
    assert g.decode(p, top_k=5)[0] == [("x", pytest.approx(0.28 / 0.33)), ("S", pytest.approx(0.05 / 0.33))]


def test_identity_filter_and_top_k_limits() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(62), size=5)
    f = AnswerFilter(CHARS)
    assert not f.active and f.num_answers == 62
    for row, top in zip(p, f.decode(p, top_k=3)):
        order = np.argsort(-row, kind="stable")[:3]
        assert top == [(CHARS[int(i)], pytest.approx(row[i])) for i in order]
    assert all(len(t) == 1 for t in f.decode(p, top_k=0))
    ci = AnswerFilter(CHARS, ignore_case=True)
    assert ci.active and ci.num_answers == 36
    for row, top in zip(p, ci.decode(p, top_k=100)):
        folded = [s.lower() for s, _ in top]
        assert len(top) == 36 and len(set(folded)) == 36  # each merged answer once
        assert sum(c for _, c in top) == pytest.approx(1.0)
        for s, c in top:
            members = [i for i, t in enumerate(CHARS.symbols) if t.lower() == s.lower()]
            assert c == pytest.approx(row[members].sum())
            assert row[CHARS.index(s)] == row[members].max()  # named after the more probable member


# --------------------------------------------------------------------------- Predictor on the packaged models


@pytest.fixture(scope="module")
def chars() -> Predictor:
    return Predictor.load("chars")


def _full(pred: Predictor, image: Path) -> dict[str, float]:
    p = pred.predict(image, top_k=1000)
    assert len(p.top_k) == len(pred.label_map)
    return dict(p.top_k)


def test_load_by_name_and_default() -> None:
    default = Predictor.load()
    assert default.label_map.symbols == CHARS.symbols and default.meta["pretrained"] == "chars"
    digits = Predictor.load("digits", threshold=0.9)
    assert digits.label_map.symbols == DIGITS.symbols and digits.threshold == 0.9
    assert digits.charset is None and not digits.ignore_case
    from hcr.pretrained import resolve_model

    by_path = Predictor.load(resolve_model("digits"))
    assert "pretrained" not in by_path.meta
    assert by_path.predict(SAMPLES / "digit_7_chalk.png").label == "7"
    with pytest.raises(HcrError, match="shares no class"):
        Predictor.load("digits", charset="upper")
    with pytest.raises(HcrError, match="nope.*chars"):
        Predictor.load("nope")


def test_chars_model_restricted_to_digits_reads_the_digit(chars: Predictor) -> None:
    image = SAMPLES / "digit_9_scan.png"
    full = _full(chars, image)
    restricted = Predictor.load("chars", charset="digits")
    assert restricted.charset == "digits"
    p = restricted.predict(image, top_k=20)
    assert p.label == "9"
    assert len(p.top_k) == 10 and all(s in string.digits for s, _ in p.top_k)
    mass = sum(full[d] for d in string.digits)
    assert mass < 0.999  # the unrestricted model gave letters real weight...
    assert p.confidence == pytest.approx(full["9"] / mass, rel=1e-4)  # ...now renormalised away
    assert p.confidence > full["9"]
    for s, c in p.top_k:
        assert c == pytest.approx(full[s] / mass, rel=1e-4, abs=1e-7)


def test_chars_model_restricted_to_upper_answers_a_capital(chars: Predictor) -> None:
    image = SAMPLES / "digit_3_paper.png"
    full = _full(chars, image)
    p = Predictor.load("chars", charset="upper", threshold=0.0).predict(image, top_k=30)
    assert p.label in string.ascii_uppercase and not p.uncertain
    assert sorted(s for s, _ in p.top_k) == list(string.ascii_uppercase)
    best = max(string.ascii_uppercase, key=lambda s: full[s])
    assert p.label == best
    # the threshold applies to the renormalised confidence
    strict = Predictor.load("chars", charset="upper", threshold=p.confidence + 1e-3).predict(image)
    assert strict.label == p.label and strict.uncertain


def test_chars_model_ignoring_case(chars: Predictor) -> None:
    image = SAMPLES / "digit_5_canvas.png"
    full = _full(chars, image)
    p = Predictor.load("chars", ignore_case=True).predict(image, top_k=100)
    assert len(p.top_k) == 36 and len({s.lower() for s, _ in p.top_k}) == 36
    for s, c in p.top_k:
        pair = [t for t in full if t.lower() == s.lower()]
        assert c == pytest.approx(sum(full[t] for t in pair), rel=1e-4, abs=1e-7)
        assert full[s] == max(full[t] for t in pair)
    letters = Predictor.load("chars", charset="letters", ignore_case=True).predict(image, top_k=5)
    assert letters.label.isalpha()
    mass = sum(v for k, v in full.items() if k.isalpha())
    assert letters.confidence == pytest.approx((full[letters.label.lower()] + full[letters.label.upper()]) / mass, rel=1e-4)
    assert len({s.lower() for s, _ in letters.top_k}) == 5


def test_blank_input_is_still_no_character_with_a_charset() -> None:
    p = Predictor.load("digits", charset="0123").predict(SAMPLES / "blank_canvas.png")
    assert p.blank and p.label is None and p.top_k == [] and not p.uncertain
