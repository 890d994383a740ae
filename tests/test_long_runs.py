"""Long runs: many frozen steps, many toggles, against the real Keras here."""
import resource

import numpy as np

import keras_bn_patch
from helpers import frozen_model as small_frozen_model, moving_stats, scalar, sgd, tf1_session

RNG = np.random.RandomState(5)
STEPS = 30  # per thread / task: 240 steps by threads and 240 by tasks, each in its toggled block


def frozen_model(api, learning_rate, **bn_options):
    model, bn = small_frozen_model(api, name="long_bn", width=8, **bn_options)
    model.compile(sgd(api, learning_rate), "mse")
    return model, bn


def test_1000_frozen_steps_leave_the_statistics_bit_identical(api):
    model, bn = frozen_model(api, 0.001)  # inference-mode BN passes large values: a small rate
    x = (RNG.normal(size=(8000, 8)) * 3 + 4).astype("float32")
    before = moving_stats(api, [bn])
    history = model.fit(x, np.zeros((8000, 2), "float32"), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    for b, a in zip(before, moving_stats(api, [bn])):
        assert np.array_equal(a, b)


def graph_size(api):
    session = tf1_session(api)
    return None if session is None else len(session.graph.get_operations())


def test_1000_toggles_take_effect_each_time_without_growing(api):
    # Nothing changes, so each state gives one loss every time: no learning, and momentum 1
    # (Keras 2.1.0-2.1.2 update frozen statistics when unpatched, which would move the held loss).
    model, bn = frozen_model(api, 0.0, momentum=1.0)
    x = (RNG.normal(size=(16, 8)) * 3 + 4).astype("float32")
    y = np.zeros((16, 2), "float32")
    held = scalar(model.test_on_batch(x, y))  # the held layer: its moving statistics, as inference

    def step(index):
        with (keras_bn_patch.disabled() if index % 2 else keras_bn_patch.enabled()):
            return scalar(model.train_on_batch(x, y))

    for index in range(10):  # warm up: both states traced/built once
        step(index)
    ops, memory = graph_size(api), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    functions = set()
    losses = {0: set(), 1: set()}
    for index in range(1000):
        losses[index % 2].add(step(index))
        functions.add(id(getattr(model, "train_function", None)))
    assert max(abs(loss - held) for loss in losses[0]) < 1e-6
    if api.name != "keras3":  # plain Keras trains the frozen layer on batch statistics
        assert min(abs(loss - held) for loss in losses[1]) > 0.1
    assert graph_size(api) == ops  # TF 1: no op added per toggle
    assert len(functions) <= 2  # TF 2: one traced train function per state, swapped, not retraced
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory) / 1024.0
    assert grown < 30, "peak memory grew by %.0f MB over 1000 toggles" % grown


def test_threads_and_tasks_toggling_while_training_do_not_leak(api):
    """8 threads, then 8 asyncio tasks, each with its own frozen model, half inside disabled()
    and half inside enabled(), each step checked against the loss its own block must give.
    Task i reuses thread i's model and block: the two phases do not overlap, and that
    halves the models to build and trace."""
    import asyncio
    import contextlib
    import sys
    import threading

    x = (RNG.normal(size=(16, 8)) * 3 + 4).astype("float32")
    y = np.zeros((16, 2), "float32")
    workers = []
    for index in range(8):
        model, _ = frozen_model(api, 0.0, momentum=1.0)
        block = keras_bn_patch.disabled() if index % 2 else keras_bn_patch.enabled()
        with block:  # built, traced and measured here: in TF 1 graph mode threads only run it
            expected = scalar(model.train_on_batch(x, y))
        with (keras_bn_patch.enabled() if index % 2 else keras_bn_patch.disabled()):
            other = scalar(model.train_on_batch(x, y))
        if api.name != "keras3":
            assert abs(expected - other) > 0.1
        workers.append((model, block, expected))
    errors = []

    def check(index, loss):
        if abs(loss - workers[index][2]) > 1e-6:
            errors.append((index, loss, workers[index][2]))

    # TF 1: the default graph and session are per thread (from TF 1.14 Keras's own session
    # too), so a thread shares the model's weights only inside these, as TF 1 code must.
    session = tf1_session(api)

    def thread(index):
        model, block, _ = workers[index]
        with contextlib.ExitStack() as stack:
            if session is not None:
                stack.enter_context(session.graph.as_default())
                stack.enter_context(session.as_default())
            for step in range(STEPS):
                with block:
                    check(index, scalar(model.train_on_batch(x, y)))

    threads = [threading.Thread(target=thread, args=(index,)) for index in range(8)]
    for started in threads:
        started.start()
    for started in threads:
        started.join()

    async def task(index):
        model, block, _ = workers[index]
        for step in range(STEPS):
            with block:
                await asyncio.sleep(0)
                check(index, scalar(model.train_on_batch(x, y)))

    async def all_tasks():
        await asyncio.gather(*(task(index) for index in range(8)))

    if sys.version_info >= (3, 7):  # asyncio tasks carry contextvars from Python 3.7 on
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(all_tasks())
        finally:
            loop.close()
    assert errors == []
