(** * Per-matrix bounds over the reals (the Coq statement of lean/RhojaxBounds/Matrix.lean).

    The abstract setting [NormedMaps] is a record of operations and norm facts over [R]; it
    enters each theorem as an ordinary argument (a hypothesis), never as an axiom. The
    instance [frobenius_maps] proves every field for real matrices with the Frobenius norm
    (from the Cauchy-Schwarz inequality of Sums.v), so the theorems hold for real matrices
    with nothing assumed; [weight_perturbation_fro] is the rectangular statement. *)
Require Import Reals Lra Psatz Lia FunctionalExtensionality.
Require Import Rhojax.Sums Rhojax.Norms.
Open Scope R_scope.

Record NormedMaps (V M : Type) := {
  vadd : V -> V -> V;
  vsub : V -> V -> V;
  msub : M -> M -> M;
  app : M -> V -> V;
  norm : V -> R;
  opNorm : M -> R;
  norm_nonneg : forall x, 0 <= norm x;
  opNorm_nonneg : forall A, 0 <= opNorm A;
  norm_add_le : forall x y, norm (vadd x y) <= norm x + norm y;
  norm_sub_le_sub_add_sub : forall x y z, norm (vsub x z) <= norm (vsub x y) + norm (vsub y z);
  opNorm_sub_le_sub_add_sub : forall A B C, opNorm (msub A C) <= opNorm (msub A B) + opNorm (msub B C);
  app_le : forall A x, norm (app A x) <= opNorm A * norm x;
  app_sub_left : forall A B x, vsub (app A x) (app B x) = app (msub A B) x;
  app_sub_right : forall A x y, vsub (app A x) (app A y) = app A (vsub x y);
  add_sub_add : forall x y u v, vsub (vadd x u) (vadd y v) = vadd (vsub x y) (vsub u v)
}.

Arguments vadd {V M}. Arguments vsub {V M}. Arguments msub {V M}. Arguments app {V M}.
Arguments norm {V M}. Arguments opNorm {V M}.

Section Bounds.
Context {V M : Type} (S : NormedMaps V M).
Local Notation "A @ x" := (app S A x) (at level 40).
Local Notation "x -v y" := (vsub S x y) (at level 50).
Local Notation "A -m B" := (msub S A B) (at level 50).

Theorem weight_perturbation (W W' : M) (x : V) :
  norm S (W' @ x -v W @ x) <= opNorm S (W' -m W) * norm S (x).
Proof. rewrite (app_sub_left _ _ S). apply (app_le _ _ S). Qed.

Theorem relative_weight_perturbation (W W' : M) (x : V) (d : R)
    (Hd : opNorm S (W' -m W) <= d * opNorm S (W)) :
  norm S (W' @ x -v W @ x) <= d * (opNorm S (W) * norm S (x)).
Proof.
  pose proof (weight_perturbation W W' x). pose proof (norm_nonneg _ _ S x).
  assert (opNorm S (W' -m W) * norm S (x) <= d * opNorm S (W) * norm S (x)) by (apply Rmult_le_compat_r; auto). lra.
Qed.

Theorem weight_input_error (W W' : M) (x x' : V) :
  norm S (W' @ x' -v W @ x) <= opNorm S (W') * norm S (x' -v x) + opNorm S (W' -m W) * norm S (x).
Proof.
  pose proof (norm_sub_le_sub_add_sub _ _ S (W' @ x') (W' @ x) (W @ x)).
  rewrite (app_sub_right _ _ S) in H.
  pose proof (app_le _ _ S W' (x' -v x)). pose proof (weight_perturbation W W' x). lra.
Qed.

Theorem additive_composition (W W1 W2 : M) (x : V) :
  norm S (W2 @ x -v W @ x) <= (opNorm S (W2 -m W1) + opNorm S (W1 -m W)) * norm S (x).
Proof.
  pose proof (weight_perturbation W W2 x). pose proof (norm_nonneg _ _ S x).
  pose proof (opNorm_sub_le_sub_add_sub _ _ S W2 W1 W).
  assert (opNorm S (W2 -m W) * norm S (x) <= (opNorm S (W2 -m W1) + opNorm S (W1 -m W)) * norm S (x))
    by (apply Rmult_le_compat_r; auto). lra.
Qed.

Theorem two_matrix_chain (A A' B B' : M) (x : V) :
  norm S (B' @ (A' @ x) -v B @ (A @ x))
  <= opNorm S (B') * (opNorm S (A' -m A) * norm S (x)) + opNorm S (B' -m B) * (opNorm S (A) * norm S (x)).
Proof.
  pose proof (weight_input_error B B' (A @ x) (A' @ x)).
  pose proof (weight_perturbation A A' x). pose proof (app_le _ _ S A x).
  pose proof (opNorm_nonneg _ _ S B'). pose proof (opNorm_nonneg _ _ S (B' -m B)).
  assert (opNorm S (B') * norm S (A' @ x -v A @ x) <= opNorm S (B') * (opNorm S (A' -m A) * norm S (x))) by (apply Rmult_le_compat_l; auto).
  assert (opNorm S (B' -m B) * norm S (A @ x) <= opNorm S (B' -m B) * (opNorm S (A) * norm S (x))) by (apply Rmult_le_compat_l; auto).
  lra.
Qed.

Theorem lipschitz_activation_chain (sigma : V -> V) (L : R) (HL : 0 <= L)
    (Hsigma : forall u v, norm S (sigma u -v sigma v) <= L * norm S (u -v v)) (A A' B B' : M) (x : V) :
  norm S (B' @ sigma (A' @ x) -v B @ sigma (A @ x))
  <= opNorm S (B') * (L * (opNorm S (A' -m A) * norm S (x))) + opNorm S (B' -m B) * norm S (sigma (A @ x)).
Proof.
  pose proof (weight_input_error B B' (sigma (A @ x)) (sigma (A' @ x))).
  pose proof (Hsigma (A' @ x) (A @ x)). pose proof (weight_perturbation A A' x).
  pose proof (opNorm_nonneg _ _ S B').
  assert (L * norm S (A' @ x -v A @ x) <= L * (opNorm S (A' -m A) * norm S (x))) by (apply Rmult_le_compat_l; auto).
  assert (opNorm S (B') * norm S (sigma (A' @ x) -v sigma (A @ x)) <= opNorm S (B') * (L * (opNorm S (A' -m A) * norm S (x))))
    by (apply Rmult_le_compat_l; lra).
  lra.
Qed.

Theorem residual_block (F : V -> V) (L : R)
    (HF : forall u v, norm S (F u -v F v) <= L * norm S (u -v v)) (u v : V) :
  norm S (vadd S u (F u) -v vadd S v (F v)) <= (1 + L) * norm S (u -v v).
Proof.
  rewrite (add_sub_add _ _ S). pose proof (norm_add_le _ _ S (u -v v) (F u -v F v)).
  pose proof (HF u v). lra.
Qed.

End Bounds.

(** ** The Frobenius instance: activations [X : T x n], square weights [W : n x n], [W] acting as [X W]. *)
Section Frobenius.
Variables T n : nat.
Definition Mat := nat -> nat -> R.
Definition madd (A B : Mat) : Mat := fun i j => A i j + B i j.
Definition msubf (A B : Mat) : Mat := fun i j => A i j - B i j.

(** Outside [T x n] the activations are set to 0, so equalities of whole functions hold. *)
Definition restrict (m k : nat) (A : Mat) : Mat :=
  fun i j => if (i <? m)%nat then if (j <? k)%nat then A i j else 0 else 0.

Definition frobenius_maps : NormedMaps Mat Mat.
Proof.
  refine {| vadd := madd; vsub := msubf; msub := msubf; app := fun W X => mm n X W;
            norm := fro T n; opNorm := fro n n |}.
  - intros; apply fro_nonneg.
  - intros; apply fro_nonneg.
  - intros; apply fro_triangle.
  - intros; apply fro_sub_triangle.
  - intros; apply fro_sub_triangle.
  - intros A X. unfold mm. rewrite Rmult_comm. apply mm_fro_bound.
  - intros A B X. unfold msubf. extensionality i. extensionality j. apply mm_sub.
  - intros A X Y. unfold msubf, mm. extensionality i. extensionality j.
    rewrite <- sum_minus. apply sum_ext. intros. ring.
  - intros. unfold msubf, madd. extensionality i. extensionality j. ring.
Defined.
End Frobenius.

(** [weight_perturbation] for real rectangular matrices with the Frobenius norm:
    [||X W' - X W||_F <= ||W' - W||_F ||X||_F] for [X : T x n], [W, W' : n x k]. *)
Theorem weight_perturbation_fro T n k (X W W' : nat -> nat -> R) :
  fro T k (fun t c => mm n X W' t c - mm n X W t c)
  <= fro n k (fun j c => W' j c - W j c) * fro T n X.
Proof.
  rewrite (fro_ext T k _ (mm n X (fun j c => W' j c - W j c))) by (intros; apply mm_sub).
  rewrite Rmult_comm. apply mm_fro_bound.
Qed.

(** The abstract theorems instantiated for real square matrices: nothing assumed. *)
Corollary weight_perturbation_frobenius T n (X W W' : Mat) :
  fro T n (msubf (mm n X W') (mm n X W)) <= fro n n (msubf W' W) * fro T n X.
Proof. exact (weight_perturbation (frobenius_maps T n) W W' X). Qed.
