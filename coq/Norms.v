(** * Euclidean and Frobenius norms of finite vectors and matrices, proved from the sums.

    A vector of dimension [n] is [x : nat -> R] read on [0 .. n-1]; an [m x n] matrix is
    [A : nat -> nat -> R] read on [0 .. m-1] x [0 .. n-1]. rhojax stores weights as
    (in, out) and applies them to (tokens, in) activations as [X W] ([mm] below). *)
Require Import Reals Lra Psatz Lia.
Require Import Rhojax.Sums.
Open Scope R_scope.

Definition vnorm (n : nat) (x : nat -> R) : R := sqrt (sum n (fun i => x i * x i)).

Definition fro (m n : nat) (A : nat -> nat -> R) : R :=
  sqrt (sum m (fun i => sum n (fun j => A i j * A i j))).

(** [(A x)_i = sum_j A_ij x_j]. *)
Definition mv (m n : nat) (A : nat -> nat -> R) (x : nat -> R) : nat -> R :=
  fun i => sum n (fun j => A i j * x j).

(** [(X W)_tk = sum_j X_tj W_jk] for [X : T x n], [W : n x k]. *)
Definition mm (n : nat) (X W : nat -> nat -> R) : nat -> nat -> R :=
  fun t k => sum n (fun j => X t j * W j k).

Lemma vnorm_nonneg n x : 0 <= vnorm n x.
Proof. apply sqrt_pos. Qed.

Lemma fro_nonneg m n A : 0 <= fro m n A.
Proof. apply sqrt_pos. Qed.

Lemma fro_sq_nonneg m n A : 0 <= sum m (fun i => sum n (fun j => A i j * A i j)).
Proof. apply sum_nonneg. intros. apply sum_sq_nonneg. Qed.

Lemma vnorm_ext n x y : (forall i, (i < n)%nat -> x i = y i) -> vnorm n x = vnorm n y.
Proof. intros H. unfold vnorm. f_equal. apply sum_ext. intros i Hi. rewrite H by exact Hi. reflexivity. Qed.

Lemma fro_ext m n A B :
  (forall i j, (i < m)%nat -> (j < n)%nat -> A i j = B i j) -> fro m n A = fro m n B.
Proof.
  intros H. unfold fro. f_equal. apply sum_ext. intros i Hi. apply sum_ext. intros j Hj.
  rewrite H by assumption. reflexivity.
Qed.

Lemma sum_sq_plus n x y :
  sum n (fun i => (x i + y i) * (x i + y i))
  = sum n (fun i => x i * x i) + 2 * sum n (fun i => x i * y i) + sum n (fun i => y i * y i).
Proof. induction n; simpl; [ring|]. rewrite IHn. ring. Qed.

(** Triangle inequality of the Euclidean norm. *)
Theorem vnorm_triangle n x y : vnorm n (fun i => x i + y i) <= vnorm n x + vnorm n y.
Proof.
  unfold vnorm. rewrite sum_sq_plus.
  apply sqrt_triangle; [apply sum_sq_nonneg | apply sum_sq_nonneg | apply cauchy_schwarz_sqrt].
Qed.

(** Cauchy-Schwarz for double sums (the Frobenius inner product). *)
Theorem frobenius_cauchy_schwarz m n A B :
  sum m (fun i => sum n (fun j => A i j * B i j))
  <= fro m n A * fro m n B.
Proof.
  apply Rle_trans with
    (sum m (fun i => sqrt (sum n (fun j => A i j * A i j)) * sqrt (sum n (fun j => B i j * B i j)))).
  - apply sum_le. intros. apply cauchy_schwarz_sqrt.
  - unfold fro.
    pose proof (cauchy_schwarz_sqrt m (fun i => sqrt (sum n (fun j => A i j * A i j)))
                                      (fun i => sqrt (sum n (fun j => B i j * B i j)))) as C.
    cbv beta in C.
    rewrite (sum_ext m (fun i => sqrt (sum n (fun j => A i j * A i j)) * sqrt (sum n (fun j => A i j * A i j)))
                       (fun i => sum n (fun j => A i j * A i j))) in C
      by (intros; apply sqrt_sqrt; apply sum_sq_nonneg).
    rewrite (sum_ext m (fun i => sqrt (sum n (fun j => B i j * B i j)) * sqrt (sum n (fun j => B i j * B i j)))
                       (fun i => sum n (fun j => B i j * B i j))) in C
      by (intros; apply sqrt_sqrt; apply sum_sq_nonneg).
    exact C.
Qed.

(** Frobenius triangle inequality: [||A + B||_F <= ||A||_F + ||B||_F]. *)
Theorem fro_triangle m n A B :
  fro m n (fun i j => A i j + B i j) <= fro m n A + fro m n B.
Proof.
  unfold fro at 1.
  rewrite (sum_ext m (fun i => sum n (fun j => (A i j + B i j) * (A i j + B i j)))
    (fun i => sum n (fun j => A i j * A i j) + 2 * sum n (fun j => A i j * B i j)
              + sum n (fun j => B i j * B i j))) by (intros; apply sum_sq_plus).
  rewrite !sum_plus, sum_scal_l.
  apply sqrt_triangle; [apply fro_sq_nonneg | apply fro_sq_nonneg | apply frobenius_cauchy_schwarz].
Qed.

(** Difference form used by the bounds: [||A - C|| <= ||A - B|| + ||B - C||]. *)
Theorem fro_sub_triangle m n A B C :
  fro m n (fun i j => A i j - C i j) <= fro m n (fun i j => A i j - B i j) + fro m n (fun i j => B i j - C i j).
Proof.
  rewrite (fro_ext m n (fun i j => A i j - C i j) (fun i j => (A i j - B i j) + (B i j - C i j)))
    by (intros; ring).
  apply fro_triangle.
Qed.

(** [||A x||_2 <= ||A||_F ||x||_2] (Cauchy-Schwarz on each row). *)
Theorem mv_fro_bound m n A x : vnorm m (mv m n A x) <= fro m n A * vnorm n x.
Proof.
  unfold vnorm, fro, mv.
  rewrite <- sqrt_mult_alt by apply fro_sq_nonneg.
  apply sqrt_le_1_alt. rewrite <- sum_scal_r.
  apply sum_le. intros. apply cauchy_schwarz.
Qed.

(** [||X W||_F <= ||X||_F ||W||_F] for [X : T x n], [W : n x k]: the per-token form of
    [mv_fro_bound], summed over tokens. *)
Theorem mm_fro_bound T n k X W : fro T k (mm n X W) <= fro T n X * fro n k W.
Proof.
  unfold fro, mm.
  rewrite <- sqrt_mult_alt by apply fro_sq_nonneg.
  apply sqrt_le_1_alt. rewrite <- sum_scal_r.
  apply sum_le. intros t Ht.
  apply Rle_trans with (sum k (fun c => sum n (fun j => X t j * X t j) * sum n (fun j => W j c * W j c))).
  - apply sum_le. intros. apply cauchy_schwarz.
  - rewrite sum_scal_l, (sum_swap k n (fun c j => W j c * W j c)). lra.
Qed.

(** Linearity of [X W] in [W], pointwise. *)
Lemma mm_sub n X W W' t k : mm n X W' t k - mm n X W t k = mm n X (fun j c => W' j c - W j c) t k.
Proof.
  unfold mm. rewrite <- sum_minus. apply sum_ext. intros. ring.
Qed.

(** [||g .* u||_2 <= c ||u||_2] when every [|g_i| <= c]. *)
Theorem hadamard_bound n g u c :
  0 <= c -> (forall i, (i < n)%nat -> Rabs (g i) <= c) ->
  vnorm n (fun i => g i * u i) <= c * vnorm n u.
Proof.
  intros Hc Hg. unfold vnorm.
  rewrite <- (sqrt_square c) by exact Hc.
  rewrite <- sqrt_mult_alt by nra.
  apply sqrt_le_1_alt. rewrite <- sum_scal_l. apply sum_le. intros i Hi.
  pose proof (Hg i Hi) as H. pose proof (Rabs_pos (g i)).
  assert (g i * g i <= c * c).
  { replace (g i * g i) with (Rabs (g i) * Rabs (g i)) by (rewrite <- Rabs_mult; apply Rabs_right; nra). nra. }
  nra.
Qed.

(** Schur test, the certified spectral-norm bound rhojax uses:
    [||A x||_2^2 <= (max_i sum_j |A_ij|) (max_j sum_i |A_ij|) ||x||_2^2], i.e.
    [||A||_2 <= sqrt (||A||_inf ||A||_1)]. [r] bounds every row sum, [c] every column sum. *)
Theorem schur_test m n A x r c :
  (forall i, (i < m)%nat -> sum n (fun j => Rabs (A i j)) <= r) ->
  (forall j, (j < n)%nat -> sum m (fun i => Rabs (A i j)) <= c) ->
  vnorm m (mv m n A x) <= sqrt (r * c) * vnorm n x.
Proof.
  intros Hr Hc. unfold vnorm, mv.
  assert (Hr0 : forall i, (i < m)%nat -> 0 <= sum n (fun j => Rabs (A i j))).
  { intros. apply sum_nonneg. intros. apply Rabs_pos. }
  assert (Hrow : forall i, (i < m)%nat ->
    sum n (fun j => A i j * x j) * sum n (fun j => A i j * x j)
    <= r * sum n (fun j => Rabs (A i j) * (x j * x j))).
  { intros i Hi.
    assert (Hs : forall j, A i j * x j = Rabs (A i j) * ((if Rle_dec 0 (A i j) then 1 else -1) * x j)).
    { intros j. destruct (Rle_dec 0 (A i j)).
      - rewrite Rabs_right by lra. ring.
      - rewrite Rabs_left by lra. ring. }
    rewrite (sum_ext n (fun j => A i j * x j)
      (fun j => Rabs (A i j) * ((if Rle_dec 0 (A i j) then 1 else -1) * x j))) by (intros; apply Hs).
    eapply Rle_trans; [apply weighted_cauchy_schwarz; intros; apply Rabs_pos|]. cbv beta.
    rewrite (sum_ext n (fun j => Rabs (A i j) * (((if Rle_dec 0 (A i j) then 1 else -1) * x j)
                                              * ((if Rle_dec 0 (A i j) then 1 else -1) * x j)))
                       (fun j => Rabs (A i j) * (x j * x j)))
      by (intros j _; destruct (Rle_dec 0 (A i j)); ring).
    rewrite Rmult_comm, (Rmult_comm r).
    apply Rmult_le_compat_l; [apply sum_nonneg; intros j _; pose proof (Rabs_pos (A i j)); nra | apply Hr; auto]. }
  assert (Hm0 : 0 <= r \/ m = O).
  { destruct m; [right; reflexivity | left]. pose proof (Hr0 0%nat ltac:(lia)). pose proof (Hr 0%nat ltac:(lia)). lra. }
  destruct Hm0 as [Hr0' | ->].
  2: { simpl. rewrite sqrt_0. pose proof (sqrt_pos (r * c)). pose proof (sqrt_pos (sum n (fun i => x i * x i))). nra. }
  assert (Hc0 : 0 <= c \/ n = O \/ sum n (fun i => x i * x i) = 0).
  { destruct n; [right; left; reflexivity | left]. pose proof (Hc 0%nat ltac:(lia)).
    pose proof (sum_nonneg m (fun i => Rabs (A i 0%nat)) ltac:(intros; apply Rabs_pos)). lra. }
  apply Rle_trans with (sqrt (r * sum n (fun j => c * (x j * x j)))).
  - apply sqrt_le_1_alt. eapply Rle_trans; [apply sum_le; exact Hrow|].
    rewrite sum_scal_l. apply Rmult_le_compat_l; [exact Hr0'|].
    rewrite (sum_swap m n (fun i j => Rabs (A i j) * (x j * x j))).
    apply sum_le. intros j Hj. rewrite sum_scal_r.
    apply Rmult_le_compat_r; [nra | apply Hc; exact Hj].
  - rewrite sum_scal_l, <- Rmult_assoc.
    destruct Hc0 as [Hc0 | [-> | Hz]].
    + rewrite sqrt_mult_alt by nra. lra.
    + simpl. rewrite Rmult_0_r, sqrt_0. pose proof (sqrt_pos (r * c)). lra.
    + rewrite Hz, Rmult_0_r, sqrt_0. pose proof (sqrt_pos (r * c)). lra.
Qed.
