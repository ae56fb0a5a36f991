from __future__ import annotations

import json
import string
import warnings

import numpy as np
import pytest

from hcr.metrics import (
    calibration,
    case_merged_accuracy,
    cer,
    classification_report,
    confusion_matrix,
    levenshtein,
    most_confused,
    normalize_rows,
    per_class_prf,
    top_k_accuracy,
    wer,
)


def test_confusion_matrix_hand_example() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="2 labels but y_pred has 1"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)


def test_per_class_prf_with_never_predicted_class_has_no_warnings() -> None:
    # class 2 is never predicted; class 3 has no samples and no predictions
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prf = per_class_prf(cm)
    np.testing.assert_allclose(prf["precision"], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(prf["recall"], [0.5, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(prf["f1"], [0.5, 2 / 3, 0.0, 0.0])
    np.testing.assert_array_equal(prf["support"], [2, 1, 1, 0])
    np.testing.assert_allclose(normalize_rows(cm)[0], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(normalize_rows(cm)[3], 0.0)


def test_top_k_accuracy() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.35, 0.4, 0.25]])
    y = np.array([1, 2, 2])
    assert top_k_accuracy(y, probs, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(y, probs, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(y, probs, 99) == 1.0  # clipped to C


def test_most_confused_ordering_and_rate() -> None:
    symbols = ["O", "0", "o"]
    cm = np.array([[5, 3, 1], [4, 6, 0], [1, 0, 2]])
    pairs = most_confused(cm, symbols, n=3)
    assert [(p["true"], p["pred"], p["count"]) for p in pairs] == [("0", "O", 4), ("O", "0", 3), ("O", "o", 1)]
    assert pairs[0]["rate"] == pytest.approx(0.4)
    assert len(most_confused(cm, symbols)) == 4  # zero cells are not pairs


def test_calibration_constructed_cases() -> None:
    correct = np.arange(100) < 90
    cal = calibration(np.full(100, 0.9), correct)
    assert cal["ece"] == pytest.approx(0.0, abs=1e-12)
    assert len(cal["bins"]) == 15 and sum(b["count"] for b in cal["bins"]) == 100

    half = calibration(np.ones(10), np.arange(10) < 5, n_bins=10)
    assert half["ece"] == pytest.approx(0.5)
    last = half["bins"][-1]
    assert (last["lo"], last["hi"], last["count"], last["accuracy"]) == (0.9, 1.0, 10, 0.5)
    assert half["bins"][0]["accuracy"] is None

    mixed = calibration(np.array([0.25, 0.25, 0.75, 0.75]), np.array([1, 1, 1, 0]), n_bins=2)
    assert mixed["ece"] == pytest.approx(0.5 * 0.75 + 0.5 * 0.25)


def test_case_merged_accuracy() -> None:
    symbols = ["0", "O", "o", "x"]
    # 'O' for 'o' counts, '0' for 'O' does not
    assert case_merged_accuracy(np.array([2, 1, 3, 0]), np.array([1, 0, 3, 0]), symbols) == pytest.approx(0.75)
    assert case_merged_accuracy(np.array([0]), np.array([1]), ["0", "1"]) is None


def test_edit_distances() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "abc") == 0
    assert cer("kitten", "sitting") == pytest.approx(0.5)
    assert cer("", "") == 0.0 and cer("", "ab") == 2.0
    assert wer("the cat sat", "the bat sat down") == pytest.approx(2 / 3)


def test_classification_report_values_and_json() -> None:
    symbols = ["a", "A", "b"]
    probs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    y = np.array([0, 1, 2, 2])
    rep = classification_report(y, probs, symbols, n_bins=5, top_k=2)
    json.dumps(rep, allow_nan=False)  # plain python only
    assert rep["num_samples"] == 4 and rep["top_k"] == 2
    assert rep["accuracy"] == pytest.approx(0.5)
    assert rep["top_k_accuracy"] == pytest.approx(1.0)
    assert rep["case_merged_accuracy"] == pytest.approx(0.75)
    assert rep["confusion"] == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]
    # f1: a = 2/3, A = 0, b = 2/3
    assert rep["macro_f1"] == pytest.approx(4 / 9)
    assert [c["symbol"] for c in rep["per_class"]] == symbols
    assert rep["most_confused"][0] == {"true": "A", "pred": "a", "count": 1, "rate": 1.0}
    assert len(rep["reliability"]) == 5


def test_classification_report_macro_f1_ignores_absent_classes() -> None:
    rep = classification_report(np.array([0, 1]), np.eye(4)[[0, 1]], list("wxyz"))
    assert rep["macro_f1"] == 1.0
    assert rep["case_merged_accuracy"] == 1.0


@pytest.mark.parametrize(
    ("y", "probs", "match"),
    [
        (np.array([0, 1]), np.full((2, 3), 1 / 3), "3 columns but there are 62"),
        (np.array([0, 1, 2]), np.full((2, 62), 1 / 62), "3 labels but probs has 2"),
        (np.array([0]), np.full(62, 1 / 62), "2-D"),
        (np.array([], dtype=int), np.zeros((0, 62)), "zero samples"),
    ],
)
def test_classification_report_rejects_bad_shapes(y: np.ndarray, probs: np.ndarray, match: str) -> None:
    symbols = list(string.digits + string.ascii_uppercase + string.ascii_lowercase)
    with pytest.raises(ValueError, match=match):
        classification_report(y, probs, symbols)


def test_lookalike_merged_accuracy() -> None:
    from hcr.metrics import lookalike_merged_accuracy

    symbols = ["0", "1", "5", "O", "S", "l", "o", "x"]
    t = np.array([3, 5, 4, 7, 6, 0])  # O l S x o 0
    p = np.array([0, 1, 2, 7, 3, 1])  # 0 1 5 x O 1 -> only the last is wrong (0 vs 1)
    assert lookalike_merged_accuracy(t, p, symbols) == pytest.approx(5 / 6)
    assert case_merged_accuracy(t, p, symbols) == pytest.approx(2 / 6)
    assert lookalike_merged_accuracy(np.array([0]), np.array([1]), ["0", "1"]) is None  # no letters
    assert lookalike_merged_accuracy(np.array([0]), np.array([1]), ["a", "b"]) is None  # no digits
