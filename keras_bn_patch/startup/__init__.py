"""Holds the sitecustomize that `keras-bn-patch run` puts on PYTHONPATH for child processes."""
