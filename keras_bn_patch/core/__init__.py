"""The patch itself: the support table, post-import hooks, the ledger of what was
replaced, the per-layer views and runtime flags, the on/off switch, and one module
per Keras family.  Nothing here imports TensorFlow or Keras at import time."""
