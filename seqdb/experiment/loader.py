"""Load an experiment YAML into an `ExperimentConfig`, or fail with ONE line.

Every failure is a `ConfigError`: `<file>: <dotted.field.path>: <what was found>; allowed:
<what is allowed>`. YAML syntax errors name the line and column; duplicate keys are errors
(PyYAML would silently keep the last one).
"""

from __future__ import annotations

import hashlib
import json
import reprlib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from seqdb.errors import ConfigError
from seqdb.experiment.schema import ExperimentConfig


MAX_ALIASES = 100  # YAML `*alias` uses per file: more is an alias bomb (exponential expansion)
MAX_EXPANDED_NODES = 200_000  # values in the document once every alias is expanded
MAX_YAML_BYTES = 1_000_000


def _expanded_size(node: yaml.Node, memo: dict) -> int:
    """Number of values `node` stands for with every alias expanded (each shared node is
    counted once per use, computed once: linear in the file, not in the expansion)."""
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a recursive alias: counted when it closes
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(child, memo) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
        else:
            memo[key] = 1
    return memo[key]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping and more than MAX_ALIASES
    alias uses (a "billion laughs" file would expand exponentially when validated)."""

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201
        if self.check_event(yaml.events.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_ALIASES} aliases (*name)", mark)
        return super().compose_node(parent, index)

    def compose_document(self):  # noqa: ANN201
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(None, None, f"aliases expand to more than {MAX_EXPANDED_NODES} values", node.start_mark)
        return node


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path | str) -> tuple[str, dict]:
    """(text, mapping) of a YAML file; one-line ConfigError on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; allowed: a path to an experiment YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}); allowed: a readable YAML file") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: {len(raw)} bytes; allowed: an experiment YAML of at most {MAX_YAML_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: byte {exc.start} is not UTF-8; allowed: a UTF-8 text file") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise ConfigError(f"{path}: {where}: {exc.problem or exc.context}; allowed: valid YAML") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}; allowed: valid YAML") from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}: top level is {found}; allowed: a mapping with keys {', '.join(ExperimentConfig.model_fields)}")
    return text, data


def load_experiment(path: Path | str) -> ExperimentConfig:
    """Read and validate one experiment YAML."""
    _, data = read_yaml(path)
    return validate_experiment(data, source=str(path))


def validate_experiment(data: dict, *, source: str = "<experiment>") -> ExperimentConfig:
    """Validate a parsed mapping; a failure names `source` and the first bad field."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        err = dict(exc.errors()[0])
        loc = tuple(err["loc"])
        if isinstance(data.get("target"), dict) and loc[:2] == ("target", 0):
            err["loc"] = ("target", *loc[2:])  # a single target was written without a list
        raise ConfigError(f"{source}: {describe_error(err)}") from None


def config_json(config: ExperimentConfig) -> dict:
    """The JSON stored in `experiment.config` (defaults filled in). `data.columns` is a list
    of [name, kind] pairs: Postgres JSONB reorders object keys, and the column order is the
    model's input order (the same YAML must build the same model on every backend)."""
    data = config.model_dump(mode="json")
    data["data"]["columns"] = [[name, kind] for name, kind in config.data.columns.items()]
    return data


def content_hash(config: ExperimentConfig) -> str:
    """sha256 of the validated config (comments and formatting of the YAML do not count)."""
    text = json.dumps(config_json(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- pydantic error -> `<dotted.path>: <found>; allowed: <allowed>` ------------------------
def describe_error(err: dict) -> str:
    loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
    kind, msg = err["type"], err["msg"]
    if kind == "value_error" and not loc:
        return msg.removeprefix("Value error, ")  # cross-field rule: already `path: found; allowed`
    path = ".".join(str(p) for p in loc) or "(top level)"
    found = _found(err)
    if kind == "extra_forbidden":
        return f"{path}: unknown key; allowed: {_allowed_keys(loc[:-1])}"
    if kind == "missing":
        return f"{path}: missing; allowed: a value is required here"
    if kind.startswith("literal_error"):
        return f"{path}: found {found}; allowed: {err.get('ctx', {}).get('expected', msg)}"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        return f"{path}: {text}" if text.startswith("found ") else f"{path}: found {found}; allowed: {text}"
    return f"{path}: found {found}; allowed: {_lower_first(msg)}"


def _is_union_tag(part: Any) -> bool:
    """pydantic adds the union member (`TargetSection`, `list[...]`) to the location."""
    return isinstance(part, str) and (part[:1].isupper() or part.startswith(("list[", "dict[", "function-")))


_SHORT = reprlib.Repr()  # (Python 3.11 takes no keywords here)
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxset = 2, 4, 4, 4, 4
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40


def _found(err: dict) -> str:
    """A short excerpt of the offending value (never the whole input: it may be huge)."""
    value = err.get("input")
    if isinstance(value, dict):
        keys = [str(k)[:40] for k in list(value)[:10]]
        return f"a mapping with keys {sorted(keys)}{' ...' if len(value) > 10 else ''}"[:200]
    text = _SHORT.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _lower_first(text: str) -> str:
    text = text.removeprefix("Input should be ").removeprefix("input should be ")
    return text[:1].lower() + text[1:]


def _allowed_keys(loc: tuple) -> str:
    model = _model_at(ExperimentConfig, loc)
    return ", ".join(model.model_fields) if model else "no other keys"


def _model_at(model: Any, loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class found by walking `loc` down from `model` (best effort)."""
    for part in loc:
        model = _unwrap(model)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part)) if not isinstance(part, int) else None
        if field is None:
            continue  # a list index or dict key: stay on the element type found by _unwrap
        model = field.annotation
    model = _unwrap(model)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Optional[X] / Union[X, list[X]] / list[X] / dict[str, X] -> X (the first model inside)."""
    for _ in range(5):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if not args:
            return tp
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        tp = models[0] if models else args[-1]
    return tp
