"""Every family and likelihood term against a direct numerical computation (scipy, quadrature)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import integrate, special, stats

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
@pytest.mark.parametrize("shape", [0.8, 1.5, 2.5])
def test_log_scale_at_puts_the_distribution_function_where_asked(name, shape):
    """``log_scale_at`` (the anchored study effects' map) inverts logit F(t) in mu: at the mu it
    returns, scipy's distribution function at t is the requested probability."""
    fam = get_family(name)
    p = np.array([0.01, 0.3, 0.5, 0.8, 0.999])
    got = fam.log_scale_at(T[:5], special.logit(p), shape)
    np.testing.assert_allclose(scipy_dist(name, got, shape).cdf(T[:5]), p, rtol=1e-9)
    np.testing.assert_allclose(as_tensor_eval(lambda t, u, k: fam.log_scale_at(t, u, k), T[:5], special.logit(p), shape),
                               got, rtol=1e-9, atol=1e-12)


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
def test_truncated_moments_hold_far_below_the_scale(name):
    """A horizon far below the median (0.44 months against 14): the log-logistic quadrature once
    cut its range at mu - 15/k and lost 0.5% of the moment here."""
    mu, shape, tau = 2.66, 3.13, 0.44
    fam, ref = get_family(name), scipy_dist(name, mu, shape)
    for order in (1, 2):
        num, _ = integrate.quad(lambda t: t**order * ref.pdf(t), 0, tau, epsabs=0, epsrel=1e-12, limit=200)
        np.testing.assert_allclose(fam.truncated_moment(order, tau, mu, shape), num / ref.cdf(tau), rtol=1e-7)


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
def test_quantile_term_is_the_density_of_the_order_statistic(over_all):
    """A median of 61 men is their 31st order statistic: m C(m-1, k-1) G^(k-1) (1-G)^(m-k) g."""
    fam = get_family("weibull")
    mu, shape, pi, tau, p, m, q = np.log(6.0), 1.4, 0.25, 9.0, 0.5, 61, 5.0
    ref = scipy_dist("weibull", mu, shape)
    if over_all:  # the whole arm's curve R = (1 - pi) F levels off below 1
        G, g = (1 - pi) * ref.cdf(q), (1 - pi) * ref.pdf(q)
    else:  # among recoverers within tau
        G, g = ref.cdf(q) / ref.cdf(tau), ref.pdf(q) / ref.cdf(tau)
    k = 31
    expected = np.log(m) + stats.binom.logpmf(k - 1, m - 1, G) + np.log(g)
    got = lik.quantile_logp(q, p, float(m), over_all, tau, mu, shape, np.log(pi), np.log1p(-pi), fam)
    assert got == pytest.approx(expected, rel=1e-9)
    tensor = as_tensor_eval(lambda a, b, c, d, e, f, g_, h: lik.quantile_logp(a, b, c, d, e, f, g_, h, np.log1p(-pi), fam),
                            q, p, float(m), float(over_all), tau, mu, shape, np.log(pi))
    assert float(tensor) == pytest.approx(expected, rel=1e-8)
    # a density in q: integrates to P(the median exists) = P(at least k of m men ever recover)
    dens = lambda x: np.exp(lik.quantile_logp(x, p, float(m), over_all, tau, mu, shape, np.log(pi), np.log1p(-pi), fam))
    total = integrate.quad(dens, 0, tau if not over_all else np.inf, limit=200)[0]
    exists = stats.binom.sf(k - 1, m, 1 - pi) if over_all else 1.0
    assert total == pytest.approx(exists, rel=1e-6)


def _grid_posterior_ranks(logp_fn, n_rep=300, m=15, seed=11):
    """Grid SBC for a lone median: truth from the prior, the median of m simulated men, the
    posterior of (log scale, log shape) on a grid; returns the posterior CDF of the true shape."""
    fam = get_family("weibull")
    rng = np.random.default_rng(seed)
    mu_grid = np.linspace(np.log(4.0) - 2.5, np.log(4.0) + 2.5, 161)
    ls_grid = np.linspace(np.log(1.5) - 1.6, np.log(1.5) + 1.6, 161)
    log_prior = stats.norm.logpdf(mu_grid, np.log(4.0), 0.5)[:, None] + stats.norm.logpdf(ls_grid, np.log(1.5), 0.4)[None, :]
    shape = np.exp(ls_grid)[None, :]
    ranks = []
    for _ in range(n_rep):
        mu0, ls0 = rng.normal(np.log(4.0), 0.5), rng.normal(np.log(1.5), 0.4)
        med = float(np.median(fam.sample(rng, mu0, np.exp(ls0), m)))  # m odd: an order statistic
        lp = log_prior + logp_fn(med, float(m), mu_grid[:, None], shape, fam)
        w = np.exp(lp - lp.max()).sum(axis=0)
        cdf = np.cumsum(w) / w.sum()
        ranks.append(float(np.interp(ls0, ls_grid, cdf)))
    return np.array(ranks)


def test_a_lone_median_is_calibrated_for_the_shape_and_the_old_binomial_reading_was_not():
    """The order-statistic density gives uniform posterior ranks for the shape; the fractional
    binomial without the Jacobian (the earlier term) pulls the shape down (ranks pile up high),
    which is what simulation-based calibration of the main model found."""
    new = _grid_posterior_ranks(lambda q, m, mu, shape, fam: lik.quantile_logp(
        q, 0.5, m, 0, 1e4, mu, shape, np.log(1e-12), 0.0, fam))

    def old(q, m, mu, shape, fam):
        log_F = fam.log_cdf(q, mu, shape)
        return 0.5 * m * log_F + 0.5 * m * fam.log_sf(q, mu, shape)

    before = _grid_posterior_ranks(old)
    assert stats.kstest(new, "uniform").pvalue > 0.01
    assert abs(new.mean() - 0.5) < 0.05
    assert before.mean() > 0.58
    assert stats.kstest(before, "uniform").pvalue < 1e-3


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


def test_denominators_admitted_by_a_printed_percentage():
    from trt_recovery.models.survival_cure import denominator_candidates

    # 64.8% admits 35/54 (64.81%, rounded or truncated) and 24/37 (64.86%, truncated) up to 66 men
    assert denominator_candidates(0.648, 1, 66) == [(37, 24), (54, 35)]
    assert [n for n, _ in denominator_candidates(0.917, 1, 66)] == [12, 24, 36, 48, 60]
    # a whole-number percentage admits many; 100% admits every n with k = n
    assert len(denominator_candidates(0.65, 0, 60)) > 10
    assert denominator_candidates(1.0, 0, 5) == [(n, n) for n in range(1, 6)]
    # truncated printing (14/17 = 82.35 printed 82.3) is admitted too
    assert (17, 14) in denominator_candidates(0.823, 1, 20)


def test_marginal_count_is_the_weighted_average_of_binomials():
    fam = get_family("weibull")
    mu, shape, pi = np.log(6.0), 1.3, 0.2
    ev = np.array([[3.0, 6.0, 0.0]])
    n = np.array([[5.0, 10.0, 0.0]])
    lw = np.array([[np.log(0.25), np.log(0.75), -np.inf]])
    grid = np.array([[2.0, 6.0, 18.0]])
    ref = scipy_dist("weibull", mu, shape)
    expected = np.log(sum(w * np.mean([stats.binom.pmf(k, nn, (1 - pi) * ref.cdf(t)) for t in grid[0]])
                          for k, nn, w in ((3, 5, 0.25), (6, 10, 0.75))))
    got = lik.marginal_count_logp(ev, n, lw, grid, np.array([mu]), shape, np.array([np.log(pi)]), np.array([np.log1p(-pi)]), fam)
    assert got[0] == pytest.approx(expected, rel=1e-10)
    tensor = lik.marginal_count_logp(pt.as_tensor(ev), pt.as_tensor(n), pt.as_tensor(lw), pt.as_tensor(grid),
                                     pt.as_tensor(np.array([mu])), pt.as_tensor(shape), pt.as_tensor(np.array([np.log(pi)])),
                                     pt.as_tensor(np.array([np.log1p(-pi)])), fam).eval()
    assert float(tensor[0]) == pytest.approx(expected, rel=1e-8)


def test_marginal_count_with_known_n_and_time_is_the_plain_binomial():
    fam = get_family("loglogistic")
    mu, shape, pi = np.log(5.0), 2.0, 0.1
    got = lik.marginal_count_logp(np.array([[12.0]]), np.array([[20.0]]), np.array([[0.0]]), np.full((1, 4), 6.0),
                                  np.array([mu]), shape, np.array([np.log(pi)]), np.array([np.log1p(-pi)]), fam)
    plain = lik.interval_count_logp(12.0, 20.0, 0.0, 6.0, mu, shape, np.log(pi), np.log1p(-pi), fam)
    assert got[0] == pytest.approx(plain, rel=1e-12)


def test_marginal_blocks_give_the_same_likelihood_as_the_padded_arrays():
    """Splitting rows by (known time, known count) and trimming the padding changes nothing but cost."""
    import pandas as pd

    from trt_recovery.models.survival_cure import DEFAULT_PRIORS, marginal_arrays, marginal_block_logp, marginal_blocks

    t = pd.DataFrame({"outcome_id": list("abcde"), "arm_id": list("abcde"), "threshold": ["any"] * 5,
                      "time": [np.nan, 6.0, np.nan, 12.0, 3.0], "n": [49.0, np.nan, 22.0, np.nan, 10.0],
                      "events": [47.0, np.nan, 15.0, np.nan, 4.0], "proportion": [47 / 49, 0.65, 15 / 22, 1.0, 0.4],
                      "decimals": [np.nan, 0, np.nan, 0, np.nan], "n_bound": [49, 59, 22, 120, 10]})
    fam = get_family("weibull")
    rng = np.random.default_rng(2)
    mu, eta = rng.normal(1.5, 0.5, 5), rng.normal(-1.5, 0.5, 5)
    lp, l1p = -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
    a = marginal_arrays(t, DEFAULT_PRIORS)
    padded = lik.marginal_count_logp(a["events"], a["at_risk"], a["log_w"], a["t_grid"], mu, 1.4, lp, l1p, fam)
    blocks = marginal_blocks(t, DEFAULT_PRIORS)
    assert sum(b[1]["events"].size * b[1]["t_grid"].shape[1] for b in blocks) < a["events"].size * a["t_grid"].shape[1] / 5
    np.testing.assert_allclose(marginal_block_logp(blocks, mu, 1.4, lp, l1p, fam), padded, rtol=1e-12)
    tensor = marginal_block_logp(blocks, pt.as_tensor(mu), pt.as_tensor(1.4), pt.as_tensor(lp), pt.as_tensor(l1p), fam)
    np.testing.assert_allclose(tensor.eval(), padded, rtol=1e-8)


def test_width_groups_partition_rows_at_least_padded_cost():
    """The cut into groups is a partition of the rows and costs no more than any other partition
    (checked against every set partition of small random width lists)."""
    from trt_recovery.models.survival_cure import width_groups

    def partitions(items):
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for p in partitions(rest):
            yield [[first], *p]
            for i in range(len(p)):
                yield [*p[:i], [first, *p[i]], *p[i + 1:]]

    def cost(groups, w, per, block):
        return sum(len(g) * max(w[i] for i in g) * per + block for g in groups)

    rng = np.random.default_rng(16)
    for _ in range(30):
        w = rng.integers(1, 400, rng.integers(1, 7))
        per, block = int(rng.choice([1, 12])), float(rng.choice([0.0, 50.0, 200.0, 5000.0]))
        groups = width_groups(w, per, block)
        assert sorted(np.concatenate(groups).tolist()) == list(range(len(w)))
        best = min(cost(p, w, per, block) for p in partitions(list(range(len(w)))))
        assert cost(groups, w, per, block) == pytest.approx(best)
    # one wide row among narrow ones gets its own block; a huge block cost keeps one block
    assert [len(g) for g in width_groups(np.array([25, 417, 8, 8, 10]))] == [4, 1]
    assert len(width_groups(np.array([25, 417, 8, 8, 10]), block_cost=1e9)) == 1


def test_marginal_terms_enter_the_model_and_the_report(mock_survival_fit):
    from trt_recovery.config import DataSelection
    from trt_recovery.models import get_model
    from trt_recovery.survival.simulate import simulate_studies

    df, _ = simulate_studies(18, seed=6, formats=("count_no_time", "percent_no_n"))
    spec = get_model("survival_cure_weibull")
    md = spec.prepare(df, DataSelection())
    t = md.terms["marginal_count"]
    assert len(t) == 18 and not len(md.exclusions)
    assert t["assumption"].str.contains("follow-up time not reported").sum() == 9
    assert t["assumption"].str.contains("denominator not reported").sum() == 9
    model = spec.build(md, spec.default_priors)
    assert np.isfinite(model.point_logps()["marginal_count"])


@pytest.mark.parametrize(("over_all", "bound"), [(0, 8), (1, 200)])
def test_quantile_with_unknown_number_of_men_is_the_average_over_the_candidates(over_all, bound):
    """Term 7: the order-statistic density averaged over m = 1..bound (uniform); long ranges use
    weighted buckets, which must stay close to the exact average over every integer."""
    from trt_recovery.models.survival_cure import size_candidates

    fam = get_family("weibull")
    mu, shape, pi, q = np.log(6.0), 1.4, 0.15, 5.0
    sizes, log_w = size_candidates(bound)
    assert np.exp(log_w).sum() == pytest.approx(1.0) and sizes.max() <= bound
    got = lik.quantile_unknown_n_logp(np.array([q]), np.array([0.5]), np.array([over_all]), np.array([1e4]),
                                      sizes[None, :], log_w[None, :], np.array([mu]), shape, np.array([np.log(pi)]),
                                      np.array([np.log1p(-pi)]), fam)[0]
    every = np.arange(1, bound + 1, dtype=float)
    exact = special.logsumexp([lik.quantile_logp(q, 0.5, m, over_all, 1e4, mu, shape, np.log(pi), np.log1p(-pi), fam)
                               for m in every]) - np.log(bound)
    assert got == pytest.approx(exact, abs=0.02)
    if bound <= 40:
        assert got == pytest.approx(exact, rel=1e-9)
    tensor = as_tensor_eval(lambda a, b, c, d, e, f, g, h, i, j: lik.quantile_unknown_n_logp(a, b, c, d, e, f, g, h, i, j, fam),
                            [q], [0.5], [float(over_all)], [1e4], sizes[None, :], log_w[None, :], [mu], shape,
                            [np.log(pi)], [np.log1p(-pi)])
    assert float(tensor[0]) == pytest.approx(got, rel=1e-8)


@pytest.mark.parametrize("name", FAMS)
@pytest.mark.parametrize(("mu", "shape"), PARAMS)
def test_restricted_mean_is_the_area_under_the_curve_of_men_not_recovered(name, mu, shape):
    """Term 8: E[min(T, tau)] over all men = integral of pi + (1 - pi) S(t) from 0 to tau."""
    fam, pi = get_family(name), 0.2
    for tau in (2.0, 9.0, 30.0):
        area = integrate.quad(lambda t: pi + (1 - pi) * scipy_dist(name, mu, shape).sf(t), 0, tau)[0]
        got = lik.restricted_mean(np.asarray(tau), mu, shape, np.log(pi), np.log1p(-pi), fam)
        assert float(got) == pytest.approx(area, rel=1e-6)
        tensor = as_tensor_eval(lambda a, b, c, d, e: lik.restricted_mean(a, b, c, d, e, fam),
                                tau, mu, shape, np.log(pi), np.log1p(-pi))
        assert float(tensor) == pytest.approx(area, rel=1e-6)


def test_restricted_mean_matches_simulated_men_and_its_term_averages_over_the_horizons():
    fam = get_family("weibull")
    mu, shape, pi, tau = np.log(4.0), 1.3, 0.25, 6.0
    rng = np.random.default_rng(11)
    t = fam.sample(rng, mu, shape, 400_000)
    t[rng.uniform(size=t.size) < pi] = np.inf
    assert float(lik.restricted_mean(tau, mu, shape, np.log(pi), np.log1p(-pi), fam)) == pytest.approx(
        np.minimum(t, tau).mean(), rel=3e-3)
    # a known horizon (one finite weight) is the plain normal; a window averages the normals
    value, se = np.array([3.6]), np.array([0.2])
    grid = np.array([[tau, 1.0, 1.0], [tau, 12.0, 24.0]])
    log_w = np.array([[0.0, -np.inf, -np.inf], [np.log(1 / 3)] * 3])
    lp = np.full(1, np.log(pi))
    got = [lik.restricted_mean_logp(value, se, log_w[i:i + 1], grid[i:i + 1], np.array([mu]), shape, lp,
                                    np.log1p(-np.exp(lp)), fam)[0] for i in range(2)]
    rms = [float(lik.restricted_mean(h, mu, shape, np.log(pi), np.log1p(-pi), fam)) for h in grid[1]]
    assert got[0] == pytest.approx(stats.norm.logpdf(3.6, rms[0], 0.2), rel=1e-10)
    assert got[1] == pytest.approx(np.log(np.mean([stats.norm.pdf(3.6, m, 0.2) for m in rms])), rel=1e-10)
    tensor = lik.restricted_mean_logp(pt.as_tensor(np.repeat(value, 2)), pt.as_tensor(np.repeat(se, 2)),
                                      pt.as_tensor(log_w), pt.as_tensor(grid), pt.as_tensor(np.full(2, mu)),
                                      pt.as_tensor(shape), pt.as_tensor(np.full(2, np.log(pi))),
                                      pt.as_tensor(np.full(2, np.log1p(-pi))), fam).eval()
    np.testing.assert_allclose(tensor, got, rtol=1e-8)


def test_a_mean_over_all_men_needs_a_horizon_and_a_precision():
    import pandas as pd

    from trt_recovery.harmonise import HARMONISED_COLUMNS
    from trt_recovery.models.survival_cure import (DEFAULT_PRIORS, FOLLOWUP_GRID, build_terms,
                                                   restricted_mean_arrays)

    base = dict(arm_id="a", study_id="s", outcome="time_to_recovery", threshold="20", value=4.0, value_unit="months",
                statistic="mean", over="all", n=np.nan, events=np.nan, arm_n=np.nan, lower=np.nan, upper=np.nan,
                dispersion_type=np.nan, dispersion_value=np.nan, time_months=5.5, time_stat="min_followup")
    rows = pd.DataFrame([
        {**base, "outcome_id": "ci_min", "dispersion_type": "ci95", "lower": 3.5, "upper": 4.5},
        {**base, "outcome_id": "sd_fixed", "time_stat": "fixed", "dispersion_type": "sd", "dispersion_value": 2.0, "n": 16},
        {**base, "outcome_id": "no_time", "time_months": np.nan, "dispersion_type": "se", "dispersion_value": 0.3},
        {**base, "outcome_id": "no_precision", "n": 40},
    ]).reindex(columns=HARMONISED_COLUMNS)
    terms, excluded = build_terms(rows)
    t = terms["restricted_mean"].set_index("outcome_id")
    assert sorted(t.index) == ["ci_min", "sd_fixed"]
    assert t.loc["ci_min", "se"] == pytest.approx(1.0 / (2 * 1.959964), rel=1e-6)
    assert t.loc["sd_fixed", "se"] == pytest.approx(0.5)
    assert t.loc["ci_min", "assumption"].startswith("horizon not reported") and t.loc["sd_fixed", "assumption"] == ""
    reasons = {e["outcome_id"]: e["reason"] for e in excluded}
    assert "without its follow-up horizon" in reasons["no_time"]
    assert "without its precision" in reasons["no_precision"]
    arr = restricted_mean_arrays(terms["restricted_mean"], DEFAULT_PRIORS)
    i_min, i_fixed = list(terms["restricted_mean"]["outcome_id"]).index("ci_min"), list(
        terms["restricted_mean"]["outcome_id"]).index("sd_fixed")
    hi = DEFAULT_PRIORS["unknown_followup_max_months"]
    assert 5.5 < arr["tau_grid"][i_min, 0] < arr["tau_grid"][i_min, -1] < hi  # midpoints of the log-window
    np.testing.assert_allclose(np.diff(np.log(arr["tau_grid"][i_min])), np.log(hi / 5.5) / FOLLOWUP_GRID)
    np.testing.assert_allclose(np.exp(arr["log_w"][i_min]), np.full(FOLLOWUP_GRID, 1 / FOLLOWUP_GRID))
    assert np.isfinite(arr["log_w"][i_fixed]).sum() == 1 and arr["tau_grid"][i_fixed, 0] == 5.5


def test_restricted_mean_rows_enter_the_model_and_the_assumptions():
    from types import SimpleNamespace

    from trt_recovery.config import DataSelection
    from trt_recovery.models import get_model
    from trt_recovery.survival.report import assumptions_table
    from trt_recovery.survival.simulate import simulate_studies

    df, _ = simulate_studies(6, seed=4, formats=("mean_all_min_followup", "count"))
    spec = get_model("survival_cure_weibull")
    md = spec.prepare(df, DataSelection())
    assert len(md.terms["restricted_mean"]) == 3 and not len(md.exclusions)
    model = spec.build(md, spec.default_priors)
    assert np.isfinite(model.point_logps()["restricted_mean"])
    assert len(assumptions_table(SimpleNamespace(terms=md.terms))) == 3


@pytest.mark.parametrize("name", FAMS)
def test_restricted_mean_term_on_a_horizon_grid_agrees_in_numpy_and_pytensor(name):
    """Term 8 with rows of candidate horizons (n_obs, K), as the model calls it, for every family."""
    fam = get_family(name)
    grid = np.array([[3.0, 6.0, 12.0], [9.0, 1.0, 1.0]])
    log_w = np.array([[np.log(1 / 3)] * 3, [0.0, -np.inf, -np.inf]])
    value, se, mu = np.array([2.5, 5.0]), np.array([0.3, 0.8]), np.array([1.2, 1.9])
    lp = np.array([np.log(0.1), np.log(0.3)])
    got = lik.restricted_mean_logp(value, se, log_w, grid, mu, 1.6, lp, np.log1p(-np.exp(lp)), fam)
    direct = [np.log(np.mean([stats.norm.pdf(2.5, lik.restricted_mean(h, 1.2, 1.6, lp[0], np.log(0.9), fam), 0.3)
                              for h in grid[0]])),
              stats.norm.logpdf(5.0, lik.restricted_mean(9.0, 1.9, 1.6, lp[1], np.log(0.7), fam), 0.8)]
    np.testing.assert_allclose(got, direct, rtol=1e-10)
    tensor = lik.restricted_mean_logp(*(pt.as_tensor(x) for x in (value, se, log_w, grid, mu, np.float64(1.6), lp,
                                                                   np.log1p(-np.exp(lp)))), fam).eval()
    np.testing.assert_allclose(tensor, got, rtol=1e-6)  # PyMC's normal log-cdf (log-normal) agrees to about 1e-8


def test_a_window_of_horizons_gives_an_unbiased_shape_where_end_points_did_not():
    """The log-uniform window is integrated with midpoints: with the window's two ends weighted in
    full (``geomspace``), the shape's maximum-likelihood estimate from means over all men with an
    unknown horizon sat about 0.27 above the truth."""
    import pandas as pd

    from trt_recovery.models.survival_cure import DEFAULT_PRIORS, restricted_mean_arrays

    fam, mu, k0, eta = get_family("weibull"), np.log(5.0), 1.6, -2.2
    rng = np.random.default_rng(100)
    vals, ses = [], []
    for _ in range(300):
        n = int(rng.integers(40, 160))
        t = fam.sample(rng, mu, k0, n)
        t[rng.uniform(size=n) < 1 / (1 + np.exp(-eta))] = np.inf
        x = np.minimum(t, np.exp(rng.uniform(np.log(6.0), np.log(24.0))))
        vals.append(x.mean())
        ses.append(x.std(ddof=1) / np.sqrt(n))
    arr = restricted_mean_arrays(pd.DataFrame({"tau": 6.0, "horizon_is_minimum": 1}, index=range(300)), DEFAULT_PRIORS)
    lp, l1p = np.full(300, -np.logaddexp(0, -eta)), np.full(300, -np.logaddexp(0, eta))

    def shape_mle(grid):
        shapes = np.linspace(1.2, 2.2, 41)
        ll = [lik.restricted_mean_logp(np.array(vals), np.array(ses), arr["log_w"], grid, np.full(300, mu), k, lp, l1p,
                                       fam).sum() for k in shapes]
        return shapes[int(np.argmax(ll))]

    assert abs(shape_mle(arr["tau_grid"]) - k0) < 0.12
    assert shape_mle(np.tile(np.geomspace(6.0, 24.0, arr["tau_grid"].shape[1]), (300, 1))) - k0 > 0.2
