"""Hostile arguments to the public functions, property-based with hypothesis.

Every outcome is either a result or a TypeError/ValueError whose message names the argument;
whatever happens, a failed call leaves every weight of the model as it was.
"""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import keras_bn_patch
from helpers.tools import X, nested_model

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.lists(st.one_of(st.integers(-2, 2), st.text(max_size=3)), max_size=3),
    arrays(st.sampled_from(["float32", "float64", "int32", "bool", "U2"]),
           array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)),
)
VALID = {"diagnose": {"x": X}, "recalibrate": {"data": X, "verbose": 0}}
ARGUMENTS = [("diagnose", name) for name in ("x", "batch_size", "steps", "tolerance", "model")] + \
            [("recalibrate", name) for name in ("data", "batch_size", "steps", "layers", "verbose", "model")]
_models = {}


@pytest.mark.parametrize("function, argument", ARGUMENTS)
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(value=VALUES)
def test_hostile_argument_is_named_and_changes_nothing(api, function, argument, value):
    if _models.get("api") is not api:  # one model per test case (the fixture clears the session after)
        _models.update(api=api, model=nested_model(api)[0])
    model = _models["model"]
    before = model.get_weights()
    kwargs = dict(VALID[function], model=model)
    kwargs[argument] = value
    try:
        getattr(keras_bn_patch, function)(**kwargs)
    except (TypeError, ValueError) as error:
        assert re.search(r"\b%s\b" % argument, str(error)), (argument, value, error)
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    finally:
        model.set_weights(before)  # a successful recalibrate changed statistics: next example starts alike
