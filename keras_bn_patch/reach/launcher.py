"""``keras-bn-patch run SCRIPT [ARGS...]`` / ``run -m MODULE [ARGS...]``: a program, patched,
without a line of it edited.

The program runs as ``python SCRIPT ARGS`` would run it: ``sys.argv``, ``__name__ ==
"__main__"`` (in a real ``__main__`` module, so its classes pickle), ``sys.path[0]``, exit
status and tracebacks, with the patch installed before its first line.  Python processes it
starts (subprocess, multiprocessing's spawn, Keras's data workers, engines' local workers)
start patched too where their environment has keras-bn-patch, as after the import line
(``children.py``).  ``KERAS_BN_PATCH=0`` wins everywhere.
"""
import os
import runpy
import sys
import types


def _run_script(path, args):
    with open(path, "rb") as handle:
        source = handle.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = sys.modules["builtins"]
    main.__loader__ = None
    main.__spec__ = None
    sys.modules["__main__"] = main
    sys.argv = [path] + list(args)
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    exec(code, main.__dict__)


def run(target, args, module=False):
    """Run ``target`` (a script path, or a module name with ``module=True``) patched."""
    import keras_bn_patch  # noqa: F401  (installs, children too, unless KERAS_BN_PATCH=0)
    try:
        if module:
            sys.argv = [target] + list(args)
            sys.path[0] = os.getcwd()  # as `python -m` does
            runpy._run_module_as_main(target, alter_argv=True)
        else:
            _run_script(target, args)
    except Exception as error:  # as Python reports it: exit 1, the program's frames only
        import traceback
        traceback.print_exception(type(error), error, _program_frames(error.__traceback__))
        sys.stderr.flush()
        raise SystemExit(1)


def _program_frames(tb):
    """The traceback from the program's first frame on: the command line's and this module's
    frames above it are the launcher's, which ``python SCRIPT`` would not show."""
    here = os.path.normcase(os.path.abspath(__file__.replace(".pyc", ".py")))

    def ours(entry):
        return os.path.normcase(os.path.abspath(entry.tb_frame.f_code.co_filename)) == here

    found = tb
    while found is not None and not ours(found):
        found = found.tb_next
    while found is not None and ours(found):
        found = found.tb_next
    return found if found is not None else tb
