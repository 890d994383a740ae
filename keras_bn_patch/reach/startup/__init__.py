"""Holds the sitecustomize that a patched process puts first on PYTHONPATH for the processes it
starts (``keras_bn_patch/reach/children.py``)."""
