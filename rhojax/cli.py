"""The ``rhojax`` command. Each command lives in ``rhojax.commands``; this module only wires them."""

from __future__ import annotations

import typer

from rhojax.commands.analyze import analyze
from rhojax.commands.basics import info, ppl
from rhojax.commands.bounds import bounds
from rhojax.commands.depth import allocate, prune_depth
from rhojax.commands.eval import eval_tasks
from rhojax.commands.fragility import fragility
from rhojax.commands.heal import heal
from rhojax.commands.plan import plan
from rhojax.commands.profile import profile
from rhojax.commands.structure import structure
from rhojax.commands.sweep import sweep

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
app.command("prune-depth")(prune_depth)
app.command()(allocate)
app.command()(analyze)
app.command()(profile)
app.command()(structure)
app.command()(sweep)
app.command()(fragility)
app.command("eval")(eval_tasks)
app.command()(bounds)
app.command()(heal)
app.command()(plan)

if __name__ == "__main__":
    app()
