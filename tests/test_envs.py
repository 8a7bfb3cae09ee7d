"""The per-stage conda environments (envs/*.yaml), linted without conda.

* every env file is well-formed: conda-forge only, pinned conda and pip packages, no local
  paths in the pip section (mepr itself comes from the env's post-deploy script);
* the pins that must agree do: torch/torchvision/torchaudio pairs, WhisperX 3.8.6's needs,
  mediapipe 0.10.21's numpy<2 (hence pyarrow<26);
* every rule declares a conda env, and that env provides every third-party module the mepr
  code the rule runs imports. The rule -> env map and each rule's command are read from the
  rule files (cross-checked against `snakemake --list-rules`); the imports are found with ast,
  following mepr's own imports from the command's handler.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
ENV_DIR = REPO / "envs"
ENV_FILES = sorted(ENV_DIR.glob("*.yaml"))

# Import name -> the distributions (PyPI names) that provide it, where the name differs or
# several do; any other import name must be its own distribution name (canonicalised).
OPENCV = ("opencv-python-headless", "opencv-python", "opencv-contrib-python")
DISTRIBUTIONS_OF = {
    "cv2": OPENCV,
    "skimage": ("scikit-image",),
    "sklearn": ("scikit-learn",),
    "yaml": ("pyyaml",),
    "PIL": ("pillow",),
    "open_clip": ("open-clip-torch",),
    "mamba_ssm": ("mamba-ssm",),
    "pyannote": ("pyannote-audio",),
    "huggingface_hub": ("huggingface-hub",),
    "jinja2": ("jinja2",),
    "markupsafe": ("markupsafe", "jinja2"),  # jinja2 requires it
}
# Conda packages that provide a Python distribution under another name.
CONDA_PROVIDES = {"pytorch": "torch", "py-opencv": "opencv-python-headless"}


# --------------------------------------------------------------------------- env files


@dataclass(frozen=True)
class Env:
    path: Path
    conda: dict[str, str]  # name -> version spec ("" if none)
    pip: dict[str, Requirement]  # canonical name -> requirement

    @property
    def provides(self) -> set[str]:
        names = {canonicalize_name(CONDA_PROVIDES.get(n, n)) for n in self.conda}
        return names | set(self.pip)

    def pinned_version(self, dist: str) -> Version | None:
        req = self.pip.get(canonicalize_name(dist))
        if req is None:
            return None
        for spec in req.specifier:
            if spec.operator in ("==", "~=", "==="):
                return Version(spec.version.rstrip(".*"))
        return None


@cache
def load_env(path: Path) -> Env:
    doc = yaml.safe_load(path.read_text())
    conda: dict[str, str] = {}
    pip: dict[str, Requirement] = {}
    for dep in doc["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                req = Requirement(line)
                pip[canonicalize_name(req.name)] = req
        else:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", dep)
            assert m, f"{path.name}: cannot read conda dependency {dep!r}"
            conda[m.group(1)] = m.group(2).strip()
    return Env(path, conda, pip)


def test_there_is_one_env_per_stage_family():
    assert {p.stem for p in ENV_FILES} >= {"media", "asr", "embed", "train"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_is_well_formed(path):
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict) and set(doc) <= {"name", "channels", "dependencies"}, doc.keys()
    # conda-forge only: reproducible across machines and free of the defaults channel's terms
    assert doc["channels"] == ["conda-forge", "nodefaults"]
    deps = doc["dependencies"]
    assert isinstance(deps, list) and deps
    pip_sections = [d for d in deps if isinstance(d, dict)]
    assert len(pip_sections) == 1 and set(pip_sections[0]) == {"pip"}
    assert "pip" in deps, "a pip section needs pip itself among the conda packages"
    for line in pip_sections[0]["pip"]:
        # no -e/paths/URLs: conda runs pip from wherever Snakemake copied the env file
        # (.snakemake/conda/), so a relative path would point somewhere else
        assert not line.startswith("-") and "/" not in line and "@" not in line, line
        Requirement(line)  # parses


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_every_package_is_pinned(path):
    env = load_env(path)
    assert env.conda.get("python") == "=3.11", "python=3.11 in every env (the venv's version)"
    for name, spec in env.conda.items():
        if name == "pip":
            continue
        assert re.fullmatch(r"(=|==|>=|<|,|[0-9.*])+", spec or "-"), (
            f"{path.name}: conda package {name} has no version pin"
        )
    for name, req in env.pip.items():
        ops = {s.operator for s in req.specifier}
        assert ops & {"==", "~="} or {">=", "<"} <= ops, (
            f"{path.name}: pip package {name} must be pinned (==, ~= or a >=,< range), "
            f"found '{req.specifier}'"
        )


def _torch_family_ok(env: Env) -> None:
    torch = env.pinned_version("torch")
    if torch is None:
        return
    vision, audio = env.pinned_version("torchvision"), env.pinned_version("torchaudio")
    if vision is not None:  # torch 2.N pairs with torchvision 0.(N+15)
        assert (vision.major, vision.minor) == (0, torch.minor + 15), (
            f"{env.path.name}: torch {torch} needs torchvision 0.{torch.minor + 15}.x, not {vision}"
        )
    if audio is not None:  # torchaudio shares torch's version
        assert audio.release[:2] == torch.release[:2], (
            f"{env.path.name}: torch {torch} needs torchaudio {torch.major}.{torch.minor}.x"
        )


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_pins_coexist(path):
    env = load_env(path)
    _torch_family_ok(env)

    def allows(dist: str, spec: str) -> None:
        req = env.pip.get(canonicalize_name(dist))
        assert req is not None, f"{path.name}: {dist} must be pinned here ({spec})"
        pinned = env.pinned_version(dist)
        if pinned is not None:
            assert pinned in SpecifierSet(spec), f"{path.name}: {dist} {pinned} violates {spec}"
        else:  # a range: it must lie inside spec at both ends we can probe
            bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
            assert all(b in SpecifierSet(spec) for b in bounds), (
                f"{path.name}: {dist} '{req.specifier}' reaches outside {spec}"
            )

    if "whisperx" in env.pip:
        # whisperx 3.8.6's own requirements (METADATA Requires-Dist)
        assert str(env.pip["whisperx"].specifier) == "==3.8.6"
        allows("torch", "~=2.8.0")
        allows("torchaudio", "~=2.8.0")
        allows("torchvision", "~=0.23.0")
        allows("huggingface-hub", "<1.0")
        allows("pyannote-audio", ">=4.0.0")
        allows("numpy", ">=2.1.0")
        allows("transformers", ">=4.48.0")
        assert "mediapipe" not in env.pip, "mediapipe 0.10.21 needs numpy<2, whisperx numpy>=2.1"
    if "mediapipe" in env.pip:
        assert str(env.pip["mediapipe"].specifier) == "==0.10.21"
        allows("numpy", "<2")
        if "pyarrow" in env.pip:
            allows("pyarrow", "<26")  # pyarrow 26 needs numpy 2


def test_post_deploy_installs_mepr_without_dependencies(tmp_path):
    """envs/X.post-deploy.sh installs this checkout (--no-deps) into env X, found from
    $MEPR_ROOT or the directory snakemake runs in, and says so when it cannot find it."""
    log = tmp_path / "pip.log"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (fake / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:/usr/bin:/bin"}
    for path in ENV_FILES:
        script = path.with_name(f"{path.stem}.post-deploy.sh")
        assert script.exists(), f"{script.name} missing: the env would lack mepr itself"
        # as snakemake runs it: from the workdir (here the checkout), a copy of the script
        copy = tmp_path / "copy.sh"
        copy.write_text(script.read_text())
        log.unlink(missing_ok=True)
        subprocess.run(["bash", str(copy)], cwd=REPO, env=env, check=True)
        assert log.read_text().split() == ["-m", "pip", "install", "--no-deps", "-e", str(REPO)]
        # from elsewhere, with MEPR_ROOT
        log.unlink()
        subprocess.run(
            ["bash", str(copy)], cwd=tmp_path, env={**env, "MEPR_ROOT": str(REPO)}, check=True
        )
        assert str(REPO) in log.read_text()
        # from elsewhere, without: a clear error
        proc = subprocess.run(
            ["bash", str(copy)], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode != 0 and "MEPR_ROOT" in proc.stderr


# --------------------------------------------------------------------------- rules -> envs


@dataclass(frozen=True)
class RuleInfo:
    name: str
    file: Path
    conda: Path | None
    shell: str
    params: str  # the params directive's text, as written ("" if none)


def _string_value(expr: str, names: dict[str, str]) -> str:
    """A directive's value: a (possibly f-) string literal, or concatenated literals."""
    node = ast.parse(f"(\n{expr}\n)", mode="eval").body
    parts = node.values if isinstance(node, ast.JoinedStr) else [node]
    out = []
    for part in parts:
        if isinstance(part, ast.Constant):
            out.append(str(part.value))
        elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name):
            out.append(names[part.value.id])
        elif isinstance(part, ast.FormattedValue):
            out.append("{" + ast.unparse(part.value) + "}")  # a Snakemake placeholder
        else:
            raise ValueError(f"cannot read {expr!r}")
    return "".join(out)


@cache
def rules() -> dict[str, RuleInfo]:
    """Every rule's conda env and shell command, read from the Snakefile and rule files."""
    files = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]
    names: dict[str, str] = {}
    for f in files:  # module-level string constants such as ENVS = "../../envs"
        for m in re.finditer(r'^([A-Z_]+) = ("[^"\n]*")$', f.read_text(), re.M):
            names[m.group(1)] = ast.literal_eval(m.group(2))
    found: dict[str, RuleInfo] = {}
    for f in files:
        text = f.read_text()
        heads = list(re.finditer(r"^(?:rule|checkpoint) (\w+):", text, re.M))
        for i, head in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            block = text[head.end() : end]
            directives = dict(
                (m.group(1), m.group(2))
                for m in re.finditer(r"^    (\w+):\n((?:        .*\n|\s*\n)+)", block, re.M)
            )
            conda = shell = None
            if "conda" in directives:
                conda = f.parent / _string_value(directives["conda"], names)
            if "shell" in directives:
                shell = _string_value(directives["shell"], names)
            params = directives.get("params", "")
            found[head.group(1)] = RuleInfo(head.group(1), f, conda, shell or "", params)
    return found


def test_rule_parser_sees_every_rule():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules", "--snakefile", str(REPO / "Snakefile")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = set(proc.stdout.split())
    assert listed == set(rules()), f"rules the parser missed: {listed ^ set(rules())}"


def test_every_rule_with_a_command_declares_an_existing_env():
    for rule in rules().values():
        if not rule.shell:
            continue
        assert rule.conda is not None, f"rule {rule.name} ({rule.file.name}) has no conda: env"
        assert rule.conda.resolve().parent == ENV_DIR, f"rule {rule.name}: {rule.conda}"
        assert rule.conda.resolve().exists(), f"rule {rule.name}: {rule.conda} does not exist"


# --------------------------------------------------------------------------- imports


def _module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(_module_file(module).read_text())


def _is_optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """An import under `try:` (the except branch handles its absence) or TYPE_CHECKING."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            return True
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return True
        node = parent
    return False


def _walk_code(body: list[ast.stmt]):
    """Nodes of the code that runs when `body` runs: not nested function bodies; a nested
    class's body (it runs), not its methods."""
    todo = list(body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(node))


class ImportReach:
    """Third-party modules reached from entry points, following mepr's own code.

    Importing a mepr module runs its module-level code (and its parent packages'); calling a
    function runs its body. A function body counts only if something reached refers to the
    function by name (call, callback, attribute of an imported module); a class counts with
    all its methods. Imports under try/except are optional and do not count.
    """

    def __init__(self) -> None:
        self.third_party: set[str] = set()
        self.seen: set[tuple[str, str]] = set()

    # -- bindings: what a name means inside a module
    @cache  # noqa: B019 - the test's lifetime
    def _module_bindings(self, module: str) -> dict[str, tuple[str, str | None]]:
        """name -> (module, attribute or None) for top-level imports, defs and classes."""
        out: dict[str, tuple[str, str | None]] = {}
        for node in _tree(module).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out[node.name] = (module, node.name)
        out.update(self._import_bindings(_tree(module).body, module, top=True))
        return out

    def _import_bindings(self, body, module: str, top: bool) -> dict[str, tuple[str, str | None]]:
        out: dict[str, tuple[str, str | None]] = {}
        nodes = body if top else _walk_code(body)
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        out[alias.asname] = (alias.name, None)
                    else:
                        out[alias.name.split(".")[0]] = (alias.name.split(".")[0], None)
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                target = self._from_target(node, module)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    out[alias.asname or alias.name] = (
                        (sub, None) if _module_file(sub) else (target, alias.name)
                    )
        return out

    @staticmethod
    def _from_target(node: ast.ImportFrom, module: str) -> str:
        if not node.level:
            return node.module or ""
        is_package = _module_file(module).name == "__init__.py"
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    # -- reaching things
    def module(self, name: str) -> None:
        top = name.split(".")[0]
        if top != "mepr":
            if top not in sys.stdlib_module_names:
                self.third_party.add(top)
            return
        if ("module", name) in self.seen:
            return
        self.seen.add(("module", name))
        parts = name.split(".")
        for i in range(1, len(parts)):  # parent packages' __init__ run first
            self.module(".".join(parts[:i]))
        if _module_file(name) is None:
            raise AssertionError(f"no mepr module {name}")
        self._run(_tree(name).body, name, self._module_bindings(name), nested_defs=False)

    def symbol(self, module: str, attr: str) -> None:
        """A function or class `attr` of `module` is used (possibly re-exported there)."""
        self.module(module)
        if not module.startswith("mepr") or ("symbol", f"{module}:{attr}") in self.seen:
            return
        self.seen.add(("symbol", f"{module}:{attr}"))
        for node in _tree(module).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == attr:
                bindings = {**self._module_bindings(module)}
                bindings.update(self._import_bindings(node.body, module, top=False))
                self._run(node.body, module, bindings)
                return
            if isinstance(node, ast.ClassDef) and node.name == attr:
                bindings = self._module_bindings(module)
                for base in node.bases:
                    self._refer(base, module, bindings)
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        local = {**bindings, **self._import_bindings(item.body, module, False)}
                        self._run(item.body, module, local)
                return
        binding = self._module_bindings(module).get(attr)
        if binding and binding != (module, attr):  # re-exported from elsewhere
            self.binding(binding)

    def binding(self, binding: tuple[str, str | None]) -> None:
        """(module, None): the module is imported; (module, name): its `name` is used."""
        target, attr = binding
        if attr is None:
            self.module(target)
        else:
            self.symbol(target, attr)

    def _run(self, body, module: str, bindings, nested_defs: bool = True) -> None:
        """The code in `body` runs: its imports happen, the mepr names it refers to are used.

        Functions defined in a function body count as run (they are defined to be called);
        those defined at module level only when something refers to them.
        """
        parents = {c: n for n in _walk_code(body) for c in ast.iter_child_nodes(n)}
        for node in _walk_code(body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if _is_optional(node, parents) or getattr(node, "module", "") == "__future__":
                    continue
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        self.module(alias.name)
                else:
                    target = self._from_target(node, module)
                    self.module(target)
                    for alias in node.names:
                        if _module_file(f"{target}.{alias.name}"):
                            self.module(f"{target}.{alias.name}")
            elif isinstance(node, (ast.Name, ast.Attribute)):
                self._refer(node, module, bindings)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and nested_defs:
                local = {**bindings, **self._import_bindings(node.body, module, False)}
                self._run(node.body, module, local)

    def _refer(self, node: ast.AST, module: str, bindings) -> None:
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in bindings:
            return
        target, attr = bindings[node.id]
        if attr is not None and chain and _module_file(f"{target}.{attr}"):
            # `from mepr.models import checkpoints` then `checkpoints.save_model(...)`
            target, attr = f"{target}.{attr}", None
        if attr is None and chain:  # module.attr[.more]
            name = chain[-1]
            if _module_file(f"{target}.{name}"):
                self.module(f"{target}.{name}")
            elif target.startswith("mepr"):
                self.symbol(target, name)
            else:
                self.module(target)
        else:
            self.binding((target, attr))


def mepr_command(shell: str) -> tuple[tuple[str, ...], tuple[str, str | None]] | None:
    """What a `python -m mepr...` command runs; None if it runs no mepr.

    (the modules it imports to parse its arguments and dispatch, the handler it then runs:
    (module, function), or (module, None) for a module run as a whole)."""
    m = re.search(r"python -m (mepr[\w.]*)(?:\s+([\w-]+))?", shell)
    if not m:
        return None
    module, sub = m.groups()
    if module != "mepr":  # python -m mepr.pkg: runs mepr/pkg/__main__.py
        main = f"{module}.__main__" if _module_file(f"{module}.__main__") else module
        return (), (main, None)
    from mepr.cli import STAGE_COMMANDS, build_parser

    # `python -m mepr SUB` imports mepr.cli, whose parser imports every STAGE_COMMANDS module
    # (module-level code only), then calls SUB's handler.
    sub_parsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert sub in sub_parsers, f"'{shell}': mepr has no subcommand '{sub}'"
    func = sub_parsers[sub].get_default("func")
    assert func.__qualname__ == func.__name__, f"{sub}: handler {func} is not module-level"
    return ("mepr.__main__", "mepr.cli", *STAGE_COMMANDS), (func.__module__, func.__name__)


def command_reach(shell: str, dispatch: bool = True) -> ImportReach | None:
    """What a `python -m mepr...` command reaches; None if it runs no mepr. With dispatch
    False, only its handler onward (not what it imports to parse its arguments)."""
    command = mepr_command(shell)
    if command is None:
        return None
    modules, handler = command
    reach = ImportReach()
    reach.seen.add(("symbol", "mepr.cli:main"))  # main() only parses and dispatches
    for entry in modules if dispatch else ():
        reach.module(entry)
    reach.binding(handler)
    return reach


def rule_third_party_imports(shell: str) -> set[str] | None:
    """Third-party modules a `python -m mepr...` command imports; None if it runs no mepr."""
    reach = command_reach(shell)
    return None if reach is None else reach.third_party


def distributions(import_name: str) -> set[str]:
    return {canonicalize_name(d) for d in DISTRIBUTIONS_OF.get(import_name, (import_name,))}


def test_import_analysis_finds_known_imports():
    """Guards the analysis itself against silently finding nothing."""
    frames = rule_third_party_imports("python -m mepr frames --manifest m")
    assert {"cv2", "numpy", "pyarrow", "polars", "mediapipe", "yaml"} <= frames
    assert "torch" not in frames  # mepr.cli imports torch only in other handlers
    train = rule_third_party_imports("python -m mepr train-fusion --cross c")
    assert {"torch", "numpy", "pyarrow", "safetensors"} <= train
    assert "mamba_ssm" not in train  # optional: imported under try/except


# Modules a rule's code reaches that its env leaves out on purpose, and why.
NOT_IN_ENV = {
    "predict": {
        "whisperx": "needs numpy>=2.1 and torch 2.8, mediapipe 0.10.21 numpy<2: predict's env "
        "cannot hold it; with asr.backend whisperx predict reads VIDEO.txt transcripts or stops "
        "with a clear error (tests/test_predict.py)"
    },
}


@pytest.mark.parametrize("rule", sorted(rules()), ids=str)
def test_rule_env_provides_what_its_code_imports(rule):
    info = rules()[rule]
    needed = rule_third_party_imports(info.shell) if info.shell else None
    if needed is None:
        pytest.skip(f"rule {rule} runs no mepr command")
    env = load_env(info.conda.resolve())
    missing = sorted(
        f"{name} (pip: {' or '.join(sorted(distributions(name)))})"
        for name in needed
        if not distributions(name) & env.provides and name not in NOT_IN_ENV.get(rule, {})
    )
    assert not missing, f"rule {rule} runs code importing {missing}; add to {env.path.name}"
