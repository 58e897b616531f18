import RhojaxBounds.Setting

/-!
# Bounds from the compression operators themselves

A matrix is viewed through the list of its entry errors `W_ij - W'_ij`; the squared Frobenius
norm of the error is `sumSq` of that list. Magnitude pruning zeroes entries no larger than the
threshold `τ` and leaves the others untouched; b-bit symmetric round-to-nearest maps `w = s y`
to `s r` where `r` is the integer nearest to `y` (no clipping happens because the step is
`s = max |w| / (2^(b-1) - 1)`, so `|y| ≤ 2^(b-1) - 1`), hence `|r - y| ≤ 1/2`.
-/

namespace Rhojax

variable {K : Type} [Scalar K]

/-- `sumSq [w₁, ..., w_k] = w₁² + ... + w_k²`. -/
def sumSq : List K → K
  | [] => 0
  | w :: ws => w * w + sumSq ws

/-- The length of a list as a scalar, `1 + 1 + ... + 0`. -/
def card : List K → K
  | [] => 0
  | _ :: ws => 1 + card ws

/-- Every entry of the list has `w² ≤ τ²`. -/
inductive AllSqLe (τ : K) : List K → Prop
  | nil : AllSqLe τ []
  | cons (w : K) (ws : List K) : w * w ≤ τ * τ → AllSqLe τ ws → AllSqLe τ (w :: ws)

/-- `k` entries each bounded by `τ` have `w₁² + ... + w_k² ≤ k τ²`. -/
theorem sumSq_le_card_mul (τ : K) {ws : List K} (h : AllSqLe τ ws) : sumSq ws ≤ card ws * (τ * τ) := by
  induction h with
  | nil =>
    show (0 : K) ≤ 0 * (τ * τ)
    rw [Scalar.zero_mul (τ * τ)]
    exact Scalar.le_refl 0
  | cons w ws hw _ ih =>
    calc sumSq (w :: ws) = w * w + sumSq ws := rfl
      _ ≤ τ * τ + card ws * (τ * τ) := Scalar.add_le_add hw ih
      _ = (1 + card ws) * (τ * τ) := by rw [Scalar.add_mul 1 (card ws) (τ * τ), Scalar.one_mul (τ * τ)]
      _ = card (w :: ws) * (τ * τ) := rfl

/-- Magnitude pruning: if the error entries are exactly the `k` pruned weights, each with
`|w| ≤ τ` (the pruning threshold), then `‖W - W'‖_F² ≤ k τ²`, i.e. `‖W - W'‖_F ≤ √k τ`. -/
theorem magnitude_pruning_frobenius (τ errSq : K) (pruned : List K) (herr : errSq = sumSq pruned)
    (hτ : AllSqLe τ pruned) : errSq ≤ card pruned * (τ * τ) := by
  rw [herr]
  exact sumSq_le_card_mul τ hτ

/-- b-bit RTN rounding, one entry: for `w = s y` quantized to `s r` with step `s ≥ 0` and
rounding error `|r - y| ≤ h` (`h = 1/2`), `|s r - s y| ≤ s h`, stated squared. -/
theorem rtn_rounding_bound (s y r h : K) (hs : 0 ≤ s) (hr : (r - y) * (r - y) ≤ h * h) :
    (s * r - s * y) * (s * r - s * y) ≤ (s * h) * (s * h) :=
  calc (s * r - s * y) * (s * r - s * y) = (s * (r - y)) * (s * (r - y)) := by
        rw [Scalar.mul_sub s r y]
    _ = (s * s) * ((r - y) * (r - y)) := Scalar.mul_mul_mul_comm s (r - y) s (r - y)
    _ ≤ (s * s) * (h * h) := Scalar.mul_le_mul_of_nonneg_left (Scalar.mul_nonneg hs hs) hr
    _ = (s * h) * (s * h) := (Scalar.mul_mul_mul_comm s h s h).symm

/-- b-bit RTN, whole matrix: if each of the `n` entry errors is at most `s h` (by
`rtn_rounding_bound`), then `‖W - Q(W)‖_F² ≤ n (s h)²`. -/
theorem rtn_frobenius_bound (s h errSq : K) (errors : List K) (herr : errSq = sumSq errors)
    (hentry : AllSqLe (s * h) errors) : errSq ≤ card errors * ((s * h) * (s * h)) := by
  rw [herr]
  exact sumSq_le_card_mul (s * h) hentry

end Rhojax
