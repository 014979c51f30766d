"""The `symnet` command. Bad input prints one line and exits 2; a failed
verification or gradient check exits 1."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import SymnetError

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141     # 128 + SIGPIPE, what a shell reports for a writer whose reader left
DESCRIPTION = ("symnet: neural networks written as mathematics. From a network spec (TOML), derive the "
               "backprop document, generate Numba training kernels, train, gradient-check and attack them; "
               "verify hand-derived gradient formulas.")
EPILOG = ("Bad input prints one line and exits 2; a failed verification or gradient check exits 1. "
          "Kernels are cached in $SYMNET_CACHE (default ~/.cache/symnet/kernels). "
          "`symnet COMMAND --help` describes each command.")


def _summary(args):
    from .spec import load
    print(load(args.spec).summary())
    return 0


def _derive(args):
    from .fileio import standard_stream
    from .render import cli_derive
    from .progress import status
    sys.stdout.flush()
    with status("deriving and typesetting the PDF with pdflatex", enabled=args.format == "pdf"):
        message = cli_derive(args.spec, args.format, args.output, args.sections, args.example)
    if args.output is None or standard_stream(args.output) is None:
        print(message)              # "wrote FILE" (or the document itself for -o -)
    return 0


def _graph(args):
    from .graph import cli_graph_args
    print(cli_graph_args(args))
    return 0


def _generate(args):
    from .budget import printing
    from .codegen.generate import write
    from .fileio import check_writable_dir
    from .spec import load
    net = load(args.spec)
    check_writable_dir(args.output, "-o")
    with printing(net):
        print(write(net, args.output, standalone=args.standalone))
    return 0


def _demo(args):
    from .demo import run_demo
    return run_demo(Path(args.output))


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(prog="symnet", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"symnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("summary", help="print each layer's output shape and parameter count")
    p.add_argument("spec", help="network spec file (TOML)")
    p.set_defaults(run=_summary)

    p = sub.add_parser("derive", help="write the backprop derivation document")
    p.add_argument("spec")
    p.add_argument("--format", choices=("tex", "md", "pdf", "html"), default="md")
    p.add_argument("-o", "--output", help="output path (default: <name>.<format>)")
    p.add_argument("--sections", help="comma-separated parts to print, in the document's order: notation, "
                   "network, forward, loss, recursion, backward, input (the input gradient dL/dx), gradients, batch, "
                   "example, updates (default: all)")
    p.add_argument("--example", action=argparse.BooleanOptionalAction, default=None,
                   help="the worked numeric example with central differences (default: on for networks "
                        "of at most 1,000 parameters)")
    p.set_defaults(run=_derive)

    p = sub.add_parser("graph", help="computational-graph walkthrough of a formula")
    p.add_argument("formula", nargs="+", help="e.g. 'a*b + c'; several outputs, each 'name = formula'")
    p.add_argument("--at", help="values, e.g. a=3,b=2,c=-4")
    p.add_argument("--let", action="append", metavar="'NAME = FORMULA'", help="an intermediate definition")
    p.add_argument("--symbolic", action="store_true", help="local and backward gradients as formulas")
    p.add_argument("--format", choices=("table", "tex", "md", "json", "png", "svg"), default="table")
    p.add_argument("-o", "--output", default=None, help="picture path for png/svg (default graph.FORMAT)")
    p.set_defaults(run=_graph)

    p = sub.add_parser("generate", help="write the Numba training kernels of a network")
    p.add_argument("spec")
    p.add_argument("-o", "--output", default="generated", help="output folder (default: generated)")
    p.add_argument("--standalone", action="store_true", help="inline symnet's runtime: one file needing only numpy and numba")
    p.set_defaults(run=_generate)

    _add_optional_commands(sub)
    _add_lecture_commands(sub)

    p = sub.add_parser("demo", help="derive, generate and train the example networks")
    p.add_argument("-o", "--output", default="symnet-demo", help="output folder (default: symnet-demo)")
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
        from .cluster import add_cluster_arguments, cli_train as cli_train_on_cluster
        add_cluster_arguments(p)
        p.set_defaults(run=cli_train_on_cluster)
        from .sweep import add_sweep_arguments, cli_sweep
        p = sub.add_parser("sweep", help="hyper-parameter sweep: one training per configuration, as Dask tasks")
        add_sweep_arguments(p)
        p.set_defaults(run=cli_sweep)
    try:
        from .attack import add_attack_arguments, cli_attack
    except ImportError:
        pass
    else:
        p = sub.add_parser("attack", help="adversarial examples (FGSM or the gradient method) from the "
                                          "derived input gradient: clean vs perturbed test accuracy")
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


def _add_lecture_commands(sub):
    """Lecture companions (issue 16): each module registers its own arguments."""
    from .optimizer_paths import add_optimizers_arguments, cli_optimizers

    p = sub.add_parser("optimizers", help="SGD, momentum, RMSprop, Adam, Adagrad on a 2-D test function")
    add_optimizers_arguments(p)
    p.set_defaults(run=cli_optimizers)
    from .image_filters import add_filters_arguments, cli_filters

    p = sub.add_parser("filters", help="the lecture's image filters applied with symnet's conv kernel")
    add_filters_arguments(p)
    p.set_defaults(run=cli_filters)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.run(args) or 0
        sys.stdout.flush()      # a closed pipe shows here, inside the handler below
        return status
    except BrokenPipeError:
        # The reader went away (`symnet verify ... | head`): stop quietly, as a shell tool does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except SymnetError as exc:
        message = " ".join(str(exc).split())      # one line, always
        print(f"symnet: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecursionError:          # SymPy's recursion on a deeply nested formula, wherever it happens
        print("symnet: error: a formula nests too deeply for SymPy to process; nest it less deeply",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("symnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
