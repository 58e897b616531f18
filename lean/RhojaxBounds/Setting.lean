/-!
# The abstract setting of the bounds

Every hypothesis the proofs use is a field of one of two structures, so each proof is a short
`calc` chain of those fields and nothing else (core Lean 4, no Mathlib):

* `Scalar K`: the ordered-field facts about the scalars (norms, gains, step sizes). Each field
  holds in the real numbers.
* `NormedMaps K V M`: vectors `V`, linear maps `M` acting on them (`app A x`, "A applied to x"),
  a norm on vectors and a norm on maps with the triangle inequality and `‖A x‖ ≤ ‖A‖ ‖x‖`.
  Real matrices with the Frobenius norm on activations and either the spectral or the
  Frobenius norm on weights are instances (rhojax applies `x ↦ x W` to token-by-feature
  activation matrices; `‖X W‖_F ≤ ‖X‖_F ‖W‖_2 ≤ ‖X‖_F ‖W‖_F`).

One vector type and one map type keep the statements short; the proofs never use a dimension,
so the same text proves the rectangular case for every pair of dimensions.
-/

namespace Rhojax

/-- Scalar operations: addition, subtraction, multiplication, order, zero and one. -/
class ScalarOps (K : Type) extends Add K, Sub K, Mul K, LE K where
  zero : K
  one : K

instance instOfNatZero {K : Type} [ScalarOps K] : OfNat K 0 := ⟨ScalarOps.zero⟩
instance instOfNatOne {K : Type} [ScalarOps K] : OfNat K 1 := ⟨ScalarOps.one⟩

/-- The ordered-field facts the proofs use. Every field is a true statement about `ℝ`. -/
class Scalar (K : Type) extends ScalarOps K where
  le_refl : ∀ a : K, a ≤ a
  le_trans : ∀ {a b c : K}, a ≤ b → b ≤ c → a ≤ c
  add_le_add : ∀ {a b c d : K}, a ≤ b → c ≤ d → a + c ≤ b + d
  mul_le_mul_of_nonneg_left : ∀ {a b c : K}, 0 ≤ c → a ≤ b → c * a ≤ c * b
  mul_nonneg : ∀ {a b : K}, 0 ≤ a → 0 ≤ b → 0 ≤ a * b
  mul_comm : ∀ a b : K, a * b = b * a
  mul_assoc : ∀ a b c : K, a * b * c = a * (b * c)
  mul_mul_mul_comm : ∀ a b c d : K, a * b * (c * d) = a * c * (b * d)
  one_mul : ∀ a : K, 1 * a = a
  zero_mul : ∀ a : K, 0 * a = 0
  add_mul : ∀ a b c : K, (a + b) * c = a * c + b * c
  mul_sub : ∀ a b c : K, a * b - a * c = a * (b - c)

/-- `calc` chains of `≤` steps. -/
instance Scalar.instTransLe {K : Type} [Scalar K] : @Trans K K K LE.le LE.le LE.le :=
  ⟨fun h₁ h₂ => Scalar.le_trans h₁ h₂⟩

theorem Scalar.mul_le_mul_of_nonneg_right {K : Type} [Scalar K] {a b c : K}
    (hc : 0 ≤ c) (h : a ≤ b) : a * c ≤ b * c :=
  calc a * c = c * a := Scalar.mul_comm a c
    _ ≤ c * b := Scalar.mul_le_mul_of_nonneg_left hc h
    _ = b * c := Scalar.mul_comm c b

/-- Vectors `V` and linear maps `M` with a norm on each (values in `K`) and the norm axioms
the bounds use. `app A x` is the map `A` applied to `x` (`x @ W` in rhojax's storage). -/
structure NormedMaps (K V M : Type) [Scalar K] [Add V] [Sub V] [Sub M] where
  app : M → V → V
  norm : V → K
  opNorm : M → K
  norm_nonneg : ∀ x : V, 0 ≤ norm x
  opNorm_nonneg : ∀ A : M, 0 ≤ opNorm A
  norm_add_le : ∀ x y : V, norm (x + y) ≤ norm x + norm y
  norm_sub_le_sub_add_sub : ∀ x y z : V, norm (x - z) ≤ norm (x - y) + norm (y - z)
  opNorm_sub_le_sub_add_sub : ∀ A B C : M, opNorm (A - C) ≤ opNorm (A - B) + opNorm (B - C)
  app_le : ∀ (A : M) (x : V), norm (app A x) ≤ opNorm A * norm x
  app_sub_left : ∀ (A B : M) (x : V), app A x - app B x = app (A - B) x
  app_sub_right : ∀ (A : M) (x y : V), app A x - app A y = app A (x - y)
  add_sub_add : ∀ x y u v : V, (x + u) - (y + v) = (x - y) + (u - v)

end Rhojax
