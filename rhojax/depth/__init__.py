"""Depth pruning: layer scores (``|rho - 1|``, Block Influence, blends) and physical layer deletion."""

from rhojax.depth.influence import BlockInfluence, block_influence, influence_statistics, token_cosines
from rhojax.depth.prune import kept_layers, remove_layers
from rhojax.depth.removal import (
    CRITERION_WEIGHTS,
    RHO_ORDERS,
    criterion_weight,
    iterative_removal,
    one_shot_removal,
    rank_layers,
    ranks,
    removal_order,
    rho_rank,
)
from rhojax.depth.scores import VERSIONS, layer_absorption, layer_rho, rho_of

__all__ = [
    "CRITERION_WEIGHTS",
    "RHO_ORDERS",
    "VERSIONS",
    "BlockInfluence",
    "block_influence",
    "criterion_weight",
    "influence_statistics",
    "iterative_removal",
    "kept_layers",
    "layer_absorption",
    "layer_rho",
    "one_shot_removal",
    "rank_layers",
    "ranks",
    "removal_order",
    "remove_layers",
    "rho_of",
    "rho_rank",
    "token_cosines",
]
