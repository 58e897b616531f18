(** * Propagation across layers over the reals (lean/RhojaxBounds/Propagation.lean). *)
Require Import Reals Lra Psatz.
Open Scope R_scope.

(** [prodGains g T = g (T-1) * ... * g 0], and [1] for [T = 0]. *)
Fixpoint prodGains (g : nat -> R) (n : nat) : R :=
  match n with
  | O => 1
  | S k => g k * prodGains g k
  end.

Theorem product_propagation (a g : nat -> R) (Hg : forall t, 0 <= g t)
    (Hstep : forall t, a (S t) <= g t * a t) :
  forall T, a T <= prodGains g T * a O.
Proof.
  induction T as [|n IH]; simpl; [lra|].
  pose proof (Hstep n). pose proof (Hg n).
  assert (g n * a n <= g n * (prodGains g n * a O)) by (apply Rmult_le_compat_l; auto). nra.
Qed.

Theorem geometric_series_bound (a : nat -> R) (rho delta c : R) (Hrho : 0 <= rho)
    (Hfix : rho * c + delta <= c) (H0 : a O <= c) (Hstep : forall t, a (S t) <= rho * a t + delta) :
  forall T, a T <= c.
Proof.
  induction T as [|n IH]; [exact H0|].
  pose proof (Hstep n). assert (rho * a n <= rho * c) by (apply Rmult_le_compat_l; auto). lra.
Qed.

(** [(e1 h0)^2 <= (e0 h1)^2], i.e. [V1 = e1^2/h1^2 <= e0^2/h0^2 = V0] for [h0, h1 > 0]. *)
Theorem lyapunov_monotone (e0 e1 h0 h1 alpha beta : R) (He0 : 0 <= e0) (He1 : 0 <= e1) (Hh0 : 0 <= h0)
    (Hbeta : e1 <= beta * e0) (Halpha : alpha * h0 <= h1) (Hba : beta <= alpha) :
  (e1 * h0) * (e1 * h0) <= (e0 * h1) * (e0 * h1).
Proof.
  assert (Hp : e1 * h0 <= e0 * h1).
  { assert (e1 * h0 <= beta * e0 * h0) by (apply Rmult_le_compat_r; auto).
    assert (beta * e0 * h0 <= alpha * e0 * h0) by (apply Rmult_le_compat_r; auto; apply Rmult_le_compat_r; auto).
    assert (e0 * (alpha * h0) <= e0 * h1) by (apply Rmult_le_compat_l; auto). nra. }
  assert (0 <= e1 * h0) by (apply Rmult_le_pos; auto). nra.
Qed.
