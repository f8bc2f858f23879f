"""Reconstruct individual times from a digitised Kaplan-Meier curve (Guyot et al. 2012).

Guyot P, Ades AE, Ouwens MJ, Welton NJ. Enhanced secondary analysis of survival data:
reconstructing the data from published Kaplan-Meier survival curves. BMC Med Res Methodol
2012;12:9. This is the algorithm behind the R packages IPDfromKM and survHE, re-implemented here.

Inputs are the curve's coordinates ``(t_k, S_k)`` (survival, i.e. the proportion NOT yet
recovered; pass ``1 - cumulative recovery`` for a recovery curve) and the numbers at risk
``n_risk_j`` at times ``t_risk_j`` (the first at time 0), optionally the total number of events.
Within each risk-table interval, the number censored is guessed from the drop in survival and the
next number at risk, censoring times are spread evenly over the interval, events at each step are
derived from the drop in survival, and the guess is corrected until the reconstructed number at
risk at the next risk-table time matches the published one. In the last interval, censoring
continues at the average rate of the earlier intervals unless the total number of events is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _clean(t, s):
    t = np.asarray(t, float)
    s = np.asarray(s, float)
    order = np.argsort(t, kind="stable")
    t, s = t[order], np.clip(s[order], 0.0, 1.0)
    s = np.minimum.accumulate(s)  # digitising noise: survival cannot increase
    if t[0] > 0 or s[0] < 1:
        t, s = np.r_[0.0, t], np.r_[1.0, s]
    return t, s


def _distribute_censoring(n_cens, t_lo, t_hi, t_steps):
    """Spread n_cens censoring times evenly in (t_lo, t_hi); count them per KM step."""
    if n_cens <= 0:
        return np.array([]), np.zeros(len(t_steps), int)
    cen_t = t_lo + np.arange(1, n_cens + 1) * (t_hi - t_lo) / (n_cens + 1)
    counts = np.zeros(len(t_steps), int)
    for k in range(len(t_steps)):
        upper = t_steps[k + 1] if k + 1 < len(t_steps) else np.inf
        counts[k] = np.sum((cen_t >= t_steps[k]) & (cen_t < upper))
    return cen_t, counts


def reconstruct_ipd(t, surv, t_risk, n_risk, total_events: int | None = None, max_iter: int = 100) -> pd.DataFrame:
    """Individual (time, event) data consistent with a published KM curve and risk table.

    Parameters
    ----------
    t, surv : array-like
        Digitised coordinates of the survival curve (any order; (0, 1) is added if missing).
    t_risk, n_risk : array-like
        Risk-table times (first must be 0) and numbers at risk.
    total_events : int, optional
        Total events, used to fix censoring in the last interval.

    Returns
    -------
    DataFrame with columns ``time`` and ``event`` (1 = event, 0 = censored), one row per man.
    """
    t, s = _clean(t, surv)
    t_risk = np.asarray(t_risk, float)
    n_risk = np.asarray(n_risk, int)
    if t_risk[0] != 0:
        raise ValueError("the first risk-table time must be 0")
    if len(t_risk) != len(n_risk):
        raise ValueError("t_risk and n_risk must have the same length")
    lower = np.array([int(np.searchsorted(t, tr, side="left")) for tr in t_risk])
    upper = np.r_[lower[1:] - 1, len(t) - 1]
    n_int = len(t_risk)
    d = np.zeros(len(t), int)
    cen = np.zeros(len(t), int)
    n_hat = np.zeros(len(t) + 1, float)
    km_hat = np.ones(len(t), float)
    censor_times: list[np.ndarray] = []
    last = 0
    n_censor = np.zeros(n_int, int)

    def run_interval(i, nc):
        nonlocal last
        lo, hi = lower[i], upper[i]
        t_hi = t[lower[i + 1]] if i + 1 < n_int else t[hi]
        cen_t, counts = _distribute_censoring(nc, t[lo], t_hi, t[lo : hi + 1])
        cen[lo : hi + 1] = counts
        n_hat[lo] = n_risk[i]
        local_last = last
        for k in range(lo, hi + 1):
            if i == 0 and k == lo:
                d[k] = 0
                km_hat[k] = 1.0
            else:
                ref = km_hat[local_last]
                d[k] = int(round(n_hat[k] * (1 - s[k] / ref))) if ref > 0 and n_hat[k] > 0 else 0
                d[k] = max(0, min(d[k], int(max(n_hat[k], 0))))
                km_hat[k] = ref * (1 - d[k] / n_hat[k]) if n_hat[k] > 0 else ref
            n_hat[k + 1] = n_hat[k] - d[k] - cen[k]
            if d[k] != 0:
                local_last = k
        return cen_t, local_last

    for i in range(n_int - 1):
        nc = int(round(n_risk[i] * s[lower[i + 1]] / s[lower[i]] - n_risk[i + 1])) if s[lower[i]] > 0 else 0
        for _ in range(max_iter):
            nc = max(nc, 0)
            cen_t, new_last = run_interval(i, nc)
            diff = int(round(n_hat[lower[i + 1]] - n_risk[i + 1]))
            if diff == 0 or (nc == 0 and diff < 0):
                break
            nc += diff
        n_censor[i] = nc
        censor_times.append(cen_t)
        last = new_last

    i = n_int - 1
    if total_events is None:
        span = sum(t[upper[j]] - t[lower[j]] for j in range(n_int - 1))
        rate = n_censor[: n_int - 1].sum() / span if span > 0 else 0.0
        nc = min(int(round(rate * (t[upper[i]] - t[lower[i]]))), int(n_risk[i]))
        cen_t, last = run_interval(i, nc)
    else:
        nc = 0
        for _ in range(max_iter):
            cen_t, new_last = run_interval(i, max(nc, 0))
            events_so_far = d[: upper[i] + 1].sum()
            if events_so_far <= total_events or nc >= n_risk[i]:
                break
            nc += int(events_so_far - total_events)
        last = new_last
    censor_times.append(cen_t)

    rows = [(t[k], 1) for k in range(len(t)) for _ in range(d[k])]
    rows += [(c, 0) for arr in censor_times for c in arr]
    n_total = int(n_risk[0])
    remaining = n_total - len(rows)
    rows += [(t[-1], 0)] * max(remaining, 0)  # still at risk at the end of the curve
    return pd.DataFrame(rows[:n_total], columns=["time", "event"]).sort_values("time", ignore_index=True)
