"""``python -m keras_bn_patch`` and the ``keras-bn-patch`` command (``cli/main.py``)."""
import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
