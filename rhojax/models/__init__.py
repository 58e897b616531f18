"""Pure-functional transformer families: ``(config, params)`` with blocks stacked on a layer axis."""

from rhojax.models.config import SITE_KINDS, ModelConfig, RopeScaling
from rhojax.models.faults import NonFinite, locate_nonfinite
from rhojax.models.params import assemble_params, block_spec, count_params, init_params, top_spec
from rhojax.models.sites import get_site, set_site, site_kinds_of
from rhojax.models.transformer import (
    block,
    block_params,
    embed,
    forward,
    num_layers,
    run_blocks,
    unembed,
)

__all__ = [
    "SITE_KINDS",
    "ModelConfig",
    "NonFinite",
    "RopeScaling",
    "assemble_params",
    "block",
    "block_params",
    "block_spec",
    "count_params",
    "embed",
    "forward",
    "get_site",
    "init_params",
    "locate_nonfinite",
    "num_layers",
    "run_blocks",
    "set_site",
    "site_kinds_of",
    "top_spec",
    "unembed",
]
