"""Command line: ``python -m keras_bn_patch status | demo [--flavour NAME] [--epochs N]``."""
import argparse
import json
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m keras_bn_patch")
    commands = parser.add_subparsers(dest="command")
    status = commands.add_parser("status", help="import the installed Keras flavours and show what is patched")
    status.add_argument("--json", action="store_true")
    demo = commands.add_parser("demo", help="fine-tune a frozen BN backbone, unpatched vs patched")
    demo.add_argument("--flavour", choices=["keras", "tf.keras", "tf_keras", "keras3"],
                      help="which installed Keras to use (default: what a legacy script would import)")
    demo.add_argument("--epochs", type=int, default=5)
    demo.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    import keras_bn_patch
    if args.command == "status":
        from . import keras_api
        for name in ("keras", "tf_keras", "tf.keras", "keras3"):
            try:
                keras_api.load(name)
            except ImportError:
                pass
        report = keras_bn_patch.status()
        if args.json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            for label, entry in sorted(report.items()):
                print("%-9s %-10s %s" % (label, entry["version"], entry["state"]))
            if not report:
                print("no Keras flavour found")
        return 0
    if args.epochs < 1:
        parser.error("--epochs must be at least 1, got %d" % args.epochs)
    from . import _demo
    result = _demo.run(args.flavour, epochs=args.epochs)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
