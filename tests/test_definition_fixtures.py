"""Today's build equals the frozen definitions (`tests/definition_fixtures.py`): the training
and batch pipelines of the default config and the example, tuning on and off, each task,
an XGBoost estimator, VPC and secrets, the batch options. The fixtures were first written
with SDK v2.257.7; the builder is on SDK v3 (issue #22), and what it sends SageMaker did not
change. `KNOWN_DIFFERENCES` would list, with the reason, any difference allowed: none is."""

from __future__ import annotations

import difflib
import json

import pytest

from tests.definition_checks import api_request_errors, schema_errors
from tests.definition_fixtures import CASES, Case, fixture_path, render_case

PAIRS = [(case, pipeline) for case in CASES for pipeline in case.pipelines]
IDS = [f"{case.name}.{pipeline}" for case, pipeline in PAIRS]


@pytest.mark.parametrize(("case", "pipeline"), PAIRS, ids=IDS)
def test_the_build_equals_the_frozen_definition(case: Case, pipeline: str) -> None:
    frozen = fixture_path(case, pipeline).read_text()
    built = render_case(case, pipeline)
    if built != frozen:
        diff = "".join(difflib.unified_diff(frozen.splitlines(True), built.splitlines(True), "frozen", "built", n=2))
        pytest.fail(f"{case.name}.{pipeline} differs from its fixture:\n{diff[:6000]}")


@pytest.mark.parametrize(("case", "pipeline"), PAIRS, ids=IDS)
def test_each_frozen_definition_is_what_sagemaker_accepts(case: Case, pipeline: str) -> None:
    definition = json.loads(fixture_path(case, pipeline).read_text())
    assert api_request_errors(definition) == {}
    assert schema_errors(definition) == []


def test_every_fixture_belongs_to_a_case() -> None:
    """A stale fixture (a removed case) would be checked by nothing."""
    on_disk = {path.name for path in fixture_path(CASES[0], "training").parent.glob("*.json")}
    assert on_disk == {fixture_path(case, pipeline).name for case, pipeline in PAIRS}
