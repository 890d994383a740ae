"""Command line (``keras-bn-patch`` or ``python -m keras_bn_patch``): ``run SCRIPT|-m MODULE [ARGS]``,
``site install|uninstall|status [--user]``, ``status``, ``demo``, ``diagnose MODEL_FILE --data DATA``.

Exit codes: 0 done (diagnose: healthy), 1 diagnose found problems, 2 bad usage
(unknown option, missing or unreadable file, data that does not fit the model).
"""
import argparse
import json
import os
import sys

from .tools.keras_api import FLAVOURS


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
        from .launcher import run
        return run(argv[1], argv[2:], module=True)
    if argv and not argv[0].startswith("-"):
        if not os.path.isfile(argv[0]):
            print("%s\nerror: SCRIPT %r: no such file" % (RUN_USAGE, argv[0]), file=sys.stderr)
            return 2
        from .launcher import run
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
    parser = argparse.ArgumentParser(prog="keras-bn-patch")
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
    diagnose.add_argument("model_file", help="an h5 file, a SavedModel directory or a .keras file")
    diagnose.add_argument("--data", required=True, help="a .npy file, or a .npz file with an array 'x'")
    diagnose.add_argument("--flavour", choices=FLAVOURS, help="which installed Keras loads the model")
    diagnose.add_argument("--batch-size", type=int, default=None)
    diagnose.add_argument("--fine-tuned-unpatched", action="store_true",
                          help="the model was fine-tuned with frozen BN layers on batch statistics (plain "
                               "Keras 2, TF < 2.2 or tf.compat.v1 layers): judge its frozen layers so")
    diagnose.add_argument("--strict", action="store_true",
                          help="exit 1 also for frozen layers that plain Keras would fine-tune on batch "
                               "statistics (by default that is advice, exit 0)")
    diagnose.add_argument("--json", action="store_true", help="print the report as JSON")
    diagnose.add_argument("--trust-code", action="store_true",
                          help="load the file even if loading would run code from it (a Lambda layer's "
                               "function, stored as bytecode) or classes your Keras does not define; by default "
                               "such a file is refused, exit 2, before anything of it runs")
    return parser


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
        from .tools import keras_api
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
            why = "KERAS_BN_PATCH=%s is set" % os.environ["KERAS_BN_PATCH"] if os.environ.get("KERAS_BN_PATCH") \
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
    from . import demo as _demo
    result = _demo.run(args.flavour, epochs=args.epochs)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _environment():
    """What starts a Python process of this environment patched, as status() words it."""
    from . import site_switch
    found = [site_switch.status(user) for user in (False, True)]
    found = [path for path in found if path]
    if found:
        state = "every Python process of this environment starts patched (site switch: %s)" % ", ".join(found)
    else:
        state = ("a Python process here is patched by its own `import keras_bn_patch`, `keras-bn-patch run` or "
                 "`%load_ext keras_bn_patch`, and so are the processes it starts; the site switch is not "
                 "installed (`keras-bn-patch site install` starts every process patched)")
    return {"state": state, "site_switch": found}


def _site(args):
    from . import site_switch
    if args.action == "install":
        print("installed %s: every Python process of this environment starts patched" % site_switch.install(args.user))
    elif args.action == "uninstall":
        removed = site_switch.uninstall(args.user)
        print("removed %s" % removed if removed else "nothing to remove: %s does not exist" % site_switch.path(args.user))
    else:
        found = site_switch.status(args.user)
        print("installed: %s" % found if found else "not installed (%s does not exist)" % site_switch.path(args.user))
        try:
            import keras_bn_patch_startup
            print("start-up module: %s" % keras_bn_patch_startup.__file__)
        except ImportError as error:  # the .pth line would find nothing
            print("start-up module: missing (%s): the switch cannot start processes patched" % error)
    return 0


def _load_data(path):
    import numpy as np
    if not os.path.isfile(path):
        raise ValueError("--data: no data file %s" % path)
    if not path.endswith((".npy", ".npz")):
        raise ValueError("--data must be a .npy file, or a .npz file with an array 'x'; got %s" % path)
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError("--data: cannot read %s as .npy or .npz: %s" % (path, error))
    if not isinstance(data, np.ndarray):
        names = list(data.keys())
        if "x" not in names and len(names) != 1:
            raise ValueError("--data: %s holds %s: name the inputs array 'x'" % (path, ", ".join(names)))
        data = data["x" if "x" in names else names[0]]
    finite = np.isfinite(data) if data.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        raise ValueError("--data: %s holds %d non-finite values (NaN or inf): statistics of it would be "
                         "meaningless" % (path, int(finite.size - np.count_nonzero(finite))))
    return data


def _load_model(path, flavour, trust_code=False):
    from .tools import keras_api, model_file
    if not os.path.exists(path):
        raise ValueError("no model file %s" % path)
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
            raise ValueError("%s %s cannot load a model from %s: its model config cannot be read without "
                             "loading it (%s); --trust-code loads it without that check"
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
        data = _load_data(args.data)
        model = _load_model(args.model_file, args.flavour, args.trust_code)
        with keras_bn_patch.disabled():  # as plain Keras runs it: a saved file does not know the patch
            report = keras_bn_patch.diagnose(model, data, batch_size=args.batch_size,
                                             fine_tuned_unpatched=args.fine_tuned_unpatched)
    except (ValueError, TypeError, ImportError) as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2, sort_keys=True) if args.json else report)
    # Exit 1: statistics that do not describe the data (recalibrate).  A frozen layer that plain
    # Keras would fine-tune on batch statistics is advice about a future fit(), not a broken file.
    from .tools.diagnose import NEEDS_PATCH, NEEDS_RECALIBRATION
    verdicts = {row["verdict"] for row in report.rows}
    if NEEDS_PATCH in verdicts and not args.strict:
        print("note: frozen layers marked 'needs patch' would train on batch statistics if this model were "
              "fine-tuned in plain Keras; that is advice (exit 0 without --strict). If it was already "
              "fine-tuned so, say --fine-tuned-unpatched.", file=sys.stderr)
    return 1 if NEEDS_RECALIBRATION in verdicts or (args.strict and NEEDS_PATCH in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
