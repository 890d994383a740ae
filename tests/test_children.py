"""How the patch reaches the processes a patched one starts (keras_bn_patch/reach/children.py): no
Keras needed, so it runs with the machinery on the oldest and newest Python.  Training in
engines' workers is tests/test_engines.py."""
import glob
import json
import os
import subprocess
import sys

from keras_bn_patch.reach.children import STARTUP
from helpers import run_python

REPORT = ("import json, os, sys\n"
          "print(json.dumps({'path': sys.path, 'startup': 'keras_bn_patch_startup' in sys.modules,\n"
          "                  'pythonpath': os.environ.get('PYTHONPATH', ''), 'marker': os.environ.get('MARKER')}))")


def other_interpreter():
    """A pyenv Python of another minor version than this one (CI's machines have 3.6-3.13)."""
    root = os.environ.get("PYENV_ROOT") or subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE,
                                                          universal_newlines=True).stdout.strip()
    this = "%d.%d." % sys.version_info[:2]
    found = sorted(path for path in glob.glob(os.path.join(root, "versions", "3.*", "bin", "python"))
                   if not os.path.basename(os.path.dirname(os.path.dirname(path))).startswith(this))
    assert found, "no other Python under %s/versions: the test needs one" % root
    return found[-1]


def child_of(parent, *args, env=None):
    """The child's REPORT, as the parent (inline source, or "-m" and its arguments) saw it."""
    process = run_python(parent, *args, env=env)
    return json.loads(process.stdout.strip().splitlines()[-1]), process


LAUNCH = ("import subprocess, sys\n"
          "out = subprocess.run([sys.argv[1], '-c', %r], stdout=subprocess.PIPE, stderr=subprocess.PIPE,\n"
          "                     universal_newlines=True)\n"
          "sys.stderr.write(out.stderr); print(out.stdout)\n" % REPORT)


def test_a_child_of_this_environment_starts_patched_and_keeps_its_own_sitecustomize(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['MARKER'] = 'its own'\n")
    code = "import keras_bn_patch\n" + LAUNCH.replace("sys.argv[1]", "sys.executable")
    found, process = child_of(code, env={"PYTHONPATH": str(tmp_path)})
    assert found["startup"] and found["marker"] == "its own", found
    assert found["pythonpath"].split(os.pathsep)[0] == STARTUP, found  # grandchildren too
    assert STARTUP not in found["path"] and process.stderr == "", (found, process.stderr)


def test_a_child_of_another_interpreter_starts_untouched(tmp_path):
    other = other_interpreter()
    parent_code = "import keras_bn_patch\n" + LAUNCH
    program = tmp_path / "program.py"
    program.write_text(LAUNCH)
    for args in ((parent_code, other), ("-m", "keras_bn_patch", "run", str(program), other)):
        found, process = child_of(*args)
        assert STARTUP in found["pythonpath"], found  # it was offered the start-up path ...
        assert not found["startup"], found  # ... which found no keras-bn-patch there
        ours = [entry for entry in found["path"] if entry.startswith(sys.prefix) or entry == STARTUP
                or entry == os.path.dirname(os.path.dirname(STARTUP))]
        assert ours == [] and process.stderr == "", (args[:3], ours, process.stderr)


def test_status_says_how_processes_started_from_here_are_reached():
    code = ("import json, os, keras_bn_patch\n"
            "first = keras_bn_patch.status().get('processes')\n"
            "keras_bn_patch.uninstall()\n"
            "print(json.dumps([first, keras_bn_patch.status().get('processes'), os.environ.get('PYTHONPATH', '')]))")
    installed, uninstalled, pythonpath = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    assert installed["state"] == "patched where keras-bn-patch is installed", installed
    assert installed["reach"][0].startswith("start-up path: ") and STARTUP in installed["reach"][0], installed
    assert uninstalled is None and STARTUP not in pythonpath, (uninstalled, pythonpath)
    off = json.loads(run_python(code, env={"KERAS_BN_PATCH": "0"}).stdout.strip().splitlines()[-1])[0]
    assert off["state"].startswith("none: KERAS_BN_PATCH=0 is set") and off["reach"] == [], off


def test_the_cli_status_speaks_of_this_environment_not_its_own_process():
    shown = run_python("-m", "keras_bn_patch", "status", "--json").stdout
    report = json.loads(shown[shown.index("{"):])
    assert "processes" not in report, report
    assert report["environment"]["site_switch"] == [], report
    assert report["environment"]["new_process_starts_patched"] is False, report
    assert "starts unpatched (observed)" in report["environment"]["state"], report
    shown = run_python("-m", "keras_bn_patch", "site", "status").stdout
    assert "start-up module: " in shown and "keras_bn_patch_startup.py" in shown, shown
    assert "a new Python process of this environment starts unpatched (observed)" in shown, shown
    # a process this one starts patched (the start-up path) is not what the environment does
    shown = run_python("import keras_bn_patch, runpy, sys; sys.argv = ['keras-bn-patch', 'site', 'status'];"
                       "runpy.run_module('keras_bn_patch', run_name='__main__')", check=False).stdout
    assert "starts unpatched (observed)" in shown, shown


def test_site_install_user_refuses_where_the_user_site_is_never_read():
    """In a virtual environment (every test session runs in one), with -s or PYTHONNOUSERSITE,
    a .pth in the user site-packages would never run: refused, exit 2, nothing written."""
    import site
    user_pth = os.path.join(site.getusersitepackages(), "keras_bn_patch.pth")
    assert sys.prefix != sys.base_prefix, "the test needs a virtual environment"
    for env in (None, {"PYTHONNOUSERSITE": "1"}):
        process = run_python("-m", "keras_bn_patch", "site", "install", "--user", env=env, check=False)
        assert process.returncode == 2, process.stderr
        assert "--user: this interpreter never reads the user site-packages" in process.stderr, process.stderr
        assert "(it runs in a virtual environment" in process.stderr, process.stderr
        assert not os.path.exists(user_pth)
    shown = run_python("-m", "keras_bn_patch", "site", "install", "--user", "-h").stdout
    assert "--user" in shown


def test_load_ext_with_keras_bn_patch_0_installs_nothing(tmp_path):
    cells = tmp_path / "notebook.ipy"
    cells.write_text("%load_ext keras_bn_patch\nimport keras_bn_patch, json\n"
                     "print(json.dumps([keras_bn_patch.is_installed(), keras_bn_patch.status()]))\n")
    process = run_python("-m", "IPython", "--quick", "--no-banner", "--colors=NoColor", str(cells),
                         env={"KERAS_BN_PATCH": "0"})
    assert "not installed: KERAS_BN_PATCH=0 is set" in process.stdout, process.stdout
    installed, status = json.loads([line for line in process.stdout.splitlines() if line.startswith("[")][-1])
    assert installed is False and set(status) <= {"processes"}, status
