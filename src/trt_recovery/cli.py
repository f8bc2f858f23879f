"""Command-line interface: ``trt-recovery <command>``. Thin wrappers of the functions make uses."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from trt_recovery import paths


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(paths.ROOT))
    except ValueError:
        return str(p)


def cmd_validate(args: argparse.Namespace) -> int:
    from trt_recovery.validate import check_dataset

    ds, problems = check_dataset(Path(args.data_dir))
    if problems:
        print(f"INVALID: {len(problems)} problem(s) in {_rel(Path(args.data_dir))}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    assert ds is not None
    print(
        f"OK: {len(ds.studies)} studies, {len(ds.arms)} arms, {len(ds.outcomes)} outcome rows "
        f"(data hash {ds.data_hash[:12]})"
    )
    return 0


def cmd_dictionary(args: argparse.Namespace) -> int:
    from trt_recovery.schema import data_dictionary

    text = data_dictionary()
    target = paths.DATA_DIR / "DICTIONARY.md"
    if args.write:
        target.write_text(text, encoding="utf-8")
        print(f"wrote {_rel(target)}")
    elif args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print(f"{_rel(target)} is out of date: run `make dictionary`", file=sys.stderr)
            return 1
        print(f"{_rel(target)} is current")
    else:
        print(text)
    return 0


def cmd_harmonise(args: argparse.Namespace) -> int:
    from trt_recovery.evidence import write_data_outputs
    from trt_recovery.validate import load_dataset

    ds = load_dataset()
    h, out = write_data_outputs(ds)
    print(f"harmonised {len(h.outcomes)} outcome rows; {len(h.exclusions)} excluded (reasons in harmonisation_exclusions.csv)")
    for p in out:
        print(f"  {_rel(p)}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from trt_recovery.config import load_config
    from trt_recovery.fitting import FitFailedError, fit_analysis

    cfg = load_config(args.analysis)
    print(
        f"==> fitting '{cfg.name}' (model {cfg.model}, backend {cfg.sampler.backend}, "
        f"{cfg.sampler.chains} x {cfg.sampler.draws} draws, seed {args.seed if args.seed is not None else cfg.sampler.seed})"
    )
    try:
        res = fit_analysis(cfg, seed=args.seed, progressbar=sys.stderr.isatty())
    except FitFailedError as exc:
        print(f"\n*** {exc}\n", file=sys.stderr)
        _write_status(args.status_file, cfg.name, passed=False, message=str(exc))
        if args.allow_failure:
            print(f"    '{cfg.name}' is reported as FAILED in its outputs; the build goes on (--allow-failure)")
            return 0
        return 2
    _write_status(args.status_file, cfg.name, passed=True, message=res.summary_line())
    print("    convergence: " + "; ".join(f"{c['check']} {c['value']:.4g} ({'pass' if c['passed'] else 'FAIL'})"
                                          for c in res.convergence["checks"]))
    print(f"    {len(res.used)} rows used, {len(res.exclusions)} excluded (reasons saved with the posterior)")
    print(f"    saved {_rel(res.path)}")
    return 0


def _write_status(target: str | None, name: str, passed: bool, message: str) -> None:
    """The outcome of a fit as a small JSON file (make's target for sensitivity fits)."""
    if not target:
        return
    import json

    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"analysis": name, "passed": passed, "message": message}, indent=2) + "\n",
                   encoding="utf-8")
    tmp.replace(path)


def cmd_report(args: argparse.Namespace) -> int:
    from trt_recovery.config import sensitivity_analyses
    from trt_recovery.report import report

    sensitivity = set(sensitivity_analyses())
    status = 0
    for name in args.analyses:
        posterior, failed = paths.posterior_file(name), paths.posterior_file(name).with_suffix(".failed.nc")
        if not posterior.exists() and failed.exists():
            kind = "sensitivity fit" if name in sensitivity else "MAIN ANALYSIS"
            print(f"==> {name}: {kind} FAILED its convergence checks (kept at {_rel(failed)}); no figures or tables")
            status = status if name in sensitivity else 1
            continue
        out = report(name)
        print(f"==> {name}: {len(out)} files")
        for p in out:
            print(f"  {_rel(p)}")
    return status


def cmd_notebook(args: argparse.Namespace) -> int:
    from trt_recovery.notebooks import execute_notebook

    out = execute_notebook(args.notebook)
    print(f"executed {args.notebook} -> {_rel(out)}")
    return 0


def _covariate_dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def cmd_preserve(args: argparse.Namespace) -> int:
    """A binomial analysis's answer for one cell: preservation (`preserve`) or pregnancy (`pregnancy`)."""
    import json

    from trt_recovery.config import load_config
    from trt_recovery.fitting import fit_analysis
    from trt_recovery.posterior import check_name, load_fit
    from trt_recovery.success import WORDING, cell_answer

    if not args.analysis.endswith(".nc"):
        check_name(args.analysis)
        if not paths.posterior_file(args.analysis).exists():
            print(f"no cached posterior for '{args.analysis}': fitting it first", file=sys.stderr)
            fit_analysis(load_config(args.analysis))
    kind = args.kind
    out = cell_answer(load_fit(args.analysis), args.strategy, args.population, kind=kind)
    if args.format == "json":
        print(json.dumps(out, indent=2, default=float))
        return 0
    print(f"{out['strategy_label']} in {out['population_label'].lower()} (analysis '{args.analysis}')")
    if out["estimate"] is None:
        print(f"  {out['gap']}")
        return 0
    e = out["estimate"]
    print(f"  {WORDING[kind]['question']}, average study = {e['median']:.2f} "
          f"(95% {e['lower']:.2f} to {e['upper']:.2f})  [{out['evidence_flag']}]")
    if out.get("sensitivity_diagnosis") and "conflict" in str(out["sensitivity_diagnosis"]):
        print("  possible prior-data conflict (power-scaling): read the interval with care")
    print("  rests on: " + ("; ".join(out["evidence"]) if out["evidence"] else
                            "no row in this population (population shift and prior)"))
    c = out.get("contrast")
    if c:
        d = c["difference"]
        ref = WORDING[kind]["reference"]
        print(f"  vs {ref} ({WORDING[kind]['reference_label']}): difference {d['median']:+.2f} (95% {d['lower']:+.2f} to {d['upper']:+.2f}), "
              f"P(better) = {c['p_better']:.2f}"
              + ("" if c["reference_rows_in_population"] else f"; {ref} has no row in this population"))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from trt_recovery.survival.design import COVARIATES
    from trt_recovery.survival.profile import Profile, ProfileError

    try:
        times = [float(x) for x in args.times.split(",") if x.strip()]
    except ValueError:
        print(f"error: --times must be comma-separated numbers of months, got {args.times!r}", file=sys.stderr)
        return 1
    if not times or not all(0 < t < 1e4 for t in times):
        print("error: --times must be positive months (below 10000)", file=sys.stderr)
        return 1
    covariates = {c.name: getattr(args, _covariate_dest(c.cli_flag)) for c in COVARIATES}
    profile = Profile(strategy=args.strategy, population=args.population, threshold=args.threshold,
                      preparation=args.preparation, covariates={k: v for k, v in covariates.items() if v is not None})
    try:
        profile.check()
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.full and not args.analysis.endswith(".nc"):
        # a calculator bundle built from the current posterior answers with numpy alone
        from trt_recovery.survival.calculator import fresh_bundle

        bundle = fresh_bundle(args.analysis, seed=args.seed)
        if bundle is not None:
            bundle.check(profile)
            return _print_prediction(profile, bundle.answer(profile, times), args)
    # the arguments are checked; only now the sampler stack loads
    from trt_recovery.config import load_config
    from trt_recovery.fitting import fit_analysis
    from trt_recovery.posterior import check_name, load_fit
    from trt_recovery.survival.predict import predict

    if not args.analysis.endswith(".nc"):
        check_name(args.analysis)
    if not args.analysis.endswith(".nc") and not paths.posterior_file(args.analysis).exists():
        print(f"no cached posterior for '{args.analysis}': fitting it first", file=sys.stderr)
        fit_analysis(load_config(args.analysis))
    fit = load_fit(args.analysis)
    return _print_prediction(profile, predict(fit, profile, times, seed=args.seed), args)


def _print_prediction(profile, out: dict, args: argparse.Namespace) -> int:
    import json

    times = out["times"]
    out["analysis"] = args.analysis
    if args.format == "json":
        print(json.dumps(out, indent=2, default=float))
        return 0
    print(f"{profile.describe()}  (analysis '{args.analysis}')")
    for label in ("average_study", "new_study"):
        o = out[label]
        print(f"\n{label.replace('_', ' ')}:")
        for t, r in zip(times, o["recovered_by"], strict=True):
            ev = out.get("evidence_flag", {}).get(f"{t:g}", {})
            flag = ev.get("flag", "")
            if "conflict" in ev.get("sensitivity_diagnosis", ""):
                flag += "; possible prior-data conflict"
            print(f"  P(recovered by {t:g} months) = {r['median']:.2f}  (95% {r['lower']:.2f} to {r['upper']:.2f})"
                  + (f"  [{flag}]" if flag and label == "average_study" else ""))
        m = o["median_time_months"]
        if m["p_not_reached"] >= 0.5:
            print(f"  median time to recovery: not reached (fewer than half the men ever recover in "
                  f"{m['p_not_reached']:.0%} of posterior draws)")
        else:
            upper = "not reached" if not m["upper"] < float("inf") else f"{m['upper']:.1f}"
            print(f"  median time to recovery = {m['median']:.1f} months (95% {m['lower']:.1f} to {upper})"
                  + (f"; not reached in {m['p_not_reached']:.0%} of draws" if m["p_not_reached"] > 0 else ""))
        print(f"  P(never recovers) = {o['p_never']['median']:.2f} (95% {o['p_never']['lower']:.2f} to {o['p_never']['upper']:.2f})")
    if out["note"]:
        print(f"\nNote: {out['note']}")
    if out.get("answered_from") == "calculator bundle":
        flagged = set(out.get("evidence_flag", {}))
        missing = [f"{t:g}" for t in times if f"{t:g}" not in flagged]
        print("\n(answered from the calculator bundle of the current posterior; evidence flags are precomputed at "
              f"{', '.join(f'{t:g}' for t in out['flag_times'])} months for the population-average covariates"
              + (f"; none at {', '.join(missing)} months: add --full for them" if missing else "") + ")")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import pandas as pd

    from trt_recovery import verify as V

    names = args.analyses or V.reference_names()
    if args.write_reference:
        for n in names:
            print(f"wrote {_rel(V.write_reference(n))}")
            if n == "survival":
                print(f"wrote {_rel(V.write_readme_figure(n))}")
        if not args.analyses:
            print(f"wrote {_rel(V.write_derived_reference())}")
        return 0
    tables = []
    for n in names:
        print(V.header(n) + "\n")
        tables.append(V.verify(n))
    if not args.analyses and V.DERIVED_REFERENCE.exists():
        tables.append(V.verify_derived())
    table = pd.concat(tables, ignore_index=True)
    print(table.to_markdown(index=False))
    failed = (table["status"] != "pass").sum()
    print(f"\n{len(table) - failed} passed, {failed} failed")
    if failed:
        causes = table.loc[table["status"] != "pass", "cause"].value_counts()
        for cause, k in causes.items():
            print(f"  {k} x {cause}")
    return 0 if failed == 0 else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from trt_recovery import review
    from trt_recovery import verify as V

    names = args.analyses or V.reference_names()
    blocks = []
    for n in names:
        table, evidence = review.diff(n)
        attribution = (review.attribute(n, evidence, scheduler=args.scheduler, n_workers=args.workers)
                       if args.attribute else None)
        blocks.append(review.describe(n, table, evidence, attribution))
        print(blocks[-1] + "\n")
    if args.changelog:
        print(f"appended to {_rel(review.append_changelog(blocks))}")
    return 0


def cmd_loso(args: argparse.Namespace) -> int:
    from trt_recovery import loso

    status = 0
    for name in args.analyses:
        print(f"==> leave-one-study-out for '{name}'")
        table, files = loso.run(name, retry_target_accept=args.retry_target_accept or None,
                                scheduler=args.scheduler, n_workers=args.workers, method=args.method)
        routes = table.drop_duplicates("dropped_study")["method"]
        print(f"  {(routes == 'psis').sum()} of {len(routes)} studies importance-sampled, "
              f"{routes.str.startswith('refit').sum()} refitted")
        failed = sorted(set(table.loc[~table["checks_passed"], "dropped_study"]))
        for p in files:
            print(f"  {_rel(p)}")
        biggest = table.dropna(subset=["shift"]).assign(a=lambda d: d["shift"].abs()).sort_values("a").tail(3)
        for r in biggest.itertuples():
            print(f"  largest shift: without {r.dropped_study}, {r.quantity} {r.full_median:.3g} -> {r.loso_median:.3g}")
        if failed:
            print(f"  REFITS FAILING CONVERGENCE CHECKS (numbers flagged in the table): {', '.join(failed)}")
            status = 1
    return status


def cmd_check_posteriors(args: argparse.Namespace) -> int:
    """Open every saved posterior; move an unreadable or checksum-failing one aside so make refits it.

    Files already checked with the same size and modification time are skipped (a truncated or
    rewritten file changes one of them), so a no-op ``make`` stays fast.
    """
    import json

    from trt_recovery.posterior import StaleFitError, open_fit

    ledger_path = paths.POSTERIORS_DIR / ".checked.json"
    try:
        ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        ledger = {}
    bad, fresh = 0, {}
    for path in sorted(paths.POSTERIORS_DIR.glob("*.nc")):
        if path.name.endswith((".failed.nc", ".corrupt.nc")):
            continue
        st = path.stat()
        key = [st.st_size, st.st_mtime_ns]
        if ledger.get(path.name) == key:
            fresh[path.name] = key
            continue
        try:
            open_fit(path)
        except StaleFitError as exc:
            if "unreadable" not in str(exc) and "checksum" not in str(exc):
                continue  # an older format is refitted through its inputs, not here
            target = path.with_name(path.stem + ".corrupt.nc")
            path.replace(target)
            (paths.POSTERIORS_DIR / f"{path.stem}.status.json").unlink(missing_ok=True)
            print(f"CORRUPT posterior moved to {_rel(target)} (make refits it): {exc}", file=sys.stderr)
            bad += 1
            continue
        fresh[path.name] = key
    if paths.POSTERIORS_DIR.exists():
        ledger_path.write_text(json.dumps(fresh, indent=1) + "\n", encoding="utf-8")
    if bad == 0:
        print("==> posteriors: every saved posterior opens and matches its checksum")
    return 0


def cmd_stamps(args: argparse.Namespace) -> int:
    from trt_recovery.stamps import write_stamps

    changed = write_stamps()
    moved = [n for n, c in changed.items() if c]
    print(f"==> input stamps: {len(changed)} analyses; rows changed for: {', '.join(moved) if moved else 'none'}")
    return 0


def cmd_add_study(args: argparse.Namespace) -> int:
    from trt_recovery.add_study import add_study, build_rows, parse_pairs, terminal_prompt
    from trt_recovery.errors import BadInputError

    def groups(items, flag):
        out = []
        for item in items:
            if not item or "=" in item[0]:
                raise BadInputError(f"{flag} needs a suffix first, then column=value pairs")
            out.append((item[0], parse_pairs(item[1:], f"{flag} {item[0]}")))
        return out

    rows = build_rows(args.study_id, pmid=args.pmid, doi=args.doi, study=parse_pairs(args.study, "--study"),
                      arms=groups(args.arm, "--arm"), outcomes=groups(args.outcome, "--outcome"),
                      screening=parse_pairs(args.screening, "--screening"), ask=terminal_prompt())
    data_dir = Path(args.data_dir)
    problems = add_study(rows, data_dir, dry_run=args.dry_run)
    for table, rs in rows.items():
        for r in rs:
            print(f"  {table}: " + ", ".join(f"{k}={v}" for k, v in r.items() if v != ""))
    if problems:
        print(f"NOT ADDED: the dataset with these rows has {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    if args.dry_run:
        print("valid; nothing written (--dry-run)")
        return 0
    print(f"==> added {args.study_id} to {_rel(data_dir)} ({len(rows['arms'])} arm(s), {len(rows['outcomes'])} outcome row(s)); "
          "next: `make review` refits what changed and shows what moved")
    return 0


def cmd_calculator(args: argparse.Namespace) -> int:
    from trt_recovery.posterior import check_name, load_fit
    from trt_recovery.survival.calculator import write_bundle

    check_name(args.analysis)
    target = write_bundle(load_fit(args.analysis))
    print(f"==> wrote {_rel(target)} (and its .json): `trt-recovery predict --analysis {args.analysis}` answers from it")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from trt_recovery.posterior import check_name
    from trt_recovery.site import build_site

    check_name(args.analysis)
    target = build_site(args.analysis, Path(args.output) if args.output else None)
    print(f"==> wrote {_rel(target)} ({target.stat().st_size / 1e6:.1f} MB; opens from file://, no network)")
    return 0


def cmd_certainty(args: argparse.Namespace) -> int:
    from trt_recovery.certainty import main as write_sof

    out = write_sof(tuple(args.analyses)) if args.analyses else write_sof()
    print(f"==> summary of findings (GRADE-style certainty): {len(out)} files")
    for p in out:
        print(f"  {_rel(p)}")
    return 0


def cmd_prisma(args: argparse.Namespace) -> int:
    from trt_recovery.prisma import write_prisma
    from trt_recovery.validate import load_dataset

    out = write_prisma(load_dataset(Path(args.data_dir)))
    print(f"==> PRISMA flow: {len(out)} files")
    for p in out:
        print(f"  {_rel(p)}")
    return 0


def cmd_priors(args: argparse.Namespace) -> int:
    from trt_recovery.models import REGISTRY

    names = args.models or sorted(REGISTRY)
    for name in names:
        if name not in REGISTRY:
            print(f"error: unknown model {name!r} (registered: {', '.join(sorted(REGISTRY))})", file=sys.stderr)
            return 1
        spec = REGISTRY[name]
        print(f"{name}: {spec.description}")
        for k, v in spec.default_priors.items():
            print(f"  {k:<32} default {v:<8.4g} {spec.prior_notes.get(k, '')}")
        print()
    print("Override any of them under `priors:` in an analysis config (analysis/<name>.yaml).")
    return 0


def cmd_outputs(args: argparse.Namespace) -> int:
    print("Outputs (all under analysis/results/, rebuilt by make):")
    for label, d in (
        ("derived data", paths.DERIVED_DIR),
        ("posteriors", paths.POSTERIORS_DIR),
        ("figures", paths.FIGURES_DIR),
        ("tables", paths.TABLES_DIR),
        ("executed notebooks", paths.EXECUTED_NOTEBOOKS_DIR),
        ("calculator bundles (fast predict)", paths.CALCULATOR_DIR),
        ("site (open index.html in a browser)", paths.SITE_DIR),
    ):
        files = sorted(p for p in d.glob("*") if p.is_file()) if d.exists() else []
        print(f"  {label}: {_rel(d)}/ ({len(files)} files)")
        for p in files:
            print(f"    {p.name}")
    return 0


def _seed(text: str) -> int:
    """argparse type of a seed: a whole number from 0 to 2**32 - 1 (what every sampler accepts)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number, got {text!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is between 0 and {2**32 - 1}, got {v}")
    return v


def _dask_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (tcp://host:8786); default: a local cluster on this machine")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trt-recovery", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="validate data/ against data/schema.yaml")
    p.add_argument("--data-dir", default=str(paths.DATA_DIR), help="folder holding the three CSV tables")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("dictionary", help="print (or --write/--check) the data dictionary generated from the schema")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true")
    g.add_argument("--check", action="store_true")
    p.set_defaults(func=cmd_dictionary)
    p = sub.add_parser("harmonise", help="write the harmonised table, exclusions, evidence map and references")
    p.set_defaults(func=cmd_harmonise)
    p = sub.add_parser("fit", help="fit an analysis (analysis/<name>.yaml) and save its posterior")
    p.add_argument("analysis")
    p.add_argument("--seed", type=_seed, default=None, help="override the config's seed")
    p.add_argument("--allow-failure", action="store_true",
                   help="exit 0 when the fit fails its convergence checks (sensitivity fits: reported as failed)")
    p.add_argument("--status-file", default=None, help="write the fit's outcome (passed/failed) to this JSON file")
    p.set_defaults(func=cmd_fit)
    p = sub.add_parser("report", help="figures and tables from cached posteriors (never refits)")
    p.add_argument("analyses", nargs="+")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("notebook", help="execute a jupytext notebook headless")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_notebook)
    p = sub.add_parser("predict", help="P(recovered by t), median time and P(never) for a profile")
    p.add_argument("--analysis", default="survival", help="analysis name, or a path to a saved posterior (.nc)")
    from trt_recovery.schema import load_schema
    from trt_recovery.survival.design import COVARIATES, FACTOR

    vocab = load_schema().terms
    p.add_argument("--strategy", default="none", help=f"restart strategy (default none); one of: {', '.join(vocab('strategy'))}")
    p.add_argument("--population", default="trt", help=f"default trt; one of: {', '.join(vocab('population'))}")
    p.add_argument("--threshold", default="any", help=f"recovery threshold (default any); one of: {', '.join(vocab('threshold'))}")
    p.add_argument("--preparation", default=None,
                   help="androgen preparation (default: the population average); one of: "
                        f"{', '.join(FACTOR['preparation'].all_levels())}")

    for cov in COVARIATES:
        p.add_argument(cov.cli_flag, type=float, default=None, dest=_covariate_dest(cov.cli_flag),
                       help=f"{cov.label}; unset: the population average")
    p.add_argument("--times", default="3,6,12,24", help="comma-separated months")
    p.add_argument("--seed", type=_seed, default=0, help="seed for the new-study draws")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--full", action="store_true",
                   help="answer through the model's graph (sampler stack) even when a current calculator bundle "
                        "exists (make site builds it); needed for evidence flags at other times than 3/6/12/24 months")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("preserve", help="P(sperm kept during ongoing androgen) for a strategy, with the evidence behind it")
    p.add_argument("--analysis", default="preservation", help="analysis name, or a path to a saved posterior (.nc)")
    p.add_argument("--strategy", default="hcg_during_trt",
                   help="continued_trt, hcg_during_trt, fsh_during_trt or hcg_fsh_during_trt")
    p.add_argument("--population", default="trt", help="trt, aas or contraception")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_preserve, kind="preservation")
    p = sub.add_parser("pregnancy", help="P(pregnancy by the end of follow-up) for a strategy and population, with the "
                                         "rows behind it (a separate pooled analysis; mostly indirect, hh)")
    p.add_argument("--analysis", default="pregnancy", help="analysis name, or a path to a saved posterior (.nc)")
    p.add_argument("--strategy", default="hcg_fsh", help="a strategy (hcg, hcg_fsh, hcg_combination, mixed_treatments...)")
    p.add_argument("--population", default="hh", help="hh, aas, trt or contraception")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_preserve, kind="pregnancy")
    p = sub.add_parser("verify", help="compare headline numbers with analysis/reference/*.json")
    p.add_argument("analyses", nargs="*")
    p.add_argument("--write-reference", action="store_true", help="rewrite the reference files (maintainers)")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("diff", help="what moved since the committed references, and the rows added, removed or changed")
    p.add_argument("analyses", nargs="*")
    p.add_argument("--changelog", action="store_true", help="append a dated entry to analysis/CHANGELOG.md")
    p.add_argument("--attribute", action="store_true",
                   help="refit without each study whose rows were added or changed since the reference (through Dask): "
                        "which study moved which number")
    _dask_options(p)
    p.set_defaults(func=cmd_diff)
    p = sub.add_parser("loso", help="leave-one-study-out influence of each study on cached analyses (table)")
    p.add_argument("analyses", nargs="+")
    p.add_argument("--method", choices=["psis", "refit"], default="psis",
                   help="psis: importance-sample the saved posterior where Pareto k allows, refit the other studies "
                        "(default); refit: refit without every study")
    p.add_argument("--retry-target-accept", type=float, default=0.999,
                   help="target_accept of the one retry of a refit that failed through divergences only (0: no retry)")
    _dask_options(p)
    p.set_defaults(func=cmd_loso)
    p = sub.add_parser("priors", help="list every model's prior parameters with defaults and meanings")
    p.add_argument("models", nargs="*")
    p.set_defaults(func=cmd_priors)
    p = sub.add_parser("prisma", help="PRISMA 2020 flow (table and figure) from data/screening.csv")
    p.add_argument("--data-dir", default=str(paths.DATA_DIR))
    p.set_defaults(func=cmd_prisma)
    p = sub.add_parser("check-posteriors", help="move unreadable or corrupt posteriors aside so that make refits them")
    p.set_defaults(func=cmd_check_posteriors)
    p = sub.add_parser("stamps", help="per-analysis hashes of the rows each model uses (make refits only what changed)")
    p.set_defaults(func=cmd_stamps)
    p = sub.add_parser("certainty", help="summary-of-findings table with GRADE-style certainty, from the cached main fits")
    p.add_argument("analyses", nargs="*", help="main analyses to include (default: survival, success_rate, preservation, pregnancy, concentration)")
    p.set_defaults(func=cmd_certainty)
    p = sub.add_parser("add-study", help="add a new study's rows (studies, arms, outcomes, screening) from its identifier "
                                         "and column=value pairs; validated with the whole dataset before writing")
    p.add_argument("study_id", help="first author's surname and year, e.g. samplaski2014")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--pmid", default=None)
    g.add_argument("--doi", default=None)
    p.add_argument("--study", nargs="+", default=[], metavar="COLUMN=VALUE", help="studies.csv cells (first_author=..., year=...)")
    p.add_argument("--arm", nargs="+", action="append", default=[], metavar="SUFFIX COLUMN=VALUE",
                   help="one arm: its id suffix (arm_id = <study_id>_<suffix>), then arms.csv cells; repeat per arm")
    p.add_argument("--outcome", nargs="+", action="append", default=[], metavar="ARM_SUFFIX COLUMN=VALUE",
                   help="one reported number: its arm's suffix, then outcomes.csv cells; repeat per row")
    p.add_argument("--screening", nargs="+", default=[], metavar="COLUMN=VALUE",
                   help="screening.csv cells of the study's 'included' record (reason=..., round=..., where_found=...)")
    p.add_argument("--data-dir", default=str(paths.DATA_DIR))
    p.add_argument("--dry-run", action="store_true", help="show and validate the rows without writing them")
    p.set_defaults(func=cmd_add_study)
    p = sub.add_parser("calculator", help="precompute the calculator bundle of a survival fit (fast predict, make site)")
    p.add_argument("analysis", nargs="?", default="survival")
    p.set_defaults(func=cmd_calculator)
    p = sub.add_parser("site", help="the self-contained HTML page: recovery calculator, summary of findings, figures")
    p.add_argument("--analysis", default="survival", help="survival analysis whose posterior the calculator uses")
    p.add_argument("--output", default=None, help="where to write the page (default analysis/results/site/index.html)")
    p.set_defaults(func=cmd_site)
    p = sub.add_parser("outputs", help="list where every output is")
    p.set_defaults(func=cmd_outputs)
    return parser


def _input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input (a one-line message, exit 1), imported only when one is
    raised, so that arguments are checked before any heavy module loads."""
    from trt_recovery.config import ConfigError
    from trt_recovery.errors import BadInputError, UnknownNameError
    from trt_recovery.posterior import FitFailedError, StaleFitError
    from trt_recovery.prisma import ScreeningLogError
    from trt_recovery.schema import SchemaDefinitionError
    from trt_recovery.validate import DataValidationError

    return (ConfigError, DataValidationError, FileNotFoundError, UnknownNameError, BadInputError, FitFailedError,
            StaleFitError, ScreeningLogError, SchemaDefinitionError)


def main(argv: list[str] | None = None) -> int:
    os.environ["MPLBACKEND"] = "Agg"  # files only, never a window (no import: predict stays fast)
    args = build_parser().parse_args(argv)
    problem = paths.tree_mismatch()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` and the like: end quietly (Python docs' recipe)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, _input_errors()):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        # a bug, not bad input: say so, and keep the traceback for the report
        print("\ntrt-recovery hit an internal error (a bug, not a problem with your input). Please report it as "
              "an issue of this repository with the command you ran and the traceback below.\n", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
