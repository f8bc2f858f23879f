r"""Likelihood terms for aggregate recovery data, one per reporting format.

Notation for one arm: a man never recovers (within any horizon) with probability :math:`\pi`;
otherwise his recovery time has density :math:`f`, distribution :math:`F` and survival
:math:`S = 1 - F` (an AFT family, :mod:`trt_recovery.survival.families`). The arm's cumulative
recovery curve is :math:`R(t) = (1 - \pi) F(t)`. Every function returns an elementwise
log-density and works on numpy arrays and on pytensor tensors alike (``fam`` decides), so each
term is tested against a direct numerical computation and used unchanged inside the model.

Terms
-----
1. **Counts in an interval** (``interval_count_logp``): of ``at_risk`` men not recovered at
   :math:`t_0`, ``events`` recover in :math:`(t_0, t_1]`:
   :math:`\text{Bin}\big(\text{events};\ \text{at\_risk},\ [R(t_1) - R(t_0)] / [1 - R(t_0)]\big)`.
   "r of n recovered by t" is the case :math:`t_0 = 0`; cumulative counts at several times become
   successive intervals (a sequential binomial, equivalent to the multinomial of increments).
   "None recovered by t" is ``events = 0``.
2. **Individual times** (given, or reconstructed from a Kaplan-Meier curve by
   :func:`trt_recovery.survival.km.reconstruct_ipd`, Guyot et al. 2012): an event at :math:`t`
   adds :math:`\log(1-\pi) + \log f(t)`; a man censored at :math:`c` adds
   :math:`\log\{\pi + (1-\pi) S(c)\}` (``individual_logp``).
3. **Mean time among recoverers** (``mean_time_logp``): :math:`\bar t \sim N(E[T\mid T\le\tau],
   s/\sqrt{m})` with :math:`m` recoverers and the reported SD :math:`s` (central limit theorem for
   the sample mean). When the source gives no SD, the term needs one: the model's own conditional
   SD makes the likelihood degenerate (a smaller model SD always fits a single mean better, so the
   posterior is pulled toward ever larger shapes; measured: this one term caused every divergence
   of the main fit), so the SD is imputed from the coefficient of variation of the means that do
   report an SD in the same fit (the Cochrane Handbook's "borrowing" of SDs; the rows used are
   recorded); when no such row exists, from the coefficient of variation of the family at its
   prior median shape (0.68 for the Weibull's 1.5), a stated assumption.
4. **Quantiles** (``quantile_logp``; a median is the 0.5 quantile, an IQR adds 0.25 and 0.75):
   the density of a sample quantile. A reported quantile :math:`\hat q` of :math:`m` men is read
   as their :math:`k`-th order statistic with :math:`k = p(m+1)`, whose density is exactly

   .. math:: \log \operatorname{Beta}\big(G(\hat q);\ p(m+1),\ (1-p)(m+1)\big) + \log g(\hat q)

   with :math:`G = F(\cdot)/F(\tau)` and :math:`g = f/F(\tau)` among recoverers, or
   :math:`G = R` and :math:`g = (1-\pi) f` over all men (then :math:`m` = men in the arm; the
   formula holds for a curve that levels off below 1, since men who never recover are simply
   never among the first :math:`k`). Non-integer :math:`k` interpolates between order statistics
   (for an even :math:`m` a median is the mean of two; the difference is :math:`O(1/m)`). The
   quartiles of one arm enter as separate terms (their correlation is ignored; a reported IQR
   adds information about spread, slightly overweighted). Reference: David & Nagaraja 2003,
   sec. 2.1; Brookmeyer & Crowley 1982 for Kaplan-Meier quantiles.

   *Why the Jacobian* :math:`g(\hat q)` *is kept.* An earlier version dropped it (it read the
   quantile as "a share :math:`p` of the men had recovered by :math:`\hat q`", a fractional
   binomial in :math:`G(\hat q)` alone), because the geometry was easier. That is not a
   likelihood of :math:`\hat q`: integrating it over the scale leaves a factor of about
   :math:`1/\text{shape}` per reported quantile, so every median pulled the shape down even
   though one median says nothing about the shape. Simulation-based calibration of the main
   model found exactly this (the shape posterior sat below the truth; mean fractional rank 0.76
   over 30 replications), and ``tests/test_survival_terms.py`` checks on a grid that a lone
   median now leaves the shape where the prior put it and that the rank statistics are uniform.
5. **Median not reached by t** (``not_reached_logp``): :math:`\log\Phi\big((0.5 - R(t)) /
   \sqrt{R(t)(1-R(t))/n}\big)`.

6. **A count whose denominator or time is not reported** (``marginal_count_logp``): a
   percentage without the number of men behind it, or r of n without the follow-up time. The
   missing quantity is latent and integrated out over what the report allows:

   * the denominator: every n (up to the arm's size, else a stated maximum) for which some whole
     number of men k reproduces the printed percentage at its printed precision (rounded or
     truncated), each admissible n equally likely a priori (64.8% admits only 35/54 up to 66 men;
     65% admits many);
   * the time: a log-uniform grid over a stated window (``unknown_followup_min_months`` to
     ``unknown_followup_max_months``), each point equally likely a priori (the midpoints of equal
     intervals on the log scale, :func:`~trt_recovery.models.survival_cure.log_uniform_grid`);

   .. math:: \log \sum_{m,k} w_m \tfrac{1}{K} \operatorname{Bin}\big(k_m; n_m, R(t_k)\big)

   The fit records which rows rest on these assumptions (``assumption`` column of the term), and
   a sensitivity analysis varies the window.

7. **A quantile whose number of men is not reported** (``quantile_unknown_n_logp``): the
   quantile term above, integrated over the number of men :math:`m` behind it, each whole number
   from 1 to a bound equally likely a priori (the recoverers cannot outnumber the arm; without an
   arm size, a stated maximum ``unknown_n_max``):

   .. math:: \log \sum_m w_m\, \text{density of the } p(m+1)\text{-th order statistic of } m \text{ men at } \hat q

   A median of few men says little about where the curve is; one of many men pins it; the prior
   on :math:`m` decides between them, and the fit lists the row among its assumptions. For long
   ranges the integers are grouped into buckets (each integer up to 20, then geometric steps),
   each bucket weighted by the integers it stands for.

8. **A mean over all men with a horizon** (``restricted_mean_logp``): when some men never
   recover, a mean over every man of the arm is only defined up to a horizon :math:`\tau` (the
   follow-up): it is the restricted mean :math:`E[\min(T, \tau)]`, the area under the arm's
   curve of men not yet recovered,

   .. math:: \operatorname{RM}(\tau) = \int_0^\tau \{1 - R(t)\}\,dt
             = \pi\tau + (1-\pi)\{\tau S(\tau) + F(\tau)\,E[T \mid T \le \tau]\},

   read with the reported precision: :math:`\bar t \sim N(\operatorname{RM}(\tau), se)`, the
   standard error from the reported confidence interval or SE, or SD over :math:`\sqrt n`. When the
   source gives only the shortest follow-up (every man followed at least :math:`\tau_0`), the
   horizon is latent on a log-uniform grid from :math:`\tau_0` to ``unknown_followup_max_months``
   and integrated out, as the time of term 6 (a stated assumption the fit lists):
   :math:`\log \sum_k \tfrac1K N(\bar t;\ \operatorname{RM}(\tau_k), se)`.

References: Guyot P, Ades AE, Ouwens MJ, Welton NJ. BMC Med Res Methodol 2012;12:9.
Brookmeyer R, Crowley J. Biometrics 1982;38:29-41. David HA, Nagaraja HN. Order Statistics,
3rd ed. Wiley, 2003.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pymc.distributions.dist_math import normal_lcdf
from scipy import special, stats

from trt_recovery.survival.families import Family, _is_tensor

TINY = 1e-10


def _lib(*xs):
    return pt if _is_tensor(*xs) else np


def _logdiffexp(a, b):
    """log(exp(a) - exp(b)) for a > b."""
    if _is_tensor(a, b):
        return a + pt.log1mexp(b - a)
    return a + np.log(-np.expm1(b - a))


def _logaddexp(a, b):
    return pt.logaddexp(a, b) if _is_tensor(a, b) else np.logaddexp(a, b)


def _gammaln(x):
    return pt.gammaln(x) if _is_tensor(x) else special.gammaln(x)


def log_recovered(t, mu, shape, log_pi, log1m_pi, fam: Family):
    """log R(t) = log(1 - pi) + log F(t)."""
    return log1m_pi + fam.log_cdf(t, mu, shape)


def log_not_recovered(t, mu, shape, log_pi, log1m_pi, fam: Family):
    """log(1 - R(t)) = log(pi + (1 - pi) S(t))."""
    return _logaddexp(log_pi, log1m_pi + fam.log_sf(t, mu, shape))


def interval_count_logp(events, at_risk, t0, t1, mu, shape, log_pi, log1m_pi, fam: Family):
    """Sequential-binomial log-probability of ``events`` recoveries in (t0, t1] among ``at_risk``.

    ``t0 = 0`` means "from time zero" (then R(t0) = 0).
    """
    lib = _lib(events, at_risk, t0, t1, mu, shape, log_pi)
    start = t0 <= 0
    t0s = lib.maximum(t0, TINY) if lib is np else pt.maximum(t0, TINY)
    where = pt.switch if lib is pt else np.where
    log_s0 = where(start, 0.0, fam.log_sf(t0s, mu, shape))
    log_1mr0 = where(start, 0.0, log_not_recovered(t0s, mu, shape, log_pi, log1m_pi, fam))
    log_s1 = fam.log_sf(t1, mu, shape)
    log_1mr1 = log_not_recovered(t1, mu, shape, log_pi, log1m_pi, fam)
    log_p = log1m_pi + _logdiffexp(log_s0, log_s1) - log_1mr0
    log_q = log_1mr1 - log_1mr0
    comb = _gammaln(at_risk + 1.0) - _gammaln(events + 1.0) - _gammaln(at_risk - events + 1.0)
    return comb + events * log_p + (at_risk - events) * log_q


def individual_logp(time, is_event, mu, shape, log_pi, log1m_pi, fam: Family):
    """Events: log(1-pi) + log f(t); censored: log(pi + (1-pi) S(t))."""
    where = pt.switch if _is_tensor(time, mu, shape, log_pi) else np.where
    ev = log1m_pi + fam.log_pdf(time, mu, shape)
    ce = log_not_recovered(time, mu, shape, log_pi, log1m_pi, fam)
    return where(is_event > 0, ev, ce)


def recoverer_moments(tau, mu, shape, fam: Family):
    """Mean and SD of T | T <= tau (tau may be large for 'no horizon')."""
    lib = _lib(tau, mu, shape)
    m1 = fam.truncated_moment(1, tau, mu, shape)
    m2 = fam.truncated_moment(2, tau, mu, shape)
    return m1, lib.sqrt(lib.maximum(m2 - m1**2, TINY))


def mean_time_logp(value, size, sd_reported, has_sd, tau, mu, shape, log_pi, log1m_pi, fam: Family):
    """Log-density of a reported mean among ``size`` recoverers (term 3 of the module docstring).

    Normal with mean E[T | T <= tau] and SD ``sd_reported / sqrt(size)`` when ``has_sd`` is 1, else
    the model's conditional SD over sqrt(size). ``log_pi`` and ``log1m_pi`` are not used (a mean
    among recoverers does not depend on the non-recovery fraction); they keep the signature of the
    other terms.
    """
    lib = _lib(value, mu, shape, tau)
    where = pt.switch if lib is pt else np.where
    m1, sd_model = recoverer_moments(tau, mu, shape, fam)
    sd = where(has_sd > 0, sd_reported, sd_model)
    se = sd / lib.sqrt(size)
    return -0.5 * np.log(2 * np.pi) - lib.log(se) - 0.5 * ((value - m1) / se) ** 2


def quantile_logp(q_obs, p, size, over_all, tau, mu, shape, log_pi, log1m_pi, fam: Family):
    """Log-density of a reported sample quantile (see the module docstring, term 4).

    ``over_all`` (0/1): 1 for a quantile of the whole arm's curve R, 0 for a quantile among
    recoverers, truncated at ``tau``. The density of the order statistic ``p * (size + 1)`` of
    ``size`` men: a Beta density of the curve at ``q_obs`` times the curve's slope there.
    """
    lib = _lib(q_obs, mu, shape, log_pi, over_all)
    where = pt.switch if lib is pt else np.where
    log_F_q = fam.log_cdf(q_obs, mu, shape)
    log_F_tau = fam.log_cdf(tau, mu, shape)
    log_f_q = fam.log_pdf(q_obs, mu, shape)
    log_G = where(over_all > 0, log1m_pi + log_F_q, log_F_q - log_F_tau)
    log_g = where(over_all > 0, log1m_pi + log_f_q, log_f_q - log_F_tau)
    log_1m_all = log_not_recovered(q_obs, mu, shape, log_pi, log1m_pi, fam)
    # among recoverers: 1 - F(q)/F(tau) = (F(tau) - F(q)) / F(tau); tau >= q, guarded for tau == q
    log_1m_rec = _logdiffexp(log_F_tau, lib.minimum(log_F_q, log_F_tau - TINY)) - log_F_tau
    log_1mG = where(over_all > 0, log_1m_all, log_1m_rec)
    a = p * (size + 1.0)
    b = (1.0 - p) * (size + 1.0)
    log_beta_norm = _gammaln(a + b) - _gammaln(a) - _gammaln(b)
    return log_beta_norm + (a - 1.0) * log_G + (b - 1.0) * log_1mG + log_g


def quantile_unknown_n_logp(q_obs, p, over_all, tau, sizes, log_w, mu, shape, log_pi, log1m_pi, fam: Family):
    """Log-likelihood of a reported quantile whose number of men is not reported (module
    docstring, term 7): :func:`quantile_logp` integrated over the candidate ``sizes`` (n_obs, K)
    with prior log weights ``log_w`` (padding: ``-inf``)."""
    lib = _lib(q_obs, mu, shape, log_pi)
    col = lambda x: x[:, None]  # noqa: E731
    lp = quantile_logp(col(q_obs), col(p), sizes, col(over_all), col(tau), col(mu), shape, col(log_pi),
                       col(log1m_pi), fam)
    if lib is pt:
        return pt.logsumexp(log_w + lp, axis=1)
    return special.logsumexp(log_w + lp, axis=1)


def not_reached_logp(t, size, mu, shape, log_pi, log1m_pi, fam: Family):
    """log P(the Kaplan-Meier median exceeds t) = log Phi((0.5 - R(t)) / sqrt(R(1-R)/n))."""
    lib = _lib(t, mu, shape, log_pi)
    r = lib.exp(log_recovered(t, mu, shape, log_pi, log1m_pi, fam))
    r = lib.clip(r, 1e-9, 1 - 1e-9)
    z = (0.5 - r) / lib.sqrt(r * (1 - r) / size)
    if lib is pt:
        return normal_lcdf(0.0, 1.0, z)
    return stats.norm.logcdf(z)


def marginal_count_logp(events, at_risk, log_w, t_grid, mu, shape, log_pi, log1m_pi, fam: Family):
    """Log-likelihood of a recovery count whose denominator and/or time are not reported.

    ``events``, ``at_risk`` and ``log_w`` are (n_obs, M) candidate (k, n) pairs with their prior log
    weights (padding: ``log_w = -inf``); ``t_grid`` is (n_obs, K) candidate follow-up times, equally
    weighted. The term is the marginal likelihood

    .. math:: \\log \\sum_{m,k} w_m \\tfrac{1}{K} \\operatorname{Bin}\\big(k_m; n_m, R(t_k)\\big)

    (module docstring, term 6). ``mu``, ``log_pi`` and ``log1m_pi`` are per observation.
    """
    lib = _lib(events, mu, shape, log_pi)
    mu_, lpi_, l1pi_ = mu[:, None], log_pi[:, None], log1m_pi[:, None]
    log_r = l1pi_ + fam.log_cdf(t_grid, mu_, shape)
    log_1mr = log_not_recovered(t_grid, mu_, shape, lpi_, l1pi_, fam)
    comb = _gammaln(at_risk + 1.0) - _gammaln(events + 1.0) - _gammaln(at_risk - events + 1.0)
    lp = (log_w + comb)[:, :, None] + events[:, :, None] * log_r[:, None, :] + (at_risk - events)[:, :, None] * log_1mr[:, None, :]
    n_grid = t_grid.shape[1]
    flat = lp.reshape((lp.shape[0], -1))
    if lib is pt:
        return pt.logsumexp(flat, axis=1) - np.log(n_grid)
    return special.logsumexp(flat, axis=1) - np.log(n_grid)


def restricted_mean(tau, mu, shape, log_pi, log1m_pi, fam: Family):
    """E[min(T, tau)] over all men of the arm, non-recoverers included (term 8)."""
    lib = _lib(tau, mu, shape, log_pi)
    partial = lib.exp(fam.log_cdf(tau, mu, shape)) * fam.truncated_moment(1, tau, mu, shape)
    return lib.exp(log_pi) * tau + lib.exp(log1m_pi) * (tau * lib.exp(fam.log_sf(tau, mu, shape)) + partial)


def restricted_mean_logp(value, se, log_w, tau_grid, mu, shape, log_pi, log1m_pi, fam: Family):
    """Log-likelihood of a reported mean over all men up to a horizon (term 8 of the module docstring).

    ``tau_grid`` (n_obs, K) holds each row's candidate horizons with log prior weights ``log_w``
    (a known horizon: one finite weight, the rest ``-inf``); ``se`` the standard error of the mean.
    """
    lib = _lib(value, mu, shape, log_pi)
    col = lambda x: x[:, None]  # noqa: E731
    rm = restricted_mean(tau_grid, col(mu), shape, col(log_pi), col(log1m_pi), fam)
    lp = log_w - 0.5 * np.log(2 * np.pi) - lib.log(col(se)) - 0.5 * ((col(value) - rm) / col(se)) ** 2
    if lib is pt:
        return pt.logsumexp(lp, axis=1)
    return special.logsumexp(lp, axis=1)

