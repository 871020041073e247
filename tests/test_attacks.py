import pytest
import torch
import torchattacks

from bench.data.cifar import embedded_sample
from bench.plugins.attack_base import ConstraintViolation, check_constraints
from bench.plugins.base import Context
from bench.plugins.fgsm import FGSM
from bench.plugins.pgd import PGD, pgd, random_start
from bench.plugins.square import Square

EPS = 4 / 255


@pytest.fixture(scope="module")
def data():
    return embedded_sample()


def _ctx(data, seed=0):
    return Context(seed=seed, device="cpu", precision="fp32", dataset=data)


def _batch(data, n=64):
    return data.batch(torch.arange(n))


@pytest.mark.parametrize("norm,eps,alpha", [("Linf", EPS, 1 / 255), ("L2", 0.25, 0.05)])
def test_pgd_never_leaves_the_eps_ball_or_unit_box(tiny_model, data, norm, eps, alpha):
    batch = _batch(data)
    start = random_start(batch.x, batch.index, eps, norm, seed=1)
    x_adv, _ = pgd(tiny_model, batch.x, batch.y, eps, alpha, 5, norm, start, torch.enable_grad)
    check_constraints(batch.x, x_adv, eps, norm)  # raises on violation
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_constraint_check_catches_violations():
    x = torch.full((2, 3, 4, 4), 0.5)
    with pytest.raises(ConstraintViolation, match="exceeds eps"):
        check_constraints(x, x + 0.1, 0.05, "Linf")
    with pytest.raises(ConstraintViolation, match="leave"):
        check_constraints(x, x + 0.6, 1.0, "Linf")


def test_pgd_without_random_start_equals_torchattacks(tiny_model, data):
    batch = _batch(data)
    ours, _ = pgd(tiny_model, batch.x, batch.y, EPS, 1 / 255, 10, "Linf", None, torch.enable_grad)
    reference = torchattacks.PGD(tiny_model, eps=EPS, alpha=1 / 255, steps=10, random_start=False)(batch.x, batch.y)
    assert (ours - reference).abs().max() < 1e-6


def test_pgd_robust_accuracy_matches_torchattacks_with_random_start(tiny_model, data):
    batch = data.batch(torch.arange(400))
    ctx = _ctx(data)
    out = PGD(eps=EPS, alpha=1 / 255, steps=10).run_batch(tiny_model, batch, ctx)
    ours = out["robust"].mean()
    torch.manual_seed(0)
    x_ref = torchattacks.PGD(tiny_model, eps=EPS, alpha=1 / 255, steps=10, random_start=True)(batch.x, batch.y)
    with torch.no_grad():
        reference = (tiny_model(x_ref).argmax(1) == batch.y).float().mean().item()
    # a 400-image sample: the random starts differ, so allow sampling noise beyond the 0.5 pp of a full run
    assert abs(ours - reference) <= 0.02
    assert ours <= out["clean_pred"].__eq__(out["label"]).mean()


def test_pgd_at_eps_zero_equals_clean_accuracy(tiny_model, data):
    batch = _batch(data, 128)
    out = PGD(eps=0.0, alpha=1 / 255, steps=3).run_batch(tiny_model, batch, _ctx(data))
    assert (out["robust"] == (out["clean_pred"] == out["label"])).all()


def test_robust_accuracy_never_exceeds_clean_and_restarts_only_help(tiny_model, data):
    batch = _batch(data, 128)
    one = PGD(eps=2 / 255, alpha=0.5 / 255, steps=3, restarts=1).run_batch(tiny_model, batch, _ctx(data))
    three = PGD(eps=2 / 255, alpha=0.5 / 255, steps=3, restarts=3).run_batch(tiny_model, batch, _ctx(data))
    clean = one["clean_pred"] == one["label"]
    assert (one["robust"] <= clean).all()
    assert (three["robust"] <= one["robust"]).all()  # restart 0 is shared; survivors must survive all


def test_random_start_does_not_depend_on_batch_composition(data):
    batch = _batch(data, 8)
    full = random_start(batch.x, batch.index, EPS, "Linf", seed=3)
    part = random_start(batch.x[4:], batch.index[4:], EPS, "Linf", seed=3)
    assert torch.equal(full[4:], part)


def test_fgsm_equals_torchattacks(tiny_model, data):
    batch = _batch(data)
    out = FGSM(eps=EPS).run_batch(tiny_model, batch, _ctx(data))
    reference = torchattacks.FGSM(tiny_model, eps=EPS)(batch.x, batch.y)
    with torch.no_grad():
        ref_pred = tiny_model(reference).argmax(1).numpy()
    attacked = out["attacked"]
    assert (out["adv_pred"][attacked] == ref_pred[attacked]).all()


def test_square_stays_in_ball_and_is_seeded(tiny_model, data):
    batch = _batch(data, 16)
    plugin = Square(eps=EPS, n_queries=20)
    first = plugin.run_batch(tiny_model, batch, _ctx(data))
    second = plugin.run_batch(tiny_model, batch, _ctx(data))
    assert first["distance"].max() <= EPS + 1e-6
    assert (first["adv_pred"] == second["adv_pred"]).all()
