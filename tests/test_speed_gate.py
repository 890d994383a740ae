"""The quick speed gate (benchmarks/gate.py): a disturbed measurement is measured again
before CI fails, and a real 20% slowdown still fails.  Runs on the recorded figures of
the committed benchmark run, with the slowdown or the disturbance injected."""
import json
import os

import pytest

import gate
import report
from helpers import TESTS

RESULTS = os.path.join(TESTS, "..", "benchmarks", "results")


def recorded():
    """{(session, figure): (value, noise)} of the committed full run."""
    found = {}
    for session in ("keras224", "keras215"):
        with open(os.path.join(RESULTS, "speed-%s.json" % session)) as handle:
            speed = json.load(handle)["speed"]
        for figure in gate.SPEED_TARGETS:
            if speed.get(figure) is not None:
                found[session, figure] = (speed[figure], speed["noise_iqr_over_median"][figure])
    return found


FIGURES = sorted(recorded())


def measurer(values):
    """A measurement that returns the given (value, noise) pairs in turn, recording its rounds."""
    calls = []

    def measure(rounds):
        calls.append(rounds)
        return values[len(calls) - 1]

    return measure, calls


@pytest.mark.parametrize("session,figure", FIGURES)
def test_a_real_20_percent_slowdown_fails_in_every_measurement(session, figure):
    value, noise = recorded()[session, figure]
    assert value <= gate.limit(session, figure, noise)  # the recorded run passes as it is
    # 20% slower than a run right at what the gate accepts: the target, or a known miss's
    # ceiling (the overhead is a ratio minus one)
    accepted = gate.KNOWN_MISSES.get((session, figure), (gate.SPEED_TARGETS[figure][0],))[0]
    slow = accepted * 1.2 if figure != "eager_call_overhead" else (1 + accepted) * 1.2 - 1
    measure, calls = measurer([(slow, noise)] * (gate.RETRIES + 1))
    kept, kept_noise, attempts = gate.confirmed(session, figure, measure, 9)
    assert calls == [9, 27, 81]
    assert kept > gate.limit(session, figure, kept_noise)
    speed = {"speed": {figure: kept, "noise_iqr_over_median": {figure: kept_noise},
                       "attempts": {figure: attempts}}}
    failures = report.check({"accuracy": {"scenarios": {}}}, {session: speed})
    assert len(failures) == 1 and failures[0].startswith("%s: %s = " % (session, figure))
    assert "in each of 3 measurements" in failures[0]


@pytest.mark.parametrize("session,figure", FIGURES)
def test_one_disturbed_measurement_is_measured_again_and_passes(session, figure):
    value, noise = recorded()[session, figure]
    disturbed = gate.limit(session, figure, noise) + 0.15  # as the 1.1675 that failed a clean-clone run
    measure, calls = measurer([(disturbed, noise), (value, noise)])
    kept, kept_noise, attempts = gate.confirmed(session, figure, measure, 9)
    assert calls == [9, 27]
    assert (kept, kept_noise) == (value, noise)
    speed = {"speed": {figure: kept, "noise_iqr_over_median": {figure: kept_noise}}}
    assert report.check({"accuracy": {"scenarios": {}}}, {session: speed}) == []


def test_noise_cannot_hide_a_slowdown():
    # A very noisy measurement buys at most NOISE_CAP of slack.
    assert gate.limit("keras215", "frozen_step_patched_over_ideal", 0.5) == pytest.approx(1.03 + gate.NOISE_CAP)
    assert 1.03 * 1.2 > gate.limit("keras215", "frozen_step_patched_over_ideal", 0.5)


def test_re_measurements_run_where_the_first_one_left_no_trace():
    """The tools' figures are measured again in a fresh process (``measure_again``): a first
    measurement slowed by the graphs its process built is rescued by a clean one, and a real
    slowdown measured fresh still fails."""
    session, figure = "keras224", "recalibrate_over_predict"
    value, noise = recorded()[session, figure]
    slowed = gate.limit(session, figure, noise) + 0.05  # 4.23 against 4.19, as a clean-clone run
    first, first_calls = measurer([(slowed, noise)])
    fresh, fresh_calls = measurer([(value, noise)])
    kept, kept_noise, attempts = gate.confirmed(session, figure, first, 9, fresh)
    assert (first_calls, fresh_calls) == ([9], [27])
    assert (kept, kept_noise) == (value, noise)
    slow = gate.SPEED_TARGETS[figure][0] * 1.2
    first, first_calls = measurer([(slow, noise)])
    fresh, fresh_calls = measurer([(slow, noise)] * gate.RETRIES)
    kept, kept_noise, attempts = gate.confirmed(session, figure, first, 9, fresh)
    assert (first_calls, fresh_calls) == ([9], [27, 81])
    assert kept > gate.limit(session, figure, kept_noise)
