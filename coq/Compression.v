(** * Bounds from the compression operators themselves (lean/RhojaxBounds/Compression.lean),
    and the operator facts the Lean side takes as hypotheses, proved here:
    the pruning error is exactly the pruned entries, and the rounding rhojax's quantizer uses
    ([jnp.round]: round half to even) is within [1/2] of its argument, ties included. *)
Require Import Reals Lra Psatz Lia ZArith List.
Require Import Rhojax.Sums Rhojax.Norms.
Import ListNotations.
Open Scope R_scope.

(** ** Lists of entry errors *)
Fixpoint sumSq (ws : list R) : R :=
  match ws with [] => 0 | w :: rest => w * w + sumSq rest end.

Fixpoint card (ws : list R) : R :=
  match ws with [] => 0 | _ :: rest => 1 + card rest end.

Definition AllSqLe (tau : R) (ws : list R) : Prop := Forall (fun w => w * w <= tau * tau) ws.

Lemma sumSq_le_card_mul tau ws : AllSqLe tau ws -> sumSq ws <= card ws * (tau * tau).
Proof. induction 1; simpl; lra. Qed.

Theorem magnitude_pruning_frobenius (tau errSq : R) (pruned : list R)
    (Herr : errSq = sumSq pruned) (Htau : AllSqLe tau pruned) :
  errSq <= card pruned * (tau * tau).
Proof. rewrite Herr. apply sumSq_le_card_mul. exact Htau. Qed.

Theorem rtn_rounding_bound (s y r h : R) (Hs : 0 <= s) (Hr : (r - y) * (r - y) <= h * h) :
  (s * r - s * y) * (s * r - s * y) <= (s * h) * (s * h).
Proof.
  replace ((s * r - s * y) * (s * r - s * y)) with ((s * s) * ((r - y) * (r - y))) by ring.
  replace ((s * h) * (s * h)) with ((s * s) * (h * h)) by ring.
  apply Rmult_le_compat_l; [nra | exact Hr].
Qed.

Theorem rtn_frobenius_bound (s h errSq : R) (errors : list R) (Herr : errSq = sumSq errors)
    (Hentry : AllSqLe (s * h) errors) :
  errSq <= card errors * ((s * h) * (s * h)).
Proof. rewrite Herr. apply sumSq_le_card_mul. exact Hentry. Qed.

(** ** Pruning: the error is exactly the pruned entries *)

(** [keep i j = true]: entry kept unchanged; [false]: set to zero. *)
Definition prune (keep : nat -> nat -> bool) (W : nat -> nat -> R) : nat -> nat -> R :=
  fun i j => if keep i j then W i j else 0.

Theorem pruning_error_exact m n keep W :
  fro m n (fun i j => W i j - prune keep W i j)
  = sqrt (sum m (fun i => sum n (fun j => if keep i j then 0 else W i j * W i j))).
Proof.
  unfold fro. f_equal. apply sum_ext. intros i _. apply sum_ext. intros j _.
  unfold prune. destruct (keep i j); ring.
Qed.

(** With every pruned entry [|w| <= tau] (the threshold), [||W - W'||_F^2 <= k tau^2],
    [k] the number of pruned entries. *)
Theorem pruning_error_threshold m n keep W tau :
  (forall i j, (i < m)%nat -> (j < n)%nat -> keep i j = false -> Rabs (W i j) <= tau) ->
  sum m (fun i => sum n (fun j => (W i j - prune keep W i j) * (W i j - prune keep W i j)))
  <= sum m (fun i => sum n (fun j => if keep i j then 0 else 1)) * (tau * tau).
Proof.
  intros H. rewrite <- sum_scal_r. apply sum_le. intros i Hi. rewrite <- sum_scal_r.
  apply sum_le. intros j Hj. unfold prune. destruct (keep i j) eqn:E; [lra|].
  pose proof (H i j Hi Hj E). pose proof (Rabs_pos (W i j)).
  replace ((W i j - 0) * (W i j - 0)) with (Rabs (W i j) * Rabs (W i j))
    by (rewrite <- Rabs_mult; rewrite Rabs_right; nra). nra.
Qed.

(** ** Rounding half to even ([jnp.round], IEEE roundTiesToEven) *)

Definition floorZ (y : R) : Z := (up y - 1)%Z.

Lemma floorZ_spec y : IZR (floorZ y) <= y < IZR (floorZ y) + 1.
Proof.
  unfold floorZ. rewrite minus_IZR. destruct (archimed y). simpl. lra.
Qed.

Definition round_half_even (y : R) : Z :=
  let f := floorZ y in
  let d := y - IZR f in
  if Rlt_dec d (1 / 2) then f
  else if Rlt_dec (1 / 2) d then (f + 1)%Z
  else if Z.even f then f else (f + 1)%Z.

(** [|round y - y| <= 1/2], ties included. *)
Theorem round_half_even_error y : Rabs (IZR (round_half_even y) - y) <= 1 / 2.
Proof.
  pose proof (floorZ_spec y). unfold round_half_even.
  destruct (Rlt_dec _ _); [|destruct (Rlt_dec _ _); [|destruct (Z.even _)]];
    try rewrite plus_IZR; apply Rabs_le; simpl; lra.
Qed.

(** It is a nearest integer: no integer [z] is closer to [y]. *)
Theorem round_half_even_nearest y (z : Z) : Rabs (IZR (round_half_even y) - y) <= Rabs (IZR z - y).
Proof.
  pose proof (floorZ_spec y) as F.
  assert (Hz : (z <= floorZ y)%Z \/ (floorZ y + 1 <= z)%Z) by lia.
  assert (Hz' : IZR z <= IZR (floorZ y) \/ IZR (floorZ y) + 1 <= IZR z).
  { destruct Hz as [H|H]; [left; apply IZR_le; exact H | right; rewrite <- plus_IZR; apply IZR_le; exact H]. }
  unfold round_half_even.
  destruct (Rlt_dec _ _); [|destruct (Rlt_dec _ _); [|destruct (Z.even _)]];
    try rewrite plus_IZR; simpl;
    (destruct Hz' as [H|H]; [rewrite (Rabs_left1 (IZR z - y)) by lra | rewrite (Rabs_right (IZR z - y)) by lra]);
    apply Rabs_le; lra.
Qed.

(** Ties go to the even neighbour. *)
Theorem round_half_even_ties y : y - IZR (floorZ y) = 1 / 2 -> Z.even (round_half_even y) = true.
Proof.
  intros H. unfold round_half_even. rewrite H.
  destruct (Rlt_dec (1 / 2) (1 / 2)); [lra|]. destruct (Rlt_dec (1 / 2) (1 / 2)); [lra|].
  destruct (Z.even (floorZ y)) eqn:E; [exact E|].
  rewrite Z.even_add, E. reflexivity.
Qed.

(** No clipping: [|y| <= q] for an integer [q] keeps [round y] in [-q, q]. *)
Theorem round_half_even_no_clip y (q : Z) : Rabs y <= IZR q -> Rabs (IZR (round_half_even y)) <= IZR q.
Proof.
  intros Hy. pose proof (round_half_even_nearest y q) as Nq.
  pose proof (round_half_even_nearest y (- q)) as Nmq. rewrite opp_IZR in Nmq.
  set (r := round_half_even y) in *.
  assert (Hy2 : - IZR q <= y <= IZR q) by (pose proof (Rle_abs y); pose proof (Rle_abs (- y)); rewrite Rabs_Ropp in *; lra). clear Hy. rename Hy2 into Hy.
  assert (Hr : IZR r <= IZR q \/ IZR q + 1 <= IZR r).
  { assert (H : (r <= q)%Z \/ (q + 1 <= r)%Z) by lia.
    destruct H as [H|H]; [left; apply IZR_le; exact H | right; rewrite <- plus_IZR; apply IZR_le; exact H]. }
  assert (Hr' : - IZR q <= IZR r \/ IZR r + 1 <= - IZR q).
  { assert (H : (- q <= r)%Z \/ (r + 1 <= - q)%Z) by lia.
    destruct H as [H|H]; [left; rewrite <- opp_IZR; apply IZR_le; exact H
                         | right; rewrite <- opp_IZR, <- plus_IZR; apply IZR_le; exact H]. }
  destruct Hr as [Hr|Hr].
  - destruct Hr' as [Hr'|Hr'].
    + apply Rabs_le. lra.
    + rewrite (Rabs_left1 (- IZR q - y)) in Nmq by lra. rewrite (Rabs_left1 (IZR r - y)) in Nmq by lra. lra.
  - rewrite (Rabs_right (IZR q - y)) in Nq by lra. rewrite (Rabs_right (IZR r - y)) in Nq by lra. lra.
Qed.

(** One RTN entry: with step [s > 0], [q(w) = s * round (w / s)] is within [s / 2] of [w]. *)
Theorem rtn_entry_error s w : 0 < s -> Rabs (s * IZR (round_half_even (w / s)) - w) <= s / 2.
Proof.
  intros Hs. replace (s * IZR (round_half_even (w / s)) - w) with (s * (IZR (round_half_even (w / s)) - w / s))
    by (field; lra).
  rewrite Rabs_mult, (Rabs_right s) by lra.
  pose proof (round_half_even_error (w / s)).
  apply Rmult_le_compat_l with (r := s) in H; lra.
Qed.

(** The b-bit symmetric step [s = max|w| / qmax] leaves every [round (w / s)] in [-qmax, qmax],
    so the clipping in the quantizer never acts. *)
Theorem rtn_no_clipping (maxabs w : R) (qmax : Z) :
  0 < maxabs -> (0 < qmax)%Z -> Rabs w <= maxabs ->
  Rabs (IZR (round_half_even (w / (maxabs / IZR qmax)))) <= IZR qmax.
Proof.
  intros Hm Hq Hw. apply IZR_lt in Hq. apply round_half_even_no_clip.
  replace (w / (maxabs / IZR qmax)) with (w * IZR qmax / maxabs) by (field; lra).
  unfold Rdiv. rewrite Rabs_mult, Rabs_mult, (Rabs_right (IZR qmax)), (Rabs_right (/ maxabs)).
  - apply Rmult_le_reg_r with maxabs; [lra|]. rewrite Rmult_assoc, Rinv_l by lra.
    rewrite Rmult_1_r. rewrite Rmult_comm. apply Rmult_le_compat_l; lra.
  - left. apply Rinv_0_lt_compat. lra.
  - lra.
Qed.
