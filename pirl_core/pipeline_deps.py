"""The pirl_core files each dvc stage depends on, computed from imports and written into dvc.yaml.

A stage that listed all of `pirl_core/` went stale on any edit anywhere, so a fix to a LIBERO
expert made six hours of MetaWorld RL look out of date. Here a stage depends on the import
closure of its notebook: every pirl_core module reached by `import` statements, at module level
or inside functions, plus the data files those modules name. One exception keeps the closure
per benchmark: the factory picks a simulator or a model family with imports inside functions,
and such an import of another benchmark's or family's modules is not followed; nor is one of the
demo recorders and scripted experts, except in stages that record demos.

    python -m pirl_core.pipeline_deps            # exit 1 and list the stages whose deps differ
    python -m pirl_core.pipeline_deps --write    # rewrite those deps in dvc.yaml

A stage's benchmarks are its `-p benchmark`, else the `benchmark="..."` literals of its notebook,
else every preset's `env.benchmark` (a preset switch is one key); its model families its
`-p family` / matrix `family`, else every preset's `policy.name` (`FAMILY_OF_STAGE` for stages
whose family comes from a checkpoint). Changing either in params/ changes the deps: rerun the
command then (tests/test_pipeline_deps.py fails until it is).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

import yaml

PACKAGE = "pirl_core"
BENCHMARK_MODULES = {
    "metaworld": ("envs/metaworld.py", "data/demos.py"),
    "maniskill": ("envs/maniskill.py", "envs/maniskill_batched.py", "data/maniskill_demos.py"),
    "libero": ("envs/libero.py", "data/libero_demos.py", "data/libero_experts.py",
               "data/libero_geometry.py", "data/libero_grasps.py", "data/libero_articulated.py"),
}
FAMILY_MODULES = {
    "small": ("policies/small.py",),
    "pi0": ("policies/pi0.py", "policies/pi0_build.py"),
    "pi05": ("policies/pi05.py", "policies/pi05_lerobot.py"),
    "gr00t": ("policies/gr00t.py",),
}
FAMILY_OF_STAGE = {"vlm_lora": ("pi0",)}  # the models stage's pi0 checkpoint
# the demo recorders and scripted experts: only the stages whose notebook records demos use them
RECORDER_MODULES = ("data/demos.py", "data/maniskill_demos.py", "data/libero_demos.py",
                    "data/libero_experts.py", "data/libero_geometry.py", "data/libero_grasps.py",
                    "data/libero_articulated.py")


def _module_file(root: Path, dotted: str) -> Path | None:
    """`pirl_core.a.b` -> its .py file (module or package __init__) under root's parent."""
    rel = Path(*dotted.split("."))
    for candidate in (root.parent / rel.with_suffix(".py"), root.parent / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(tree: ast.AST, package: str) -> list[tuple[str, bool]]:
    """(dotted module name, imported inside a function) for each pirl_core import in tree;
    `package` is the tree's own package, against which relative imports resolve."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            lazy = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                parts = package.split(".")[:len(package.split(".")) - child.level + 1]
                module = ".".join((parts if child.level else []) + [child.module or ""]).strip(".")
                found.append((module, in_function))
                # `from pirl_core.data import demos` imports the submodule demos
                found.extend((f"{module}.{a.name}", in_function) for a in child.names)
            visit(child, lazy)

    visit(tree, False)
    return [(name, lazy) for name, lazy in found if name.split(".")[0] == PACKAGE]


def _package_of(root: Path, path: Path) -> str:
    """The dotted package a module file belongs to (a package's __init__ is its own)."""
    return ".".join(path.relative_to(root.parent).parent.parts)


def _with_parents(root: Path, path: Path) -> set[Path]:
    """path and the __init__.py of every package above it (Python runs them on import)."""
    files = {path}
    for parent in path.parents:
        if parent == root.parent:
            break
        if (parent / "__init__.py").is_file():
            files.add(parent / "__init__.py")
    return files


def _excluded(root: Path, benchmarks: set[str], families: set[str],
              records: bool) -> set[Path]:
    """Modules of the other benchmarks and model families, and the demo recorders unless the
    stage records demos: lazy imports of these are not followed."""
    other = [m for b, mods in BENCHMARK_MODULES.items() if b not in benchmarks for m in mods]
    other += [m for f, mods in FAMILY_MODULES.items() if f not in families for m in mods]
    other += [] if records else list(RECORDER_MODULES)
    return {root / m for m in other}


def import_closure(sources: list[str], root: Path, benchmarks: set[str],
                   families: set[str]) -> set[Path]:
    """Every pirl_core file that sources reach: modules, and the data files that they or the
    sources name (as a quoted file name). A source calling `record_demos(` records demos."""
    excluded = _excluded(root, benchmarks, families, any("record_demos(" in s for s in sources))
    seen: set[Path] = set()
    pending = [(ast.parse(src), "") for src in sources]
    while pending:
        tree, package = pending.pop()
        for name, lazy in _imported_names(tree, package):
            path = _module_file(root, name)
            if path is None or path in seen or (lazy and path in excluded):
                continue
            for new in _with_parents(root, path) - seen:
                seen.add(new)
                pending.append((ast.parse(new.read_text()), _package_of(root, new)))
    texts = "\n".join([*sources, *(p.read_text() for p in seen)])
    named = {p for p in root.rglob("*") if p.suffix in (".yaml", ".json", ".txt")
             and re.search(rf"[\"']{re.escape(p.name)}[\"']", texts)}
    return seen | named


def notebook_sources(path: Path) -> list[str]:
    """The code cells of a notebook, without IPython magics (they are not Python)."""
    cells = json.loads(path.read_text())["cells"]
    out = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            out.append("\n".join(ln for ln in lines if not ln.lstrip().startswith(("%", "!"))))
    return out


def _preset_choices(repo: Path, params_path: str) -> tuple[set[str], set[str]]:
    """The `env.benchmark` and `policy.name` values over every preset in params/: a stage that
    takes them from the params runs any of them after a one-key preset switch."""
    from pirl_core.config import load_config

    cfgs = [load_config(repo / params_path, preset=p.stem)
            for p in sorted((repo / "params").glob("*.yaml"))]
    return {c.env.benchmark for c in cfgs}, {c.policy.name for c in cfgs}


def _stage_choices(name: str, stage: dict, notebook: list[str], benchmarks: set[str],
                   families: set[str]) -> tuple[set[str], set[str]]:
    """(benchmarks, model families) of one dvc.yaml stage: its cmd's `-p benchmark` / `-p family`
    (a matrix's families), else the notebook's `benchmark="..."` literals, else the presets'."""
    cmd = (stage.get("do") or stage)["cmd"]
    bench = re.search(r"-p benchmark (\w+)", cmd)
    literals = set(re.findall(r'benchmark="(\w+)"', "\n".join(notebook)))
    if bench or literals:
        benchmarks = {bench.group(1)} if bench else literals
    fam = re.search(r"-p family (\S+)", cmd)
    if fam and fam.group(1) == "${item.family}":
        families = set(stage["matrix"]["family"])
    elif fam:
        families = {fam.group(1)}
    elif name in FAMILY_OF_STAGE:
        families = set(FAMILY_OF_STAGE[name])
    return benchmarks, families


def _as_deps(files: set[Path], repo: Path) -> list[str]:
    """Repo-relative paths, a subpackage written as its folder when every file of it is used."""
    root = repo / PACKAGE
    out = set(str(p.relative_to(repo)) for p in files)
    for sub in sorted(p for p in root.iterdir() if (p / "__init__.py").is_file()):
        members = {str(p.relative_to(repo)) for p in sub.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
        if members and members <= out:
            out = (out - members) | {f"{sub.relative_to(repo)}/"}
    return sorted(out)


def stage_deps(repo: Path, params_path: str = "params.yaml") -> dict[str, list[str]]:
    """Stage name -> the pirl_core deps it should list, for every notebook stage of dvc.yaml."""
    presets = _preset_choices(repo, params_path)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        cmd = (stage.get("do") or stage)["cmd"]
        notebook = re.search(r"notebooks/\d\d_\w+\.ipynb", cmd)
        if notebook is None:
            continue
        sources = notebook_sources(repo / notebook.group(0))
        benchmarks, families = _stage_choices(name, stage, sources, *presets)
        files = import_closure(sources, repo / PACKAGE, benchmarks, families)
        out[name] = _as_deps(files, repo)
    return out


def rewrite_deps(text: str, wanted: dict[str, list[str]]) -> tuple[str, list[str]]:
    """dvc.yaml text with each stage's pirl_core deps replaced by wanted[stage]; the changed
    stages. Other deps keep their place; the pirl_core ones go where the first of them was."""
    lines, out, changed, stage, i = text.splitlines(), [], [], None, 0
    while i < len(lines):
        line = lines[i]
        if m := re.match(r"^  (\w+):\s*(#.*)?$", line):
            stage = m.group(1)
        out.append(line)
        i += 1
        m = re.match(r"^(\s+)deps:\s*$", line)
        if not m or stage not in wanted:
            continue
        item = re.compile(rf"^{m.group(1)}- (\S+)\s*$")
        items = []
        while i < len(lines) and (hit := item.match(lines[i])):
            items.append(hit.group(1))
            i += 1
        ours = [d for d in items if d.startswith(f"{PACKAGE}/")]
        at = items.index(ours[0]) if ours else min(1, len(items))
        rest = [d for d in items if d not in ours]
        new = rest[:at] + wanted[stage] + rest[at:]
        if new != items:
            changed.append(stage)
        out.extend(f"{m.group(1)}- {d}" for d in new)
    return "\n".join(out) + "\n", changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's pirl_core deps")
    parser.add_argument("--repo", default=".", help="the repository root")
    parser.add_argument("--params", default="params.yaml", help="params file (as dvc reads it)")
    args = parser.parse_args(argv)
    repo = Path(args.repo)
    text = (repo / "dvc.yaml").read_text()
    new, changed = rewrite_deps(text, stage_deps(repo, args.params))
    if args.write and changed:
        (repo / "dvc.yaml").write_text(new)
    for name in changed:
        print(f"{'rewrote' if args.write else 'stale'}: {name}")
    return 1 if changed and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
