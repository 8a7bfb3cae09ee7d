"""Every rule's `code=code_digest(...)` names the mepr code its command runs.

A rule re-runs when its params change, and `code_digest("media", "shards", ...)` (a digest of
the named units of mepr: a top-level module or subpackage, or a sub-path such as `embed/store`)
makes the code it calls one of them. The lists are written by hand; this test derives what
each one must hold from the rule's command, with the analysis tests/test_envs.py uses for the
conda envs: the subcommand's handler, then mepr's imports and the functions they reach,
transitively (module-level code of every module imported, bodies of the functions used).

Only the handler and what it reaches count: `python -m mepr` also imports mepr.cli and every
module that registers subcommands, but only to build the argument parser.
"""

from __future__ import annotations

import ast
import warnings

import pytest
from test_envs import SRC, _module_file, _tree, command_reach, mepr_command, rules

from mepr.provenance import code_digest

PACKAGE = SRC / "mepr"

# Units a rule's code reaches that its list leaves out on purpose, and why. Keep it short:
# anything here changes a rule's code without re-running it.
ALLOWED = {
    # mepr/__init__.py holds the version string only (checked below); outputs record it as
    # metadata, but a version bump by itself changes no computation
    "__init__": "version string",
}


def unit_of(module: str) -> str:
    """The code_digest path of a mepr module: 'media/extract', 'embed/__init__', 'cli'."""
    return _module_file(module).relative_to(PACKAGE).with_suffix("").as_posix()


def covers(unit: str, path: str) -> bool:
    return path == unit or path.startswith(f"{unit}/")


def inert(module: str) -> bool:
    """A module with no code: a docstring (and `from __future__`) at most, e.g. a package's
    __init__ that is imported only because one of its submodules is."""
    for node in _tree(module).body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (docstring or future):
            return False
    return True


def reached_modules(shell: str) -> set[str] | None:
    """The mepr modules a rule's command runs code of (its handler onward); None if no mepr."""
    reach = command_reach(shell, dispatch=False)
    if reach is None:
        return None
    return {name for kind, name in reach.seen if kind == "module" and name.startswith("mepr")}


def digest_units(rule: str) -> list[str] | None:
    """The units a rule's `code=code_digest(...)` param names; None if it has none."""
    params = ast.parse(f"dict(\n{rules()[rule].params}\n)", mode="eval").body
    for kw in params.keywords:
        if kw.arg != "code":
            continue
        call = kw.value
        assert (
            isinstance(call, ast.Call)
            and ast.unparse(call.func) == "code_digest"
            and not call.keywords
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
        ), f"rule {rule}: code= must be code_digest('unit', ...) with literal names"
        return [a.value for a in call.args]
    return None


def module_of(path: str) -> str:
    """The inverse of unit_of: 'embed/__init__' -> 'mepr.embed'."""
    return ".".join(["mepr", *path.split("/")]).removesuffix(".__init__")


def suggested_unit(path: str, missing: list[str]) -> str:
    """A whole top-level unit where all of its code is missing, else the module itself."""
    top = path.split("/")[0]
    if not (PACKAGE / top).is_dir():
        return path
    paths = (
        f.relative_to(PACKAGE).with_suffix("").as_posix() for f in (PACKAGE / top).rglob("*.py")
    )
    code = {p for p in paths if not inert(module_of(p))}
    return top if code <= set(missing) else path


MEPR_RULES = sorted(name for name, info in rules().items() if mepr_command(info.shell))


def test_analysis_finds_known_code():
    """Guards the analysis itself against silently finding nothing."""
    frames = {unit_of(m) for m in reached_modules("python -m mepr frames --manifest m")}
    assert {"media/cli", "config/sections", "shards", "media/extract", "media/detect"} <= frames
    assert not any(covers("train", u) or covers("embed", u) for u in frames)
    fusion = {unit_of(m) for m in reached_modules("python -m mepr train-fusion --cross c")}
    assert {"train/cli", "train/stages", "models/fusion", "labels", "metrics"} <= fusion
    assert "cli" not in fusion  # mepr.cli only parses the arguments and dispatches
    assert covers("embed", "embed/store") and not covers("embed", "embedding")


def test_package_init_is_the_version_only():
    """What ALLOWED["__init__"] relies on."""
    body = [n for n in _tree("mepr").body if not isinstance(n, ast.Expr)]
    assert [ast.unparse(n).split(" = ")[0] for n in body] == ["__version__"], (
        "mepr/__init__.py holds more than __version__ now: drop it from ALLOWED and name "
        "'__init__' in the code digests"
    )


def test_every_mepr_rule_has_a_code_digest():
    assert len(MEPR_RULES) > 10
    missing = [rule for rule in MEPR_RULES if digest_units(rule) is None]
    assert not missing, f"rules running mepr without code=code_digest(...): {missing}"


@pytest.mark.parametrize("rule", MEPR_RULES, ids=str)
def test_code_digest_names_existing_units(rule):
    units = digest_units(rule) or []
    assert len(set(units)) == len(units), f"rule {rule}: {units} names a unit twice"
    for unit in units:
        try:
            code_digest(unit)
        except ValueError as e:
            pytest.fail(f"rule {rule}: {e}")


@pytest.mark.parametrize("rule", MEPR_RULES, ids=str)
def test_code_digest_covers_the_code_the_rule_runs(rule):
    units = digest_units(rule) or []
    reached = {unit_of(m) for m in reached_modules(rules()[rule].shell) if not inert(m)} - set(
        ALLOWED
    )
    missing = sorted(path for path in reached if not any(covers(u, path) for u in units))
    suggest = sorted({suggested_unit(path, missing) for path in missing})
    assert not missing, (
        f"rule {rule} ({rules()[rule].file.name}) runs code of {missing} that its "
        f"code_digest{tuple(units)} leaves out: add {suggest}"
    )
    unused = [u for u in units if not any(covers(u, path) for path in reached)]
    if unused:  # harmless (the rule only re-runs more often), but worth a look
        warnings.warn(
            f"rule {rule}: code_digest names {unused}, which it does not run", stacklevel=1
        )
