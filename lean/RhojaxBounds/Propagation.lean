import RhojaxBounds.Setting

/-!
# Propagation across layers

Scalar recurrences for an error `a t = ‖e_t‖` (or a relative error) as it crosses the layers:
products of per-layer gains, the geometric-series bound for contracting layers, and the
Lyapunov function `V_t = ‖e_t‖² / ‖h_t‖²` (stated without division).
-/

namespace Rhojax

variable {K : Type} [Scalar K]

/-- `prodGains g T = g (T-1) * ... * g 1 * g 0` (and `1` for `T = 0`). -/
def prodGains (g : Nat → K) : Nat → K
  | 0 => 1
  | n + 1 => g n * prodGains g n

/-- Product propagation: if `a (t+1) ≤ g t * a t` with gains `g t ≥ 0`, then
`a T ≤ (g (T-1) ⋯ g 0) * a 0` for every `T`. -/
theorem product_propagation (a g : Nat → K) (hg : ∀ t, 0 ≤ g t)
    (hstep : ∀ t, a (t + 1) ≤ g t * a t) : ∀ T, a T ≤ prodGains g T * a 0 := by
  intro T
  induction T with
  | zero =>
    show a 0 ≤ 1 * a 0
    rw [Scalar.one_mul (a 0)]
    exact Scalar.le_refl (a 0)
  | succ n ih =>
    calc a (n + 1) ≤ g n * a n := hstep n
      _ ≤ g n * (prodGains g n * a 0) := Scalar.mul_le_mul_of_nonneg_left (hg n) ih
      _ = g n * prodGains g n * a 0 := (Scalar.mul_assoc (g n) (prodGains g n) (a 0)).symm
      _ = prodGains g (n + 1) * a 0 := rfl

/-- Geometric-series bound: if every layer contracts by `ρ ≥ 0` and adds at most `δ`,
`a (t+1) ≤ ρ a t + δ`, and `c` is a fixed-point bound `ρ c + δ ≤ c` with `a 0 ≤ c`, then
`a T ≤ c` for every `T`. For `ρ < 1`, `c = max (a 0) (δ / (1 - ρ))` qualifies: the partial sums
`δ (1 + ρ + ... + ρ^(T-1))` never exceed `δ / (1 - ρ)`. -/
theorem geometric_series_bound (a : Nat → K) (ρ δ c : K) (hρ : 0 ≤ ρ) (hfix : ρ * c + δ ≤ c)
    (h0 : a 0 ≤ c) (hstep : ∀ t, a (t + 1) ≤ ρ * a t + δ) : ∀ T, a T ≤ c := by
  intro T
  induction T with
  | zero => exact h0
  | succ n ih =>
    calc a (n + 1) ≤ ρ * a n + δ := hstep n
      _ ≤ ρ * c + δ := Scalar.add_le_add (Scalar.mul_le_mul_of_nonneg_left hρ ih) (Scalar.le_refl δ)
      _ ≤ c := hfix

/-- Lyapunov monotonicity: with error growth `e₁ ≤ β e₀`, hidden growth `α h₀ ≤ h₁` and
`β ≤ α`, `(e₁ h₀)² ≤ (e₀ h₁)²`, i.e. `V₁ = e₁² / h₁² ≤ e₀² / h₀² = V₀` whenever `h₀, h₁ > 0`. -/
theorem lyapunov_monotone (e₀ e₁ h₀ h₁ α β : K) (he₀ : 0 ≤ e₀) (he₁ : 0 ≤ e₁) (hh₀ : 0 ≤ h₀)
    (hβ : e₁ ≤ β * e₀) (hα : α * h₀ ≤ h₁) (hβα : β ≤ α) :
    (e₁ * h₀) * (e₁ * h₀) ≤ (e₀ * h₁) * (e₀ * h₁) := by
  have hp : e₁ * h₀ ≤ e₀ * h₁ :=
    calc e₁ * h₀ ≤ β * e₀ * h₀ := Scalar.mul_le_mul_of_nonneg_right hh₀ hβ
      _ ≤ α * e₀ * h₀ :=
          Scalar.mul_le_mul_of_nonneg_right hh₀ (Scalar.mul_le_mul_of_nonneg_right he₀ hβα)
      _ = e₀ * (α * h₀) := by rw [Scalar.mul_comm α e₀, Scalar.mul_assoc e₀ α h₀]
      _ ≤ e₀ * h₁ := Scalar.mul_le_mul_of_nonneg_left he₀ hα
  have hp0 : 0 ≤ e₁ * h₀ := Scalar.mul_nonneg he₁ hh₀
  calc (e₁ * h₀) * (e₁ * h₀) ≤ (e₁ * h₀) * (e₀ * h₁) := Scalar.mul_le_mul_of_nonneg_left hp0 hp
    _ ≤ (e₀ * h₁) * (e₀ * h₁) := Scalar.mul_le_mul_of_nonneg_right (Scalar.le_trans hp0 hp) hp

end Rhojax
