"""Tools for models already caught in the trap: ``diagnose`` and ``recalibrate``, and
``keras_api``, which finds the Keras a script would use.  They import NumPy and Keras."""
