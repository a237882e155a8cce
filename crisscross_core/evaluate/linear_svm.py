"""A one-vs-rest linear SVM with squared hinge loss in torch: LinearSVC's problem, all classes at once.

    svm = SquaredHingeSVM(C=1e-3).fit(x_train, y_train)            # numpy or torch; CPU or CUDA
    scores = svm.decision_function(x_test)                        # [M, K] (K = 2: [M], like sklearn)
    for c, svm in fit_path(x_train, y_train, C_GRID): ...         # warm-started along increasing C

For each class k (one-vs-rest, y_ik = +1 for class k else -1) it minimises LinearSVC's primal

    0.5 ||[w_k, b_k]||^2 + C * sum_i max(0, 1 - y_ik (w_k . x_i + s * b_k))^2

with the intercept handled as LinearSVC does: a constant feature `s` (`intercept_scaling`, default 1)
whose weight is regularised like the others. The problem is strongly convex, so any solver that
converges reaches the same classifier; this one is a Newton method: each step solves the (generalised)
Newton system of every class with conjugate gradients, batched over classes as `[N, D] x [D, K]` matrix
products (for D <= 256 features, exactly with the D×D Hessian), then takes an exact line search along the
step (the objective is piecewise quadratic along a line). Stopping: the gradient norm of every class falls below
`tol` times its norm at w = 0. Batched matrix products are what a GPU does best and what a multi-core
CPU does well, which is why this beats liblinear's one-class-at-a-time coordinate descent on the
ESC protocol's large training sets (benchmarks/svm_solvers.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

import numpy as np
import torch


DIRECT_MAX_DIM = 256     # up to this many features, Newton steps solve the D×D system exactly (no CG)


def _xt(X: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Xᵀ R `[D, K]` computed as (Rᵀ X)ᵀ, which streams the row-major X once (faster than X.T @ R on CPU)."""
    return (R.T @ X).T


def _with_bias(X: torch.Tensor, s: float) -> torch.Tensor:
    """[X, s·1] `[N, D+1]`: the intercept as a constant feature."""
    return torch.cat([X, torch.full((X.shape[0], 1), float(s), dtype=X.dtype, device=X.device)], 1)


def _spd_solve(H: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Solve H x = r for symmetric positive definite H `[K, D, D]`, r `[K, D, 1]`, by Cholesky.

    Not torch.linalg.solve: its LU (MKL getrf/laswp) returns wrong solutions on some CPUs with the PyPI
    torch 2.13 CPU build ("oneMKL ERROR: Parameter 6 was incorrect on entry to DLASWP", residuals in the
    hundreds; tests/test_linear_svm.py checks the residual). H = I + 2C X̃ᵀ diag(A) X̃ is SPD; should
    rounding make a Cholesky factor fail, that class falls back to numpy's solver.
    """
    L, info = torch.linalg.cholesky_ex(H)
    x = torch.cholesky_solve(r, L)
    bad = info != 0
    if bool(bad.any()):
        idx = bad.nonzero()[:, 0]
        fix = np.linalg.solve(H[idx].cpu().numpy(), r[idx].cpu().numpy())
        x[idx] = torch.as_tensor(fix, dtype=x.dtype, device=x.device)
    return x


def as_tensor(x, device=None, dtype=torch.float32) -> torch.Tensor:
    """numpy / torch `[N, D]` → contiguous torch tensor on `device` (no copy when already there)."""
    if isinstance(x, torch.Tensor):
        return x.to(device=device or x.device, dtype=dtype).contiguous()
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)


@dataclass
class FitInfo:
    """How a fit went: Newton steps, conjugate-gradient steps, classes not converged, seconds."""
    newton_steps: int = 0
    cg_steps: int = 0
    not_converged: int = 0
    seconds: float = 0.0
    grad_ratio: list = field(default_factory=list)    # final ||g_k|| / ||g_k(0)|| per class


class SquaredHingeSVM:
    """One-vs-rest L2-regularised squared-hinge linear SVM (LinearSVC's objective), batched in torch.

    `fit(x [N, D], y [N])`; `decision_function(x [M, D]) -> [M, K]` (`[M]` for two classes, as
    sklearn); `classes_`, `coef_` `[K, D]`, `intercept_` `[K]` as numpy. `device`: where the products run
    ("cpu", "cuda", a torch.device; None = where `x` is). `warm_start`: start from a previous fit's
    weights (same classes), e.g. the next smaller C of a grid.
    """

    def __init__(self, C: float = 1.0, tol: float = 1e-3, max_iter: int = 100, cg_max_iter: int = 200,
                 cg_tol: float = 0.1, intercept_scaling: float = 1.0, device=None,
                 dtype: torch.dtype = torch.float32, precondition: bool = False, chunk: int = 65536,
                 method: str = "auto"):
        if C <= 0:
            raise ValueError(f"SquaredHingeSVM: C must be > 0, got {C}")
        self.C, self.tol, self.max_iter, self.cg_max_iter, self.cg_tol = C, tol, max_iter, cg_max_iter, cg_tol
        self.intercept_scaling, self.device, self.dtype = intercept_scaling, device, dtype
        if method not in ("auto", "cg", "direct"):
            raise ValueError(f"SquaredHingeSVM: method must be 'auto', 'cg' or 'direct', got {method!r}")
        self.precondition, self.chunk, self.method = precondition, chunk, method
        self.info = FitInfo()

    # ------------------------------------------------------------------ public API
    def fit(self, x, y, warm_start: Optional["SquaredHingeSVM"] = None, xty: Optional[torch.Tensor] = None,
            gram: Optional[torch.Tensor] = None) -> "SquaredHingeSVM":
        """`xty` (Xᵀ Y) and `gram` (X̃ᵀ X̃, small D only): from an earlier fit on the same x and y; fit_path
        passes them along the C grid so they are computed once."""
        X = as_tensor(x, self.device, self.dtype)
        y = np.asarray(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"SquaredHingeSVM: need at least 2 classes, got {self.classes_.tolist()}")
        Y = self._targets(torch.as_tensor(yi, device=X.device), len(self.classes_), X.dtype)
        if warm_start is not None and np.array_equal(warm_start.classes_, self.classes_):
            W, b = warm_start._W.to(X.device, X.dtype).clone(), warm_start._b.to(X.device, X.dtype).clone()
        else:
            W = torch.zeros(X.shape[1], Y.shape[1], device=X.device, dtype=X.dtype)
            b = torch.zeros(Y.shape[1], device=X.device, dtype=X.dtype)
        self.xty_ = _xt(X, Y) if xty is None else xty
        self.gram_ = gram
        if gram is None and self._direct(X):
            Xa = _with_bias(X, self.intercept_scaling)
            self.gram_ = Xa.T @ Xa
        self._W, self._b = self._solve(X, Y, W, b, self.xty_)
        return self

    def decision_function(self, x) -> np.ndarray:
        X = as_tensor(x, self._W.device, self._W.dtype)
        s = (X @ self._W + self.intercept_scaling * self._b).cpu().numpy()
        return s[:, 0] if s.shape[1] == 1 else s

    def predict(self, x) -> np.ndarray:
        s = self.decision_function(x)
        return self.classes_[(s > 0).astype(int)] if s.ndim == 1 else self.classes_[s.argmax(1)]

    @property
    def coef_(self) -> np.ndarray:
        return self._W.T.cpu().numpy()

    @property
    def intercept_(self) -> np.ndarray:
        return (self.intercept_scaling * self._b).cpu().numpy()

    # ------------------------------------------------------------------ the solver
    @staticmethod
    def _targets(yi: torch.Tensor, k: int, dtype) -> torch.Tensor:
        """±1 targets `[N, K]`; one column (class 1 positive) for two classes, as LinearSVC."""
        if k == 2:
            return (2 * (yi == 1).to(dtype) - 1)[:, None]
        Y = -torch.ones(len(yi), k, dtype=dtype, device=yi.device)
        Y[torch.arange(len(yi), device=yi.device), yi] = 1
        return Y

    def _sq_colsum(self, X: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """(X ∘ X)ᵀ A `[D, K]`, by row chunks so no second N×D matrix is held."""
        out = torch.zeros(X.shape[1], A.shape[1], device=X.device, dtype=X.dtype)
        for i in range(0, len(X), self.chunk):
            xc = X[i:i + self.chunk]
            out += _xt(xc * xc, A[i:i + self.chunk])
        return out

    @torch.no_grad()
    def _solve(self, X, Y, W, b, xty):
        t0 = time.perf_counter()
        c2, s = 2.0 * self.C, float(self.intercept_scaling)
        info = FitInfo()
        # gradient at w = 0 (all margins violated): the reference for the stopping rule
        g0 = torch.sqrt((c2 * xty).square().sum(0) + (c2 * s * Y.sum(0)).square())
        S = X @ W + s * b                                             # scores [N, K]
        if bool((W != 0).any()):      # warm start: first the best multiple t·w of it (exact line search from 0)
            zero = torch.zeros_like(b)
            t = self._line_search(torch.zeros_like(W), zero, W, b, torch.zeros_like(S), S, Y, c2)
            W, b, S = W * t, b * t, S * t
        gn = g0
        direct = self._direct(X)
        for it in range(self.max_iter):
            A = (S * Y < 1).to(X.dtype)                               # margin violators [N, K]
            R = (S - Y) * A
            gW, gb = W + c2 * _xt(X, R), b + c2 * s * R.sum(0)
            gn = torch.sqrt(gW.square().sum(0) + gb.square())
            todo = gn > self.tol * g0
            if not bool(todo.any()):
                break
            info.newton_steps += 1
            if direct:
                dW, db = self._newton_direct(X, A, -gW * todo, -gb * todo, c2, s, self.gram_)
            else:
                if self.precondition:
                    PW, Pb = 1 + c2 * self._sq_colsum(X, A), 1 + c2 * s * s * A.sum(0)
                else:
                    PW, Pb = torch.ones_like(W), torch.ones_like(b)
                dW, db, Z, n_cg = self._pcg(X, A, -gW * todo, -gb * todo, PW, Pb, gn, todo, c2, s)
                info.cg_steps += n_cg
            if direct:
                Z = X @ dW + s * db                                   # score change per unit step
            t = self._line_search(W, b, dW, db, S, Z, Y, c2)
            W, b, S = W + t * dW, b + t * db, S + t * Z
        else:   # max_iter reached: final gradient for the report
            A = (S * Y < 1).to(X.dtype)
            R = (S - Y) * A
            gn = torch.sqrt((W + c2 * _xt(X, R)).square().sum(0) + (b + c2 * s * R.sum(0)).square())
        ratio = (gn / g0.clamp_min(1e-30)).cpu()
        info.grad_ratio = [round(float(r), 6) for r in ratio]
        info.not_converged = int((ratio > self.tol).sum())
        info.seconds = round(time.perf_counter() - t0, 4)
        self.info = info
        return W, b

    def _direct(self, X) -> bool:
        return self.method == "direct" or (self.method == "auto" and X.shape[1] <= DIRECT_MAX_DIM)

    def _newton_direct(self, X, A, rW, rb, c2, s, G):
        """Solve H_k d_k = r_k exactly per class (small D): H_k = I + 2C X̃ᵀ diag(A_k) X̃, X̃ = [X, s].
        X̃ᵀ diag(A_k) X̃ is built from the margin violators, or as the Gram G = X̃ᵀX̃ minus the other rows,
        whichever set is smaller (at small C nearly every row violates the margin: almost free)."""
        n, d = X.shape
        Xa = _with_bias(X, s)                                                          # [N, D+1]
        H = []
        for k in range(A.shape[1]):
            act = A[:, k] > 0
            n_act = int(act.sum())
            if n_act <= n - n_act:
                xs = Xa[act]
                H.append(xs.T @ xs)
            else:
                xs = Xa[~act]
                H.append(G - xs.T @ xs)
        H = c2 * torch.stack(H) + torch.eye(d + 1, dtype=X.dtype, device=X.device)   # [K, D+1, D+1]
        r = torch.cat([rW, rb[None]], 0).T[..., None]                                  # [K, D+1, 1]
        sol = _spd_solve(H.double(), r.double()).to(X.dtype)[..., 0].T                 # [D+1, K]
        return sol[:d], sol[d]

    def _pcg(self, X, A, rW, rb, PW, Pb, gn, todo, c2, s):
        """Solve H d = -g per class (H = I + 2C Xᵀ diag(A_k) X, the generalised Hessian), Jacobi-
        preconditioned CG, batched over classes; stops a class when ||r|| <= cg_tol ||g||."""
        dW, db = torch.zeros_like(rW), torch.zeros_like(rb)
        Z = torch.zeros(X.shape[0], rW.shape[1], dtype=X.dtype, device=X.device)    # X d + s db, built up
        zW, zb = rW / PW, rb / Pb
        pW, pb = zW.clone(), zb.clone()
        rz = (rW * zW).sum(0) + rb * zb
        live = todo.clone()
        steps = 0
        for _ in range(self.cg_max_iter):
            steps += 1
            Xp = X @ pW + s * pb
            Q = A * Xp
            HpW, Hpb = pW + c2 * _xt(X, Q), pb + c2 * s * Q.sum(0)
            pHp = (pW * HpW).sum(0) + pb * Hpb
            alpha = torch.where(live, rz / pHp.clamp_min(1e-30), torch.zeros_like(rz))
            dW += alpha * pW
            db += alpha * pb
            Z += alpha * Xp
            rW -= alpha * HpW
            rb -= alpha * Hpb
            live &= torch.sqrt(rW.square().sum(0) + rb.square()) > self.cg_tol * gn
            if not bool(live.any()):
                break
            zW, zb = rW / PW, rb / Pb
            rz_new = (rW * zW).sum(0) + rb * zb
            beta = torch.where(live, rz_new / rz.clamp_min(1e-30), torch.zeros_like(rz))
            pW, pb, rz = zW + beta * pW, zb + beta * pb, rz_new
        return dW, db, Z, steps

    @staticmethod
    def _line_search(W, b, dW, db, S, Z, Y, c2, iters: int = 20) -> torch.Tensor:
        """Exact minimiser t_k of f_k(w + t d) per class: Newton on the piecewise-quadratic 1-D function,
        safeguarded by a bracket [lo, hi] with f'(lo) < 0 < f'(hi) (bisection when Newton leaves it)."""
        wd, dd = (W * dW).sum(0) + b * db, (dW * dW).sum(0) + db * db

        def slope(t):
            St = S + t * Z
            act = (St * Y < 1).to(S.dtype)
            return wd + t * dd + c2 * ((St - Y) * act * Z).sum(0), dd + c2 * (act * Z * Z).sum(0)

        k = W.shape[1]
        lo, hi = torch.zeros(k, dtype=S.dtype, device=S.device), torch.full((k,), float("inf"), dtype=S.dtype,
                                                                            device=S.device)
        t = torch.ones(k, dtype=S.dtype, device=S.device)
        d0, _ = slope(torch.zeros_like(t))
        done = d0 >= 0                      # not a descent direction (d = 0 for converged classes)
        t = torch.where(done, torch.zeros_like(t), t)
        for _ in range(iters):
            g, h = slope(t)
            small = g.abs() <= 1e-6 * (d0.abs() + 1e-30)
            done = done | small
            if bool(done.all()):
                break
            lo = torch.where(~done & (g < 0), t, lo)
            hi = torch.where(~done & (g > 0), t, hi)
            newton = t - g / h.clamp_min(1e-30)
            inside = (newton > lo) & (newton < hi)
            mid = torch.where(torch.isinf(hi), 2 * t, (lo + hi) / 2)
            t = torch.where(done, t, torch.where(inside, newton, mid))
        return t


def fit_path(x, y, cs: Iterable[float], device=None, **kw) -> Iterator[tuple[float, SquaredHingeSVM]]:
    """Fit every C of `cs` in increasing order, each warm-started from the previous one; yields (C, svm).

    `x` goes to `device` once; `kw` are SquaredHingeSVM's options (tol, max_iter, ...).
    """
    X = as_tensor(x, device, kw.get("dtype", torch.float32))
    prev, xty, gram = None, None, None
    for c in sorted(cs):
        prev = SquaredHingeSVM(C=c, device=X.device, **kw).fit(X, y, warm_start=prev, xty=xty, gram=gram)
        xty, gram = prev.xty_, prev.gram_
        yield c, prev
