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
        from keras_bn_patch.cli import main as cli
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


def check_rendered(app, error):
    """After an HTML build: every public name has its entry in the API reference, and no numbered
    list fell apart (an item that lost its indentation renders as a paragraph starting "2. ")."""
    if error is not None or app.builder.format != "html":
        return
    import re
    import keras_bn_patch
    problems = []
    with open(os.path.join(app.outdir, "reference", "api.html")) as handle:
        api = handle.read()
    problems += ["the API reference does not render keras_bn_patch.%s" % name for name in keras_bn_patch.__all__
                 if 'id="keras_bn_patch.%s"' % name not in api]
    for folder, _, names in os.walk(app.outdir):
        for name in names:
            if name.endswith(".html"):
                with open(os.path.join(folder, name)) as handle:
                    broken = re.findall(r"<p>(\d+)\. ", handle.read())
                problems += ["%s: numbered item %s renders as a paragraph, outside its list"
                             % (os.path.relpath(os.path.join(folder, name), app.outdir), number) for number in broken]
    if problems:
        raise RuntimeError("the built documentation is not what its sources say:\n" + "\n".join(problems))


def setup(app):
    app.add_directive("keras-bn-patch-cli", CommandLine)
    app.add_directive("keras-bn-patch-support-table", SupportTable)
    app.connect("build-finished", check_rendered)
