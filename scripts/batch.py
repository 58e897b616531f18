"""Run the main job on every model of a TOML config, sharded over the visible devices, and compare the models.

    python scripts/batch.py batch.toml            # run (or resume) every model, then write the comparison
    python scripts/batch.py batch.toml --check    # only read and check the config

The config format is documented in :mod:`rhojax.batch` and docs/scaling.md. Each model gets its own
resumable folder ``OUT/NAME`` (report.json, report.html, one sub-folder per study); at the end
``OUT/comparison.md`` and ``OUT/comparison.json`` hold one row per model. Rerunning the same command after an
interruption skips what is finished. On several hosts, start this script on every host after
``jax.distributed.initialize()`` (``--distributed``).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from rhojax.batch import read_config, run_batch
from rhojax.errors import RhojaxError
from rhojax.progress import console_progress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="The batch config (TOML).")
    parser.add_argument("--check", action="store_true", help="Only read and check the config.")
    parser.add_argument("--distributed", action="store_true",
                        help="Call jax.distributed.initialize() first (one process per host; see docs/scaling.md).")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        config = read_config(args.config)
        names = ", ".join(m.name for m in config.models)
        console.print(f"{len(config.models)} models ({names}), studies {', '.join(config.studies)} -> {config.out}")
        if args.check:
            return 0
        if args.distributed:
            import jax

            jax.distributed.initialize()
        comparison = run_batch(
            config, progress=console_progress(console),
            on_model=lambda i, n, m: console.rule(f"model {i}/{n}: {m.name} ({m.spec}, budget {m.budget})"),
            on_step=lambda i, n, name: console.print(f"[{i}/{n}] {name}"))
    except RhojaxError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 2
    console.print(f"wrote {config.out / 'comparison.md'} and comparison.json ({len(comparison['models'])} models)")
    for name, message in comparison["failed"].items():
        console.print(f"[bold red]failed:[/] {name}: {message}", highlight=False, soft_wrap=True)
    return 1 if comparison["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
