"""The contraction profile: rho, alpha/beta, Lyapunov, gains, drift, absorption.

Definitions: docs/definitions.md, sections "Error propagation" to "Absorption".
"""

from rhojax.propagation.absorption import (
    Absorption,
    absorption,
    absorption_coefficients,
    absorption_from_drift,
)
from rhojax.propagation.compression import (
    CompressionProfile,
    compression_drift,
    compression_profile,
)
from rhojax.propagation.correlation import correlation
from rhojax.propagation.drift import (
    DriftTracks,
    drift_tracks,
    injection_drift,
    injection_drifts,
    relative_drift,
)
from rhojax.propagation.jacobian import JacobianGain, jacobian_gain, top_singular_value
from rhojax.propagation.perturbations import directions, scale_aggregate, scale_tokenwise, sink_mask
from rhojax.propagation.profile import (
    SAMPLED_STATISTICS,
    RhoProfile,
    downstream_amplification,
    lyapunov_trajectory,
    rho_profile,
    rho_statistics,
)

__all__ = [
    "SAMPLED_STATISTICS",
    "Absorption",
    "CompressionProfile",
    "DriftTracks",
    "JacobianGain",
    "RhoProfile",
    "absorption",
    "absorption_coefficients",
    "absorption_from_drift",
    "compression_drift",
    "compression_profile",
    "correlation",
    "directions",
    "downstream_amplification",
    "drift_tracks",
    "injection_drift",
    "injection_drifts",
    "jacobian_gain",
    "lyapunov_trajectory",
    "relative_drift",
    "rho_profile",
    "rho_statistics",
    "scale_aggregate",
    "scale_tokenwise",
    "sink_mask",
    "top_singular_value",
]
