"""Sphinx configuration of keras-bn-patch's documentation (``nox -s docs`` builds it, warnings as
errors).  Two pages are generated from the code at build time, so they cannot drift: the command
line's reference (from its argparse parser) and the supported-versions table (from the support
table and the compat sweep's results)."""
import os
import sys

from docutils import nodes
from docutils.parsers.rst import Directive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

project = "keras-bn-patch"
author = "the keras-bn-patch maintainers"
copyright = "2026, " + author
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
nitpicky = False


class CommandLine(Directive):
    """The help of ``keras-bn-patch`` and of each of its commands, as the parser prints it."""

    def run(self):
        import argparse
        from keras_bn_patch import __main__ as cli
        parser = cli.build_parser()
        found = [nodes.literal_block(text=parser.format_help())]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    text = cli.RUN_USAGE + "\n" + cli.RUN_HELP if name == "run" else sub.format_help()
                    section = nodes.section(ids=["command-" + name])
                    section += nodes.title(text="keras-bn-patch " + name)
                    section += nodes.literal_block(text=text)
                    found.append(section)
        return found


class SupportTable(Directive):
    """Every tested stack, its pins and how it is tested; then what is not supported."""

    def run(self):
        from compat import support_table
        table = support_table.table()
        lines = table.splitlines()
        self.state_machine.insert_input(lines, "support table")
        return []


def setup(app):
    app.add_directive("keras-bn-patch-cli", CommandLine)
    app.add_directive("keras-bn-patch-support-table", SupportTable)
