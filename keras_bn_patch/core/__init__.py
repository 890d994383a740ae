"""The patch itself; nothing here imports TensorFlow or Keras at import time.

- ``install``: the post-import hooks, one loop over the flavour table; ``status``: what each
  flavour is reported as, and the packages left untouched.
- ``flavours/``: one module per Keras family (``base.Flavour``: what one provides); ``support``:
  their module paths and supported versions; ``registry``: the BN classes patched now.
- ``entry``: the Model wrappers (compile snapshot, entry points, traces per switch);
  ``layers``: a model's layers and its view; ``flags``: each layer's runtime flag;
  ``held``: which layers are really held, and the warning for those that are not.
- ``patching``: the ledger of what was replaced; ``switch``: on/off; ``context``, ``log``,
  ``versions``: the bottom helpers.
"""
