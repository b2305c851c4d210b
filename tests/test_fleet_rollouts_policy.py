"""Rollout policies parsed from the operator's words, and wave sizes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgewise.exceptions import EdgewiseError, RolloutError
from edgewise.fleet.rollouts.policy import Gate, Rate, RolloutPolicy, WaveSize


def test_the_issue_example_parses_and_round_trips() -> None:
    policy = RolloutPolicy.parse(
        waves="1%,10%,50%,100%",
        max_failure_rate="5%",
        dwell="10m",
        drift_gates=["psi<0.2", "wasserstein_normed<=1.5"],
        error_gate="error_rate<2%",
        rate="100/min",
        install_timeout="1h",
        auto_rollback=True,
    )
    assert policy.waves[:2] == (WaveSize(1, percent=True), WaveSize(10, percent=True))
    assert (policy.max_failure_rate, policy.dwell, policy.install_timeout) == (0.05, 600, 3600)
    assert policy.drift_gates == (Gate("psi", 0.2), Gate("wasserstein_normed", 1.5, inclusive=True))
    assert policy.error_gate == Gate("error_rate", 0.02)
    assert policy.rate == Rate(100, 60.0)
    assert RolloutPolicy.from_json(policy.to_json()) == policy
    assert policy.describe() == {
        "waves": "1%,10%,50%,100%",
        "max_failure_rate": "5%",
        "dwell": "10m",
        "install_timeout": "1h",
        "drift_gates": ["psi<0.2", "wasserstein_normed<=1.5"],
        "error_gate": "error_rate<2%",
        "rate": "100/min",
        "auto_rollback": True,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"waves": ""}, "--waves '': give wave sizes separated by commas"),
        ({"waves": "10%,,100%"}, "--waves '10%,,100%': give wave sizes separated by commas"),
        ({"waves": "10%,50%"}, "--waves '10%,50%': the last wave must be 100%"),
        ({"waves": "50%,10%,100%"}, "waves are cumulative and must grow (10% follows 50%)"),
        ({"waves": "0%,100%"}, "--waves '0%,100%': 0% is not a share in (0%, 100%]"),
        ({"waves": "ten,100%"}, "'ten' is neither a percentage (10%) nor a device count (5)"),
        ({"waves": "x%,100%"}, "--waves 'x%,100%': 'x' is not a number"),
        ({"waves": "10%,5,100%"}, "device counts (5) must come before percentages"),
        ({"waves": "5,5,100%"}, "waves are cumulative and must grow (5 follows 5)"),
        ({"max_failure_rate": "-1%"}, "--max-failure-rate '-1%': must be between 0% and 100%"),
        ({"max_failure_rate": "nan"}, "--max-failure-rate 'nan': 'nan' is not a finite number"),
        ({"dwell": "10 minutes"}, "--dwell '10 minutes': expected a duration like 30s, 10m"),
        ({"install_timeout": "0"}, "--install-timeout '0': must be longer than zero"),
        ({"drift_gates": ["psi>0.2"]}, "--drift-gate 'psi>0.2': expected METRIC<THRESHOLD with "),
        (
            {"drift_gates": ["kl<0.2"]},
            "METRIC one of psi, js, ks, wasserstein_normed, linf, e.g. psi<0.2",
        ),
        ({"error_gate": "psi<0.2"}, "--error-gate 'psi<0.2': expected METRIC<THRESHOLD"),
        ({"error_gate": "error_rate<0%"}, "an error rate threshold is in (0%, 100%]"),
        ({"rate": "100"}, "--rate '100': expected a number of commands per s, min or h"),
        ({"rate": "0/min"}, "--rate '0/min': expected a number of commands per s, min or h"),
        ({"rate": "5/week"}, "--rate '5/week': expected a number of commands per s, min or h"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(RolloutError) as caught:
        RolloutPolicy.parse(**options)
    assert message in str(caught.value)
    assert isinstance(caught.value, EdgewiseError) and isinstance(caught.value, ValueError)


def test_units() -> None:
    policy = RolloutPolicy.parse(dwell="0", install_timeout="90s", rate="3/s", waves="5,50,100%")
    assert (policy.dwell, policy.install_timeout, policy.rate) == (0, 90, Rate(3, 1.0))
    assert RolloutPolicy.parse(rate="10/h", max_failure_rate="0.1").rate == Rate(10, 3600.0)
    assert RolloutPolicy.parse(max_failure_rate="0.1").max_failure_rate == 0.1
    assert policy.wave_sizes(30) == [5, 25, 0]
    assert policy.wave_sizes(3) == [3, 0, 0]


@pytest.mark.parametrize(
    ("total", "sizes"),
    [
        (0, [0, 0, 0, 0]),
        (1, [1, 0, 0, 0]),
        (5, [1, 0, 2, 2]),
        (100, [1, 9, 40, 50]),
        (1000, [10, 90, 400, 500]),
    ],
)
def test_wave_sizes(total: int, sizes: list[int]) -> None:
    assert RolloutPolicy.parse(waves="1%,10%,50%,100%").wave_sizes(total) == sizes


@given(
    st.lists(st.integers(1, 99), max_size=5, unique=True).map(sorted),
    st.integers(0, 5000),
)
def test_waves_reach_their_share_and_every_device(percents: list[int], total: int) -> None:
    policy = RolloutPolicy.parse(waves=",".join(f"{p}%" for p in [*percents, 100]))
    sizes = policy.wave_sizes(total)
    assert sum(sizes) == total and all(size >= 0 for size in sizes)
    if total:
        assert sizes[0] >= 1
    reached = 0
    for percent, size in zip(percents, sizes, strict=False):
        reached += size
        assert reached >= min(total, math.ceil(total * percent / 100))
        assert reached <= max(1, math.ceil(total * percent / 100))
