"""TF 1 sessions: the flags hold in every session that runs the graph, after any re-initialisation.

TF 1 code that mixes in its own ops re-initialises every variable
(``sess.run(tf.global_variables_initializer())``) and reloads the weights, or moves the model
to a new session (``K.set_session``), or gives each thread its own (TF >= 1.14 Keras does).
The flags are variables, so each of these starts them again from their initial value; the
layer here is frozen after its graph was built, so that initial value is "not held".
Graph-mode TensorFlow flavours only (the others have no sessions).
"""
import threading

import numpy as np
import pytest

import keras_bn_patch
from helpers import X, Y, frozen_model, moving_stats, sgd, tf1_session, train_minus_test_loss


@pytest.fixture
def compiled(api):
    session = tf1_session(api)
    if session is None:
        pytest.skip("no TF 1 session in %s %s (eager or Theano): nothing to re-initialise" % (api.name, api.version))
    model, bn = frozen_model(api, name="session_bn")
    model.compile(sgd(api, 0.0), "mse")
    assert abs(train_minus_test_loss(model)) < 1e-5  # held in the session it was built in
    import tensorflow as tf
    v1 = getattr(getattr(tf, "compat", None), "v1", tf)  # TF 1.5 has no tf.compat.v1
    return model, bn, session, model.get_weights(), v1


def reinitialise(session, v1, model, weights):
    """What TF 1 code mixing in its own ops does: every variable initialised again, weights reloaded."""
    session.run(v1.global_variables_initializer())
    model.set_weights(weights)


def assert_held_here(api, model, bn):
    with keras_bn_patch.disabled():
        assert abs(train_minus_test_loss(model)) > 0.1  # the trap is there in this session
    assert abs(train_minus_test_loss(model)) < 1e-5
    before = moving_stats(api, [bn])
    model.train_on_batch(X, Y)
    assert all(np.array_equal(a, b) for a, b in zip(before, moving_stats(api, [bn])))


def test_held_after_every_variable_is_reinitialised(api, compiled):
    model, bn, session, weights, v1 = compiled
    reinitialise(session, v1, model, weights)
    assert abs(train_minus_test_loss(model)) < 1e-5
    assert_held_here(api, model, bn)


def test_held_in_a_new_session(api, compiled):
    model, bn, session, weights, v1 = compiled
    fresh = v1.Session(graph=session.graph)
    api.keras.backend.set_session(fresh)
    reinitialise(fresh, v1, model, weights)
    assert abs(train_minus_test_loss(model)) < 1e-5
    assert_held_here(api, model, bn)


def test_held_in_a_session_of_another_thread(api, compiled):
    model, bn, session, weights, v1 = compiled
    gaps = []

    def thread():
        with session.graph.as_default():
            own = v1.Session(graph=session.graph)
            with own.as_default():
                api.keras.backend.set_session(own)
                reinitialise(own, v1, model, weights)
                gaps.append(train_minus_test_loss(model))

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    assert len(gaps) == 1 and abs(gaps[0]) < 1e-5, gaps
