"""The patch itself; nothing here imports TensorFlow or Keras at import time, nor anything of
the package outside ``core``.

- ``install``: install()/uninstall() and the one version gate; ``hooks``: the one registry of
  post-import hooks and their error guard; ``status``: what each flavour is reported as.
- ``flavours/``: one module per Keras family (``base.Flavour``: what one provides); ``support``:
  their module paths, supported versions and version facts; ``registry``: the BN classes patched now.
- ``entry``: the Model wrappers (compile snapshot, entry points); ``layers``: a model's layers
  and its view; ``flags``: each layer's runtime flag, traces per switch; ``held``: which layers
  are really held, and the warning for those that are not.
- ``patching``: the ledger of what was replaced, and the packages left alone; ``switch``:
  on/off; ``environment``: the environment variables by name; ``context``, ``log``,
  ``versions``: the bottom helpers.
"""
