"""Exact drift metrics against scipy, and against Evidently's and NannyML's formulas.

Evidently and NannyML are not installed: what they compute is written out below in numpy, each
function naming the source file and function it follows.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance
from scipy.stats.contingency import association

from edgewise import _core

Floats = npt.NDArray[np.float64]

SCIPY = 1e-9  # against scipy, which computes the same quantities
PEERS = 1e-6  # against the peers' formulas (summation order, NannyML's float leftover bin)


def scipy_ks(reference: Floats, current: Floats) -> float:
    """scipy's two-sample KS statistic. Its p-value, not tested here, warns on some tiny samples
    (an exact computation that fails, a division by zero when D is 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ks_2samp(reference, current).statistic)


# --- Evidently (evidentlyai/evidently, src/evidently/legacy/calculations/stattests/) ---------


def evidently_fill_zeros(p: Floats) -> Floats:
    """utils.py `get_binned_data`, `feel_zeroes=True`: zeros become min(nonzero) / 1e6 when that
    is at most 1e-4, else 1e-4."""
    p = p.astype(float)
    smallest = min(p[p != 0])
    np.place(p, p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return p


def evidently_binned(reference: Floats, current: Floats) -> tuple[Floats, Floats]:
    """utils.py `get_binned_data` for a numerical column, before the zero filling."""
    if pd.Series(reference).nunique() > 20:
        bins = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        return (
            np.histogram(reference, bins)[0] / len(reference),
            np.histogram(current, bins)[0] / len(current),
        )
    keys = np.union1d(reference, current)
    return (
        np.array([np.sum(reference == k) for k in keys]) / len(reference),
        np.array([np.sum(current == k) for k in keys]) / len(current),
    )


def psi(reference: Floats, current: Floats) -> float:
    """psi.py `_psi`, on probabilities from `get_binned_data` (zeros filled)."""
    reference, current = evidently_fill_zeros(reference), evidently_fill_zeros(current)
    return float(np.sum((reference - current) * np.log(reference / current)))


def evidently_psi(reference: Floats, current: Floats) -> float:
    return psi(*evidently_binned(reference, current))


def evidently_js(reference: Floats, current: Floats) -> float:
    """jensenshannon.py `_jensenshannon`: scipy's distance (natural log, `base=None`) on
    `get_binned_data(..., feel_zeroes=False)`."""
    return float(jensenshannon(*evidently_binned(reference, current)))


# --- NannyML (NannyML/nannyml, nannyml/drift/univariate/methods.py) ---------------------------


def nannyml_js(reference: Floats, current: Floats) -> float:
    """`ContinuousJensenShannonDistance._fit` and `_calculate`: Doane bins of the reference, the
    current's share outside them as one more bin, distance in bits."""
    bins = np.histogram_bin_edges(reference.astype("float64"), bins="doane")
    reference_p = np.histogram(reference, bins=bins)[0] / len(reference)
    current_p = np.histogram(current, bins=bins)[0] / len(current)
    leftover = 1 - np.sum(current_p)
    if leftover > 0:
        current_p = np.append(current_p, leftover)
        reference_p = np.append(reference_p, 0)
    return float(jensenshannon(reference_p, current_p, base=2))


def nannyml_linf(reference: list[str], current: list[str]) -> float:
    """`LInfinityDistance._fit` and `_calculate`."""
    reference_p = pd.Series(reference).value_counts(normalize=True)
    current_p = pd.Series(current).value_counts(normalize=True)
    return float(reference_p.sub(current_p, fill_value=0).abs().max())


# --- edgewise's reference-quantile bins, as documented in rust/src/drift/bins.rs ---------------


def quantile_binned(reference: Floats, current: Floats, bins: int) -> tuple[Floats, Floats]:
    """Edge k = sorted(reference)[k n // bins] for 0 < k < bins, outer edges -inf and +inf, tied
    edges merged; numpy's half-open bins."""
    ordered = np.sort(reference)
    inner = ordered[np.arange(1, bins) * len(ordered) // bins]
    edges = np.unique(np.concatenate([[-np.inf], inner, [np.inf]]))
    return (
        np.histogram(reference, edges)[0] / len(reference),
        np.histogram(current, edges)[0] / len(current),
    )


def numeric_samples() -> dict[str, tuple[Floats, Floats]]:
    rng = np.random.default_rng(20240611)
    same = rng.normal(5, 2, 800)
    return {
        "normal vs shifted normal": (rng.normal(0, 1, 2000), rng.normal(0.3, 1.2, 1500)),
        "lognormal": (rng.lognormal(0, 1, 3000), rng.lognormal(0.1, 0.8, 1000)),
        "poisson, few values": (
            rng.poisson(3, 1000).astype(float),
            rng.poisson(3.5, 700).astype(float),
        ),
        "poisson, many tied values": (
            rng.poisson(40, 1200).astype(float),
            rng.poisson(42, 900).astype(float),
        ),
        "current beyond the reference": (rng.uniform(0, 1, 500), rng.uniform(0.5, 3, 400)),
        "constant reference": (np.full(10, 2.0), rng.normal(2, 1, 50)),
        "one vs two": (np.array([0.5]), np.array([0.25, 2.0])),
        "two vs one": (np.array([1.0, 3.0]), np.array([2.0])),
        "one vs one": (np.array([1.0]), np.array([1.0])),
        "identical": (same, same.copy()),
    }


NUMERIC = numeric_samples()


@pytest.mark.parametrize("name", list(NUMERIC))
def test_numeric_metrics_match_scipy(name: str) -> None:
    reference, current = NUMERIC[name]
    drift = _core.drift_exact_numeric(reference, current)

    assert drift["reference_count"] == len(reference)
    assert drift["current_count"] == len(current)
    assert drift["ks"] == pytest.approx(scipy_ks(reference, current), abs=SCIPY)
    assert drift["ks_band"] == 0.0
    distance = wasserstein_distance(reference, current)
    assert drift["wasserstein"] == pytest.approx(distance, abs=SCIPY)
    normed = distance / max(np.std(reference), 0.001)  # Evidently, wasserstein_distance_norm.py
    assert drift["wasserstein_normed"] == pytest.approx(normed, abs=SCIPY)
    quantiles = quantile_binned(reference, current, 10)
    assert drift["js_quantile"] == pytest.approx(jensenshannon(*quantiles), abs=SCIPY)
    assert drift["psi_quantile"] == pytest.approx(psi(*quantiles), abs=SCIPY)


@pytest.mark.parametrize("name", list(NUMERIC))
def test_numeric_metrics_match_evidently_and_nannyml(name: str) -> None:
    reference, current = NUMERIC[name]
    drift = _core.drift_exact_numeric(reference, current)

    assert drift["psi_evidently"] == pytest.approx(evidently_psi(reference, current), abs=PEERS)
    assert drift["js_evidently"] == pytest.approx(evidently_js(reference, current), abs=PEERS)
    assert drift["js_nannyml"] == pytest.approx(nannyml_js(reference, current), abs=PEERS)


def test_identical_samples_do_not_drift() -> None:
    reference, current = NUMERIC["identical"]
    drift = _core.drift_exact_numeric(reference, current)
    for key in ("ks", "wasserstein", "psi_evidently", "js_evidently", "psi_quantile"):
        assert drift[key] == 0.0, key
    assert drift["js_quantile"] == drift["js_nannyml"] == 0.0


@pytest.mark.parametrize("bins", [1, 3, 30])
def test_quantile_bins_follow_the_bins_argument(bins: int) -> None:
    reference, current = NUMERIC["lognormal"]
    drift = _core.drift_exact_numeric(reference, current, bins=bins)
    expected = quantile_binned(reference, current, bins)
    assert drift["psi_quantile"] == pytest.approx(psi(*expected), abs=SCIPY)
    assert drift["js_quantile"] == pytest.approx(jensenshannon(*expected), abs=SCIPY)


def test_missing_numbers_are_dropped_and_counted() -> None:
    reference = np.array([1.0, np.nan, 2.0, np.inf, 3.0])
    current = np.array([-np.inf, 2.5, np.nan, np.nan])
    drift = _core.drift_exact_numeric(reference, current)
    assert (drift["reference_count"], drift["reference_missing"]) == (3, 2)
    assert (drift["current_count"], drift["current_missing"]) == (1, 3)
    assert drift["ks"] == scipy_ks(np.array([1.0, 2.0, 3.0]), np.array([2.5]))
    assert drift["wasserstein"] == pytest.approx(wasserstein_distance([1.0, 2.0, 3.0], [2.5]))


def test_bad_numeric_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="reference: no values left"):
        _core.drift_exact_numeric(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="current: no values left"):
        _core.drift_exact_numeric(np.array([1.0]), np.array([], dtype=np.float64))
    with pytest.raises(ValueError, match="number of bins"):
        _core.drift_exact_numeric(np.array([1.0]), np.array([1.0]), bins=0)


def categorical_samples() -> dict[str, tuple[list[str], list[str]]]:
    rng = np.random.default_rng(7)
    colours = ["red", "green", "blue", "cyan", "grey"]
    return {
        "five categories, one new": (
            list(rng.choice(colours[:4], 3000, p=[0.4, 0.3, 0.2, 0.1])),
            list(rng.choice(colours, 2000, p=[0.3, 0.3, 0.2, 0.15, 0.05])),
        ),
        "two categories (Yates)": (
            list(rng.choice(["yes", "no"], 500, p=[0.3, 0.7])),
            list(rng.choice(["yes", "no"], 400, p=[0.35, 0.65])),
        ),
        "rare categories": (
            ["a"] * 100_000 + ["b"] * 3,
            ["a"] * 50_000 + ["c"],
        ),
        "one category": (["only"] * 5, ["only"] * 2),
        "single items": (["x"], ["y"]),
        "identical": (["p", "q", "q", "r"], ["q", "r", "p", "q"]),
    }


CATEGORICAL = categorical_samples()


def counts_table(reference: list[str], current: list[str]) -> tuple[list[str], np.ndarray]:
    keys = sorted(set(reference) | set(current))
    table = np.array([[side.count(k) for k in keys] for side in (reference, current)])
    return keys, table


@pytest.mark.parametrize("name", list(CATEGORICAL))
def test_categorical_metrics_match_scipy_and_peers(name: str) -> None:
    reference, current = CATEGORICAL[name]
    drift = _core.drift_exact_categorical(reference, current)
    keys, table = counts_table(reference, current)

    assert (drift["reference_count"], drift["current_count"]) == (len(reference), len(current))
    assert drift["categories"] == len(keys)
    expected = chi2_contingency(table)  # scipy's default: Yates' correction when dof == 1
    chi2 = drift["chi2"]
    assert chi2["statistic"] == pytest.approx(expected.statistic, abs=SCIPY)
    assert chi2["dof"] == expected.dof
    assert chi2["p_value"] == pytest.approx(expected.pvalue, abs=SCIPY)
    if len(keys) > 1:
        assert chi2["cramers_v"] == pytest.approx(association(table, method="cramer"), abs=SCIPY)
    else:
        assert chi2["cramers_v"] == 0.0
    assert drift["linf"] == pytest.approx(nannyml_linf(reference, current), abs=SCIPY)
    # Evidently's `get_binned_data`, categorical branch: count / len over the union of values.
    reference_p, current_p = table[0] / len(reference), table[1] / len(current)
    assert drift["psi"] == pytest.approx(psi(reference_p, current_p), abs=PEERS)
    assert drift["js"] == pytest.approx(jensenshannon(reference_p, current_p), abs=SCIPY)


def test_categories_from_numpy_with_missing_values() -> None:
    reference = np.array(["a", None, "b", np.nan, "a"], dtype=object)
    current = pd.Series(["b", "b", None]).to_numpy()
    drift = _core.drift_exact_categorical(reference, current)
    assert (drift["reference_count"], drift["reference_missing"]) == (3, 2)
    assert (drift["current_count"], drift["current_missing"]) == (2, 1)
    assert drift["linf"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="categories must be str"):
        _core.drift_exact_categorical(["a", 3], ["a"])
    with pytest.raises(ValueError, match="a single str"):
        _core.drift_exact_categorical("abc", ["a"])
    with pytest.raises(ValueError, match="current: no values left"):
        _core.drift_exact_categorical(["a"], [None])


# --- Properties --------------------------------------------------------------------------------

values = st.one_of(
    st.integers(-5, 5).map(float),  # ties
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False),
)
samples = st.lists(values, min_size=1, max_size=60).map(lambda v: np.array(v, dtype=np.float64))


@given(samples, samples)
def test_numeric_properties(reference: Floats, current: Floats) -> None:
    forward = _core.drift_exact_numeric(reference, current)
    backward = _core.drift_exact_numeric(current, reference)

    assert forward["ks"] == backward["ks"]
    assert forward["wasserstein"] == backward["wasserstein"]
    assert forward["ks"] == pytest.approx(scipy_ks(reference, current), abs=SCIPY)
    distance = wasserstein_distance(reference, current)
    assert forward["wasserstein"] == pytest.approx(distance, rel=SCIPY, abs=SCIPY)
    assert 0.0 <= forward["ks"] <= 1.0
    for key in ("js_evidently", "js_quantile"):
        assert 0.0 <= forward[key] <= math.sqrt(math.log(2)) + 1e-15
    assert 0.0 <= forward["js_nannyml"] <= 1.0 + 1e-15
    assert forward["psi_evidently"] >= 0.0
    assert forward["psi_quantile"] >= 0.0

    itself = _core.drift_exact_numeric(reference, reference.copy())
    for key in ("ks", "wasserstein", "psi_evidently", "js_evidently", "psi_quantile"):
        assert itself[key] == 0.0, key


@given(
    st.lists(st.sampled_from("abcde"), min_size=1, max_size=40),
    st.lists(st.sampled_from("abcdef"), min_size=1, max_size=40),
)
def test_categorical_properties(reference: list[str], current: list[str]) -> None:
    drift = _core.drift_exact_categorical(reference, current)
    _, table = counts_table(reference, current)
    expected = chi2_contingency(table)
    assert drift["chi2"]["p_value"] == pytest.approx(expected.pvalue, abs=SCIPY)
    assert 0.0 <= drift["chi2"]["cramers_v"] <= 1.0 + 1e-15
    backward = _core.drift_exact_categorical(current, reference)
    assert backward["linf"] == drift["linf"]
    assert backward["js"] == pytest.approx(drift["js"], abs=1e-15)
    assert 0.0 <= drift["js"] <= math.sqrt(math.log(2)) + 1e-15
