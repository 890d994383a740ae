"""Imported late: a backbone built and trained before ``import keras_bn_patch``, then frozen and
fine-tuned (tests/scripts/late_import.py, in a fresh interpreter).

TF 2 traces anew after the import, so the layer is simply held.  Keras 2 and TF 1 build a
layer's graph once, when it is called: that graph never reads a flag, so the layer cannot be
held; it is named instead, in one warning with the fix, in ``status()`` and in ``diagnose``.
"""
import json

from helpers import run_python, script


def test_a_late_import_holds_the_layer_or_names_it(api):
    found = json.loads(run_python(script("late_import.py"), api.name).stdout.strip().splitlines()[-1])
    label = "keras3" if api.name == "keras3" else api.name
    if api.name == "keras3":
        assert abs(found["gap"]) < 1e-5 and found["warnings"] == []  # native
        return
    graph_mode = not api.eager
    if graph_mode:
        assert abs(found["gap"]) > 0.1, found  # the trap: its graph was built without the patch
        assert len(found["warnings"]) == 1, found
        assert "late_bn" in found["warnings"][0] and "import keras_bn_patch before building" in found["warnings"][0]
        assert any(entry.endswith(": late_bn") for entry in found["status"][label]["not_held"]), found
        assert found["handled_by"] == ["unpatched"], found
    else:
        assert abs(found["gap"]) < 1e-5, found
        assert abs(found["unpatched_gap"]) > 0.1, found
        assert found["warnings"] == [] and "not_held" not in found["status"][label], found
        assert found["handled_by"] == ["patched"], found
