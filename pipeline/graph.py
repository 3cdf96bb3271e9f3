"""The step DAG of a definition JSON, and its Mermaid rendering.

Read from the JSON itself (not from SDK objects) so the same code serves the `graph`
verb, the local runner's scheduling and the tests. Edges are what SageMaker derives:
explicit `DependsOn`, every `Get: Steps.<name>...` reference, and condition branches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["STATE_COLOURS", "StepNode", "direct_edges", "mermaid", "step_graph", "topological_order"]

_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9\-_]+)")


@dataclass
class StepNode:
    name: str
    type: str
    display_name: str = ""
    description: str = ""
    depends_on: set[str] = field(default_factory=set)
    branch: str = ""  # "if" / "else" for steps nested in a condition
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Get" and isinstance(item, str) and (match := _STEP_REF.match(item)):
                found.add(match.group(1))
            else:
                found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def step_graph(definition: Mapping[str, Any]) -> dict[str, StepNode]:
    """All steps (condition branches flattened) with their upstream dependencies."""
    nodes: dict[str, StepNode] = {}

    def visit(step: dict[str, Any], parent: str | None, branch: str) -> None:
        args = step.get("Arguments", {})
        nested = {"IfSteps", "ElseSteps"} if step.get("Type") == "Condition" else set()
        own_args = {k: v for k, v in args.items() if k not in nested}
        node = StepNode(
            name=step["Name"],
            type=step.get("Type", ""),
            display_name=step.get("DisplayName", ""),
            description=step.get("Description", ""),
            depends_on=set(step.get("DependsOn", [])) | _references(own_args),
            branch=branch,
            raw=step,
        )
        if parent:
            node.depends_on.add(parent)
        node.depends_on.discard(node.name)
        nodes[node.name] = node
        for key, label in (("IfSteps", "if"), ("ElseSteps", "else")):
            for child in args.get(key, []) if nested else []:
                visit(child, node.name, label)

    for step in definition.get("Steps", []):
        visit(step, None, "")
    return nodes


def topological_order(nodes: Mapping[str, StepNode]) -> list[str]:
    """Steps in an order that respects dependencies (ties broken by name, for stable output)."""
    remaining = {name: set(node.depends_on) & set(nodes) for name, node in nodes.items()}
    order: list[str] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            raise ValueError(f"dependency cycle among steps: {', '.join(sorted(remaining))}")
        for name in ready:
            order.append(name)
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


# A step state's (fill, stroke) colours, for the Mermaid text and the picture alike.
STATE_COLOURS = {
    "Succeeded": ("#d4f7d4", "#2e7d32"),
    "Cached": ("#e0ecff", "#1e4fa3"),
    "Executing": ("#fff3c4", "#b28704"),
    "Failed": ("#ffd6d6", "#c62828"),
    "Stopped": ("#ffe0b2", "#e65100"),
    "Skipped": ("#eeeeee", "#9e9e9e"),
}


def _node_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def direct_edges(nodes: Mapping[str, StepNode]) -> dict[str, set[str]]:
    """Dependencies minus those implied through another step (transitive reduction),
    so the drawing shows the flow and not every data reference."""

    def ancestors(name: str, seen: set[str]) -> set[str]:
        for upstream in nodes[name].depends_on & set(nodes):
            if upstream not in seen:
                seen.add(upstream)
                ancestors(upstream, seen)
        return seen

    reduced: dict[str, set[str]] = {}
    for name, node in nodes.items():
        deps = node.depends_on & set(nodes)
        implied = set().union(*(ancestors(d, set()) for d in deps)) if deps else set()
        reduced[name] = deps - implied
    return reduced


def mermaid(nodes: Mapping[str, StepNode], states: Mapping[str, str] | None = None) -> str:
    """Mermaid flowchart text; with `states`, each step is labelled and coloured by state."""
    states = states or {}
    lines = ["flowchart TD"]
    for name in topological_order(nodes):
        node = nodes[name]
        label = node.display_name or name
        if name in states:
            label = f"{label}<br/><i>{states[name]}</i>"
        shape = ("{{", "}}") if node.type == "Condition" else ("[", "]")
        lines.append(f'    {_node_id(name)}{shape[0]}"{label}"{shape[1]}')
    edges = direct_edges(nodes)
    for name in topological_order(nodes):
        node = nodes[name]
        for upstream in sorted(edges[name]):
            parent = nodes[upstream]
            arrow = f"-->|{node.branch}|" if node.branch and parent.type == "Condition" else "-->"
            lines.append(f"    {_node_id(upstream)} {arrow} {_node_id(name)}")
    for state, (fill, stroke) in STATE_COLOURS.items():
        members = [_node_id(n) for n in topological_order(nodes) if states.get(n) == state]
        if members:
            lines.append(f"    classDef {state.lower()} fill:{fill},stroke:{stroke}")
            lines.append(f"    class {','.join(members)} {state.lower()}")
    return "\n".join(lines) + "\n"
