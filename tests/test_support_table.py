"""Versions live in one place each: the package's support table (what is fixed, where) and the
tested stacks (compat/stacks.py: what CI installs).  What is generated from them stays generated."""
import os

from compat import stacks, support_table
from helpers import TESTS
from keras_bn_patch.core import support

ROOT = os.path.dirname(TESTS)


def test_readme_summary_is_generated_from_the_support_table():
    with open(support_table.README) as handle:
        text = handle.read()
    assert support_table.rendered(text) == text, "README drifted from the support table: run `nox -s support-table`"


def test_the_noxfile_and_the_cli_take_their_stacks_and_flavours_from_the_table():
    from keras_bn_patch.cli.main import FLAVOURS as cli_choices
    assert tuple(cli_choices) == support.FLAVOUR_NAMES
    with open(os.path.join(ROOT, "noxfile.py")) as handle:
        noxfile = handle.read()
    assert "for stack in stacks.STACKS}" in noxfile
    for stack in stacks.STACKS:  # no pin written twice
        for requirement in stack.requirements:
            assert '"%s"' % requirement not in noxfile, requirement


def test_every_stack_names_a_flavour_or_an_expected_unsupported_label():
    for stack in stacks.STACKS:
        named = [name for name in stack.flavours.split(",") + stack.unsupported.split(",") if name]
        assert named and all(name in support.FLAVOUR_NAMES for name in named), stack
