# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (trt-recovery)
#     language: python
#     name: trt-recovery
# ---

# %% [markdown]
# # Common clinical claims vs the evidence
#
# **Question.** For statements often made to patients about recovery after testosterone, what does
# the evidence synthesis say, and how certain is it? Each claim becomes a posterior quantity from the
# main time-to-recovery fit, with the studies behind it; claims the data cannot test are said to be so.

# %% tags=["parameters"]
analysis = "survival"

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from trt_recovery.posterior import load_fit
from trt_recovery.survival import predict as P
from trt_recovery.survival.claims import evaluate_claims

fit = load_fit(analysis)
claims = evaluate_claims(fit)
display(claims)

# %% [markdown]
# ## "About 96% by 4.6 months" against the model's recovery curve for hCG + SERM

# %%
t = np.linspace(0.1, 24, 60)
draws = P.Predictions(fit, [P.Profile(strategy="hcg_serm")]).recovered_by(t).isel(profile=0)
q = draws.quantile([0.025, 0.5, 0.975], dim=("chain", "draw")).values
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(t, q[1], color="#0072B2", label="hCG + SERM, average study")
ax.fill_between(t, q[0], q[2], color="#0072B2", alpha=0.2)
ax.plot([4.6], [0.96], "x", color="#D55E00", ms=10, mew=2, label="claim: 96% by 4.6 months")
ax.set_xlabel("Months since stopping testosterone / starting hCG + SERM")
ax.set_ylabel("P(recovered by t), any sperm")
ax.set_ylim(0, 1)
ax.legend()
display(fig)

# %% [markdown]
# ## In plain words

# %%
for r in claims.itertuples():
    p = "not testable with these data" if np.isnan(r.posterior_probability) else f"posterior probability {r.posterior_probability:.0%}"
    display(Markdown(f"- **{r.claim}** — {r.quantity}: {r.estimate}; {p}. {r.evidence}"))
