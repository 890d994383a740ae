"""The public API as a user's typed code calls it: ``mypy --strict`` must accept this file
(tests/test_package.py), which it checks against the package's ``__init__.pyi``."""
from typing import Any, Dict, List

import keras_bn_patch


def repair(model: Any, x: Any, y: Any) -> int:
    report = keras_bn_patch.diagnose(model, x, batch_size=32, tolerance=0.2, y=y)
    verdict: str = report.verdict
    rows: List[Dict[str, Any]] = report.rows
    if not report.healthy and rows:
        summary = keras_bn_patch.recalibrate(model, x, layers=["backbone/bn_1"], batch_size=32,
                                             memory_limit=1 << 28)
        passes: int = summary.passes
        print(verdict, passes, summary.to_dict())
    with keras_bn_patch.disabled():
        keras_bn_patch.enable()
    state: Dict[str, Dict[str, Any]] = keras_bn_patch.status()
    print(state, keras_bn_patch.is_enabled(), keras_bn_patch.__version__)
    return report.exit_code(strict=True)
