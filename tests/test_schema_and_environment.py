"""The schema, the generated data dictionary, and the two environment files stay in step."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement

from trt_recovery import paths
from trt_recovery.schema import data_dictionary, load_schema


def test_committed_dictionary_is_generated_from_schema():
    committed = (paths.DATA_DIR / "DICTIONARY.md").read_text(encoding="utf-8")
    assert committed == data_dictionary(), "data/DICTIONARY.md is stale: run `make dictionary`"


def test_dictionary_lists_every_column_and_vocabulary_term():
    schema = load_schema()
    text = data_dictionary(schema)
    for t in schema.tables.values():
        for c in t.columns:
            assert f"| `{c}` |" in text
    for terms in schema.vocabularies.values():
        for term in terms:
            assert f"| `{term}` |" in text


def test_csv_headers_follow_the_schema_order():
    schema = load_schema()
    for t in schema.tables.values():
        header = (paths.DATA_DIR / t.file).read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header == t.column_names, f"{t.file} header differs from data/schema.yaml"


def _normalise(spec: str) -> tuple[str, str]:
    req = Requirement(re.sub(r"\s+", "", spec))
    name = re.sub(r"[-_.]+", "-", req.name).lower()
    return name, str(req.specifier)


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((paths.ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pip_deps = dict(_normalise(d) for d in pyproject["project"]["dependencies"])
    pip_deps.update(_normalise(d) for d in pyproject["project"]["optional-dependencies"]["dev"])
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert env["channels"] == ["conda-forge"]
    conda_deps, pip_section = {}, []
    for d in env["dependencies"]:
        if isinstance(d, dict):
            pip_section += d["pip"]
            continue
        name, spec = _normalise(d)
        conda_deps[name] = spec
    python_spec = conda_deps.pop("python")
    conda_deps.pop("pip")
    assert python_spec == str(Requirement("python" + pyproject["project"]["requires-python"]).specifier)
    assert pip_section == ["-e ."], "the package itself is installed by pip from the repository"
    missing_in_conda = sorted(set(pip_deps) - set(conda_deps))
    missing_in_pip = sorted(set(conda_deps) - set(pip_deps))
    assert not missing_in_conda, f"in pyproject.toml but not environment.yml: {missing_in_conda}"
    assert not missing_in_pip, f"in environment.yml but not pyproject.toml: {missing_in_pip}"
    differing = {k: (pip_deps[k], conda_deps[k]) for k in pip_deps if pip_deps[k] != conda_deps[k]}
    assert not differing, f"version constraints differ (pyproject, environment.yml): {differing}"
