(** * The vector cores of the site bounds (rhojax/bounds/site.py).

    A site bound follows one compressed matrix's local error [e = X (W' - W)] through the rest
    of the block, token by token, with factors taken from the clean forward pass. The steps
    proved here are the ones every kind uses:
    - [pointwise_scaled]: an elementwise product with a vector bounded by [c] ([up]: the SiLU
      gate, [gate]: the up projection times the SiLU Lipschitz constant);
    - [operator_after_hadamard]: then a matrix with a certified operator bound [S]
      (Frobenius, Schur test [sqrt (||A||_1 ||A||_inf)] of Norms.v, or Gram iteration);
    - [convex_mixing]: attention rows mix value errors with weights [p_s >= 0], [sum p = 1];
    - [softmax_l1_step], [softmax_l1_range]: the derivative of softmax moves [sum_s |dp_s|] by at
      most [2 max_s |dz_s|], and by at most the range [max_s dz_s - min_s dz_s] (the integrand of the
      softmax Lipschitz bound for [q] and [k]);
    - [tokens_frobenius]: per-token bounds give the Frobenius bound over tokens;
    - [rmsnorm_step]: RMSNorm moves by at most [||da|| / min(rms(a), rms(a + da))]. *)
Require Import Reals Lra Psatz Lia.
Require Import Rhojax.Sums Rhojax.Norms.
Open Scope R_scope.

Lemma sq_le_of_abs_le a b : Rabs a <= b -> a * a <= b * b.
Proof.
  intros H. pose proof (Rabs_pos a).
  replace (a * a) with (Rabs a * Rabs a) by (rewrite <- Rabs_mult; apply Rabs_right; nra). nra.
Qed.

(** [|f_i| <= k |d_i|] for every [i] gives [||f|| <= k ||d||]. *)
Theorem pointwise_scaled n (f d : nat -> R) (k : R) :
  0 <= k -> (forall i, (i < n)%nat -> Rabs (f i) <= k * Rabs (d i)) -> vnorm n f <= k * vnorm n d.
Proof.
  intros Hk H. unfold vnorm.
  rewrite <- (sqrt_square k) by exact Hk. rewrite <- sqrt_mult_alt by nra.
  apply sqrt_le_1_alt. rewrite <- sum_scal_l. apply sum_le. intros i Hi.
  pose proof (sq_le_of_abs_le _ _ (H i Hi)).
  replace (k * k * (d i * d i)) with ((k * Rabs (d i)) * (k * Rabs (d i)))
    by (replace (k * Rabs (d i) * (k * Rabs (d i))) with (k * k * (Rabs (d i) * Rabs (d i))) by ring;
        rewrite <- Rabs_mult; rewrite Rabs_right by nra; ring).
  exact H0.
Qed.

(** [up] site: [||Wd^T (g .* e)|| <= S (c ||e||)] when [|g_i| <= c] and [S] bounds [Wd]. *)
Theorem operator_after_hadamard n k (Wd : nat -> nat -> R) (g e : nat -> R) (S c : R) :
  0 <= S -> 0 <= c -> (forall i, (i < n)%nat -> Rabs (g i) <= c) ->
  (forall v, vnorm k (mv k n Wd v) <= S * vnorm n v) ->
  vnorm k (mv k n Wd (fun i => g i * e i)) <= S * (c * vnorm n e).
Proof.
  intros HS0 Hc Hg HS. eapply Rle_trans; [apply HS|].
  apply Rmult_le_compat_l; [exact HS0|]. apply pointwise_scaled; [exact Hc|].
  intros i Hi. rewrite Rabs_mult. apply Rmult_le_compat_r; [apply Rabs_pos | auto].
Qed.

(** [gate] site, elementwise step: [|(s(z'_i) - s(z_i)) u_i| <= c L |z'_i - z_i|] when [s] is
    [L]-Lipschitz and [|u_i| <= c]; [pointwise_scaled] then gives the vector bound. *)
Theorem lipschitz_gate_step (s : R -> R) (L c z z' u : R) :
  0 <= L -> (forall a b, Rabs (s a - s b) <= L * Rabs (a - b)) -> Rabs u <= c ->
  Rabs ((s z' - s z) * u) <= (c * L) * Rabs (z' - z).
Proof.
  intros HL Hs Hu. rewrite Rabs_mult. pose proof (Hs z' z). pose proof (Rabs_pos u).
  pose proof (Rabs_pos (s z' - s z)). pose proof (Rabs_pos (z' - z)). nra.
Qed.

Lemma vnorm_scale n c y : vnorm n (fun i => c * y i) = Rabs c * vnorm n y.
Proof.
  unfold vnorm. rewrite (sum_ext n _ (fun i => (c * c) * (y i * y i))) by (intros; ring).
  rewrite sum_scal_l, sqrt_mult_alt by nra.
  f_equal. replace (c * c) with (Rabs c * Rabs c) by (rewrite <- Rabs_mult; apply Rabs_right; nra).
  apply sqrt_square. apply Rabs_pos.
Qed.

(** Attention mixing of value errors: [||sum_s p_s y_s|| <= sum_s p_s ||y_s||] for [p_s >= 0]. *)
Theorem convex_mixing T n (p : nat -> R) (y : nat -> nat -> R) :
  (forall s, (s < T)%nat -> 0 <= p s) ->
  vnorm n (fun i => sum T (fun s => p s * y s i)) <= sum T (fun s => p s * vnorm n (y s)).
Proof.
  induction T as [|T IH]; intros Hp; simpl.
  - unfold vnorm. rewrite (sum_ext n _ (fun _ => 0)) by (intros; ring).
    replace (sum n (fun _ => 0)) with 0 by (clear; induction n; simpl; [reflexivity | rewrite <- IHn; ring]).
    rewrite sqrt_0. lra.
  - eapply Rle_trans; [apply (vnorm_triangle n (fun i => sum T (fun s => p s * y s i)) (fun i => p T * y T i))|].
    rewrite vnorm_scale, Rabs_right by (apply Rle_ge; apply Hp; lia).
    pose proof (IH ltac:(intros; apply Hp; lia)). lra.
Qed.

(** Softmax derivative: [sum_s p_s |d_s - sum_r p_r d_r| <= 2 M] for a probability vector [p]
    and [|d_s| <= M] ([d] the logit change, [p] any point on the segment). *)
Theorem softmax_l1_step T (p d : nat -> R) (M : R) :
  (forall s, (s < T)%nat -> 0 <= p s) -> sum T p = 1 -> (forall s, (s < T)%nat -> Rabs (d s) <= M) ->
  sum T (fun s => p s * Rabs (d s - sum T (fun r => p r * d r))) <= 2 * M.
Proof.
  intros Hp Hsum Hd.
  assert (Hmean : Rabs (sum T (fun r => p r * d r)) <= M).
  { apply Rabs_le. split.
    - apply Rle_trans with (sum T (fun r => p r * - M)).
      + rewrite sum_scal_r, Hsum. lra.
      + apply sum_le. intros r Hr. pose proof (Hp r Hr). pose proof (Hd r Hr) as Hdr. pose proof (Rle_abs (d r)). pose proof (Rle_abs (- d r)). rewrite Rabs_Ropp in *. nra.
    - apply Rle_trans with (sum T (fun r => p r * M)).
      + apply sum_le. intros r Hr. pose proof (Hp r Hr). pose proof (Hd r Hr) as Hdr. pose proof (Rle_abs (d r)). pose proof (Rle_abs (- d r)). rewrite Rabs_Ropp in *. nra.
      + rewrite sum_scal_r, Hsum. lra. }
  apply Rle_trans with (sum T (fun s => p s * (2 * M))).
  - apply sum_le. intros s Hs. apply Rmult_le_compat_l; [auto|].
    eapply Rle_trans; [apply Rabs_triang|]. rewrite Rabs_Ropp. pose proof (Hd s Hs). lra.
  - rewrite sum_scal_r, Hsum. lra.
Qed.

(** The form rhojax evaluates: with every [d_s] in [[lo, hi]],
    [sum_s p_s |d_s - sum_r p_r d_r| <= hi - lo] (the range of the logit change). *)
Theorem softmax_l1_range T (p d : nat -> R) (lo hi : R) :
  (forall s, (s < T)%nat -> 0 <= p s) -> sum T p = 1 -> (forall s, (s < T)%nat -> lo <= d s <= hi) ->
  sum T (fun s => p s * Rabs (d s - sum T (fun r => p r * d r))) <= hi - lo.
Proof.
  intros Hp Hsum Hd.
  assert (Hmean : lo <= sum T (fun r => p r * d r) <= hi).
  { split.
    - apply Rle_trans with (sum T (fun r => p r * lo)).
      + rewrite sum_scal_r, Hsum. lra.
      + apply sum_le. intros r Hr. pose proof (Hp r Hr). pose proof (Hd r Hr). nra.
    - apply Rle_trans with (sum T (fun r => p r * hi)).
      + apply sum_le. intros r Hr. pose proof (Hp r Hr). pose proof (Hd r Hr). nra.
      + rewrite sum_scal_r, Hsum. lra. }
  apply Rle_trans with (sum T (fun s => p s * (hi - lo))).
  - apply sum_le. intros s Hs. apply Rmult_le_compat_l; [auto|].
    pose proof (Hd s Hs). apply Rabs_le. lra.
  - rewrite sum_scal_r, Hsum. lra.
Qed.

(** Per-token bounds [||row_t|| <= b_t] give [||R||_F <= sqrt (sum_t b_t^2)]. *)
Theorem tokens_frobenius T n (E : nat -> nat -> R) (b : nat -> R) :
  (forall t, (t < T)%nat -> vnorm n (E t) <= b t) -> fro T n E <= sqrt (sum T (fun t => b t * b t)).
Proof.
  intros H. unfold fro. apply sqrt_le_1_alt. apply sum_le. intros t Ht.
  pose proof (H t Ht) as Hb. pose proof (vnorm_nonneg n (E t)). unfold vnorm in *.
  pose proof (sqrt_sqrt (sum n (fun j => E t j * E t j)) (sum_sq_nonneg n (E t))). nra.
Qed.

(** ** RMSNorm (without its scale): [r(a) = a / rms(a)], [rms(a) = sqrt(|a|^2 / D + c)], moves by at most
    [|a' - a| / min(rms a, rms a')]; the site bounds use [rms >= sqrt(max(0, |a| - delta)^2 / D + eps)]. *)

Lemma sum_sq_lin n (x y : nat -> R) k :
  sum n (fun i => (x i - k * y i) * (x i - k * y i))
  = sum n (fun i => x i * x i) - 2 * k * sum n (fun i => y i * x i) + k * k * sum n (fun i => y i * y i).
Proof. induction n; simpl; [ring|]. rewrite IHn. ring. Qed.

(** The scalar core: with [s^2 = D (r^2 - c)], [s'^2 = D ((l r)^2 - c)], [0 < l <= 1]:
    [2 s s' <= (1 + l) s^2]. *)
Lemma rms_scalar D c r l s s' :
  0 < D -> 0 < c -> 0 < r -> 0 < l <= 1 -> 0 <= s -> 0 <= s' ->
  s * s = D * (r * r - c) -> s' * s' = D * (l * r * (l * r) - c) -> 2 * s * s' <= (1 + l) * (s * s).
Proof.
  intros HD Hc Hr Hl Hs Hs' E E'.
  assert (H4 : 4 * (s' * s') <= (1 + l) * (1 + l) * (s * s)).
  { rewrite E, E'. assert (0 <= (1 - l) * (3 * l + 1) * (r * r)) by (apply Rmult_le_pos; nra).
    assert (0 <= (1 - l) * (3 + l) * c) by (apply Rmult_le_pos; nra).
    assert (0 <= (1 - l) * (3 + l) * c * D) by (apply Rmult_le_pos; nra).
    assert (0 <= (1 - l) * (3 * l + 1) * (r * r) * D) by (apply Rmult_le_pos; nra). nra. }
  destruct (Req_dec s 0) as [Z|Z]; [subst; nra|].
  assert (2 * s' <= (1 + l) * s).
  { apply Rsqr_incr_0_var; [unfold Rsqr; nra | nra]. }
  nra.
Qed.

Definition rms (n : nat) (D c : R) (x : nat -> R) : R := sqrt (sum n (fun i => x i * x i) / D + c).

Lemma rms_pos n D c x : 0 < D -> 0 < c -> 0 < rms n D c x.
Proof.
  intros HD Hc. unfold rms. apply sqrt_lt_R0.
  pose proof (sum_sq_nonneg n x). assert (0 <= sum n (fun i => x i * x i) / D) by (unfold Rdiv; apply Rmult_le_pos; [lra | left; apply Rinv_0_lt_compat; lra]). lra.
Qed.

Lemma rms_sq n D c x : 0 < D -> 0 < c ->
  sqrt (sum n (fun i => x i * x i)) * sqrt (sum n (fun i => x i * x i)) = D * (rms n D c x * rms n D c x - c).
Proof.
  intros HD Hc. rewrite sqrt_sqrt by apply sum_sq_nonneg. unfold rms.
  pose proof (sum_sq_nonneg n x). assert (0 <= sum n (fun i => x i * x i) / D) by (unfold Rdiv; apply Rmult_le_pos; [lra | left; apply Rinv_0_lt_compat; lra]).
  rewrite sqrt_sqrt by lra. field. lra.
Qed.

Lemma rms_step_ordered n D c (a a' : nat -> R) :
  0 < D -> 0 < c -> rms n D c a' <= rms n D c a ->
  vnorm n (fun i => a' i / rms n D c a' - a i / rms n D c a) <= vnorm n (fun i => a' i - a i) / rms n D c a'.
Proof.
  intros HD Hc Hle. set (r := rms n D c a). set (r' := rms n D c a').
  assert (Hr : 0 < r) by (apply rms_pos; auto). assert (Hr' : 0 < r') by (apply rms_pos; auto).
  set (l := r' / r).
  assert (Elr : l * r = r') by (unfold l; field; lra).
  assert (Hl : 0 < l <= 1).
  { split.
    - apply Rmult_lt_reg_r with r; [exact Hr|]. rewrite Elr, Rmult_0_l. exact Hr'.
    - apply Rmult_le_reg_r with r; [exact Hr|]. rewrite Elr, Rmult_1_l. exact Hle. }
  rewrite (vnorm_ext n _ (fun i => / r' * (a' i - l * a i))) by (intros; unfold l; field; lra).
  rewrite (vnorm_scale n (/ r') (fun i => a' i - l * a i)).
  rewrite Rabs_right by (apply Rle_ge; left; apply Rinv_0_lt_compat; exact Hr').
  unfold Rdiv. rewrite Rmult_comm. apply Rmult_le_compat_r; [left; apply Rinv_0_lt_compat; exact Hr'|].
  unfold vnorm. apply sqrt_le_1_alt.
  rewrite sum_sq_lin. rewrite (sum_ext n (fun i => (a' i - a i) * (a' i - a i))
    (fun i => (a' i - 1 * a i) * (a' i - 1 * a i))) by (intros; ring).
  rewrite sum_sq_lin.
  pose proof (cauchy_schwarz_sqrt n a a') as CS.
  pose proof (rms_sq n D c a HD Hc) as Ea. pose proof (rms_sq n D c a' HD Hc) as Ea'.
  fold r in Ea. fold r' in Ea'. rewrite <- Elr in Ea'.
  pose proof (rms_scalar D c r l _ _ HD Hc Hr Hl (sqrt_pos _) (sqrt_pos _) Ea Ea') as K.
  rewrite sqrt_sqrt in K by apply sum_sq_nonneg.
  assert (0 <= 1 - l) by lra.
  assert (0 <= (1 - l) * ((1 + l) * sum n (fun i => a i * a i) - 2 * sum n (fun i => a i * a' i))).
  { apply Rmult_le_pos; [lra|]. nra. }
  nra.
Qed.

(** RMSNorm without its scale, [a / sqrt(|a|^2 / D + c)], moves by at most [|a' - a| / min(rms a, rms a')]. *)
Theorem rmsnorm_step n D c (a a' : nat -> R) :
  0 < D -> 0 < c ->
  vnorm n (fun i => a' i / rms n D c a' - a i / rms n D c a)
  <= vnorm n (fun i => a' i - a i) / Rmin (rms n D c a) (rms n D c a').
Proof.
  intros HD Hc. assert (A1 : Rabs (-1) = 1) by (rewrite Rabs_left; lra).
  unfold Rmin. destruct (Rle_dec (rms n D c a) (rms n D c a')) as [H|H].
  - rewrite (vnorm_ext n _ (fun i => -1 * (a i / rms n D c a - a' i / rms n D c a'))) by (intros; ring).
    rewrite vnorm_scale, A1, Rmult_1_l.
    rewrite (vnorm_ext n (fun i => a' i - a i) (fun i => -1 * (a i - a' i))) by (intros; ring).
    rewrite vnorm_scale, A1, Rmult_1_l.
    apply rms_step_ordered; auto.
  - apply rms_step_ordered; auto. lra.
Qed.
