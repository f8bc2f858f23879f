"""Every family and likelihood term against a direct numerical computation (scipy, quadrature)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import integrate, stats

from trt_recovery.survival import likelihood as lik
from trt_recovery.survival.families import get_family

FAMS = ("weibull", "lognormal", "loglogistic")
PARAMS = [(np.log(6.0), 1.5), (np.log(2.0), 0.8), (np.log(15.0), 2.5)]
T = np.array([0.3, 1.0, 4.0, 12.0, 40.0])


def scipy_dist(name, mu, shape):
    scale = np.exp(mu)
    if name == "weibull":
        return stats.weibull_min(c=shape, scale=scale)
    if name == "lognormal":
        return stats.lognorm(s=shape, scale=scale)
    return stats.fisk(c=shape, scale=scale)


def as_tensor_eval(fn, *args):
    """Evaluate the pytensor version of a function on the same numbers."""
    return fn(*[pt.as_tensor(np.asarray(a, dtype=float)) for a in args]).eval()


@pytest.mark.parametrize("name", FAMS)
@pytest.mark.parametrize(("mu", "shape"), PARAMS)
def test_family_functions_match_scipy(name, mu, shape):
    fam, ref = get_family(name), scipy_dist(name, mu, shape)
    np.testing.assert_allclose(fam.log_cdf(T, mu, shape), ref.logcdf(T), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(fam.log_sf(T, mu, shape), ref.logsf(T), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(fam.log_pdf(T, mu, shape), ref.logpdf(T), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(fam.quantile(np.array([0.1, 0.5, 0.9]), mu, shape), ref.ppf([0.1, 0.5, 0.9]), rtol=1e-7)
    for f in (fam.log_cdf, fam.log_sf, fam.log_pdf):
        np.testing.assert_allclose(as_tensor_eval(lambda t, m, k, f=f: f(t, m, k), T, mu, shape), f(T, mu, shape), rtol=1e-6)


@pytest.mark.parametrize("name", FAMS)
@pytest.mark.parametrize("tau", [5.0, 30.0, 1e4])
def test_truncated_moments_match_quadrature(name, tau):
    mu, shape = np.log(6.0), 1.7
    fam, ref = get_family(name), scipy_dist(name, mu, shape)
    upper = min(tau, ref.ppf(1 - 1e-12))
    for order in (1, 2):
        num, _ = integrate.quad(lambda t: t**order * ref.pdf(t), 0, upper, limit=200)
        expected = num / ref.cdf(tau)
        np.testing.assert_allclose(fam.truncated_moment(order, tau, mu, shape), expected, rtol=2e-4)
        got_t = as_tensor_eval(lambda a, m, k: fam.truncated_moment(order, a, m, k), tau, mu, shape)
        np.testing.assert_allclose(got_t, expected, rtol=2e-4)


@pytest.mark.parametrize("name", FAMS)
def test_interval_count_equals_binomial_of_direct_probabilities(name):
    fam = get_family(name)
    mu, shape, pi = np.log(5.0), 1.3, 0.15
    ref = scipy_dist(name, mu, shape)
    R = lambda t: (1 - pi) * ref.cdf(t)  # noqa: E731
    # from time zero: Binomial(n, R(t))
    got = lik.interval_count_logp(12.0, 40.0, 0.0, 6.0, mu, shape, np.log(pi), np.log1p(-pi), fam)
    assert got == pytest.approx(stats.binom.logpmf(12, 40, R(6.0)), rel=1e-9)
    # sequential: among men not recovered at 3, events in (3, 9]
    p = (R(9.0) - R(3.0)) / (1 - R(3.0))
    got = lik.interval_count_logp(7.0, 25.0, 3.0, 9.0, mu, shape, np.log(pi), np.log1p(-pi), fam)
    assert got == pytest.approx(stats.binom.logpmf(7, 25, p), rel=1e-9)
    tensor = as_tensor_eval(
        lambda e, n, a, b, m, k, lp, l1p: lik.interval_count_logp(e, n, a, b, m, k, lp, l1p, fam),
        [12.0, 7.0], [40.0, 25.0], [0.0, 3.0], [6.0, 9.0], mu, shape, np.log(pi), np.log1p(-pi),
    )
    np.testing.assert_allclose(tensor, [stats.binom.logpmf(12, 40, R(6.0)), stats.binom.logpmf(7, 25, p)], rtol=1e-6)


def test_sequential_intervals_equal_multinomial_of_increments():
    fam = get_family("weibull")
    mu, shape, pi = np.log(4.0), 1.6, 0.1
    ref = scipy_dist("weibull", mu, shape)
    times, cum, n = [3.0, 6.0, 12.0], [10, 25, 33], 50
    R = [(1 - pi) * ref.cdf(t) for t in times]
    probs = [R[0], R[1] - R[0], R[2] - R[1], 1 - R[2]]
    counts = [cum[0], cum[1] - cum[0], cum[2] - cum[1], n - cum[2]]
    multinomial = stats.multinomial.logpmf(counts, n, probs)
    seq, prev_t, prev_e = 0.0, 0.0, 0
    for t, e in zip(times, cum, strict=True):
        seq += lik.interval_count_logp(e - prev_e, n - prev_e, prev_t, t, mu, shape, np.log(pi), np.log1p(-pi), fam)
        prev_t, prev_e = t, e
    assert seq == pytest.approx(multinomial, rel=1e-9)


def test_individual_terms_match_mixture_density_and_survival():
    fam = get_family("lognormal")
    mu, shape, pi = np.log(5.0), 0.7, 0.2
    ref = scipy_dist("lognormal", mu, shape)
    got = lik.individual_logp(np.array([2.0, 10.0]), np.array([1, 0]), mu, shape, np.log(pi), np.log1p(-pi), fam)
    np.testing.assert_allclose(got, [np.log((1 - pi) * ref.pdf(2.0)), np.log(pi + (1 - pi) * ref.sf(10.0))], rtol=1e-9)


@pytest.mark.parametrize("over_all", [0, 1])
def test_quantile_term_is_the_binomial_of_the_share_recovered_by_the_quantile(over_all):
    fam = get_family("weibull")
    mu, shape, pi, tau, p, m, q = np.log(6.0), 1.4, 0.25, 1e4, 0.5, 60.0, 5.0
    ref = scipy_dist("weibull", mu, shape)
    G = (1 - pi) * ref.cdf(q) if over_all else ref.cdf(q) / ref.cdf(tau)
    expected = stats.binom.logpmf(30, 60, G)
    got = lik.quantile_logp(q, p, m, over_all, tau, mu, shape, np.log(pi), np.log1p(-pi), fam)
    assert got == pytest.approx(expected, rel=1e-9)
    tensor = as_tensor_eval(lambda a, b, c, d, e, f, g, h: lik.quantile_logp(a, b, c, d, e, f, g, h, np.log1p(-pi), fam),
                            q, p, m, float(over_all), tau, mu, shape, np.log(pi))
    assert float(tensor) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("over_all", [0, 1])
def test_quantile_term_recovers_the_scale_from_simulated_medians(over_all):
    """Maximising the term over the log scale, arm by arm, is unbiased for the true log scale."""
    fam = get_family("weibull")
    mu, shape, pi, m = np.log(6.0), 1.5, 0.2, 80
    rng = np.random.default_rng(5)
    t = fam.sample(rng, mu, shape, (3000, m))
    if over_all:
        t[rng.uniform(size=t.shape) < pi] = np.inf
    medians = np.quantile(t, 0.5, axis=1, method="inverted_cdf") if over_all else np.median(t, axis=1)
    grid = np.linspace(mu - 0.6, mu + 0.6, 241)
    lp = lik.quantile_logp(medians[:, None], 0.5, float(m), over_all, 1e4, grid[None, :], shape,
                           np.log(pi), np.log1p(-pi), fam)
    best = grid[np.argmax(lp, axis=1)]
    assert np.mean(best) == pytest.approx(mu, abs=0.02)


def test_recoverer_mean_and_sd_match_simulation():
    fam = get_family("weibull")
    mu, shape, tau = np.log(5.0), 1.2, 8.0
    rng = np.random.default_rng(3)
    t = fam.sample(rng, mu, shape, 400_000)
    t = t[t <= tau]
    m1, sd = lik.recoverer_moments(tau, mu, shape, fam)
    assert m1 == pytest.approx(t.mean(), rel=5e-3)
    assert sd == pytest.approx(t.std(), rel=5e-3)


def test_not_reached_term():
    fam = get_family("loglogistic")
    mu, shape, pi, n, t = np.log(8.0), 2.0, 0.3, 50.0, 4.0
    r = (1 - pi) * scipy_dist("loglogistic", mu, shape).cdf(t)
    expected = stats.norm.logcdf((0.5 - r) / np.sqrt(r * (1 - r) / n))
    got = lik.not_reached_logp(t, n, mu, shape, np.log(pi), np.log1p(-pi), fam)
    assert got == pytest.approx(expected, rel=1e-9)
    tensor = as_tensor_eval(lambda a, b, c, d, e, f: lik.not_reached_logp(a, b, c, d, e, f, fam), t, n, mu, shape, np.log(pi), np.log1p(-pi))
    assert float(tensor) == pytest.approx(expected, rel=1e-8)
