"""Rules of the code base that a reader relies on, checked on the source itself."""
import ast

import pytest
from conftest import ROOT

PACKAGES = ("benchmark", "evaluator")


def _functions():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    yield path.relative_to(ROOT), node


def unused_parameters(node) -> list[str]:
    """The parameters a function never reads (an `_` prefix marks one a caller's signature needs)."""
    a = node.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if p is not None]
    body = node.body if isinstance(node.body, list) else [node.body]
    read = {n.id for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return [n for n in names if n not in ("self", "cls") and not n.startswith("_") and n not in read]


def test_no_function_takes_a_parameter_it_does_not_use():
    found = [f"{path}:{node.lineno} {getattr(node, 'name', 'lambda')}({', '.join(unused)})"
             for path, node in _functions() if (unused := unused_parameters(node))]
    assert found == [], "parameters never used (remove them, or prefix with _ where a signature needs them)"


@pytest.mark.parametrize("source,unused", [("def f(a, b):\n    return a\n", ["b"]),
                                           ("def f(self, _x, *args, **kw):\n    return args, kw\n", []),
                                           ("g = lambda done, total: done\n", ["total"])])
def test_the_rule_sees_an_unused_parameter(source, unused):
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.Lambda)))
    assert unused_parameters(node) == unused
