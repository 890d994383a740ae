"""The supported-versions tables, generated from the support table and the compat sweep.

usage: python -m compat.support_table [--check]   (from the repository's root)

``table()``: every stack of compat/stacks.py (pins, Python), with the state the
last compat sweep measured for it (compat/results/<session>.json) or, for the stacks of the CI
matrix, that every CI run tests them; the docs' reference page renders it when they are built.
``summary()``: a row per flavour, for README's block between the markers, which this script
rewrites; --check only says whether it is up to date (exit 1 if not).
"""
import glob
import importlib.util
import json
import os
import sys

from compat import stacks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.rst")
START, END = ".. supported-versions-start\n", ".. supported-versions-end\n"


def support():
    """The package's support table (each flavour's name and range), loaded by path: importing
    the package would install the patch, and this runs where wrapt is not installed."""
    spec = importlib.util.spec_from_file_location(
        "support", os.path.join(ROOT, "keras_bn_patch", "core", "support.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results():
    found = {}
    for path in glob.glob(os.path.join(ROOT, "compat", "results", "*.json")):
        with open(path) as handle:
            result = json.load(handle)
        found[result["session"]] = result
    return found


def state(stack, result):
    if stack.role == "matrix":
        return "every CI run (full suite)"
    if result is None:
        return "not yet measured"
    if result["tests"] != "passed":
        return "FAILED (compat sweep %s)" % result["date"]
    states = sorted({entry["state"].split(":")[0] for label, entry in result["status"].items()
                     if label != "processes"}) or ["no flavour"]  # flavours only, not how children are reached
    return "%s; contract subset passed (%s, %d s)" % (", ".join(states), result["date"], result["seconds"])


def table():
    measured = results()
    rows = []
    for stack in stacks.STACKS:
        env = " ".join("``%s=%s``" % item for item in sorted(stack.env.items()))
        rows.append((stack.shows, stack.python, " ".join(stack.requirements) + (" " + env if env else ""),
                     state(stack, measured.get(stack.session))))
    lines = _grid(("Keras", "Python", "pins (pip)", "tested"), rows)
    lines += ["", "Not supported:", ""]
    lines += ["- %s: %s." % (what, why) for what, why in stacks.UNSUPPORTED]
    return "\n".join(lines) + "\n"


def _grid(headers, rows):
    widths = [max(len(row[column]) for row in rows + [headers]) for column in range(len(headers))]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), rule]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return lines + [rule]


def summary():
    rows = []
    for flavour in support().FLAVOURS:
        tested = [stack for stack in stacks.STACKS if flavour.name in stack.flavours.split(",")]
        every = sum(stack.role == "matrix" for stack in tested)
        rows.append(("``%s``" % flavour.name, flavour.what, "%d (%d in every CI run)" % (len(tested), every)))
    lines = _grid(("status() name", "what", "stacks tested"), rows)
    return "\n".join(lines) + "\n"


def rendered(text):
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + START + "\n" + summary() + "\n" + END + tail


def main(argv):
    with open(README) as handle:
        text = handle.read()
    new = rendered(text)
    if "--check" in argv:
        print("README's supported-versions summary is %s" % ("up to date" if new == text else "out of date"))
        return 0 if new == text else 1
    with open(README, "w") as handle:
        handle.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
