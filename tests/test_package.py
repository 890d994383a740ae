"""Release files: the sdist and the wheel that ``python -m build`` makes from this checkout, checked
by ``twine check`` (which also renders README.rst as the package's long description).  The sdist
holds the whole project (tests, docs, license); the wheel only the package and its start-up
module.  Runs in the nox session ``package`` (it needs ``build`` and ``twine``)."""
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dist"))
    subprocess.run([sys.executable, "-m", "build", "--outdir", out, ROOT], check=True, stdout=subprocess.DEVNULL)
    found = sorted(os.path.join(out, name) for name in os.listdir(out))
    assert [os.path.basename(path).split("-")[0] for path in found] == ["keras_bn_patch"] * 2, found
    return found


def version():
    with open(os.path.join(ROOT, "keras_bn_patch", "__init__.py")) as handle:
        return next(line.split('"')[1] for line in handle if line.startswith("__version__"))


def test_twine_accepts_both_and_renders_the_readme(dists):
    process = subprocess.run([sys.executable, "-m", "twine", "check", "--strict"] + dists,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert process.returncode == 0 and process.stdout.count("PASSED") == 2, process.stdout


def test_the_sdist_holds_the_project(dists):
    sdist, = [path for path in dists if path.endswith(".tar.gz")]
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("LICENSE", "CHANGELOG.rst", "README.rst", "setup.cfg", "setup.py",
                   "noxfile.py", "compat/stacks.py", "tests/conftest.py", "tests/test_contract.py",
                   "tests/scripts/engine_run.py", "benchmarks/determinism.py",
                   "docs/conf.py", "docs/index.rst", "keras_bn_patch_startup.py",
                   "keras_bn_patch/reach/startup/sitecustomize.py"):
        assert needed in names, needed
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_wheel_holds_only_the_package_and_its_start_up_module(dists):
    wheel, = [path for path in dists if path.endswith(".whl")]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read("keras_bn_patch-%s.dist-info/METADATA" % version()).decode("utf-8")
    tops = {name.split("/")[0] for name in names}
    assert tops == {"keras_bn_patch", "keras_bn_patch_startup.py", "keras_bn_patch-%s.dist-info" % version()}, tops
    for needed in ("keras_bn_patch/reach/startup/sitecustomize.py", "keras_bn_patch/engines.py",
                   "keras_bn_patch/cli/main.py", "keras_bn_patch/core/flavours/base.py", "keras_bn_patch/tools/staged.py"):
        assert needed in names, needed  # every room of the package, the console script's included
    assert any(name.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in name for name in names), names
    assert "Requires-Python: >=3.6" in metadata and "License :: OSI Approved :: MIT License" in metadata
    assert "Provides-Extra: tf1" in metadata and "Requires-Dist: wrapt>=1.10" in metadata


def _public_functions():
    import inspect
    import keras_bn_patch
    return {name: getattr(keras_bn_patch, name) for name in dir(keras_bn_patch)
            if not name.startswith("_") and inspect.isfunction(getattr(keras_bn_patch, name))}


def test_the_type_stub_has_every_public_function_with_its_parameters():
    """``__init__.pyi`` (the types checkers read) names every public function with the runtime's
    parameters, in order, each with a default where the runtime has one."""
    import ast
    import inspect
    with open(os.path.join(ROOT, "keras_bn_patch", "__init__.pyi")) as handle:
        stub = {node.name: node for node in ast.parse(handle.read()).body if isinstance(node, ast.FunctionDef)}
    for name, function in _public_functions().items():
        assert name in stub, name
        arguments = stub[name].args
        parameters = list(inspect.signature(function).parameters.values())
        assert [argument.arg for argument in arguments.args] == [p.name for p in parameters], name
        with_defaults = [p.name for p in parameters if p.default is not p.empty]
        assert [argument.arg for argument in arguments.args[len(arguments.args) - len(arguments.defaults):]] == \
            with_defaults, name


def test_mypy_accepts_typed_use_and_names_a_wrong_argument(tmp_path):
    """The package ships ``py.typed``: ``mypy --strict`` checks a user's calls against its types."""
    usage = os.path.join(ROOT, "tests", "typed", "usage.py")
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent"]
    # The package from this checkout: an editable install's import hook is nothing mypy follows.
    env = dict(os.environ, MYPYPATH=ROOT)
    process = subprocess.run(command + [usage], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, cwd=str(tmp_path), env=env)
    assert process.returncode == 0, process.stdout
    wrong = tmp_path / "wrong.py"
    wrong.write_text("import keras_bn_patch\nkeras_bn_patch.recalibrate(None, None, memory_limit='1 GiB')\n")
    process = subprocess.run(command + [str(wrong)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, cwd=str(tmp_path), env=env)
    assert process.returncode == 1 and '"memory_limit"' in process.stdout and '"recalibrate"' in process.stdout, \
        process.stdout


def test_the_wheel_holds_the_types(dists):
    wheel, = [path for path in dists if path.endswith(".whl")]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "keras_bn_patch/py.typed" in names and "keras_bn_patch/__init__.pyi" in names, names
