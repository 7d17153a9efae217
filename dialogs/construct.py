"""``model_construct`` for hot paths, without its per-field Python loop.

``understand`` builds an ``Understood`` for every message with every value already of its
declared type: there is nothing to validate, yet pydantic's ``model_construct`` walks every
field (aliases, defaults) in Python, ≈ 10 µs, and the validating constructor costs about as
much. ``fast_constructor`` precomputes the defaults once and fills the same ``__dict__``
(field order, a fresh value from each default factory not given), fields-set, extra and
private slots. It refuses models where ``model_construct`` does more (aliases, private
attributes, ``model_post_init``, extra="allow"); ``tests/test_fast_paths.py`` checks the result
equals ``model_construct``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def fast_constructor(cls: type[M]) -> Callable[..., M]:
    """A function equal to ``cls.model_construct`` for keyword values of the fields."""
    fields = cls.model_fields
    if (any(f.alias is not None or f.validation_alias is not None for f in fields.values())
            or cls.__private_attributes__ or cls.__pydantic_post_init__
            or cls.model_config.get("extra") == "allow"):
        raise TypeError(f"{cls.__name__}: model_construct does more than fast_constructor")
    defaults: dict[str, Any] = {n: None if f.default_factory else f.default for n, f in fields.items()}
    factories: list[tuple[str, Callable[[], Any]]] = [
        (n, f.default_factory) for n, f in fields.items() if f.default_factory is not None  # type: ignore[misc]
    ]
    new = cls.__new__
    set_ = object.__setattr__

    def construct(**values: Any) -> M:
        d = {**defaults, **values}
        for name, factory in factories:
            if name not in values:
                d[name] = factory()
        m = new(cls)
        set_(m, "__dict__", d)
        set_(m, "__pydantic_fields_set__", set(values))
        set_(m, "__pydantic_extra__", None)
        set_(m, "__pydantic_private__", None)
        return m

    return construct
