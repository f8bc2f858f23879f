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
# # The evidence: studies, arms and men per strategy and population
#
# **Question.** What published evidence is there on sperm recovery after testosterone or steroids,
# for which restart strategies and populations, in which reporting formats, and where are the gaps?
#
# Everything comes from the validated tables in `data/` (see `data/README.md` for inclusion rules
# and provenance); this notebook only displays them through the package.

# %%
import pandas as pd
from IPython.display import Markdown, display

from trt_recovery.evidence import evidence_map, evidence_map_figure, modelled_rows
from trt_recovery.harmonise import harmonise
from trt_recovery.validate import load_dataset

ds = load_dataset()
studies = ds.studies[ds.studies["duplicate_of"].isna()]
print(f"{len(studies)} primary studies ({len(ds.studies) - len(studies)} duplicate reports), "
      f"{len(ds.arms)} arms, {len(ds.outcomes)} outcome rows; data hash {ds.data_hash[:12]}")
display(studies.groupby("population").size().rename("studies").to_frame())

# %% [markdown]
# ## Evidence map (gaps are shown as gaps)

# %%
emap = evidence_map(ds, modelled_rows(ds))  # rows that exist, and rows the main analyses use
display(evidence_map_figure(emap))
display(emap[emap["studies"] > 0].reset_index(drop=True))

# %% [markdown]
# ## Strategies with no study at all

# %%
per_strategy = emap.groupby("strategy", sort=False)["studies"].sum()
missing = per_strategy[per_strategy == 0].index.tolist()
display(Markdown("No study found for: " + (", ".join(f"`{s}`" for s in missing) or "none") +
                 ". `data/README.md` lists what was searched for each."))

# %% [markdown]
# ## Reporting formats and thresholds

# %%
display(pd.crosstab(ds.outcomes["outcome"], ds.outcomes["threshold"].fillna("(none)")))

# %% [markdown]
# ## Rows no model can use (harmonisation exclusions)

# %%
h = harmonise(ds)
display(h.exclusions.groupby("reason").size().rename("rows").to_frame())
