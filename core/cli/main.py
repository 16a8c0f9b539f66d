"""Command line: `python -m core {models,presets,invert,curve,score,download,compare,findings,manifold,sweep,lab}`.

Errors the user can fix print one line, `error: ...`, on stderr and exit with code 2. Library
warnings (torch, Pillow...) are silenced while a command runs so that line stands alone; set
CORE_DEBUG=1 to see them (and tracebacks of internal errors).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from core.cli import compare as cli_compare
from core.cli import findings as cli_findings
from core.cli import lab as cli_lab
from core.cli import manifold as cli_manifold
from core.cli import sweep as cli_sweep
from core.cli.args import (MODEL_HELP, Parser, batch_option, common_options, model_file_option, positive_int,
                           steps_list, use_model_file)
from core.cli.curve import cmd_curve
from core.cli.invert import cmd_invert, cmd_score
from core.cli.listing import cmd_download, cmd_models, cmd_presets
from core.errors import UserError

_EXTRA_NAMES = ["compare", "findings", "lab", "manifold", "sweep"]


_EXTRA = [cli_compare, cli_findings, cli_lab, cli_manifold, cli_sweep]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m core", description="Feature inversion of vision models (Badger 2022).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("models", help="list architectures, depth stops and weights (any torchvision or timm name)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--size", type=positive_int, default=224, help="input size for the listed shapes")
    p.add_argument("--model", default=None, help="list this model only: " + MODEL_HELP)
    model_file_option(p)
    p.add_argument("--all", action="store_true", help="list every name this machine can build (curated, "
                   "torchvision:…, timm:…), without building them")
    p.set_defaults(model_required=False)
    p = sub.add_parser("presets", help="list the presets (recipes) with all their settings")
    p.add_argument("--json", action="store_true", help="a JSON object: name -> every field of the preset")
    p = sub.add_parser("invert", help="invert one layer from several seeds")
    common_options(p)
    p.add_argument("--checkpoint", default="untrained", help="untrained, trained or a state-dict path")
    p.add_argument("--layer", required=True, help="depth stop or graph node name")
    p.add_argument("--continue", dest="cont", type=steps_list, default=[], metavar="STEPS",
                   help="continue the finished run by STEPS more (a comma list: one continuation after another), "
                        "as the app's Continue does; the app's link keeps these as cont=")
    p = sub.add_parser("curve", help="clarity at every depth stop, per checkpoint")
    common_options(p)
    p.add_argument("--checkpoints", default="untrained,trained", help="comma list (default untrained,trained)")
    p.add_argument("--layers", default="stops", help="'stops' (all) or a comma list of layers")
    batch_option(p)
    p = sub.add_parser("score", help="clarity and the other measures (pixel fidelity, structure, content), SSIM, "
                       "PSNR and m_i of a reconstruction against an image")
    p.add_argument("--image", required=True, help="the original image")
    p.add_argument("--reconstruction", required=True, help="the reconstruction to score")
    p.add_argument("--size", type=positive_int, default=None,
                   help="square size both are cropped and resized to (default: the reconstruction's own)")
    p.add_argument("--start", default=None,
                   help="the run's start image, clarity's zero (default: the default preset's a_0 for seed 0)")
    p.add_argument("--model", default=None,
                   help="the model that made the reconstruction: the content judge is then another network "
                        "(default: the first judge, trained efficientnet_lite2)")
    p.set_defaults(model_required=False)
    p = sub.add_parser("download", help="fetch a model's trained weights into its library's cache (torchvision's, "
                       "the Hugging Face hub's for timm)")
    p.add_argument("model", help=MODEL_HELP)
    for module in _EXTRA:
        module.add_parser(sub)
    for name, p in sub.choices.items():  # every command that computes takes a thread count
        if name not in ("models", "presets", "download") and "--threads" not in p._option_string_actions:
            p.add_argument("--threads", type=int, default=None,
                           help="CPU threads (default: OMP_NUM_THREADS if set, else one per core the machine leaves "
                                "idle, followed while it runs)")
    return parser


COMMANDS = {"models": cmd_models, "presets": cmd_presets, "invert": cmd_invert, "curve": cmd_curve,
            "score": cmd_score, "download": cmd_download}


COMMANDS.update({name: module.run for name, module in zip(_EXTRA_NAMES, _EXTRA)})


def main(argv=None) -> int:
    with warnings.catch_warnings():
        if not os.environ.get("CORE_DEBUG"):
            warnings.simplefilter("ignore")  # library warnings would surround the one-line error
        return _main(argv)


def _main(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        threads = getattr(args, "threads", None)
        if threads is not None:
            if threads < 1:
                raise UserError(f"--threads must be at least 1 (got {threads})")
            os.environ["INVERSION_THREADS"] = str(threads)  # the count every run of this command obeys (core.threads)
        use_model_file(args)  # --model-file: the user's network, registered under a name with its file's hash
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line, but a different exit code
        if os.environ.get("CORE_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
              "rerun with CORE_DEBUG=1 for a traceback", file=sys.stderr)
        return 1
    return 0
