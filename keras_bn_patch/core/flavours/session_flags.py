"""Write flag variables into a TF 1 session at every entry point, cheaply.

Every entry point writes all flags of its model's view into the session that runs it (the
session may be new, per thread, or re-initialised: no cache can know).  Keras's
``batch_set_value`` builds a feed dict and goes through ``Session.run``'s general path, a
large share of a small convolutional step (benchmarks/speed.py).  So each variable's assign op is made
once (as Keras's ``_assign_placeholder`` / ``_assign_op``), and they run through a callable made
once per session and set of flags.
"""
import sys
import threading
import weakref

from ..versions import tf_v1

_callables = weakref.WeakKeyDictionary()  # session -> {variables' ids: callable}


def write(backend, pairs):
    """Assign ``[(variable, value)]`` in the session Keras's ``backend`` runs, in one call."""
    variables = [variable for variable, _ in pairs]
    session = backend.get_session()
    made = _callables.setdefault(session, {})
    key = tuple(id(variable) for variable in variables)
    if key not in made:
        for variable in variables:
            _make_assign_op(variable)
        made[key] = (variables, session.make_callable(  # variables kept: their ids stay theirs
            [variable._assign_op for variable in variables],
            feed_list=[variable._assign_placeholder for variable in variables]))
    made[key][1](*[value for _, value in pairs])


def _make_assign_op(variable):
    """The assign op and placeholder Keras's ``batch_set_value`` makes once per variable, under the
    same names (Keras reuses them); made here because TF 1.4's Keras cannot make one for a bool."""
    if hasattr(variable, "_assign_op") and hasattr(variable, "_assign_placeholder"):
        return
    import tensorflow as tf
    v1 = tf_v1(tf)
    with variable.graph.as_default():
        placeholder = v1.placeholder(variable.dtype.base_dtype, shape=variable.get_shape())
        variable._assign_op = variable.assign(placeholder)
        variable._assign_placeholder = placeholder


def session_exists(graph, *backends):
    """Whether TF has a default session, or one of these Keras backends made its own, for
    ``graph``: without making one (``get_session()`` would)."""
    v1 = tf_v1(sys.modules.get("tensorflow"))
    sessions = [v1.get_default_session()] if v1 is not None else []
    for backend in backends:
        session = getattr(backend, "_SESSION", None)  # a session, or a thread-local holding one
        if isinstance(session, threading.local):
            session = getattr(session, "session", None)
        sessions.append(session)
    return any(session is not None and session.graph is graph for session in sessions)
