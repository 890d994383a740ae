"""Versions live in one place: the support table.  What is generated from it stays generated."""
import os
import sys

from helpers import TESTS

ROOT = os.path.dirname(TESTS)
sys.path.insert(0, os.path.join(ROOT, "compat"))
import support_table  # noqa: E402


def test_readme_summary_is_generated_from_the_support_table():
    with open(support_table.README) as handle:
        text = handle.read()
    assert support_table.rendered(text) == text, "README drifted from the support table: run `nox -s support-table`"


def test_the_noxfile_and_the_cli_take_their_stacks_and_flavours_from_the_table():
    support = support_table.support()
    from keras_bn_patch.__main__ import FLAVOURS as cli_choices
    assert tuple(cli_choices) == support.FLAVOUR_NAMES
    with open(os.path.join(ROOT, "noxfile.py")) as handle:
        noxfile = handle.read()
    assert "for stack in support.STACKS}" in noxfile
    for stack in support.STACKS:  # no pin written twice
        for requirement in stack.requirements:
            assert '"%s"' % requirement not in noxfile, requirement


def test_every_stack_names_a_flavour_or_an_expected_unsupported_label():
    support = support_table.support()
    for stack in support.STACKS:
        named = [name for name in stack.flavours.split(",") + stack.unsupported.split(",") if name]
        assert named and all(name in support.FLAVOUR_NAMES for name in named), stack
