"""What a ``_target_`` takes, read from its signature and type hints, and whether a config value
fits a type hint (pydantic in lax mode, with the exceptions a config needs).

Used by :mod:`cvbench.run.config_types`. A hint is judged only where it can be: one that cannot
be evaluated, or that names only classes pydantic has no schema for (``nn.Module``,
``torch.device``: the callee may convert a string itself), is not.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Literal, Union

from hydra.utils import get_object
from pydantic import ConfigDict, TypeAdapter, ValidationError

NO_DEFAULT = inspect.Parameter.empty
NOT_ANNOTATED = inspect.Parameter.empty
# Lax mode, but a number given where a string is expected is taken (the command line reads
# ``year=2012`` as an int, and the callee formats it), and a class named in a hint is an
# isinstance check rather than a reason to skip the whole hint (``float | Tensor``).
_CONFIG = ConfigDict(arbitrary_types_allowed=True, coerce_numbers_to_str=True)


def fits(value: Any, annotation: Any) -> bool | None:
    """Whether ``value`` fits the type hint; None where the hint is not judged.

    pydantic's lax mode decides (``1`` is a valid float, a list a valid tuple, an Enum member's
    name a valid member), except that a number or a boolean is never taken from a string and
    an int never from a float: the callee gets the value as written, not pydantic's conversion.
    """
    adapter = _adapter(annotation)
    if adapter is None:
        return None
    try:
        result = adapter.validate_python(value)
    except ValidationError:
        return False
    except Exception:  # an isinstance check pydantic cannot make (a Protocol): not judged
        return None
    return not _converted(value, result)


def _converted(value: Any, result: Any) -> bool:
    """pydantic's lax mode made a number or boolean of a string, or an int of a float: the
    callee would get the string or the float."""
    if isinstance(value, str):
        return isinstance(result, bool | int | float)
    if isinstance(value, float):
        return isinstance(result, int)
    return False


@functools.cache
def keyword_parameters(target: str) -> tuple[dict[str, tuple[Any, Any]], bool] | None:
    """The parameters ``target`` takes by keyword, as ``{name: (annotation, default)}``, and
    whether its signature is closed (no ``**kwargs``); None where it cannot be read."""
    try:
        obj = get_object(target)
        signature = inspect.signature(obj)
    except Exception:  # not importable or no signature: Hydra reports it, or it is not judged
        return None
    closed = not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    known: dict[str, tuple[Any, Any]] = {}
    functions = _init_chain(obj) if inspect.isclass(obj) else [obj]
    for function in functions:
        try:
            own = inspect.signature(function).parameters
        except (TypeError, ValueError):
            break
        hints = _hints(function)
        for name, p in own.items():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY) or name in known:
                continue
            known[name] = (hints.get(name, NOT_ANNOTATED), p.default)
    for name, p in signature.parameters.items():  # the signature is what Hydra calls
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in known:
            known[name] = (NOT_ANNOTATED, p.default)
    known.pop("self", None)
    return known, closed


def _init_chain(cls: type) -> list[Callable]:
    """The ``__init__`` methods a class's keyword arguments reach: its own, then, while each
    passes ``**kwargs`` on, those of the classes after it in the MRO."""
    chain = []
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if not inspect.isfunction(init) and not hasattr(init, "__wrapped__"):
            continue
        chain.append(init)
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            break
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return chain


def _hints(function: Callable) -> dict[str, Any]:
    """The function's evaluated type hints; one at a time where some cannot be evaluated
    (a name imported only under ``TYPE_CHECKING``), so the others are still checked."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        pass
    unwrapped = inspect.unwrap(function)
    namespace = getattr(unwrapped, "__globals__", {})
    hints = {}
    for name, annotation in getattr(unwrapped, "__annotations__", {}).items():
        holder = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            hints |= typing.get_type_hints(holder, globalns=namespace, include_extras=True)
        except Exception:
            continue
    return hints


def _members(annotation: Any) -> tuple:
    """The members of a union (``int | None`` -> ``(int, NoneType)``), else ``(annotation,)``."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


@functools.cache
def _has_schema(annotation: Any) -> bool:
    """pydantic validates it without ``arbitrary_types_allowed`` (not a bare class)."""
    try:
        TypeAdapter(annotation)
    except Exception:
        return False
    return True


def _loosen(annotation: Any) -> Any:
    """An Enum also taken by a member's name (torchvision's ``weights="DEFAULT"``)."""
    members = _members(annotation)
    if len(members) > 1:
        return Union[tuple(_loosen(m) for m in members)]  # noqa: UP007 (built at run time)
    if isinstance(annotation, type) and issubclass(annotation, Enum) and annotation.__members__:
        return annotation | Literal[tuple(annotation.__members__)]
    return annotation


def _adapter(annotation: Any) -> TypeAdapter | None:
    """The validator of ``annotation``; None where the annotation is not judged."""
    if annotation is NOT_ANNOTATED:
        return None
    try:
        return _cached_adapter(annotation)
    except TypeError:  # an unhashable annotation: not cached
        return _build_adapter(annotation)


@functools.cache
def _cached_adapter(annotation: Any) -> TypeAdapter | None:
    return _build_adapter(annotation)


def _build_adapter(annotation: Any) -> TypeAdapter | None:
    members = [m for m in _members(annotation) if m is not type(None)]
    if not members or not any(_has_schema(m) for m in members):
        return None  # only classes (nn.Module, torch.device): the callee may convert itself
    try:
        return TypeAdapter(_loosen(annotation), config=_CONFIG)
    except Exception:
        return None


def describe(annotation: Any) -> str:
    """A type as a message names it.

    >>> from collections.abc import Mapping
    >>> describe(int | None), describe(Mapping[str, str]), describe(Literal["a", 16])
    ('int or None', 'Mapping[str, str]', "one of 'a', 16")
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        return "None"
    if origin in (Union, types.UnionType):
        values = [v for a in args if typing.get_origin(a) is Literal for v in typing.get_args(a)]
        others = [a for a in args if typing.get_origin(a) is not Literal and a is not type(None)]
        named = [describe(a) for a in others]
        named += [describe(Literal[tuple(dict.fromkeys(values))])] if values else []
        named += ["None"] if type(None) in args else []
        return " or ".join(dict.fromkeys(named))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is Annotated:
        return describe(args[0])
    if origin is not None and args:
        name = getattr(origin, "__name__", str(origin))
        if name == "Callable":
            return "callable"
        return f"{name}[{', '.join('...' if a is Ellipsis else describe(a) for a in args)}]"
    if annotation is Any:
        return "any value"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))
