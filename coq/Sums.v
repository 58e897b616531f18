(** * Finite sums over the reals and the Cauchy-Schwarz inequality.

    [sum n f = f 0 + ... + f (n-1)]. Vectors are functions [nat -> R] read on [0 .. n-1];
    every statement only looks at indices below its dimension, so no function equality
    (and no extensionality) is needed. *)
Require Import Reals Lra Psatz Lia.
Open Scope R_scope.

Fixpoint sum (n : nat) (f : nat -> R) : R :=
  match n with
  | O => 0
  | S k => sum k f + f k
  end.

Lemma sum_ext n f g : (forall i, (i < n)%nat -> f i = g i) -> sum n f = sum n g.
Proof.
  induction n as [|n IH]; intros H; simpl; [reflexivity|].
  rewrite IH by (intros; apply H; lia). rewrite (H n) by lia. reflexivity.
Qed.

Lemma sum_le n f g : (forall i, (i < n)%nat -> f i <= g i) -> sum n f <= sum n g.
Proof.
  induction n as [|n IH]; intros H; simpl; [lra|].
  pose proof (H n ltac:(lia)). pose proof (IH ltac:(intros; apply H; lia)). lra.
Qed.

Lemma sum_nonneg n f : (forall i, (i < n)%nat -> 0 <= f i) -> 0 <= sum n f.
Proof.
  intros H. replace 0 with (sum n (fun _ => 0)).
  - apply sum_le. exact H.
  - induction n; simpl; [reflexivity|]. rewrite IHn by (intros; apply H; lia). ring.
Qed.

Lemma sum_plus n f g : sum n (fun i => f i + g i) = sum n f + sum n g.
Proof. induction n; simpl; [ring|]. rewrite IHn. ring. Qed.

Lemma sum_minus n f g : sum n (fun i => f i - g i) = sum n f - sum n g.
Proof. induction n; simpl; [ring|]. rewrite IHn. ring. Qed.

Lemma sum_scal_l n c f : sum n (fun i => c * f i) = c * sum n f.
Proof. induction n; simpl; [ring|]. rewrite IHn. ring. Qed.

Lemma sum_scal_r n c f : sum n (fun i => f i * c) = sum n f * c.
Proof. induction n; simpl; [ring|]. rewrite IHn. ring. Qed.

(** Exchange of a double sum. *)
Lemma sum_swap m n (f : nat -> nat -> R) :
  sum m (fun i => sum n (fun j => f i j)) = sum n (fun j => sum m (fun i => f i j)).
Proof.
  induction m as [|m IH]; simpl.
  - induction n; simpl; [reflexivity|]. rewrite <- IHn. ring.
  - rewrite IH, <- sum_plus. reflexivity.
Qed.

Lemma sum_sq_nonneg n f : 0 <= sum n (fun i => f i * f i).
Proof. apply sum_nonneg. intros. nra. Qed.

(** The identity behind Lagrange's proof of Cauchy-Schwarz. *)
Lemma lagrange_step n (a b : nat -> R) x y :
  sum n (fun i => (x * b i - y * a i) * (x * b i - y * a i))
  = x * x * sum n (fun i => b i * b i) + y * y * sum n (fun i => a i * a i)
    - 2 * x * y * sum n (fun i => a i * b i).
Proof. induction n; simpl; [ring|]. rewrite IHn. ring. Qed.

(** Cauchy-Schwarz, squared form: [(sum a_i b_i)^2 <= (sum a_i^2) (sum b_i^2)]. *)
Theorem cauchy_schwarz n (a b : nat -> R) :
  sum n (fun i => a i * b i) * sum n (fun i => a i * b i)
  <= sum n (fun i => a i * a i) * sum n (fun i => b i * b i).
Proof.
  induction n as [|n IH]; simpl; [lra|].
  pose proof (lagrange_step n a b (a n) (b n)) as L.
  pose proof (sum_sq_nonneg n (fun i => a n * b i - b n * a i)) as P. simpl in P.
  rewrite L in P. nra.
Qed.

(** Cauchy-Schwarz, root form: [sum a_i b_i <= sqrt (sum a_i^2) sqrt (sum b_i^2)]. *)
Theorem cauchy_schwarz_sqrt n (a b : nat -> R) :
  sum n (fun i => a i * b i)
  <= sqrt (sum n (fun i => a i * a i)) * sqrt (sum n (fun i => b i * b i)).
Proof.
  rewrite <- sqrt_mult_alt by apply sum_sq_nonneg.
  destruct (Rle_or_lt (sum n (fun i => a i * b i)) 0) as [Hle|Hgt].
  - pose proof (sqrt_pos (sum n (fun i => a i * a i) * sum n (fun i => b i * b i))). lra.
  - rewrite <- (sqrt_square (sum n (fun i => a i * b i))) by lra.
    apply sqrt_le_1_alt. apply cauchy_schwarz.
Qed.

(** Weighted Cauchy-Schwarz: [(sum w_i y_i)^2 <= (sum w_i) (sum w_i y_i^2)] for [w_i >= 0]. *)
Theorem weighted_cauchy_schwarz n (w y : nat -> R) :
  (forall i, (i < n)%nat -> 0 <= w i) ->
  sum n (fun i => w i * y i) * sum n (fun i => w i * y i)
  <= sum n w * sum n (fun i => w i * (y i * y i)).
Proof.
  intros Hw.
  pose proof (cauchy_schwarz n (fun i => sqrt (w i)) (fun i => sqrt (w i) * y i)) as C. cbv beta in C.
  assert (E : forall i, (i < n)%nat -> sqrt (w i) * sqrt (w i) = w i) by (intros; apply sqrt_sqrt; auto).
  rewrite (sum_ext n (fun i => sqrt (w i) * (sqrt (w i) * y i)) (fun i => w i * y i)) in C
    by (intros i Hi; rewrite <- Rmult_assoc, (E i Hi); reflexivity).
  rewrite (sum_ext n (fun i => sqrt (w i) * sqrt (w i)) w) in C by exact E.
  rewrite (sum_ext n (fun i => sqrt (w i) * y i * (sqrt (w i) * y i)) (fun i => w i * (y i * y i))) in C
    by (intros i Hi; transitivity (sqrt (w i) * sqrt (w i) * (y i * y i)); [ring | rewrite (E i Hi); reflexivity]).
  exact C.
Qed.

(** [sqrt (a + 2 c + b) <= sqrt a + sqrt b] when [c <= sqrt a sqrt b]: the step from
    Cauchy-Schwarz to the triangle inequality. *)
Lemma sqrt_triangle a b c :
  0 <= a -> 0 <= b -> c <= sqrt a * sqrt b -> sqrt (a + 2 * c + b) <= sqrt a + sqrt b.
Proof.
  intros Ha Hb Hc.
  pose proof (sqrt_pos a). pose proof (sqrt_pos b).
  rewrite <- (sqrt_square (sqrt a + sqrt b)) by lra.
  apply sqrt_le_1_alt.
  pose proof (sqrt_sqrt a Ha). pose proof (sqrt_sqrt b Hb). nra.
Qed.
