"""Config validation: every broken config exits 2 with a message naming the key; no traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.config_loader import apply_overrides, interpolate, load_config, parse_config
from pipeline.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG, REPO, default_raw_config


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(tree: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = tree
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return mutate


def deleting(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(tree: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = tree
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown top-level key", setting("bogus", 1), "bogus: unknown key"),
    ("unknown nested key (typo)", setting("pipeline.nmae", "x"), "pipeline.nmae: unknown key"),
    ("wrong type", setting("steps.train.instance_count", "many"), "steps.train.instance_count"),
    ("distributed scikit-learn training", setting("steps.train.instance_count", 2), "steps: train.instance_count must be 1"),
    ("missing required section", deleting("quality_gate"), "quality_gate: required key is missing"),
    ("missing required key", deleting("registration.model_package_group"), "registration.model_package_group"),
    ("range min > max", setting("tuning.ranges.n_estimators.min", 500), "tuning.ranges.n_estimators: min must be <= max"),
    ("threshold not a number", setting("quality_gate.threshold", "low"), "quality_gate.threshold"),
    ("threshold not finite", setting("quality_gate.threshold", float("nan")), "quality_gate.threshold"),
    ("empty feature list", setting("data.features", []), "data.features"),
    ("instance type format", setting("steps.preprocess.instance_type", "m5.large"), r"steps.preprocess.instance_type: 'm5.large' does not match the expected format ^ml\.[a-z0-9]+\.[a-z0-9]+$"),
    ("unresolvable ${VAR}", setting("aws.role_arn", "${MLOPS_TEST_UNSET_VAR}"), "aws.role_arn: environment variable MLOPS_TEST_UNSET_VAR is not set"),
    ("malformed ${", setting("aws.region", "${1BAD}"), "aws.region: malformed"),
    ("split does not sum to 1", setting("data.split.test", 0.5), "data.split: train + validation + test must sum to 1"),
    ("target also a feature", setting("data.target", "age"), "data: target column 'age' is also listed in features"),
    ("duplicate feature", setting("data.features", ["age", "age"]), "data: features lists age more than once"),
    ("role ARN format", setting("aws.role_arn", "SageMakerRole"), "aws.role_arn"),
    ("input URI not S3", setting("data.input_uri", "http://example.com/x.csv"), "data.input_uri"),
    ("inline MLflow password", setting("mlflow.credentials", {"source": "env", "password": "hunter2"}), "mlflow.credentials: password must not be written in the config"),
    ("secrets_manager without ARN", setting("mlflow.credentials", {"source": "secrets_manager"}), "mlflow.credentials: source secrets_manager needs secret_arn"),
    ("categorical range without values", setting("tuning.ranges.min_samples_leaf", {"type": "categorical"}), "tuning.ranges.min_samples_leaf"),
    ("integer range with fractions", setting("tuning.ranges.max_depth", {"type": "integer", "min": 1.5, "max": 3}), "tuning.ranges.max_depth: an integer range needs whole-number"),
    ("log scaling from zero", setting("tuning.ranges.max_depth", {"type": "continuous", "min": 0, "max": 3, "scaling": "Logarithmic"}), "tuning.ranges.max_depth: Logarithmic scaling needs min > 0"),
    ("parallel > max jobs", setting("tuning.max_parallel_jobs", 10), "tuning: max_parallel_jobs (10) must be <= max_jobs (4)"),
    ("tuning on without ranges", setting("tuning.ranges", {}), "tuning: tuning is enabled but no ranges are given"),
    ("unknown gate operator", setting("quality_gate.operator", "Smaller"), "quality_gate.operator"),
    ("gate metric path", setting("quality_gate.metric", "rmse..value"), "quality_gate.metric"),
    ("approval status", setting("registration.approval_status", "Maybe"), "registration.approval_status"),
    ("cache expiry not ISO 8601", setting("caching.expire_after", "30 days"), "caching.expire_after"),
    ("subnets without security groups", setting("network.subnets", ["subnet-0123456789abcdef0"]), "network: subnets and security_group_ids must be given together"),
    ("objective regex without a group", setting("training.objective.regex", "rmse=[0-9.]+"), "training.objective.regex: must have exactly one capture group"),
    ("pipeline name characters", setting("pipeline.name", "my pipeline!"), "pipeline.name"),
    ("unknown retry exception", setting("retry.on", ["Step.EVERYTHING"]), "retry.on[0]"),
    ("reserved hyperparameter name", setting("training.hyperparameters.estimator", "x"), "hyperparameter name 'estimator' is reserved"),
    ("unknown task", setting("training.task", "classification"), "training.task"),
    ("estimator neither shortcut nor path", setting("training.estimator", "xgboost"), "training.estimator: 'xgboost' is neither a shortcut"),
    ("shortcut of the other family", setting("training.task", "binary_classification"), "training.objective.metric 'validation:rmse' is not computed for binary_classification"),
    ("regression-only shortcut for classification", lambda t: (t["training"].update(task="binary_classification", estimator="ridge"), t["training"].pop("objective")), "training: estimator 'ridge' is not a classification estimator"),
    ("positive class for regression", setting("training.positive_class", "yes"), "training: positive_class applies to binary_classification only"),
    ("gate metric of another task", setting("quality_gate.metric", "binary_classification_metrics.auc.value"), "quality_gate.metric 'binary_classification_metrics.auc.value' is not in the regression report"),
    ("objective metric not computed", setting("training.objective.metric", "validation:mape"), "training.objective.metric 'validation:mape' is not computed for regression"),
    ("csv without header or names", setting("data.csv", {"header": False}), "data.csv: header: false needs column_names"),
    ("unknown csv encoding", setting("data.csv", {"encoding": "utf-99"}), "data.csv.encoding: 'utf-99' is not an encoding Python knows"),
    ("unknown column kind", setting("data.column_types", {"sex": "text"}), "data.column_types.sex"),
    ("column kind for a column not in features", setting("data.column_types", {"zip": "categorical"}), "data: column_types names column(s) not in features: zip"),
    ("unknown categorical encoding", setting("training.categorical_encoding", "target"), "training.categorical_encoding"),
    ("empty content types", setting("registration.content_types", []), "registration.content_types"),
    ("IAM wildcard in the prefix", setting("aws.prefix", "a*b"), "aws.prefix: 'a*b' does not match"),
    ("prefix climbing out", setting("aws.prefix", "../x"), "aws.prefix: '../x' has a '.' or '..' segment"),
    ("public without a certificate", setting("infra.public_load_balancer", True), "infra: a public load balancer needs tls.mode: certificate"),
    ("certificate mode without its ARN", setting("infra.tls", {"mode": "certificate"}), "infra.tls: mode certificate needs certificate_arn and domain_name"),
    ("the old certificate_arn key", setting("infra.certificate_arn", "arn:aws:acm:us-east-1:123456789012:certificate/abc"), "infra: certificate_arn moved to infra.tls.certificate_arn"),
    ("two stages, one alias", setting("deployment", {"stages": [{"name": "a", "lifecycle_stage": "A", "alias": "x"}, {"name": "b", "lifecycle_stage": "B", "alias": "x"}]}), "deployment: more than one stage has alias x"),
    ("a reserved alias for a stage", setting("deployment", {"stages": [{"name": "a", "lifecycle_stage": "A", "alias": "v2"}]}), "deployment.stages[0].alias: 'v2' is an alias MLflow reserves"),
    ("a stage elsewhere without its execution role", setting("deployment.stages.1.endpoint.deploy_role_arn", "arn:aws:iam::222222222222:role/deploy"), "deployment.stages[1].endpoint: deploy_role_arn is in account 222222222222: execution_role_arn must be a role there too"),
    ("a canary elsewhere without its alarms", setting("deployment.stages.1.endpoint", {"deploy_role_arn": "arn:aws:iam::222222222222:role/d", "execution_role_arn": "arn:aws:iam::222222222222:role/e"}), "a canary rollout in account 222222222222 needs rollback_alarms there"),
    ("an execution role at home", setting("deployment.stages.0.endpoint.execution_role_arn", "arn:aws:iam::123456789012:role/e"), "execution_role_arn is for an endpoint in another account"),
    ("a stage of no known name without its fields", setting("deployment", {"stages": ["qa"]}), "deployment.stages[0].lifecycle_stage: required key is missing"),
    ("two stages, one endpoint name", setting("deployment.stages.1.endpoint.name", "diabetes-regression-staging"), "deployment.stages: staging and production both deploy to endpoint 'diabetes-regression-staging'"),
    ("a name equal to another stage's default", setting("deployment.stages.0.endpoint.name", "diabetes-regression-production"), "staging and production both deploy to endpoint 'diabetes-regression-production'"),
    ("server CA for plain HTTP", setting("mlflow.server_ca_arn", "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/abc-1"), "mlflow: server_ca_arn is for an https:// tracking_uri"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in BROKEN], ids=[i for i, _, _ in BROKEN])
def test_broken_config_exits_2_naming_the_key(
    mutate: Callable[[dict[str, Any]], None], expected: str, write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = default_raw_config()
    mutate(tree)
    path = write_config(tree)
    assert main(["validate", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert expected in err, err
    assert str(path) in err
    assert "Traceback" not in out + err


def test_there_are_at_least_twenty_broken_configs() -> None:
    assert len(BROKEN) >= 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pipeline: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("", "the top level must be a mapping"),
    ],
    ids=["yaml syntax", "top-level list", "empty file"],
)
def test_unparseable_files(text: str, expected: str, write_config, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(write_config(text))]) == 2
    assert expected in capsys.readouterr().err


def _alias_bomb(levels: int = 9) -> str:
    """The billion laughs in YAML: 342 bytes whose aliases expand to ~4.9 * 10**8 nodes."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)), "not a UTF-8 text file (byte 128 is 0x80)"),
        ("\x89PNG\r\n".encode("latin-1") + bytes(64), "not a UTF-8 text file (byte 0 is 0x89)"),
        (_alias_bomb().encode(), "the YAML expands to 490,329,064 nodes through its aliases"),
        (b"a: &x\n  b: *x\n", "an alias refers to a node that contains it"),
        (b"[" * 20000 + b"]" * 20000, "the YAML is nested too deeply"),
    ],
    ids=["binary", "png", "alias bomb", "recursive alias", "deep nesting"],
)
def test_unreadable_config_files_exit_2_quickly(
    content: bytes, expected: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_bytes(content)
    assert main(["validate", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert f"{path}: {expected}" in err, err
    assert "Traceback" not in out + err


def test_aliases_within_bounds_still_work(write_config) -> None:
    """Anchors are a normal YAML tool (one value reused); only their expansion is bounded."""
    text = (REPO / "config/pipeline.yaml").read_text()
    first, rest = text.split("instance_type: ml.m5.large", 1)
    text = (
        first + "instance_type: &jobs ml.c5.xlarge" + rest.replace("instance_type: ml.m5.large", "instance_type: *jobs")
    )
    config = load_config(write_config(text))
    assert {config.steps.preprocess.instance_type, config.steps.evaluate.instance_type} == {"ml.c5.xlarge"}


@pytest.mark.parametrize(
    ("uri", "secret", "what"),
    [
        ("http://USER:PASSWORD@host:5000", "PASSWORD", "user info"),
        ("https://mlflow-user@host", "mlflow-user", "user info"),
        ("https://host/mlflow?token=s3cr3t-t0ken", "s3cr3t-t0ken", "query parameter 'token'"),
        ("https://host/?X-Amz-Signature=abcdef0123", "abcdef0123", "query parameter 'X-Amz-Signature'"),
    ],
)
def test_credentials_in_a_uri_are_refused_without_being_echoed(
    uri: str, secret: str, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("validate", "render"):
        assert main([command, "--config", str(DEFAULT_CONFIG), "--set", f"mlflow.tracking_uri={uri}"]) == 2
        out, err = capsys.readouterr()
        assert f"mlflow.tracking_uri: the URI carries credentials ({what}" in err, err
        assert secret not in out + err
    assert main(["validate", "--config", str(DEFAULT_CONFIG), "--set", "data.input_uri=s3://k:v@bucket/x.csv"]) == 2
    assert "data.input_uri: the URI carries credentials" in capsys.readouterr().err


def test_missing_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: config file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("pipeline.name.deeper=1", "pipeline.name: is a str, so --set pipeline.name.deeper cannot descend"),
        ("no-equals-sign", "--set: expected KEY.PATH=VALUE"),
        ("tuning.max_jobs=[1", "is not valid YAML"),
        ("tuning.max_jobs=zero", "tuning.max_jobs"),
        ("a..b=1", "empty key segment"),
    ],
)
def test_bad_overrides(override: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(DEFAULT_CONFIG), "--set", override]) == 2
    assert expected in capsys.readouterr().err


def test_all_problems_are_reported_at_once(write_config, capsys: pytest.CaptureFixture[str]) -> None:
    tree = default_raw_config()
    tree["bogus"] = 1
    tree["steps"]["train"]["instance_count"] = 0
    assert main(["validate", "--config", str(write_config(tree))]) == 2
    err = capsys.readouterr().err
    assert "bogus: unknown key" in err and "steps.train.instance_count" in err


def test_unknown_cli_argument_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--frobnicate"]) == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


# ---- the pieces, without I/O ----------------------------------------------------------


def test_interpolation_uses_the_environment_and_defaults() -> None:
    tree = {"a": "${X}", "b": ["pre-${Y:-dflt}-post"], "c": 3, "d": "${Z:-}"}
    out, problems = interpolate(tree, {"X": "x-value"})
    assert problems == []
    assert out == {"a": "x-value", "b": ["pre-dflt-post"], "c": 3, "d": ""}
    assert tree["a"] == "${X}"  # input untouched


def test_interpolation_reports_every_missing_variable_with_its_path() -> None:
    _, problems = interpolate({"a": {"b": "${ONE}"}, "l": ["${TWO}"]}, {})
    assert [p for p, _ in problems] == ["a.b", "l[0]"]


def test_overrides_parse_values_as_yaml_and_do_not_mutate_the_input() -> None:
    tree = {"tuning": {"enabled": True, "max_jobs": 4}}
    out = apply_overrides(tree, ["tuning.enabled=false", "tuning.max_jobs=8", "new.key=[a, b]"])
    assert out == {"tuning": {"enabled": False, "max_jobs": 8}, "new": {"key": ["a", "b"]}}
    assert tree["tuning"]["max_jobs"] == 4


def test_numbers_in_exponent_form_are_numbers_as_in_yaml_1_2() -> None:
    """PyYAML (YAML 1.1) reads `1e3` as text; the config reads it as YAML 1.2 does."""
    from pipeline.config_loader import parse_yaml

    tree = parse_yaml("a: 1e3\nb: -2E-3\nc: 1000\nd: .5\ne: 1e\nf: v1e3\ng: '1e3'\n")
    assert tree == {"a": 1000.0, "b": -0.002, "c": 1000, "d": 0.5, "e": "1e", "f": "v1e3", "g": "1e3"}
    assert type(tree["c"]) is int


def test_environment_variables_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_BUCKET", "team-bucket-42")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.internal.example:443")
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.aws.default_bucket == "team-bucket-42"
    assert cfg.data.input_uri.startswith("s3://team-bucket-42/")
    assert cfg.mlflow.tracking_uri == "https://mlflow.internal.example:443"


def test_default_config_is_valid_and_complete() -> None:
    cfg = parse_config(default_raw_config(), env={})
    assert cfg.tuning.enabled and cfg.caching.enabled
    assert cfg.registration.approval_status == "PendingManualApproval"
    assert cfg.mlflow.credentials.source == "env"


def test_config_error_lists_problems() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"pipeline": {}}, env={})
    paths = [p for p, _ in info.value.problems]
    assert "pipeline.name" in paths and "aws" in paths


def test_validate_is_fast_and_does_not_import_the_sdk() -> None:
    """`validate` must not pay for the SageMaker SDK (seconds); checked in a fresh interpreter."""
    code = (
        "import sys; from pipeline.cli import main; rc = main(['validate']); "
        "assert 'sagemaker' not in sys.modules and 'boto3' not in sys.modules, 'SDK imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_module_entry_point_exit_codes() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline.definition", "validate"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    bad = subprocess.run(
        [sys.executable, "-m", "pipeline.definition", "validate", "--set", "quality_gate.threshold=abc"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 2 and "quality_gate.threshold" in bad.stderr and "Traceback" not in bad.stderr


def test_long_group_names_keep_each_stage_as_the_endpoint_names_suffix() -> None:
    """Cut to SageMaker's 63 characters, `<group>-<stage>` keeps the stage's name, so two
    stages of a long group never collide (cutting the whole name made both the same)."""
    group = "g" * 63
    cfg = load_config(DEFAULT_CONFIG, overrides=(f"registration.model_package_group={group}",))
    names = [stage.endpoint_name(group) for stage in cfg.deployment.stages]
    assert names == [f"{'g' * 55}-staging", f"{'g' * 52}-production"] and all(len(n) <= 63 for n in names)
    tree = default_raw_config()
    tree["deployment"]["stages"][1]["endpoint"] = {
        "name": "diabetes-regression-staging", "deploy_role_arn": "arn:aws:iam::222222222222:role/d",
        "execution_role_arn": "arn:aws:iam::222222222222:role/e", "rollback_alarms": ["a"],
    }  # fmt: skip
    other = parse_config(tree, env={})
    assert [s.endpoint.account for s in other.deployment.stages] == [None, "222222222222"]  # one name, two accounts


def test_staging_and_production_are_the_default_stages_with_their_aliases_and_rollouts() -> None:
    """The issue's defaults: staging then production, aliases `staging` and `champion`,
    all at once for staging and a 10 % canary for production; without stages, as before."""
    cfg = load_config(DEFAULT_CONFIG)
    staging, production = cfg.deployment.stages
    assert (staging.name, staging.lifecycle_stage, staging.alias, staging.legacy_stage) == (
        "staging", "Staging", "staging", "Staging",
    )  # fmt: skip
    assert (production.lifecycle_stage, production.alias, production.legacy_stage) == (
        "Production", "champion", "Production",
    )  # fmt: skip
    assert staging.endpoint.rollout.strategy == "all_at_once"
    assert (production.endpoint.rollout.strategy, production.endpoint.rollout.percent) == ("canary", 10)
    own = load_config(DEFAULT_CONFIG, overrides=("deployment.stages=[staging, {name: production, lifecycle_stage: "
                                                 "Prod, endpoint: {rollout: {strategy: linear}}}]",))  # fmt: skip
    assert [(s.lifecycle_stage, s.alias) for s in own.deployment.stages] == [
        ("Staging", "staging"),
        ("Prod", "champion"),
    ]
    assert own.deployment.stages[0].endpoint is None and own.deployment.stages[1].endpoint.rollout.strategy == "linear"
    assert load_config(DEFAULT_CONFIG, overrides=("deployment.stages=[]",)).deployment.stages == []
