"""An import-linter contract for the top-level front doors (``lint-imports`` reads it from pyproject.toml).

import-linter builds its graph from packages, and the front doors are single modules beside the
``lookalike`` package, so their rule is checked here: each listed module is parsed and none of its
imports, at module level or inside a function, may name another listed module or a forbidden one.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def imported_roots(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module name) of every absolute import in a Python file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


class FrontDoorsContract(Contract):
    """The ``modules`` never import each other, nor anything in ``forbidden_modules``."""

    type_name = "front_doors"

    modules = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField(), default=[])

    def check(self, graph, verbose: bool) -> ContractCheck:
        modules = [str(module) for module in self.modules]
        forbidden = {str(module) for module in self.forbidden_modules}
        violations = []
        for module in modules:
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                violations.append(f"{module} cannot be found")
                continue
            for line, root in imported_roots(Path(spec.origin)):
                if root != module and (root in modules or root in forbidden):
                    violations.append(f"{module} imports {root} (line {line})")
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(violation)
        output.new_line()
