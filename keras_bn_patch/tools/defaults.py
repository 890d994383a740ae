"""The tools' defaults, in a module that imports nothing: the public signatures
(``keras_bn_patch.diagnose`` / ``recalibrate``) show them without importing NumPy or Keras."""

DIAGNOSE_TOLERANCE = 0.2  # the largest discrepancy that is no problem
RECALIBRATE_TOLERANCE = 1e-4  # the "passes" method stops when no statistic moves by more
MEMORY_LIMIT = 1 << 30  # bytes: one model call's batch, and the kept activations in memory
