"""The settings of a plan study (:class:`PlanSettings`, the single source of its defaults) and its targets."""

from __future__ import annotations

import dataclasses

import numpy as np

from rhojax.errors import RhojaxError
from rhojax.eval.task_data import parse_task_names
from rhojax.plan import baselines as baseline_plans
from rhojax.plan.actions import (
    PRUNE_METHODS,
    Action,
    ActionGrid,
    nm,
    prune,
)
from rhojax.plan.costs import UNITS
from rhojax.settings import TextSettings, setting

DELTA_SOURCES: tuple[str, ...] = ("measured", "propagated")
AMPLIFICATIONS: tuple[str, ...] = ("tested", "fitted", "profile")


def parse_target(target: str) -> tuple[str, float]:
    """``"bytes=0.15"`` -> ``("bytes", 0.15)``; a one-line error naming the target and the fix otherwise."""
    unit, sep, value = str(target).partition("=")
    unit = unit.strip()
    if not sep or unit not in UNITS:
        raise RhojaxError(f"target {target!r}: write UNIT=FRACTION with UNIT one of {', '.join(UNITS)}, "
                          "e.g. params=0.5, flops=0.6 or bytes=0.15")
    try:
        fraction = float(value)
    except ValueError:
        raise RhojaxError(f"target {target!r}: the fraction {value!r} is not a number; write e.g. {unit}=0.5") from None
    if not 0.0 < fraction <= 1.0:
        raise RhojaxError(f"target {target!r}: the fraction must lie in (0, 1] (a share of the dense model's {unit}); "
                          f"write e.g. {unit}=0.5")
    return unit, fraction


@dataclasses.dataclass(frozen=True)
class PlanSettings(TextSettings):
    """The budget, the candidate grid, the measurement and the verification of a compression plan."""

    target: str = setting("params=0.5", "Budget UNIT=FRACTION of the dense block matrices: params (non-zero "
                          "parameters), flops (per token on dense hardware) or bytes (vs bfloat16, metadata included).")
    methods: tuple[str, ...] = setting(("sparsegpt_row",), "Pruning methods of the candidates: wanda, sparsegpt, "
                                       "sparsegpt_row (SparseGPT with the mask per output channel).")
    sparsities: tuple[float, ...] = setting((0.3, 0.4, 0.5, 0.6, 0.7), "Unstructured sparsities of the candidates.")
    measured_sparsities: tuple[float, ...] = setting((0.3, 0.5, 0.7), "Sparsities measured (the others "
                                                     "interpolated in level; empty: all).")
    nm: bool = setting(True, "Also 2:4 N:M pruning (saves FLOPs on sparse tensor cores).")
    rank_fractions: tuple[float, ...] = setting((0.125, 0.25), "Low ranks as fractions of min(in, out).")
    bits: tuple[int, ...] = setting((2, 3, 4), "RTN bit widths.")
    group_size: int = setting(128, "RTN group size (inputs per bfloat16 scale).")
    removal: bool = setting(True, "Allow removing whole blocks.")
    delta_source: str = setting("measured", "measured: every candidate's loss increase measured end to end; "
                                "propagated: local errors carried by rho, fit-sites of them measured end to end.")
    fit_sites: int = setting(64, "Candidates measured end to end for the loss curve (delta-source propagated).")
    amplification: str = setting("tested", "How the profile carries a local error to the output, eps * A^gamma: "
                                 "tested (gamma fitted on the end-to-end sites where they reject gamma = 1 at the "
                                 "5% level, else 1), fitted (always fitted) or profile (gamma = 1).")
    calib_tokens: int = setting(2048, "Measurement tokens of calib-text: the local errors, the end-to-end loss "
                                "increases, the profile and the calibration loss of a plan.")
    stats_tokens: int = setting(8192, "Statistics tokens of calib-text, other windows than the measurement ones: "
                                "input norms, Hessians and covariances of every compression, sequential calibration.")
    tokens: int = setting(16384, "Evaluation token budget (apply): windows = tokens // seq-len.")
    rho_eps: float = setting(0.1, "Relative perturbation size of the contraction profile.")
    samples: int = setting(4, "Gaussian perturbation samples per layer.")
    seed: int = setting(0, "Seed of the perturbations, the fit-site sample and the bootstrap.")
    calib_seed: int = setting(0, "Calibration sample: 0 takes the first windows of calib-text (measurement, then "
                              "statistics); another value draws them at random from its first 8x as many.")
    apply: bool = setting(False, "Build the plan and the baselines and evaluate them.")
    anchors: tuple[str, ...] = setting((), "Uniform anchor plans (e.g. sparsegpt_row@0.5, wanda@0.5, sparsegpt@2:4), "
                                       "built with sequential calibration; each one's measured calibration loss "
                                       "over its predicted one rescales the candidates of its method and pattern "
                                       "(empty: none).")
    closed_loop: bool = setting(False, "With apply: measure each layer's contribution on the planned model, "
                                "correct the layers where predicted and measured differ most, and re-plan once.")
    replan_layers: int = setting(6, "Layers corrected by the closed loop.")
    tasks: tuple[str, ...] = setting((), "Zero-shot tasks scored with apply (e.g. arc_easy,piqa; empty: none).")
    task_limit: int = setting(100, "First N items of each task.")
    baselines: tuple[str, ...] = setting(baseline_plans.BASELINES, "Baselines evaluated with apply: "
                                         + ", ".join(baseline_plans.BASELINES) + ".")
    schedule: str = setting("depth", "rhojax schedule of the schedule_wanda baseline: depth or rho.")
    bins: int = setting(10000, "Budget discretisation of the optimizer.")
    batch_size: int = setting(4, "Windows per compiled call.")
    config_batch: int = setting(4, "Candidates of one layer measured together (vmap).")
    boots: int = setting(1000, "Bootstrap resamples of each interval.")

    def __post_init__(self) -> None:
        parse_target(self.target)
        if self.tasks:
            parse_task_names(list(self.tasks))
        for name, value, choices in (("delta_source", self.delta_source, DELTA_SOURCES),
                                     ("amplification", self.amplification, AMPLIFICATIONS),
                                     ("schedule", self.schedule, baseline_plans.RHOJAX_SCHEDULES)):
            if value not in choices:
                raise RhojaxError(f"{name} {value!r}: choose one of {', '.join(choices)}")
        for m in self.methods:
            if m not in PRUNE_METHODS:
                raise RhojaxError(f"methods: {m!r} is not one of {', '.join(PRUNE_METHODS)}")
        for b in self.baselines:
            if b not in baseline_plans.BASELINES:
                raise RhojaxError(f"baselines: {b!r} is not one of {', '.join(baseline_plans.BASELINES)}")
        allowed = [a.name for a in self.anchor_choices()]
        for name in self.anchors:
            if name not in allowed:
                raise RhojaxError(f"anchors: {name!r} is not a pruning action of the grid; choose among "
                                  f"{', '.join(allowed)}")
        missing = set(self.measured_sparsities) - set(self.sparsities)
        if missing or (self.measured_sparsities and (min(self.measured_sparsities) > min(self.sparsities)
                                                     or max(self.measured_sparsities) < max(self.sparsities))):
            raise RhojaxError(f"measured_sparsities {self.measured_sparsities} must be among the sparsities "
                              f"{self.sparsities} and include the lowest and the highest")

    def plan_windows(self, tokenizer) -> tuple[np.ndarray, np.ndarray]:
        """``(measurement, statistics)`` windows of ``calib_text``: disjoint, ``calib_tokens // seq_len`` and
        ``stats_tokens // seq_len`` of them, drawn together for ``calib_seed``; the planner reads nothing else."""
        n = max(1, self.calib_tokens // self.seq_len)
        both = dataclasses.replace(self, calib_tokens=(n + max(1, self.stats_tokens // self.seq_len)) * self.seq_len)
        windows = both.calibration_windows(tokenizer, self.calib_seed)
        return windows[:n], windows[n:]

    def anchor_choices(self) -> list[Action]:
        """The actions an anchor may name: every pruning action of the grid (unstructured and N:M)."""
        grid = self.grid()
        return list(dict.fromkeys([prune(m, level) for m in grid.methods for level in grid.sparsities]
                                  + [nm(m, p) for m in grid.methods for p in grid.nm_patterns]))

    def anchor_actions(self) -> list[Action]:
        """The actions of :attr:`anchors`."""
        by_name = {a.name: a for a in self.anchor_choices()}
        return [by_name[name] for name in self.anchors]

    def grid(self) -> ActionGrid:
        """The candidate grid these settings describe."""
        return ActionGrid(tuple(self.methods), tuple(self.sparsities), ((2, 4),) if self.nm else (),
                          tuple(self.rank_fractions), tuple(self.bits), self.group_size, self.removal)
