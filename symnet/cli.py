"""The `symnet` command. Bad input prints one line and exits 2; a failed
verification or gradient check exits 1."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SymnetError

EXIT_BAD_INPUT = 2


def _summary(args):
    from .spec import load
    print(load(args.spec).summary())
    return 0


def _derive(args):
    from .render import cli_derive
    print(cli_derive(args.spec, args.format, args.output))
    return 0


def _graph(args):
    from .graph import cli_graph
    print(cli_graph(args.formula, args.at, args.format))
    return 0


def _generate(args):
    from .codegen.generate import cli_generate
    print(cli_generate(args.spec, args.output, args.standalone))
    return 0


def _demo(args):
    from .demo import run_demo
    return run_demo(Path(args.output))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symnet", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("summary", help="print each layer's output shape and parameter count")
    p.add_argument("spec", help="network spec file (TOML)")
    p.set_defaults(run=_summary)

    p = sub.add_parser("derive", help="write the backprop derivation document")
    p.add_argument("spec")
    p.add_argument("--format", choices=("tex", "md", "pdf"), default="md")
    p.add_argument("-o", "--output", help="output path (default: <name>.<format>)")
    p.set_defaults(run=_derive)

    p = sub.add_parser("graph", help="computational-graph walkthrough of a formula")
    p.add_argument("formula", help="e.g. 'a*b + c'")
    p.add_argument("--at", required=True, help="values, e.g. a=3,b=2,c=-4")
    p.add_argument("--format", choices=("table", "tex", "md", "json"), default="table")
    p.set_defaults(run=_graph)

    p = sub.add_parser("generate", help="write the Numba training kernels of a network")
    p.add_argument("spec")
    p.add_argument("-o", "--output", default="generated", help="output directory")
    p.add_argument("--standalone", action="store_true", help="inline symnet's runtime: one file needing only numpy and numba")
    p.set_defaults(run=_generate)

    _add_optional_commands(sub)

    p = sub.add_parser("demo", help="derive, generate and train the example networks")
    p.add_argument("-o", "--output", default="symnet-demo", help="output directory")
    p.set_defaults(run=_demo)
    return parser


def _add_optional_commands(sub):
    """Commands whose modules register their own arguments."""
    try:
        from .train import add_train_arguments, cli_train
    except ImportError:
        pass
    else:
        p = sub.add_parser("train", help="train a network on a data set with generated kernels")
        add_train_arguments(p)
        p.set_defaults(run=cli_train)
    try:
        from .attack import add_attack_arguments, cli_attack
    except ImportError:
        pass
    else:
        p = sub.add_parser("attack", help="FGSM adversarial examples from the derived input gradient: "
                                          "clean vs perturbed test accuracy")
        add_attack_arguments(p)
        p.set_defaults(run=cli_attack)
    try:
        from .verify.cli import add_verify_arguments, cli_verify, add_check_arguments, cli_check
    except ImportError:
        pass
    else:
        p = sub.add_parser("verify", help="check a hand-derived gradient formula")
        add_verify_arguments(p)
        p.set_defaults(run=cli_verify)
        p = sub.add_parser("check", help="gradient-check the generated kernels against finite differences")
        add_check_arguments(p)
        p.set_defaults(run=cli_check)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except SymnetError as exc:
        message = " ".join(str(exc).split())      # one line, always
        print(f"symnet: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("symnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
