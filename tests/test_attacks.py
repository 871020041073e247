import pytest
import torch
import torchattacks
from torch import nn

from bench.attacks import FGSM as FGSMAttack
from bench.attacks import PGD as PGDAttack
from bench.attacks import random_start
from bench.data.cifar import embedded_sample
from bench.plugins.attack_base import ConstraintViolation, check_constraints
from bench.plugins.base import Context
from bench.plugins.fgsm import FGSM
from bench.plugins.pgd import PGD
from bench.plugins.square import Square

EPS = 4 / 255


@pytest.fixture(scope="module")
def data():
    return embedded_sample()


def _ctx(data, seed=0):
    return Context(seed=seed, device="cpu", precision="fp32", dataset=data)


def _batch(data, n=64):
    return data.batch(torch.arange(n))


@pytest.mark.parametrize("mode", ["best", "final"])
@pytest.mark.parametrize("norm,eps,alpha", [("Linf", EPS, 1 / 255), ("L2", 0.25, 0.05)])
def test_pgd_never_leaves_the_eps_ball_or_unit_box(tiny_model, data, norm, eps, alpha, mode):
    batch = _batch(data)
    x_adv = PGDAttack(tiny_model, eps, alpha, 5, norm=norm, mode=mode, seed=1)(batch.x, batch.y, index=batch.index)
    check_constraints(batch.x, x_adv, eps, norm)  # raises on violation
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_constraint_check_catches_violations():
    x = torch.full((2, 3, 4, 4), 0.5)
    with pytest.raises(ConstraintViolation, match="exceeds eps"):
        check_constraints(x, x + 0.1, 0.05, "Linf")
    with pytest.raises(ConstraintViolation, match="leave"):
        check_constraints(x, x + 0.6, 1.0, "Linf")


def test_final_iterate_pgd_without_random_start_equals_torchattacks(tiny_model, data):
    batch = _batch(data)
    ours = PGDAttack(tiny_model, EPS, 1 / 255, 10, random_start=False, mode="final")(batch.x, batch.y)
    reference = torchattacks.PGD(tiny_model, eps=EPS, alpha=1 / 255, steps=10, random_start=False)(batch.x, batch.y)
    assert (ours - reference).abs().max() < 1e-6


def test_best_iterate_breaks_every_image_torchattacks_breaks_without_random_start(tiny_model, data):
    batch = _batch(data, 128)
    ours = PGDAttack(tiny_model, EPS, 1 / 255, 10, random_start=False).run(batch.x, batch.y)
    reference = torchattacks.PGD(tiny_model, eps=EPS, alpha=1 / 255, steps=10, random_start=False)(batch.x, batch.y)
    with torch.no_grad():
        reference_fooled = tiny_model(reference).argmax(1) != batch.y
    assert (ours.fooled | ~reference_fooled).all()  # torchattacks' broken images are a subset of ours


def test_pgd_robust_accuracy_matches_torchattacks_with_random_start(tiny_model, data):
    batch = data.batch(torch.arange(400))
    out = PGD(eps=EPS, alpha=1 / 255, steps=10, mode="final").run_batch(tiny_model, batch, _ctx(data))
    ours = out["robust"].mean()
    torch.manual_seed(0)
    x_ref = torchattacks.PGD(tiny_model, eps=EPS, alpha=1 / 255, steps=10, random_start=True)(batch.x, batch.y)
    with torch.no_grad():
        reference = (tiny_model(x_ref).argmax(1) == batch.y).float().mean().item()
    # a 400-image sample: the random starts differ, so allow sampling noise beyond the 0.5 pp of a full run
    assert abs(ours - reference) <= 0.02


@pytest.mark.parametrize("restarts", [1, 3])
def test_best_iterate_never_reports_an_image_robust_that_final_iterate_breaks(tiny_model, data, restarts):
    batch = _batch(data, 256)
    kwargs = {"eps": 2 / 255, "alpha": 0.5 / 255, "steps": 5, "restarts": restarts}
    best = PGD(mode="best", **kwargs).run_batch(tiny_model, batch, _ctx(data, seed=4))
    final = PGD(mode="final", **kwargs).run_batch(tiny_model, batch, _ctx(data, seed=4))
    assert (best["robust"] <= final["robust"]).all()


def test_pgd_at_eps_zero_equals_clean_accuracy(tiny_model, data):
    batch = _batch(data, 128)
    out = PGD(eps=0.0, alpha=1 / 255, steps=3).run_batch(tiny_model, batch, _ctx(data))
    assert (out["robust"] == (out["clean_pred"] == out["label"])).all()


def test_restarts_only_help(tiny_model, data):
    batch = _batch(data, 128)
    one = PGD(eps=2 / 255, alpha=0.5 / 255, steps=3, restarts=1).run_batch(tiny_model, batch, _ctx(data))
    three = PGD(eps=2 / 255, alpha=0.5 / 255, steps=3, restarts=3).run_batch(tiny_model, batch, _ctx(data))
    assert (three["robust"] <= one["robust"]).all()  # restart 0 is shared; survivors must survive all


def test_random_start_does_not_depend_on_batch_composition(data):
    batch = _batch(data, 8)
    full = random_start(batch.x, batch.index, EPS, "Linf", seed=3)
    part = random_start(batch.x[4:], batch.index[4:], EPS, "Linf", seed=3)
    assert torch.equal(full[4:], part)


class FooledAfterItsOwnNumberOfSteps(nn.Module):
    """Image i is misclassified once its free pixels rose by k_i steps; k_i / 10 is written in a masked-out pixel."""

    def __init__(self, alpha: float, free_pixels: int) -> None:
        super().__init__()
        self.alpha, self.free_pixels = alpha, free_pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = (x[:, 0, 0, 0] * 10).round()
        shift = (x - 0.5).flatten(1)[:, 1:].sum(1)
        threshold = (k - 0.5) * self.alpha * self.free_pixels
        return torch.stack([threshold - shift, shift - threshold], dim=1)


def test_compaction_keeps_every_example_in_its_place():
    steps_needed = torch.tensor([3, 1, 9, 2, 5, 1, 4])  # 9 > 6 steps: that one survives
    x = torch.full((7, 1, 4, 4), 0.5)
    x[:, 0, 0, 0] = steps_needed / 10
    mask = torch.ones_like(x)
    mask[:, 0, 0, 0] = 0
    alpha = 0.01
    model = FooledAfterItsOwnNumberOfSteps(alpha, free_pixels=15)
    result = PGDAttack(model, 0.1, alpha, 6, random_start=False).run(x, torch.zeros(7, dtype=torch.long), mask=mask)
    assert result.fooled.tolist() == [True, True, False, True, True, True, True]
    taken = steps_needed.clamp(max=6).float()
    expected = 0.5 + taken.view(-1, 1) * alpha
    torch.testing.assert_close(result.adv.flatten(1)[:, 1:], expected.expand(7, 15), atol=1e-6, rtol=0)
    assert result.forward_passes == int((steps_needed.clamp(max=6) + 1).sum())


class FooledByAnyStep(nn.Module):
    """Class 0 exactly at the reference images, class 1 as soon as the pixels move up (the gradient says so)."""

    def __init__(self, reference: torch.Tensor) -> None:
        super().__init__()
        self.reference = reference
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        shift = (x - self.reference[: len(x)]).flatten(1).sum(1)
        return torch.stack([0.5 - 1e3 * shift, 1e3 * shift], dim=1)


def test_an_attack_whose_first_step_fools_everything_stops_after_it():
    x = torch.full((6, 3, 4, 4), 0.5)
    model = FooledByAnyStep(x)
    result = PGDAttack(model, 8 / 255, 2 / 255, 50, random_start=False).run(x, torch.zeros(6, dtype=torch.long))
    assert result.fooled.all() and (result.pred == 1).all()
    assert model.calls == [6, 6]  # the gradient pass at x, the pass at the first step: nothing after
    assert result.forward_passes == 12
    final = PGDAttack(model, 8 / 255, 2 / 255, 50, random_start=False, mode="final")
    model.calls.clear()
    final.run(x, torch.zeros(6, dtype=torch.long))
    assert len(model.calls) == 51


def test_fgsm_equals_torchattacks(tiny_model, data):
    batch = _batch(data)
    out = FGSM(eps=EPS).run_batch(tiny_model, batch, _ctx(data))
    reference = torchattacks.FGSM(tiny_model, eps=EPS)(batch.x, batch.y)
    with torch.no_grad():
        ref_pred = tiny_model(reference).argmax(1).numpy()
    attacked = out["attacked"]
    assert (out["adv_pred"][attacked] == ref_pred[attacked]).all()
    torch.testing.assert_close(FGSMAttack(tiny_model, EPS, mode="final")(batch.x, batch.y), reference)


def test_attack_puts_the_model_in_eval_mode_and_restores_it(tiny_model, data):
    batch = _batch(data, 8)
    tiny_model.train()
    seen = []
    hook = tiny_model.register_forward_pre_hook(lambda m, _: seen.append(m.training))
    try:
        PGDAttack(tiny_model, EPS, 1 / 255, 2)(batch.x, batch.y)
    finally:
        hook.remove()
    assert seen and not any(seen) and tiny_model.training
    tiny_model.eval()


def test_square_stays_in_ball_and_is_seeded(tiny_model, data):
    batch = _batch(data, 16)
    plugin = Square(eps=EPS, n_queries=20)
    first = plugin.run_batch(tiny_model, batch, _ctx(data))
    second = plugin.run_batch(tiny_model, batch, _ctx(data))
    assert first["distance"].max() <= EPS + 1e-6
    assert (first["adv_pred"] == second["adv_pred"]).all()
