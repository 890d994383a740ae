"""Bit-for-bit repeatable TensorFlow runs, for the benchmarks' arms and the tests' dumps.

Imports neither TensorFlow nor the package until called: the tests' plain processes use it too.
"""


def reproducible(api):
    """Make TensorFlow repeat a run bit for bit in this process; call again after clear_session(),
    and before the process makes its first session or model: in TF 1 that first session sizes the
    CPU thread pools of every later one, whatever their own configuration asks.

    One thread: multi-threaded CPU kernels sum in a varying order.  Resource variables
    (TF 1 graph mode): reads of reference variables alias their buffer, and Keras
    2.1/2.2 do not order the optimizer's writes after the backward pass's reads, so
    plain Keras itself varies from run to run (seen: 2 of 6 runs on TF 1.13).  TF 1.5
    cannot switch ``tf.Variable`` to resource variables: there the race remains.
    """
    if api.keras.backend.backend() != "tensorflow":  # Theano, Keras 3 on JAX or PyTorch: single-threaded
        return
    import tensorflow as tf
    if not api.eager and hasattr(tf.get_variable_scope(), "set_use_resource"):
        tf.get_variable_scope().set_use_resource(True)
    if not api.eager and api.name in ("keras", "tf.keras"):  # graph mode: Keras's own session
        v1 = getattr(getattr(tf, "compat", None), "v1", tf)
        config = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        api.keras.backend.set_session(v1.Session(config=config))
    elif tf.config.threading.get_intra_op_parallelism_threads() != 1:  # fixed once the runtime runs
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
