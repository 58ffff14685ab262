"""``samstream weights list | download NAME | export NAME``: the models samstream knows, their files.

``export`` writes a model as the reference package reads it: ``DIR/model.pt``
(``{"model": state_dict}``, the official parameter names) and ``DIR/model.yaml`` (the
reference's config format), so checkpoints made or fine-tuned here load there too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_NO_WEIGHTS, CliError, add_model_arguments, load_model_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="list, download or export model weights")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser(
        "list", help="the bundled and official models: files, sizes, where they come from, whether cached"
    )
    ls.set_defaults(run=run_list)
    dl = actions.add_parser("download", help="fetch a model's weights into the cache")
    dl.add_argument("name", help="model name, e.g. sam2.1_hiera_tiny")
    dl.set_defaults(run=run_download)
    ex = actions.add_parser("export", help="write DIR/model.pt and DIR/model.yaml in the reference's format")
    ex.add_argument(
        "name", nargs="?", help="model name, e.g. samstream-synthetic or sam2.1_hiera_tiny (or use --model / --config)"
    )
    add_model_arguments(ex)
    default_model = ex.get_default("model")
    for action in ex._actions:
        if action.dest == "model":
            action.help = action.help.replace("%(default)s", f"NAME, else {default_model}")
    ex.set_defaults(model=None, default_model=default_model)
    ex.add_argument("--out", type=Path, required=True, help="folder to write model.pt and model.yaml into")
    ex.set_defaults(run=run_export)


def _size(num: int | None) -> str:
    return "?" if num is None else f"{num / 2**20:.1f} MiB"


def run_list(args: argparse.Namespace) -> int:
    from ..bundled import BUNDLED
    from ..download import cached_checkpoint_path, download_url
    from ..weights import WEIGHTS

    rows = [("name", "file", "size", "cached", "source")]
    for name, model in BUNDLED.items():
        present = model.weights_path.is_file()
        size = model.weights_path.stat().st_size if present else None
        where = "yes (in the package)" if present else "no (missing from this install)"
        rows.append((name, model.weights_path.name, _size(size), where, f"bundled: {model.description}"))
    for name, src in WEIGHTS.items():
        path = cached_checkpoint_path(name)
        cached = f"yes ({path})" if path.is_file() else "no"
        size = src.size_bytes if src.size_bytes is not None else (path.stat().st_size if path.is_file() else None)
        rows.append((name, src.filename, _size(size), cached, download_url(src)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..download import CheckpointNotAvailableError, resolve_checkpoint

    try:
        path = resolve_checkpoint(args.name, download=True)
    except CheckpointNotAvailableError as exc:
        raise CliError(str(exc), EXIT_NO_WEIGHTS) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(path)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..training.checkpointing import save_official_checkpoint

    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {args.out}: exists and is a file, not a folder")
    if args.name is not None:
        if args.config is not None:
            raise CliError(f"give a model NAME ({args.name}) or --config, not both")
        if args.model not in (None, args.name):
            raise CliError(f"two models named: NAME {args.name} and --model {args.model}")
        args.model = args.name
    elif args.model is None:
        args.model = args.default_model
    if args.int8:
        raise CliError("--int8 does not apply to weights export (the weights are written in float32)")
    model = load_model_from_args(args, apply_postprocessing=False)
    weights = save_official_checkpoint(args.out, model, model.config)
    print(f"wrote {weights} and {weights.with_suffix('.yaml')}")
    return 0
