"""One validation mechanism for component parameters and pipeline YAML (pydantic v2).

A component is a keyword-only dataclass with JSON-basic fields; :func:`validate_params`
checks a parameter mapping against its fields *without constructing it*: unknown keys
(with a "did you mean"), missing required ones, wrong basic types (strictly: ``"5"`` is
not an integer, ``true`` is not an integer, ``5`` is a fine float), ``Literal`` choices,
nested lists and mappings, and bounds declared with :class:`AtLeast`. Every problem
becomes one :class:`~ragnest.errors.ConfigError` line that names where it is and what is
wrong, in plain words::

    >>> from dataclasses import dataclass
    >>> from typing import Literal
    >>> from ragnest._validate import validate_params
    >>> @dataclass(kw_only=True)
    ... class Toy:
    ...     size: int = 3
    ...     mode: Literal["fast", "exact"] = "fast"
    >>> validate_params(Toy, {"size": 4, "mode": "exact"}, where="components.toy.params")
    >>> validate_params(Toy, {"sise": 4}, where="x.yaml: components.toy.params")
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: x.yaml: components.toy.params: unknown parameter 'sise' for Toy; did you mean 'size'? (known: mode, size)
    >>> validate_params(Toy, {"size": "5", "mode": "fats"}, where="components.toy.params")
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: components.toy.params.size: expects an integer, got '5' (a string)
    components.toy.params.mode: 'fats' is not one of 'fast', 'exact'; did you mean 'fast'?

A plain class (not a dataclass) is checked against the keyword parameters of its
``__init__`` (a ``**kwargs`` parameter accepts any other key). Annotations written as
strings (``from __future__ import annotations``) are resolved; one that does not resolve
is a bug in the class and raises, it never switches validation off. pydantic is imported
on first use, and one validator is built per class and cached.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import threading
import types
import typing
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ragnest.errors import ConfigError

__all__ = ["AtLeast", "did_you_mean", "describe", "validate_params"]

_MISSING = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class AtLeast:
    """A lower bound for a numeric field: ``k: Annotated[int, AtLeast(1)] = 5``."""

    value: float


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choices, or ``""`` when none is close.

    >>> did_you_mean("retreival", ["retrieval", "ingest"])
    "; did you mean 'retrieval'?"
    >>> did_you_mean("zzz", ["retrieval"])
    ''
    """
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


# -- annotations in plain words ------------------------------------------------------

_WORDS: dict[Any, tuple[str, str]] = {
    bool: ("true or false", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    type(None): ("null", "nulls"),
}
_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def _strip(annotation: Any) -> Any:
    """Drop ``Annotated`` and ``| None`` around a single other type."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if _is_union(annotation):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) == 1:
                annotation = rest[0]
                continue
        return annotation


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def describe(annotation: Any, *, plural: bool = False) -> str:
    """An annotation in plain words: ``list[dict[str, Any]]`` -> ``"a list of mappings"``.

    >>> describe(int | list[str] | None)
    'an integer or a list of strings or null'
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return describe(args[0], plural=plural)
    if annotation in (Any, object):
        return "any values" if plural else "any value"
    if annotation in _WORDS:
        return _WORDS[annotation][1 if plural else 0]
    if _is_union(annotation):
        return " or ".join(describe(a, plural=plural) for a in args)
    if origin is Literal:
        return ("values from " if plural else "one of ") + ", ".join(repr(a) for a in args)
    if origin in _SEQUENCES or annotation in _SEQUENCES:
        items = [a for a in args if a is not Ellipsis]
        head = "lists" if plural else "a list"
        if len(set(items)) == 1 and items[0] not in (Any, object):
            return f"{head} of {describe(items[0], plural=True)}"
        return head
    if origin in _MAPPINGS or annotation in _MAPPINGS:
        head = "mappings" if plural else "a mapping"
        if len(args) == 2 and args[1] not in (Any, object):
            return f"{head} to {describe(args[1], plural=True)}"
        return head
    name = getattr(annotation, "__name__", None) or str(annotation)
    if plural:
        return f"{name} objects"
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _got(value: Any) -> str:
    """The value a user wrote and what it is: ``'5' (a string)``."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", tuple: "a list", dict: "a mapping"}.get(type(value))
    return f"{text} ({kind or describe(type(value))})"


# -- the fields a class takes --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Spec:
    owner: str
    fields: dict[str, tuple[Any, bool]]  # name -> (annotation, required)
    open_keys: bool  # a **kwargs parameter takes any other key
    adapter: Any  # pydantic.TypeAdapter


_cache: weakref.WeakKeyDictionary[Any, _Spec] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _hints(obj: Any, owner: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception as err:
        raise ConfigError(
            f"{owner}: its parameter annotations do not resolve ({type(err).__name__}: {err}); "
            "this is a bug in the class, and its parameters cannot be checked until it is fixed"
        ) from err


def _fields(target: Any, owner: str) -> tuple[dict[str, tuple[Any, bool]], bool]:
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        hints = _hints(target, owner)
        fields: dict[str, tuple[Any, bool]] = {}
        for name, f in target.__dataclass_fields__.items():
            hint = hints.get(name, Any)
            if hint is typing.ClassVar or typing.get_origin(hint) is typing.ClassVar:
                continue
            if isinstance(hint, dataclasses.InitVar):
                hint = hint.type
            elif not f.init:
                continue
            fields[name] = (hint, f.default is _MISSING and f.default_factory is _MISSING)
        return fields, False
    init = target.__init__ if isinstance(target, type) else target
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{owner}: cannot read its parameters ({err})") from err
    hints = _hints(init, owner) if init is not object.__init__ else {}
    fields, open_keys = {}, False
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            open_keys = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            fields[p.name] = (hints.get(p.name, Any), p.default is p.empty)
    return fields, open_keys


def _prepare(annotation: Any) -> Any:
    """What pydantic checks: lists stand in for tuples (YAML has no tuples), bounds."""
    from pydantic import Field, Strict

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        meta = [Field(ge=m.value) if isinstance(m, AtLeast) else m for m in args[1:]]
        return typing.Annotated[(_prepare(args[0]), *meta)]
    if _is_union(annotation):
        return typing.Union[tuple(_prepare(a) for a in args)]
    if origin is tuple:
        inner = tuple(a if a is Ellipsis else _prepare(a) for a in args)
        return typing.Annotated[tuple[inner] if inner else tuple, Strict(False)]
    if annotation is tuple:
        return typing.Annotated[tuple, Strict(False)]
    if origin in (list, dict, set, frozenset) and args:
        return origin[tuple(_prepare(a) for a in args)]
    return annotation


def _spec(target: Any, where: str) -> _Spec:
    try:
        return _cache[target]
    except (KeyError, TypeError):
        pass
    from pydantic import ConfigDict, TypeAdapter
    from typing_extensions import NotRequired, Required, TypedDict

    owner = getattr(target, "__qualname__", None) or repr(target)
    fields, open_keys = _fields(target, f"{where}: {owner}")
    keys = {
        name: (Required if required else NotRequired)[_prepare(hint)]
        for name, (hint, required) in fields.items()
    }
    shape: Any = TypedDict(f"{owner.replace('.', '_')}Params", keys)  # type: ignore[operator]
    shape.__pydantic_config__ = ConfigDict(
        extra="allow" if open_keys else "forbid", strict=True, arbitrary_types_allowed=True
    )
    try:
        adapter = TypeAdapter(shape)
    except Exception as err:
        raise ConfigError(
            f"{where}: {owner}: its parameter annotations cannot be checked ({type(err).__name__}: "
            f"{err}); use JSON-basic field types"
        ) from err
    spec = _Spec(owner=owner.rsplit(".", 1)[-1], fields=fields, open_keys=open_keys,
                 adapter=adapter)
    with _lock:
        try:
            _cache[target] = spec
        except TypeError:  # not weak-referenceable: validate uncached
            pass
    return spec


# -- pydantic's errors in plain words ------------------------------------------------

_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be greater than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
}


def _locate(annotation: Any, loc: tuple[Any, ...]) -> tuple[list[Any], Any, bool]:
    """Follow pydantic's ``loc`` through the annotation.

    Returns the path the user wrote (list indices and mapping keys), the annotation
    found there and whether the error is about a mapping key. A union with several
    choices stops the walk: pydantic tags each choice's error, and the message then
    names the union as a whole.
    """
    path: list[Any] = []
    i = 0
    while i < len(loc):
        annotation = _strip(annotation)
        if _is_union(annotation):
            break
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        element = loc[i]
        if origin in _MAPPINGS or annotation in _MAPPINGS:
            if i + 1 < len(loc) and loc[i + 1] == "[key]":
                return path, args[0] if args else Any, True
            path.append(element)
            annotation = args[1] if len(args) == 2 else Any
        elif origin in _SEQUENCES or annotation in _SEQUENCES:
            path.append(element)
            items = [a for a in args if a is not Ellipsis]
            fixed = origin is tuple and Ellipsis not in args and isinstance(element, int)
            if fixed and element < len(items):
                annotation = items[element]
            else:
                annotation = items[0] if items else Any
        else:
            path.append(element)
            annotation = Any
        i += 1
    return path, annotation, False


def _render(where: str, path: Iterable[Any]) -> str:
    """``where`` plus a path: ``x.yaml: components.a.params`` + ``ladder, 0`` ->
    ``x.yaml: components.a.params.ladder[0]``; a ``where`` ending in ``:`` (a file's
    root) is followed by a space instead of a dot."""
    out = where
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out.endswith(":"):
            out += f" {part}"
        else:
            out += f".{part}" if out else str(part)
    return out


def _value_at(data: Any, path: list[Any]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _problem(
    spec: _Spec, where: str, noun: str, owner: str, data: Any, error: Mapping[str, Any]
) -> str:
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    known = sorted(spec.fields)
    head = where.rstrip(":")
    if kind == "extra_forbidden" and len(loc) == 1:
        return (
            f"{head}: unknown {noun} {loc[0]!r} for {owner}"
            + did_you_mean(str(loc[0]), known)
            + f" (known: {', '.join(known) or 'none'})"
        )
    if kind == "missing" and len(loc) == 1:
        return f"{head}: missing required {noun} {loc[0]!r} for {owner}"
    if not loc:
        return f"{head}: expects a mapping of {noun}s to values, got {_got(data)}"
    annotation = spec.fields.get(loc[0], (Any, False))[0]
    rest, annotation, key_error = _locate(annotation, loc[1:])
    path = [loc[0], *rest]
    place = _render(where, path)
    value = error.get("input") if key_error else _value_at(data, path)
    if key_error:
        return f"{place}: keys must be {describe(annotation, plural=True)}, got {_got(value)}"
    shown, annotation = annotation, _strip(annotation)
    if typing.get_origin(annotation) is Literal:
        allowed = typing.get_args(annotation)
        choices = [repr(c) for c in allowed]
        if shown is not annotation and _is_union(_strip_annotated(shown)):
            choices.append("null")
        hint = did_you_mean(value, [str(c) for c in allowed]) if isinstance(value, str) else ""
        return f"{place}: {value!r} is not one of {', '.join(choices)}{hint}"
    if kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
        name, words = _BOUNDS[kind]
        return f"{place}: {words} {ctx[name]}, got {_got(value)}"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return f"{place}: must not be empty"
    if annotation not in (Any, object) and (
        _is_union(annotation) or kind.endswith("_type") or kind in ("is_instance_of", "none_required")
    ):
        return f"{place}: expects {describe(shown)}, got {_got(value)}"
    message = str(error.get("msg", kind))
    message = message.replace("Input should", "should", 1)
    return f"{place}: {message[:1].lower()}{message[1:]}, got {_got(value)}"


def validate_params(
    target: Any,
    params: Mapping[str, Any],
    *,
    where: str,
    noun: str = "parameter",
    owner: str | None = None,
) -> None:
    """Check ``params`` against what ``target(**params)`` takes, without calling it.

    ``target`` is a dataclass (its ``init`` fields) or any class or callable (its
    keyword parameters). ``where`` names the mapping in messages (``"pipelines/x.yaml:
    components.dense.params"``); a problem's location is ``where`` plus the path inside
    it (``...params.ladder[0]``); a ``where`` ending in ``:`` names a file's root
    (``"x.yaml:"`` -> ``x.yaml: pipeline``). ``noun`` is what the keys are called
    (``"parameter"``, ``"key"``); ``owner`` what they belong to (by default the class
    name). Raises :class:`~ragnest.errors.ConfigError` with one line per problem; the
    values themselves are not converted or returned (construction stays
    ``target(**params)``).

    >>> from ragnest.parsers.pdf import PdfParser
    >>> validate_params(PdfParser, {"dpi": 150, "ocr": "never"}, where="pdf")
    >>> validate_params(PdfParser, {"dpi": True}, where="pdf")
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: pdf.dpi: expects an integer, got True (a boolean)
    """
    from pydantic import ValidationError

    spec = _spec(target, where)
    try:
        spec.adapter.validate_python(params)
    except ValidationError as err:
        first = {"extra_forbidden": 0, "missing": 1}
        errors = sorted(err.errors(include_url=False), key=lambda e: first.get(e["type"], 2))
        lines: list[str] = []
        for error in errors:
            line = _problem(spec, where, noun, owner or spec.owner, params, error)
            if line not in lines:  # a union reports once, not once per choice
                lines.append(line)
        raise ConfigError("\n".join(lines)) from None
