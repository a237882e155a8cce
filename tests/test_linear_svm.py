"""evaluate/linear_svm.py: the torch one-vs-rest squared-hinge SVM solves LinearSVC's problem."""
import warnings

import numpy as np
import pytest
import torch

from crisscross_core.evaluate.linear_svm import SquaredHingeSVM, fit_path

sklearn_svm = pytest.importorskip("sklearn.svm")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _data(n=600, d=80, k=4, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    x = 0.3 * centres[y] + rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (scale * x).astype(np.float32), y


def _objective(coef, intercept, c, x, y, classes):
    """LinearSVC's primal per class: 0.5 ||[w, b]||² + C Σ max(0, 1 − y (w·x + b))² (intercept_scaling 1)."""
    out = []
    for w, b, cls in zip(coef, intercept, classes):
        t = np.where(y == cls, 1.0, -1.0)
        out.append(0.5 * (w @ w + b * b) + c * np.sum(np.maximum(0, 1 - t * (x.astype(np.float64) @ w + b)) ** 2))
    return np.array(out)


def _liblinear(x, y, c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sklearn_svm.LinearSVC(C=c, tol=1e-8, max_iter=100000).fit(x, y)


@pytest.mark.parametrize("c", [1e-3, 0.1, 10.0])
@pytest.mark.parametrize("method", ["cg", "direct"])
def test_same_objective_and_decisions_as_linearsvc(c, method):
    x, y = _data()
    ref = _liblinear(x, y, c)
    svm = SquaredHingeSVM(C=c, tol=1e-5, method=method).fit(x, y)
    assert svm.info.not_converged == 0
    ours = _objective(svm.coef_, svm.intercept_, c, x, y, svm.classes_)
    theirs = _objective(ref.coef_, ref.intercept_, c, x, y, ref.classes_)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)             # the same (unique) minimum
    np.testing.assert_allclose(svm.decision_function(x), ref.decision_function(x), atol=2e-3 * max(1, c))
    assert (svm.predict(x) == ref.predict(x)).mean() > 0.995


def test_two_classes_give_one_score_column_like_sklearn():
    x, y = _data(k=2)
    ref = _liblinear(x, y, 0.5)
    svm = SquaredHingeSVM(C=0.5, tol=1e-6).fit(x, y)
    s = svm.decision_function(x)
    assert s.shape == (len(x),)
    np.testing.assert_allclose(s, ref.decision_function(x), atol=1e-3)


def test_path_warm_start_reaches_the_cold_start_solution_in_fewer_steps():
    x, y = _data(n=900, d=120, k=5, scale=3.0)
    grid = (1e-3, 1e-2, 0.1, 1.0)
    path = dict(fit_path(x, y, grid, tol=1e-5, method="cg"))
    cold = SquaredHingeSVM(C=1.0, tol=1e-5, method="cg").fit(x, y)
    np.testing.assert_allclose(path[1.0].decision_function(x), cold.decision_function(x), rtol=2e-3, atol=2e-3)
    assert path[1.0].info.newton_steps < cold.info.newton_steps


def test_bad_inputs_are_refused():
    x, y = _data()
    with pytest.raises(ValueError, match="C must be > 0"):
        SquaredHingeSVM(C=0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SquaredHingeSVM().fit(x, np.zeros(len(x), int))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_solution():
    x, y = _data(n=2000, d=300, k=10)
    for method in ("cg", "direct"):
        cpu = SquaredHingeSVM(C=0.5, tol=1e-5, method=method).fit(x, y)
        gpu = SquaredHingeSVM(C=0.5, tol=1e-5, method=method, device="cuda").fit(x, y)
        assert gpu._W.device.type == "cuda"
        np.testing.assert_allclose(gpu.decision_function(x), cpu.decision_function(x), atol=1e-3)


@pytest.mark.parametrize("d", [3, 161])
def test_newton_systems_are_solved_exactly(d):
    """The direct Newton step's SPD solve has a tiny residual (torch.linalg.solve's LU did not, on some CPUs),
    including a batch member whose Cholesky factor fails and takes the fallback."""
    from crisscross_core.evaluate.linear_svm import _spd_solve
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, d, 2 * d, generator=g, dtype=torch.float64)
    h = a @ a.transpose(1, 2) + torch.eye(d, dtype=torch.float64)
    h[4] = torch.diag(torch.linspace(-1.0, 2.0, d, dtype=torch.float64) + 0.5 / d)   # indefinite: no Cholesky
    r = torch.randn(5, d, 1, generator=g, dtype=torch.float64)
    x = _spd_solve(h, r)
    assert float((h @ x - r).abs().max()) < 1e-8 * float(r.abs().max() * h.abs().max())
