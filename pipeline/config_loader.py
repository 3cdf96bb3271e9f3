"""Read `config/pipeline.yaml` into a validated `PipelineConfig`.

Three steps, each reporting problems by key path: `${VAR}` / `${VAR:-default}`
interpolation from the environment, `--set a.b.c=value` overrides, then the pydantic
schema. All problems found at one stage are reported together so a user fixes them in
one pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError

__all__ = ["DEFAULT_CONFIG_PATH", "apply_overrides", "interpolate", "load_config", "parse_config", "parse_yaml"]

DEFAULT_CONFIG_PATH = Path("config/pipeline.yaml")

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_BAD_VAR = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})")


def interpolate(tree: Any, env: Mapping[str, str], path: str = "") -> tuple[Any, list[tuple[str, str]]]:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a YAML tree.

    Returns the new tree and the problems (key path, message); the input is not modified.
    """
    problems: list[tuple[str, str]] = []
    if isinstance(tree, dict):
        out: dict[Any, Any] = {}
        for key, value in tree.items():
            out[key], sub = interpolate(value, env, f"{path}.{key}" if path else str(key))
            problems += sub
        return out, problems
    if isinstance(tree, list):
        items = []
        for index, value in enumerate(tree):
            item, sub = interpolate(value, env, f"{path}[{index}]")
            items.append(item)
            problems += sub
        return items, problems
    if not isinstance(tree, str) or "${" not in tree:
        return tree, problems
    if _BAD_VAR.search(tree):
        return tree, [(path, f"malformed ${{...}} reference in {tree!r}")]

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append((path, f"environment variable {name} is not set (referenced as {match.group(0)})"))
        return match.group(0)

    return _VAR.sub(substitute, tree), problems


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([("--set", f"expected KEY.PATH=VALUE, got {text!r}")])
    parts = key.strip().split(".")
    if any(not part for part in parts):
        raise ConfigError([("--set", f"empty key segment in {key!r}")])
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError([(key, f"--set value is not valid YAML: {exc}")]) from None
    return parts, value


def apply_overrides(tree: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a copy of the tree.

    Intermediate keys that do not exist are created, so the schema can then report an
    unknown key with its full path; walking through a scalar is an error here.
    """
    result = _deep_copy(tree)
    for text in overrides:
        parts, value = _parse_override(text)
        node: Any = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError([(where, f"is a {type(child).__name__}, so --set {'.'.join(parts)} cannot descend")])
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _deep_copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_deep_copy(v) for v in tree]
    return tree


def _format_location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith("function-"):  # pydantic's tag for a validator in a union
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _format_validation_error(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors(include_url=False):
        kind, message = item["type"], item["msg"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif kind in {"string_pattern_mismatch"}:
            message = f"{item['input']!r} does not match the expected format {item['ctx']['pattern']}"
        elif "input" in item and kind not in {"model_type", "dict_type"}:
            message = f"{message} (got {item['input']!r})"
        problems.append((_format_location(item["loc"]), message))
    return problems


def parse_config(
    raw: Any, *, env: Mapping[str, str] | None = None, overrides: Iterable[str] = (), source: str = ""
) -> PipelineConfig:
    """Validate an already-parsed YAML tree. Pure: the environment is passed in."""
    if not isinstance(raw, dict):
        raise ConfigError([("", f"the top level must be a mapping of sections, got {type(raw).__name__}")], source)
    tree, problems = interpolate(raw, os.environ if env is None else env)
    if problems:
        raise ConfigError(problems, source)
    tree = apply_overrides(tree, overrides)
    try:
        return PipelineConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc), source) from None


MAX_EXPANDED_NODES = 100_000  # the default config is ~300 nodes; a bomb is 10**9


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many nodes `node` becomes once every alias is expanded (as interpolation and the
    schema walk it), counted without expanding: each shared node is sized once."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise ValueError("an alias refers to a node that contains it (a recursive structure)")
    open_nodes.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, sizes, open_nodes) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes, open_nodes) + _expanded_size(v, sizes, open_nodes) for k, v in node.value)
    open_nodes.discard(key)
    sizes[key] = size
    return size


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.1's safe loader, with YAML 1.2's floats: PyYAML reads `1e3` (no dot) as the
    text "1e3", so `n_estimators: 1e3` would reach the job as a string. YAML 1.2's core
    schema ("10.2.1.4 Floating Point", yaml.org/spec/1.2.2) reads it as 1000.0."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """`yaml.safe_load`, bounded: anchors and aliases are allowed (a config may reuse a
    block), but a document that would expand past MAX_EXPANDED_NODES (an alias bomb: a few
    KB that become 10**9 nodes) or that refers to itself is refused before it is built.

    Raises yaml.YAMLError for invalid YAML, ValueError for a document too large, too deep
    or recursive."""
    loader = _ConfigLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ValueError("the YAML is nested too deeply") from None
        if node is None:
            return None
        try:
            size = _expanded_size(node, {}, set())
        except RecursionError:
            raise ValueError("the YAML is nested too deeply") from None
        if size > MAX_EXPANDED_NODES:
            raise ValueError(
                f"the YAML expands to {size:,} nodes through its aliases (at most {MAX_EXPANDED_NODES:,} are read)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(
    path: Path | str = DEFAULT_CONFIG_PATH, *, overrides: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Read and validate a config file; every failure is a ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([("", "config file not found")], str(path)) from None
    except UnicodeDecodeError as exc:
        message = f"not a UTF-8 text file (byte {exc.start} is 0x{exc.object[exc.start]:02x}); is it a YAML file?"
        raise ConfigError([("", message)], str(path)) from None
    except OSError as exc:
        raise ConfigError([("", f"cannot read config file: {exc.strerror}")], str(path)) from None
    try:
        raw = parse_yaml(text)
    except ValueError as exc:
        raise ConfigError([("", str(exc))], str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([("", f"{where}invalid YAML: {problem}")], str(path)) from None
    return parse_config(raw, env=env, overrides=overrides, source=str(path))
