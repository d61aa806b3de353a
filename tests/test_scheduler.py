import math

import pytest
import torch

from stepvideo.engine import scheduler


def reference_sigmas(n, shift):
    out = []
    for i in range(n + 1):
        s = 1 - i / n
        out.append(1 - shift * s / (1 + (shift - 1) * s))
    return out


def test_standard_timesteps_match_published_values():
    sig = scheduler.shifted_sigmas(50, 13.0)
    t = scheduler.timesteps(sig)
    assert t.shape == (50,)
    assert t[0].item() == 0.0
    assert t[1].item() == pytest.approx(0.00157, abs=5e-6)
    assert t[2].item() == pytest.approx(0.00319, abs=5e-6)
    assert t[-2].item() == pytest.approx(0.649, abs=5e-4)
    assert t[-1].item() == pytest.approx(0.790, abs=5e-4)
    assert sig[-1].item() == pytest.approx(1.0)


def test_turbo_timesteps_match_published_values():
    t = scheduler.timesteps(scheduler.shifted_sigmas(15, 17.0))
    assert t[1].item() == pytest.approx(0.00418, abs=5e-6)
    assert t[-2].item() == pytest.approx(0.277, abs=5e-4)
    assert t[-1].item() == pytest.approx(0.452, abs=5e-4)


@pytest.mark.parametrize("n,shift", [(1, 1.0), (7, 3.0), (50, 13.0)])
def test_sigmas_follow_the_shift_formula(n, shift):
    got = scheduler.shifted_sigmas(n, shift).tolist()
    for a, b in zip(got, reference_sigmas(n, shift)):
        assert math.isclose(a, b, abs_tol=1e-6)


def test_model_timestep_is_cast_before_scaling():
    t = torch.tensor(0.00157)
    fed = scheduler.model_timestep(t, 2, torch.bfloat16)
    assert fed.dtype == torch.bfloat16 and fed.shape == (2,)
    # bf16 keeps ~3 significant digits: the DiT sees 1000·bf16(t), not bf16(1000·t).
    assert (fed.float() * 1000).tolist()[0] != pytest.approx(1.57, abs=1e-6)


def test_euler_step_and_cfg():
    x = torch.zeros(2, 3, dtype=torch.bfloat16)
    v = torch.ones(2, 3, dtype=torch.bfloat16)
    out = scheduler.euler_step(x, v, torch.tensor(0.25), torch.tensor(0.5))
    assert out.dtype == torch.float32 and torch.allclose(out, torch.full((2, 3), 0.25))
    batch = torch.stack([torch.full((3,), 2.0), torch.full((3,), 1.0)])
    assert torch.allclose(scheduler.cfg_combine(batch, 9.0), torch.full((1, 3), 10.0))


def test_noise_depends_on_seed_only():
    a = scheduler.initial_noise((2, 3, 4), scheduler.seeded_generator(1))
    b = scheduler.initial_noise((2, 3, 4), scheduler.seeded_generator(1))
    c = scheduler.initial_noise((2, 3, 4), scheduler.seeded_generator(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
