// Recovery calculator: P(recovered by t), the median time and P(never) for a profile, from the
// per-draw components of the survival model's linear predictors embedded in the page
// (trt_recovery.survival.calculator explains the sum; trt_recovery.site writes DATA).
// The same file runs under Node.js, where the tests compare it with the Python bundle.
"use strict";

function makeCalculator(DATA, FAMILY) {
  const index = {};
  for (const factor of Object.keys(DATA.levels)) {
    index[factor] = {};
    DATA.levels[factor].forEach((level, i) => { index[factor][level] = i; });
  }
  const nDraws = DATA.components.shape.length;

  function predictor(which, profile, newStudy) {
    const c = DATA.components[which];
    const out = Float64Array.from(c.base);
    const add = (row) => { for (let d = 0; d < nDraws; d++) out[d] += row[d]; };
    for (const factor of ["strategy", "population", "threshold"]) {
      const i = index[factor][profile[factor]];
      if (i === undefined) throw new Error("unknown " + factor + " " + profile[factor]);
      add(c[factor][i]);
    }
    const exposed = profile.population !== DATA.no_androgen_population;
    if (exposed) add(c.preparation[index.preparation[profile.preparation || DATA.unknown_preparation]]);
    DATA.covariates.forEach((cov, i) => {
      const x = profile.x ? profile.x[cov.name] : null;  // value on the model's scale, or null
      if (x === null || x === undefined || (cov.androgen_only && !exposed)) return;
      for (let d = 0; d < nDraws; d++) out[d] += c.cov_a[i][d] * x + c.cov_b[i][d];
    });
    if (newStudy) add(c.new_study);
    return out;
  }

  // numpy's quantiles: "linear" when every draw is finite, else "inverted_cdf" (no interpolation
  // across an infinite median time), as trt_recovery.survival.calculator.summarise
  function quantiles(values, probs) {
    const x = Array.from(values).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));  // a - b is NaN for two infinities
    const n = x.length;
    const finite = x.every(Number.isFinite);
    return probs.map((p) => {
      if (!finite) return x[Math.max(0, Math.ceil(n * p) - 1)];
      const h = (n - 1) * p, lo = Math.floor(h), hi = Math.min(lo + 1, n - 1);
      return x[lo] + (h - lo) * (x[hi] - x[lo]);
    });
  }

  function summarise(values) {
    // the probabilities computed as in Python ((1 - 0.95) / 2 is 0.025000000000000022, which moves
    // an inverted_cdf quantile by one draw when n times it is a whole number)
    const ci = DATA.ci_prob;
    const [median, lower, upper] = quantiles(values, [0.5, (1 - ci) / 2, 1 - (1 - ci) / 2]);
    return { median, lower, upper };
  }

  function answerOne(profile, times, newStudy) {
    const mu = predictor("mu", profile, newStudy), eta = predictor("eta", profile, newStudy);
    const k = DATA.components.shape;
    const recoveredBy = times.map((t) => summarise(mu.map((m, d) => FAMILY.cdf(t, m, k[d]) / (1 + Math.exp(eta[d])))));
    const med = mu.map((m, d) => {
      const pRec = 1 / (1 + Math.exp(eta[d]));
      return pRec > 0.5 ? FAMILY.quantile(0.5 / pRec, m, k[d]) : Infinity;
    });
    const medianTime = summarise(med);
    medianTime.p_not_reached = med.filter((v) => !Number.isFinite(v)).length / nDraws;
    const pNever = summarise(eta.map((e) => 1 / (1 + Math.exp(-e))));
    return { recovered_by: recoveredBy, median_time_months: medianTime, p_never: pNever };
  }

  function answer(profile, times) {
    return { average_study: answerOne(profile, times, false), new_study: answerOne(profile, times, true) };
  }

  function curve(profile, times) {
    return answerOne(profile, times, false).recovered_by;
  }

  return { predictor, summarise, answer, curve };
}

if (typeof module !== "undefined") module.exports = { makeCalculator };
