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
from helpers import X, Y, frozen_model, moving_stats, tf1_session, train_minus_test_loss
from keras_bn_patch.tools import keras_api


@pytest.fixture
def compiled(api):
    session = tf1_session(api)
    if session is None:
        pytest.skip("no TF 1 session in %s %s (eager or Theano): nothing to re-initialise" % (api.name, api.version))
    model, bn = frozen_model(api, name="session_bn")
    model.compile(keras_api.sgd(api, 0.0), "mse")
    assert abs(train_minus_test_loss(model)) < 1e-5  # held in the session it was built in
    return model, bn, session, model.get_weights()


def assert_held_here(api, model, bn):
    with keras_bn_patch.disabled():
        assert abs(train_minus_test_loss(model)) > 0.1  # the trap is there in this session
    assert abs(train_minus_test_loss(model)) < 1e-5
    before = moving_stats(api, [bn])
    model.train_on_batch(X, Y)
    assert all(np.array_equal(a, b) for a, b in zip(before, moving_stats(api, [bn])))


def test_held_after_every_variable_is_reinitialised(api, compiled):
    import tensorflow as tf
    model, bn, session, weights = compiled
    v1 = getattr(tf, "compat", tf).v1 if hasattr(tf, "compat") else tf
    session.run(v1.global_variables_initializer())
    model.set_weights(weights)
    assert abs(train_minus_test_loss(model)) < 1e-5
    assert_held_here(api, model, bn)


def test_held_in_a_new_session(api, compiled):
    import tensorflow as tf
    model, bn, session, weights = compiled
    v1 = getattr(tf, "compat", tf).v1 if hasattr(tf, "compat") else tf
    fresh = v1.Session(graph=session.graph)
    api.keras.backend.set_session(fresh)
    fresh.run(v1.global_variables_initializer())
    model.set_weights(weights)
    assert abs(train_minus_test_loss(model)) < 1e-5
    assert_held_here(api, model, bn)


def test_held_in_a_session_of_another_thread(api, compiled):
    import tensorflow as tf
    model, bn, session, weights = compiled
    v1 = getattr(tf, "compat", tf).v1 if hasattr(tf, "compat") else tf
    gaps = []

    def thread():
        with session.graph.as_default():
            own = v1.Session(graph=session.graph)
            with own.as_default():
                api.keras.backend.set_session(own)
                own.run(v1.global_variables_initializer())
                model.set_weights(weights)
                gaps.append(train_minus_test_loss(model))

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    assert len(gaps) == 1 and abs(gaps[0]) < 1e-5, gaps
