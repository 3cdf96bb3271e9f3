"""The DAG read from a definition JSON (pure)."""

from __future__ import annotations

import pytest

from pipeline.graph import mermaid, step_graph, topological_order
from tests.conftest import needs_graphviz

DEFINITION = {
    "Steps": [
        {"Name": "A", "Type": "Processing", "Arguments": {}},
        {"Name": "B", "Type": "Training", "Arguments": {"X": {"Get": "Steps.A.ProcessingOutputConfig"}}},
        {
            "Name": "Gate",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [{"LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.B.PropertyFiles.R"}}}}],
                "IfSteps": [{"Name": "Yes", "Type": "RegisterModel", "Arguments": {"M": {"Get": "Steps.B.Model"}}}],
                "ElseSteps": [{"Name": "No", "Type": "Fail", "Arguments": {}}],
            },
        },
        {"Name": "Z", "Type": "Processing", "DependsOn": ["A"], "Arguments": {}},
    ]
}


def test_dependencies_come_from_references_depends_on_and_branches() -> None:
    nodes = step_graph(DEFINITION)
    assert nodes["B"].depends_on == {"A"}
    assert nodes["Gate"].depends_on == {"B"}
    assert nodes["Yes"].depends_on == {"Gate", "B"} and nodes["Yes"].branch == "if"
    assert nodes["No"].depends_on == {"Gate"} and nodes["No"].branch == "else"
    assert nodes["Z"].depends_on == {"A"}


def test_topological_order_is_stable() -> None:
    assert topological_order(step_graph(DEFINITION)) == ["A", "B", "Z", "Gate", "No", "Yes"]


def test_cycle_is_reported() -> None:
    cyclic = {
        "Steps": [
            {"Name": "A", "Type": "Processing", "DependsOn": ["B"]},
            {"Name": "B", "Type": "Processing", "DependsOn": ["A"]},
        ]
    }
    with pytest.raises(ValueError, match="dependency cycle among steps: A, B"):
        topological_order(step_graph(cyclic))


def test_mermaid_draws_direct_edges_and_states() -> None:
    text = mermaid(step_graph(DEFINITION), states={"A": "Succeeded", "B": "Failed"})
    assert "B --> Yes" not in text  # implied through Gate
    assert "Gate -->|if| Yes" in text and "Gate -->|else| No" in text
    assert 'A["A<br/><i>Succeeded</i>"]' in text
    assert "class B failed" in text


def test_the_picture_colours_states_labels_outcomes_and_bolds_the_branch_taken() -> None:
    from pipeline.graph import STATE_COLOURS
    from pipeline.graph_picture import ExecutionView, picture, picture_source

    view = ExecutionView(states={"A": "Succeeded", "B": "Failed", "Gate": "Succeeded"}, outcomes={"Gate": "False"})
    source = picture_source(step_graph(DEFINITION), view)
    assert f'A [label="A\nSucceeded" color="{STATE_COLOURS["Succeeded"][1]}"' in source
    assert f'fillcolor="{STATE_COLOURS["Failed"][0]}"' in source
    assert 'Gate [label="Gate\nSucceeded\noutcome: False"' in source and "shape=diamond" in source
    assert "Gate -> No [label=else style=bold]" in source and "Gate -> Yes [label=if style=dashed]" in source
    assert "B -> Yes" not in source  # implied through Gate, as in the Mermaid text
    needs_graphviz()
    png = picture(step_graph(DEFINITION), "png", view)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    svg = picture(step_graph(DEFINITION), "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and ">Gate<" in svg
