"""The ``rhojax`` command. Each command lives in ``rhojax.commands``; this module only wires them."""

from __future__ import annotations

import typer

from rhojax.commands.analyze import analyze
from rhojax.commands.basics import info, ppl

app = typer.Typer(
    name="rhojax",
    help="Structural sensitivity analysis of compressed transformers (contraction profiles, sensitivity maps, "
    "depth pruning, sparsity allocation, formal bounds).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(info)
app.command()(ppl)
app.command()(analyze)

if __name__ == "__main__":
    app()
