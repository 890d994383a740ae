"""Command line (``keras-bn-patch`` or ``python -m keras_bn_patch``): ``run SCRIPT|-m MODULE [ARGS]``,
``site install|uninstall|status [--user]``, ``status``, ``demo``, ``diagnose MODEL_FILE --data DATA``,
``recalibrate MODEL_FILE --data DATA --out NEW_FILE``.

Exit codes: 0 done (diagnose: healthy), 1 diagnose: needs action (or a command could not do
what it was asked), 2 bad usage (unknown option, missing or unreadable file, data that does
not fit the model), 3 diagnose: advice only (1 with --strict).
"""
import argparse
import json
import os
import sys

from ..core.environment import PATCH, patch_setting
from ..tools.keras_api import FLAVOURS


RUN_USAGE = "usage: keras-bn-patch run SCRIPT [ARGS...]  |  keras-bn-patch run -m MODULE [ARGS...]"
RUN_HELP = """
Run a Python script (or a module, with -m) as `python SCRIPT ARGS` would, with the patch
installed before its first line, and every Python process it starts patched too where that
process's environment has keras-bn-patch (subprocess, multiprocessing, joblib, a local Ray,
Spark local[N] or Dask LocalCluster).  Every argument after SCRIPT or MODULE is the program's
own.  KERAS_BN_PATCH=0 runs it unpatched."""


def _run(argv):
    """``run``: parsed by hand, so that every argument after the target is the program's own."""
    if argv[:1] in (["-h"], ["--help"]):
        print(RUN_USAGE + "\n" + RUN_HELP)
        return 0
    if argv[:1] == ["-m"] and len(argv) > 1:
        from ..reach.launcher import run
        return run(argv[1], argv[2:], module=True)
    if argv and not argv[0].startswith("-"):
        if not os.path.isfile(argv[0]):
            print("%s\nerror: SCRIPT %r: no such file" % (RUN_USAGE, argv[0]), file=sys.stderr)
            return 2
        from ..reach.launcher import run
        return run(argv[0], argv[1:])
    print("%s\nerror: run needs a SCRIPT or -m MODULE, got %s" % (RUN_USAGE, " ".join(argv) or "nothing"),
          file=sys.stderr)
    return 2


def _at_least_one(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


def build_parser():
    """The command line's parser (``run``'s arguments are parsed by hand: see ``_run``)."""
    from .. import __version__
    parser = argparse.ArgumentParser(prog="keras-bn-patch")
    parser.add_argument("--version", action="version", version="keras-bn-patch %s" % __version__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run a Python script or module patched, and the processes it starts "
                        "(run SCRIPT [ARGS...] or run -m MODULE [ARGS...])")
    site_parser = commands.add_parser("site", help="start every Python process of this environment patched "
                                      "(one .pth file), or stop")
    site_parser.add_argument("action", choices=("install", "uninstall", "status"))
    site_parser.add_argument("--user", action="store_true", help="the user site-packages, not the environment's")
    status = commands.add_parser("status", help="import the installed Keras flavours and show what is patched")
    status.add_argument("--json", action="store_true")
    demo = commands.add_parser("demo", help="fine-tune a frozen BN backbone, unpatched vs patched")
    demo.add_argument("--flavour", choices=FLAVOURS,
                      help="which installed Keras to use (default: what a legacy script would import)")
    demo.add_argument("--epochs", type=_at_least_one, default=5)
    demo.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    diagnose = commands.add_parser("diagnose", help="which BN layers of a saved model make predict() "
                                   "differ from fit(), on the given data")
    _model_arguments(diagnose, "a .npy file of inputs, or a .npz file with arrays 'x' (inputs) and, optionally, "
                     "'y' (their labels: they tell whether the model was fine-tuned in the trap)")
    diagnose.add_argument("--fine-tuned-unpatched", action="store_true",
                          help="the model was fine-tuned with frozen BN layers on batch statistics (plain "
                               "Keras 2, TF < 2.2 or tf.compat.v1 layers): judge its frozen layers so")
    diagnose.add_argument("--strict", action="store_true",
                          help="exit 1 also for frozen layers that plain Keras would fine-tune on batch "
                               "statistics (by default that is the verdict 'advice', exit 3)")
    diagnose.add_argument("--json", action="store_true", help="print the report as JSON")
    recalibrate = commands.add_parser("recalibrate", help="set the BN layers' moving statistics of a saved model "
                                      "to those of the given data, into a new file")
    _model_arguments(recalibrate, "a .npy file of inputs, or a .npz file with an array 'x'")
    recalibrate.add_argument("--out", required=True, help="the new file, in the model file's own format")
    recalibrate.add_argument("--overwrite", action="store_true", help="allow --out to name an existing file "
                             "(the model file itself included)")
    recalibrate.add_argument("--layers", default="all", help="all, frozen, trainable, or layer names or paths "
                             "separated by commas (default: all)")
    recalibrate.add_argument("--memory-limit", type=_at_least_one, default=None, metavar="BYTES",
                             help="activations kept in memory at most; beyond, in temporary files (default: 1 GiB)")
    return parser


def _model_arguments(command, data_help):
    """The arguments diagnose and recalibrate share: the model file, the data, how to load and run."""
    command.add_argument("model_file", help="an h5 file, a SavedModel directory or a .keras file")
    command.add_argument("--data", required=True, help=data_help)
    command.add_argument("--flavour", choices=FLAVOURS, help="which installed Keras loads the model")
    command.add_argument("--batch-size", type=_at_least_one, default=None)
    command.add_argument("--trust-code", action="store_true",
                         help="load the file even if loading would run code from it (a Lambda layer's "
                              "function, stored as bytecode) or classes your Keras does not define; by default "
                              "such a file is refused, exit 2, before anything of it runs")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        return _run(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    if args.command == "site":
        return _site(args)
    import keras_bn_patch
    if args.command == "status":
        from ..tools import keras_api
        for name in FLAVOURS:
            try:
                keras_api.load(name)
            except ImportError:
                pass
        report = keras_bn_patch.status()
        # This process is the CLI's own, patched by its own import: what reaches the user's
        # processes is this environment's site switch, or their own import line / launcher.
        report.pop("processes", None)
        report["environment"] = _environment()
        if not keras_bn_patch.is_installed():
            why = "%s is set" % patch_setting() if PATCH in os.environ \
                else "keras_bn_patch.uninstall() was called"
            print("keras_bn_patch is not installed in this process (%s): Keras runs unpatched" % why,
                  file=sys.stderr if args.json else sys.stdout)
        if args.json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            environment = report.pop("environment")
            for label, entry in sorted(report.items()):
                print("%-9s %-10s %s" % (label, entry["version"], entry["state"]))
            if not report:
                print("no Keras flavour found")
            print("processes: %s" % environment["state"])
        return 0
    if args.command == "diagnose":
        return _diagnose(args)
    if args.command == "recalibrate":
        return _recalibrate(args)
    from . import demo as _demo
    result = _demo.run(args.flavour, epochs=args.epochs)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _new_process_starts_patched():
    """Observed: a new Python process of this environment, not started by this patched one
    (whose start-up path its children inherit)."""
    from ..reach import children, site_switch
    return site_switch.new_process_starts_patched(children.without_startup(os.environ))


def _environment():
    """What a new Python process of this environment does, observed by starting one."""
    from ..reach import site_switch
    found = [path for path in (site_switch.status(user) for user in (False, True)) if path]
    starts_patched = _new_process_starts_patched()
    if starts_patched:
        state = "a new Python process of this environment starts patched (observed; site switch: %s)" % (
            ", ".join(found) or "none")
    else:
        state = ("a new Python process of this environment starts unpatched (observed): it is patched by its own "
                 "`import keras_bn_patch`, `keras-bn-patch run` or `%%load_ext keras_bn_patch`%s" % (
                     "; the site switch file %s is there but was not run" % ", ".join(found) if found else
                     " (`keras-bn-patch site install` starts every process patched)"))
    return {"state": state, "site_switch": found, "new_process_starts_patched": starts_patched}


def _site(args):
    from ..reach import site_switch
    if args.user and args.action == "install":
        off = site_switch.user_site_off()
        if off:
            print("error: --user: this interpreter never reads the user site-packages (%s), so a .pth file there "
                  "would never run; nothing was written. `keras-bn-patch site install` (without --user) starts "
                  "this environment's processes patched" % off, file=sys.stderr)
            return 2
    if args.action == "install":
        written = site_switch.install(args.user)
        if not _new_process_starts_patched():
            print("wrote %s, but a new Python process of this environment still starts unpatched (observed); see "
                  "`keras-bn-patch site status`" % written, file=sys.stderr)
            return 1
        print("installed %s: a new Python process of this environment starts patched (observed)" % written)
        return 0
    if args.action == "uninstall":
        removed = site_switch.uninstall(args.user)
        print("removed %s" % removed if removed else "nothing to remove: %s does not exist" % site_switch.path(args.user))
        return 0
    found = site_switch.status(args.user)
    print("installed: %s" % found if found else "not installed (%s does not exist)" % site_switch.path(args.user))
    try:
        import keras_bn_patch_startup
        print("start-up module: %s" % keras_bn_patch_startup.__file__)
    except ImportError as error:  # the .pth line would find nothing
        print("start-up module: missing (%s): the switch cannot start processes patched" % error)
    print("a new Python process of this environment starts %s (observed)"
          % ("patched" if _new_process_starts_patched() else "unpatched"))
    return 0


def _load_data(path, with_labels=False):
    """(x, y or None) from ``--data``: a .npy file (x), or a .npz file's arrays 'x' and 'y' by name."""
    import numpy as np
    if not os.path.isfile(path):
        raise ValueError("--data: no data file %s" % path)
    if not path.endswith((".npy", ".npz")):
        raise ValueError("--data must be a .npy file, or a .npz file with an array 'x'; got %s" % path)
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError("--data: cannot read %s as .npy or .npz: %s" % (path, error))
    labels = None
    if not isinstance(data, np.ndarray):
        names = sorted(data.keys())
        if "x" not in names:
            raise ValueError("--data: %s has no array named 'x' (the inputs); it holds %s"
                             % (path, ", ".join(repr(name) for name in names) or "no array"))
        labels = data["y"] if with_labels and "y" in names else None
        data = data["x"]
    finite = np.isfinite(data) if data.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        raise ValueError("--data: %s holds %d non-finite values (NaN or inf): statistics of it would be "
                         "meaningless" % (path, int(finite.size - np.count_nonzero(finite))))
    return data, labels


def _load_model(path, flavour, trust_code=False):
    from ..tools import keras_api, model_file
    problem = model_file.unreadable(path)
    if problem:
        raise ValueError(problem)
    try:
        api = keras_api.load(flavour)
    except ImportError as error:
        raise ImportError("--flavour %s: %s" % (flavour, error) if flavour else str(error))
    options = {"compile": False}
    if trust_code:
        if api.name == "keras3":
            options["safe_mode"] = False
    else:
        try:
            untrusted = model_file.untrusted_layers(path, api)
        except Exception as error:
            raise ValueError("%s %s cannot read the model config of %s without loading it (%s)"
                             % (api.name, api.version, path, error))
        if untrusted:
            raise ValueError("refused to load %s: loading it would run code from the file or from outside %s %s: "
                             "%s. Pass --trust-code only if you trust the file and its author"
                             % (path, api.name, api.version, "; ".join(untrusted)))
    try:
        return api.keras.models.load_model(path, **options)
    except Exception as error:
        message = str(error).strip().splitlines()
        raise ValueError("%s %s cannot load a model from %s: %s" % (
            api.name, api.version, path, message[0] if message else type(error).__name__))


def _diagnose(args):
    import keras_bn_patch
    try:
        data, labels = _load_data(args.data, with_labels=True)
        model = _load_model(args.model_file, args.flavour, args.trust_code)
        with keras_bn_patch.disabled():  # as plain Keras runs it: a saved file does not know the patch
            report = keras_bn_patch.diagnose(model, data, batch_size=args.batch_size, y=labels,
                                             fine_tuned_unpatched=args.fine_tuned_unpatched)
    except (ValueError, TypeError, ImportError) as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2, sort_keys=True) if args.json else report)
    if report.verdict == "advice" and report.labels is None and not args.strict:
        print("note: verdict 'advice' (exit 3): frozen layers marked 'needs patch' would train on batch statistics "
              "if this model were fine-tuned in plain Keras. Whether it already was: give its labels ('y' in the "
              ".npz) or say --fine-tuned-unpatched; --strict makes advice exit 1.", file=sys.stderr)
    return report.exit_code(args.strict)


def _recalibrate(args):
    import keras_bn_patch
    from ..tools import model_file
    target = os.path.abspath(args.out)
    if os.path.exists(target) and not args.overwrite:
        print("error: --out %s exists (the model file itself too, if it is the same path): pass --overwrite to "
              "replace it" % args.out, file=sys.stderr)
        return 2
    layers = args.layers if args.layers in ("all", "frozen", "trainable") else \
        [name.strip() for name in args.layers.split(",") if name.strip()]
    try:
        data, _ = _load_data(args.data)
        saving = model_file.save_options(args.model_file, args.out)
        model = _load_model(args.model_file, args.flavour, args.trust_code)
        options = {} if args.memory_limit is None else {"memory_limit": args.memory_limit}
        with keras_bn_patch.disabled():  # as plain Keras runs it: a saved file does not know the patch
            summary = keras_bn_patch.recalibrate(model, data, layers=layers, batch_size=args.batch_size, verbose=0,
                                                 **options)
    except (ValueError, TypeError, ImportError) as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    model_file.save(model, target, saving)
    print(summary)
    print("wrote %s" % target)
    return 0

