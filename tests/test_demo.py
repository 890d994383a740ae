"""`python -m keras_bn_patch demo` shows the trap unpatched and its fix patched."""
import json
import sys

from helpers import run_python


def test_demo_shows_the_trap_and_the_fix(flavour):
    out = run_python("-m", "keras_bn_patch", "demo", "--flavour", flavour, "--json")
    text = out.stdout
    assert "Epoch" in text and "evaluate() same data" in text  # Keras's progress bar and the table
    result = json.loads(text.strip().splitlines()[-1])
    unpatched, patched = result["results"]["unpatched"], result["results"]["patched"]
    sys.stdout.write("demo %s: %s\n" % (flavour, json.dumps(result["results"])))
    assert patched["stats_moved"] == 0.0
    assert abs(patched["eval_acc"] - patched["train_acc"]) < 0.05
    if flavour == "keras3":  # native: both arms are the same computation
        assert unpatched == patched
    else:
        assert unpatched["train_acc"] - unpatched["eval_acc"] > 0.1
        assert patched["eval_acc"] > unpatched["eval_acc"] + 0.05
    from keras_bn_patch.core.versions import version_tuple
    if flavour == "keras" and version_tuple(result["version"]) < (2, 1, 3):
        assert unpatched["stats_moved"] > 0  # the bug of 2.1.0-2.1.2 that the patch also fixes
