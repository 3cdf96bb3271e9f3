"""The step DAG as a picture (PNG or SVG), drawn by Graphviz.

The same graph as the Mermaid text (`pipeline.graph`: direct edges only, condition
branches labelled `if`/`else`), with each step coloured by its state in an execution and
each condition labelled with its outcome; the branch it took is drawn bold, the other
dashed. Graphviz's `dot` (Debian's `graphviz` package) does the layout, through the
`graphviz` Python binding, so no browser is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.errors import UsageError
from pipeline.graph import STATE_COLOURS, StepNode, direct_edges, topological_order

__all__ = ["FORMATS", "ExecutionView", "picture", "picture_source"]

FORMATS = ("png", "svg")
PictureFormat = Literal["png", "svg"]


@dataclass(frozen=True)
class ExecutionView:
    """What an execution says about its steps: state by step, and each decided
    condition's outcome ("True"/"False", as SageMaker's `Outcome` property)."""

    states: Mapping[str, str] = field(default_factory=dict)
    outcomes: Mapping[str, str] = field(default_factory=dict)


def picture_source(nodes: Mapping[str, StepNode], view: ExecutionView | None = None) -> str:
    """The DOT text of the drawing (what `picture` lays out)."""
    import graphviz

    view = view or ExecutionView()
    dot = graphviz.Digraph("pipeline", graph_attr={"rankdir": "TB", "fontname": "Helvetica"})
    dot.attr("node", fontname="Helvetica", fontsize="11", style="rounded,filled", fillcolor="white", shape="box")
    dot.attr("edge", fontname="Helvetica", fontsize="10")
    for name in topological_order(nodes):
        node = nodes[name]
        lines = [node.display_name or name]
        if name in view.states:
            lines.append(view.states[name])
        if name in view.outcomes:
            lines.append(f"outcome: {view.outcomes[name]}")
        fill, stroke = STATE_COLOURS.get(view.states.get(name, ""), ("white", "#555555"))
        shape = "diamond" if node.type == "Condition" else "box"
        dot.node(name, "\n".join(lines), fillcolor=fill, color=stroke, shape=shape)
    for name, upstreams in direct_edges(nodes).items():
        node = nodes[name]
        for upstream in sorted(upstreams):
            attrs: dict[str, str] = {}
            if node.branch and nodes[upstream].type == "Condition":
                attrs["label"] = node.branch
                outcome = view.outcomes.get(upstream)
                if outcome is not None:
                    taken = (outcome == "True") == (node.branch == "if")
                    attrs["style"] = "bold" if taken else "dashed"
            dot.edge(upstream, name, **attrs)
    return dot.source


def picture(nodes: Mapping[str, StepNode], fmt: PictureFormat, view: ExecutionView | None = None) -> bytes:
    """The drawing as PNG or SVG bytes. Raises UsageError when Graphviz's `dot` is not
    installed (the binding needs the program)."""
    import graphviz

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: one of {', '.join(FORMATS)} (or mermaid)")
    try:
        return graphviz.Source(picture_source(nodes, view)).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise UsageError(
            "drawing the graph needs Graphviz's dot: apt-get install graphviz (or brew install graphviz)"
        ) from None
