"""Adopted without editing a line: the launcher, the environment-wide switch and the IPython
extension, each running a legacy fine-tuning script that contains no ``import keras_bn_patch``
(tests/scripts/legacy_finetune.py: frozen after build, head on an existing tensor).  Held under
each (training-mode loss == inference loss at lr 0); the plain trap without them."""
import json
import os


from helpers import run_python, script

LEGACY = script("legacy_finetune.py")


def result(process):
    return json.loads(process.stdout.strip().splitlines()[-1])


def held(api, found):
    return abs(found["gap"]) < 1e-5 and not found["moved"]


def trapped(api, found):
    """The plain trap, where there is one (Keras 3 is natively correct)."""
    return held(api, found) if api.name == "keras3" else abs(found["gap"]) > 0.1


def test_the_legacy_script_shows_the_trap_run_plainly(api):
    found = result(run_python(LEGACY, api.name, "--child"))
    assert not found["patch_imported"] and trapped(api, found) and trapped(api, found["child"]), found


def test_the_launcher_runs_it_patched_as_python_would(api):
    process = run_python("-m", "keras_bn_patch", "run", LEGACY, api.name, "--child", "--exit", "3", check=False)
    assert process.returncode == 3, process.stderr[-2000:]
    found = result(process)
    assert found["patch_imported"] and held(api, found), found
    assert found["child"]["patch_imported"] and held(api, found["child"]), found  # its subprocess too
    assert found["name"] == "__main__" and found["main_module"], found
    assert found["argv"] == [api.name, "--child", "--exit", "3"], found


def test_the_launcher_runs_a_module_and_keras_bn_patch_0_wins(api):
    found = result(run_python("-m", "keras_bn_patch", "run", "-m", "scripts.legacy_finetune", api.name))
    assert found["patch_imported"] and held(api, found) and found["argv"] == [api.name], found
    found = result(run_python("-m", "keras_bn_patch", "run", LEGACY, api.name, "--child",
                              env={"KERAS_BN_PATCH": "0"}))
    assert trapped(api, found) and trapped(api, found["child"]), found


def test_the_site_switch_patches_every_process_and_uninstalls_cleanly(api):
    shown = run_python("-m", "keras_bn_patch", "site", "install").stdout
    try:
        assert "installed" in shown
        found = result(run_python(LEGACY, api.name))  # plain `python script.py`
        assert found["patch_imported"] and held(api, found), found
        assert "installed: " in run_python("-m", "keras_bn_patch", "site", "status").stdout
    finally:
        run_python("-m", "keras_bn_patch", "site", "uninstall")
    assert "not installed" in run_python("-m", "keras_bn_patch", "site", "status").stdout
    found = result(run_python(LEGACY, api.name))
    assert not found["patch_imported"] and trapped(api, found), found


def test_the_ipython_extension_loads_and_unloads(api, tmp_path):
    cells = tmp_path / "notebook.ipy"
    cells.write_text("%%load_ext keras_bn_patch\n%%run %s %s\n%%unload_ext keras_bn_patch\n%%run %s %s\n"
                     % (LEGACY, api.name, LEGACY, api.name))
    process = run_python("-m", "IPython", "--quick", "--no-banner", "--colors=NoColor", str(cells))
    lines = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2, process.stdout + process.stderr[-2000:]
    assert held(api, lines[0]), lines
    assert trapped(api, lines[1]), lines


def test_a_stale_pth_line_starts_python_silently(tmp_path):
    """After ``pip uninstall keras-bn-patch`` the .pth line finds no module and does nothing."""
    from keras_bn_patch.reach import site_switch
    (tmp_path / site_switch.FILE_NAME).write_text(site_switch.LINE)
    code = ("import sys, site; sys.modules['keras_bn_patch_startup'] = None; site.addsitedir(%r); print('started')"
            % str(tmp_path))
    process = run_python(code)
    assert process.stdout.strip() == "started" and process.stderr == "", process.stderr


def test_run_without_a_target_says_how(api):
    process = run_python("-m", "keras_bn_patch", "run", check=False)
    assert process.returncode == 2 and "run needs a SCRIPT or -m MODULE" in process.stderr
    process = run_python("-m", "keras_bn_patch", "run", os.path.join("no", "such.py"), check=False)
    assert process.returncode == 2 and "no such file" in process.stderr


def test_launched_classes_pickle_and_tracebacks_stay(api, tmp_path):
    program = tmp_path / "program.py"
    program.write_text("import pickle, sys\nclass Thing(object):\n    pass\n"
                       "assert pickle.loads(pickle.dumps(Thing())).__class__.__name__ == 'Thing'\n"
                       "print(sys.path[0] == %r)\nraise ValueError('from the program')\n" % str(tmp_path))
    process = run_python("-m", "keras_bn_patch", "run", str(program), check=False)
    assert process.stdout.strip() == "True", process.stderr[-2000:]
    assert process.returncode == 1 and "ValueError: from the program" in process.stderr
    # as `python program.py` shows it: the program's own frame first, none of the launcher's
    frames = [line for line in process.stderr.splitlines() if line.startswith('  File "')]
    assert frames == ['  File "%s", line 6, in <module>' % program], process.stderr
    module = run_python("-m", "keras_bn_patch", "run", "-m", "program", check=False, env={"PYTHONPATH": str(tmp_path)})
    frames = [line for line in module.stderr.splitlines() if line.startswith('  File "')]
    assert module.returncode == 1 and "keras_bn_patch" not in "".join(frames) and frames[-1].startswith(
        '  File "%s", line 6' % program), module.stderr
