import RhojaxBounds.Setting

/-!
# Per-matrix bounds

A compressed weight `W'` replaces `W`; `‖·‖` is the vector norm, `‖·‖op` the map norm of the
`NormedMaps` structure `S`. Every bound is linear in the weight errors: compression stages and
chained matrices add their errors, they never multiply them together.
-/

namespace Rhojax
namespace NormedMaps

variable {K V M : Type} [Scalar K] [Add V] [Sub V] [Sub M] (S : NormedMaps K V M)

/-- Weight perturbation: `‖W' x - W x‖ ≤ ‖W' - W‖ ‖x‖`. -/
theorem weight_perturbation (W W' : M) (x : V) :
    S.norm (S.app W' x - S.app W x) ≤ S.opNorm (W' - W) * S.norm x :=
  calc S.norm (S.app W' x - S.app W x) = S.norm (S.app (W' - W) x) := by
        rw [S.app_sub_left W' W x]
    _ ≤ S.opNorm (W' - W) * S.norm x := S.app_le (W' - W) x

/-- Relative form: if `‖W' - W‖ ≤ δ ‖W‖` then `‖W' x - W x‖ ≤ δ (‖W‖ ‖x‖)`. -/
theorem relative_weight_perturbation (W W' : M) (x : V) (δ : K)
    (hδ : S.opNorm (W' - W) ≤ δ * S.opNorm W) :
    S.norm (S.app W' x - S.app W x) ≤ δ * (S.opNorm W * S.norm x) :=
  calc S.norm (S.app W' x - S.app W x) ≤ S.opNorm (W' - W) * S.norm x :=
        S.weight_perturbation W W' x
    _ ≤ δ * S.opNorm W * S.norm x := Scalar.mul_le_mul_of_nonneg_right (S.norm_nonneg x) hδ
    _ = δ * (S.opNorm W * S.norm x) := Scalar.mul_assoc δ (S.opNorm W) (S.norm x)

/-- Weight-plus-input error: `‖W' x' - W x‖ ≤ ‖W'‖ ‖x' - x‖ + ‖W' - W‖ ‖x‖`. -/
theorem weight_input_error (W W' : M) (x x' : V) :
    S.norm (S.app W' x' - S.app W x)
      ≤ S.opNorm W' * S.norm (x' - x) + S.opNorm (W' - W) * S.norm x :=
  calc S.norm (S.app W' x' - S.app W x)
        ≤ S.norm (S.app W' x' - S.app W' x) + S.norm (S.app W' x - S.app W x) :=
          S.norm_sub_le_sub_add_sub (S.app W' x') (S.app W' x) (S.app W x)
    _ = S.norm (S.app W' (x' - x)) + S.norm (S.app W' x - S.app W x) := by
          rw [S.app_sub_right W' x' x]
    _ ≤ S.opNorm W' * S.norm (x' - x) + S.opNorm (W' - W) * S.norm x :=
          Scalar.add_le_add (S.app_le W' (x' - x)) (S.weight_perturbation W W' x)

/-- Additive composition of two compressions `W → W₁ → W₂`:
`‖W₂ x - W x‖ ≤ (‖W₂ - W₁‖ + ‖W₁ - W‖) ‖x‖`. -/
theorem additive_composition (W W₁ W₂ : M) (x : V) :
    S.norm (S.app W₂ x - S.app W x) ≤ (S.opNorm (W₂ - W₁) + S.opNorm (W₁ - W)) * S.norm x :=
  calc S.norm (S.app W₂ x - S.app W x) ≤ S.opNorm (W₂ - W) * S.norm x :=
        S.weight_perturbation W W₂ x
    _ ≤ (S.opNorm (W₂ - W₁) + S.opNorm (W₁ - W)) * S.norm x :=
        Scalar.mul_le_mul_of_nonneg_right (S.norm_nonneg x) (S.opNorm_sub_le_sub_add_sub W₂ W₁ W)

/-- Two-matrix chain `x ↦ B (A x)` with both matrices compressed:
`‖B' A' x - B A x‖ ≤ ‖B'‖ (‖A' - A‖ ‖x‖) + ‖B' - B‖ (‖A‖ ‖x‖)`. -/
theorem two_matrix_chain (A A' B B' : M) (x : V) :
    S.norm (S.app B' (S.app A' x) - S.app B (S.app A x))
      ≤ S.opNorm B' * (S.opNorm (A' - A) * S.norm x) + S.opNorm (B' - B) * (S.opNorm A * S.norm x) :=
  calc S.norm (S.app B' (S.app A' x) - S.app B (S.app A x))
        ≤ S.opNorm B' * S.norm (S.app A' x - S.app A x) + S.opNorm (B' - B) * S.norm (S.app A x) :=
          S.weight_input_error B B' (S.app A x) (S.app A' x)
    _ ≤ S.opNorm B' * (S.opNorm (A' - A) * S.norm x) + S.opNorm (B' - B) * (S.opNorm A * S.norm x) :=
          Scalar.add_le_add
            (Scalar.mul_le_mul_of_nonneg_left (S.opNorm_nonneg B') (S.weight_perturbation A A' x))
            (Scalar.mul_le_mul_of_nonneg_left (S.opNorm_nonneg (B' - B)) (S.app_le A x))

/-- Chain through an `L`-Lipschitz activation `σ`, `x ↦ B σ(A x)`:
`‖B' σ(A' x) - B σ(A x)‖ ≤ ‖B'‖ (L (‖A' - A‖ ‖x‖)) + ‖B' - B‖ ‖σ(A x)‖`. -/
theorem lipschitz_activation_chain (σ : V → V) (L : K) (hL : 0 ≤ L)
    (hσ : ∀ u v : V, S.norm (σ u - σ v) ≤ L * S.norm (u - v)) (A A' B B' : M) (x : V) :
    S.norm (S.app B' (σ (S.app A' x)) - S.app B (σ (S.app A x)))
      ≤ S.opNorm B' * (L * (S.opNorm (A' - A) * S.norm x))
        + S.opNorm (B' - B) * S.norm (σ (S.app A x)) :=
  calc S.norm (S.app B' (σ (S.app A' x)) - S.app B (σ (S.app A x)))
        ≤ S.opNorm B' * S.norm (σ (S.app A' x) - σ (S.app A x))
          + S.opNorm (B' - B) * S.norm (σ (S.app A x)) :=
          S.weight_input_error B B' (σ (S.app A x)) (σ (S.app A' x))
    _ ≤ S.opNorm B' * (L * (S.opNorm (A' - A) * S.norm x))
          + S.opNorm (B' - B) * S.norm (σ (S.app A x)) :=
          Scalar.add_le_add
            (Scalar.mul_le_mul_of_nonneg_left (S.opNorm_nonneg B')
              (Scalar.le_trans (hσ (S.app A' x) (S.app A x))
                (Scalar.mul_le_mul_of_nonneg_left hL (S.weight_perturbation A A' x))))
            (Scalar.le_refl (S.opNorm (B' - B) * S.norm (σ (S.app A x))))

/-- Residual block `u ↦ u + F u` with an `L`-Lipschitz branch `F`:
`‖(u + F u) - (v + F v)‖ ≤ (1 + L) ‖u - v‖`. -/
theorem residual_block (F : V → V) (L : K)
    (hF : ∀ u v : V, S.norm (F u - F v) ≤ L * S.norm (u - v)) (u v : V) :
    S.norm ((u + F u) - (v + F v)) ≤ (1 + L) * S.norm (u - v) :=
  calc S.norm ((u + F u) - (v + F v)) = S.norm ((u - v) + (F u - F v)) := by
        rw [S.add_sub_add u v (F u) (F v)]
    _ ≤ S.norm (u - v) + S.norm (F u - F v) := S.norm_add_le (u - v) (F u - F v)
    _ ≤ S.norm (u - v) + L * S.norm (u - v) :=
        Scalar.add_le_add (Scalar.le_refl (S.norm (u - v))) (hF u v)
    _ = (1 + L) * S.norm (u - v) := by
        rw [Scalar.add_mul 1 L (S.norm (u - v)), Scalar.one_mul (S.norm (u - v))]

end NormedMaps
end Rhojax
