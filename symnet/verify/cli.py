"""`symnet verify` and `symnet check`: argument wiring and exit codes.

verify: 0 equal or equal almost everywhere, 1 not equal, 2 bad input (a
SymnetError, printed on one line by symnet.cli), 3 undecided.
check: 0 every gradient matches finite differences and symnet.trace, 1 a mismatch.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import SpecError, SymnetError

EXIT_CODES = {"equal": 0, "equal almost everywhere": 0, "not equal": 1, "undecided": 3}


def add_verify_arguments(p):
    p.add_argument("spec", help="network spec file (TOML)")
    p.add_argument("--target", help="what the formula computes: W2, b1, delta2, x "
                                    "(default: the formula's left side)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--formula", help="the formula, LaTeX or plain text, e.g. 'dW2 = dz2 a1^T'")
    source.add_argument("--formula-file", help="a file holding the formula")
    source.add_argument("--file", help="a hand-in (.tex, .md or .txt): every equation in it, each checked "
                                       "against its own left side, then a summary")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--evaluation", dest="training", action="store_false",
                   help="evaluation mode: dropout off, batch norm through its running statistics")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--per-example", dest="per_example", action="store_true", default=None,
                      help="the formula is for one example (default: guessed from m, n, capitals)")
    mode.add_argument("--batch", dest="per_example", action="store_false",
                      help="the formula is the batch average (examples as columns)")
    p.add_argument("--layer", type=int, help="the layer number the symbolic layer l stands for")
    p.add_argument("--n", dest="n", choices=("batch", "outputs"), default=None,
                   help="what a bare n means: the batch size (default) or the number of outputs per "
                        "example (--file: as the hand-in declares it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random test points")
    p.add_argument("--points", type=int, default=5, help="number of random test points")


def _read_formula(args) -> str:
    if args.formula is not None:
        return args.formula
    path = Path(args.formula_file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the formula file ({getattr(exc, 'strerror', None) or exc})") from None
    text = text.strip()
    if not text:
        raise SpecError(f"{path}: the formula file is empty")
    return text


def cli_verify(args) -> int:
    import json
    from ..spec import load
    from .engine import verify
    net = load(args.spec)
    if args.file is not None:
        from . import handin
        if args.target is not None or args.per_example is not None:
            raise SpecError("--file takes each equation's target from its left side; "
                            "expected no --target, --per-example or --batch")
        entries = handin.verify_file(net, args.file, seed=args.seed, points=args.points, layer=args.layer,
                                     training=args.training, n=args.n)
        code = handin.exit_code(entries)
        print(json.dumps(handin.as_data(entries, args.spec, args.file), indent=2) if args.json
              else handin.report(entries))
        return code
    verdict = verify(net, args.target, _read_formula(args), per_example=args.per_example,
                     layer=args.layer, seed=args.seed, points=args.points, training=args.training,
                     n=args.n or "batch")
    print(json.dumps(verdict.as_data(), indent=2) if args.json else verdict.report())
    return EXIT_CODES[verdict.status]


def add_check_arguments(p):
    p.add_argument("spec", help="network spec file (TOML)")
    p.add_argument("--seed", type=int, default=0, help="seed of the parameters and the batch")
    p.add_argument("--batch", type=int, default=4, help="examples in the test batch")


def cli_check(args) -> int:
    from ..check import format_report, gradient_check, worst
    from ..spec import load
    net = load(args.spec)
    if args.batch < 1:
        raise SpecError(f"--batch must be at least 1, got {args.batch}")
    try:
        from ..codegen import generate  # noqa: F401  (gradient_check needs the kernels)
    except ImportError:
        raise SymnetError("symnet check needs the kernel generator (symnet.codegen.generate), "
                          "which is not installed") from None
    results = gradient_check(net, seed=args.seed, batch=args.batch)
    print(format_report(results))
    bad = worst(results)
    if bad is None:
        print("gradient check passed")
        return 0
    if not bad.ok:
        print(f"gradient check failed: worst entry {bad.name}{list(bad.worst_index)} "
              f"(kernel {bad.analytic:.6g}, finite differences {bad.numeric:.6g})")
    else:
        print(f"gradient check failed: worst entry {bad.name} (kernel and symnet.trace differ by "
              f"{bad.trace_error:.3g})")
    return 1
