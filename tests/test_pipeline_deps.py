"""dvc.yaml's pirl_core deps: the import closure per stage, and the rewrite that keeps them so."""

from pathlib import Path

from pirl_core.pipeline_deps import import_closure, rewrite_deps, stage_deps

REPO = Path(__file__).resolve().parents[1]


def test_dvc_yaml_deps_match_the_import_closures():
    _, stale = rewrite_deps((REPO / "dvc.yaml").read_text(), stage_deps(REPO))
    assert stale == [], f"run `python -m pirl_core.pipeline_deps --write`: {stale}"


def test_each_benchmark_stage_depends_on_its_own_simulator_only():
    deps = stage_deps(REPO)
    assert "pirl_core/envs/metaworld.py" in deps["rl"]
    assert "pirl_core/envs/libero.py" in deps["rl"]  # the paper preset's env.benchmark
    assert not any("maniskill" in d or "data/libero" in d for d in deps["rl"])
    assert "pirl_core/data/libero_experts.py" in deps["libero_demos"]
    assert "pirl_core/envs/metaworld.py" not in deps["libero_rl"]
    # the scripted experts only matter where demos are recorded
    assert "pirl_core/data/libero_experts.py" not in deps["libero_sft"]
    assert "pirl_core/envs/libero.py" in deps["libero_sft"]
    assert "pirl_core/envs/maniskill.py" in deps["maniskill_rl"]
    # the models matrix builds every family; the main stages the presets' (small; paper: pi0)
    assert "pirl_core/policies/" in deps["models"]
    assert "pirl_core/policies/pi0.py" in deps["rl"]
    assert "pirl_core/policies/pi05.py" not in deps["rl"]
    assert "pirl_core/data/paper_numbers.yaml" in deps["libero"]  # named by the notebook


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pirl_core"
    for name, text in {"__init__.py": "", "envs/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_lazy_imports_of_another_benchmark_are_not_followed(tmp_path):
    root = _package(tmp_path, {
        "factory.py": "import pirl_core.core\n"
                      "def make(b):\n"
                      "    if b == 'libero':\n"
                      "        from pirl_core.envs.libero import Env\n"
                      "    from pirl_core.envs import metaworld\n",
        "core.py": "NAME = 'table.yaml'\n",
        "envs/libero.py": "", "envs/metaworld.py": "X = \"metaworld_instructions.yaml\"\n",
        "data/metaworld_instructions.yaml": "a: 1\n", "data/table.yaml": "b: 2\n",
        "unused.py": "",
    })
    got = {str(p.relative_to(root)) for p in
           import_closure(["from pirl_core import factory"], root, {"metaworld"}, {"small"})}
    assert got == {"__init__.py", "factory.py", "core.py", "envs/__init__.py",
                   "envs/metaworld.py", "data/metaworld_instructions.yaml", "data/table.yaml"}
    libero = import_closure(["import pirl_core.factory"], root, {"libero"}, {"small"})
    assert root / "envs/libero.py" in libero


def test_module_level_imports_are_followed_whatever_the_benchmark(tmp_path):
    root = _package(tmp_path, {"summary.py": "from pirl_core.envs.libero import SUITES\n",
                               "envs/libero.py": "SUITES = ()\n"})
    got = import_closure(["from pirl_core.summary import x"], root, {"metaworld"}, {"small"})
    assert root / "envs/libero.py" in got


def test_rewrite_replaces_only_the_pirl_core_deps_in_place():
    text = ("stages:\n"
            "  a:\n    cmd: x\n    deps:\n    - nb.ipynb\n    - pirl_core/\n    - data/d\n"
            "    outs:\n    - o\n"
            "  b:\n    foreach: [1]\n    do:\n      cmd: y\n      deps:\n      - nb2.ipynb\n"
            "      - params.yaml\n")
    new, changed = rewrite_deps(text, {"a": ["pirl_core/x.py", "pirl_core/y.py"],
                                       "b": ["pirl_core/z.py"]})
    assert changed == ["a", "b"]
    assert ("    deps:\n    - nb.ipynb\n    - pirl_core/x.py\n    - pirl_core/y.py\n"
            "    - data/d\n    outs:\n") in new
    assert "      deps:\n      - nb2.ipynb\n      - pirl_core/z.py\n      - params.yaml\n" in new
    assert rewrite_deps(new, {"a": ["pirl_core/x.py", "pirl_core/y.py"],
                              "b": ["pirl_core/z.py"]}) == (new, [])


def test_relative_imports_resolve_against_the_module_package(tmp_path):
    root = _package(tmp_path, {"envs/chunked.py": "from .helpers import x\nfrom .. import core\n",
                               "envs/helpers.py": "", "core.py": ""})
    got = import_closure(["import pirl_core.envs.chunked"], root, {"metaworld"}, {"small"})
    assert {root / "envs/helpers.py", root / "core.py"} <= got
