"""`dataclass`, `field`, `asdict`, `replace` and `fields` as the standard library's, without its
start-up cost: envtool's modules import them from here.

The standard library's @dataclass compiles each generated method with exec() (six for a frozen
class) and imports `inspect` (with `ast`, `dis`, `tokenize`): ~0.5 ms a class and ~8 ms once on the
machines in docs/benchmarks.md.  A one-off `envtool run` defines about 30 such classes on its way to
the container, the supervisor more: ~25 ms of each.  This decorator makes the same classes from
shared, generic methods, no code generated: positional and keyword construction with defaults and
default factories, `__post_init__`, `init=False`/`repr=False`/`compare=False` fields, frozen instances
(FrozenInstanceError, an AttributeError), field-wise `__eq__`/`__hash__` with the standard library's
rules, `__repr__` and `__match_args__`.  Fields come in definition order after those of the base
classes, so asdict() gives the same dict as the standard library's (build-step keys and lock digests
are made from it).  Construction costs a few µs more; nothing here notices.

Type checkers read the standard library's names (the TYPE_CHECKING branch), so mypy checks every use
as it checks a dataclass; tests/unit/_util/test_record.py holds the behaviour equal to the standard
library's, class for class.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError, asdict, dataclass, field, fields, replace
else:
    class _Missing:
        __slots__ = ()

        def __repr__(self):
            return "MISSING"

    MISSING = _Missing()

    class FrozenInstanceError(AttributeError):
        pass

    class Field:
        __slots__ = ("name", "default", "default_factory", "init", "repr", "compare")

        def __init__(self, default=MISSING, default_factory=MISSING, init=True, repr=True, compare=True):
            if default is not MISSING and default_factory is not MISSING:
                raise ValueError("cannot specify both default and default_factory")
            self.name = ""
            self.default = default
            self.default_factory = default_factory
            self.init = init
            self.repr = repr
            self.compare = compare

        def __repr__(self):
            return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r})"

    def field(*, default=MISSING, default_factory=MISSING, init=True, repr=True, compare=True):
        return Field(default, default_factory, init, repr, compare)

    def _is_classvar(annotation):
        text = annotation if isinstance(annotation, str) else repr(annotation)
        return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))

    def _collect(cls):
        out = {}
        for base in reversed(cls.__mro__[1:]):
            out.update((f.name, f) for f in base.__dict__.get("__record_fields__", ()))
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if _is_classvar(annotation):
                continue
            value = cls.__dict__.get(name, MISSING)
            f = value if isinstance(value, Field) else Field(default=value)
            if isinstance(f.default, list | dict | set):
                raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: "
                                 "use default_factory")
            f.name = name
            out.pop(name, None)
            out[name] = f
            if isinstance(value, Field):
                if f.default is MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, f.default)
        return tuple(out.values())

    def _make_init(cls, all_fields, frozen):
        params = tuple(f for f in all_fields if f.init)
        seen_default = False
        for f in params:
            has_default = f.default is not MISSING or f.default_factory is not MISSING
            if seen_default and not has_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            seen_default = seen_default or has_default
        later = tuple(f for f in all_fields if not f.init)
        names = tuple(f.name for f in params)
        known = frozenset(names)
        qualname = cls.__qualname__
        post_init = hasattr(cls, "__post_init__")
        put = object.__setattr__ if frozen else setattr

        def __init__(self, *args, **kwargs):
            if len(args) > len(names):
                raise TypeError(f"{qualname}.__init__() takes {len(names) + 1} positional arguments but "
                                f"{len(args) + 1} were given")
            for name in kwargs:
                if name not in known:
                    raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {name!r}")
            for i, f in enumerate(params):
                if i < len(args):
                    if f.name in kwargs:
                        raise TypeError(f"{qualname}.__init__() got multiple values for argument {f.name!r}")
                    value = args[i]
                elif f.name in kwargs:
                    value = kwargs[f.name]
                elif f.default is not MISSING:
                    value = f.default
                elif f.default_factory is not MISSING:
                    value = f.default_factory()
                else:
                    raise TypeError(f"{qualname}.__init__() missing 1 required positional argument: {f.name!r}")
                put(self, f.name, value)
            for f in later:
                if f.default is not MISSING:
                    put(self, f.name, f.default)
                elif f.default_factory is not MISSING:
                    put(self, f.name, f.default_factory())
            if post_init:
                self.__post_init__()

        __init__.__qualname__ = f"{qualname}.__init__"
        return __init__

    def _frozen_setattr(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def _frozen_delattr(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _compared(self):
        return tuple(getattr(self, f.name) for f in self.__record_fields__ if f.compare)

    def _eq(self, other):
        if other.__class__ is self.__class__:
            return _compared(self) == _compared(other)
        return NotImplemented

    def _hash(self):
        return hash(_compared(self))

    def _repr(self):
        inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__ if f.repr)
        return f"{self.__class__.__qualname__}({inner})"

    def dataclass(cls=None, /, *, frozen=False, eq=True, repr=True):
        def wrap(cls):
            all_fields = _collect(cls)
            cls.__record_fields__ = all_fields
            cls.__init__ = _make_init(cls, all_fields, frozen)
            if repr and "__repr__" not in cls.__dict__:
                cls.__repr__ = _repr
            if eq and "__eq__" not in cls.__dict__:
                cls.__eq__ = _eq
            # the standard library's rule: eq and frozen hash the fields; eq alone is unhashable
            if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
                if eq and frozen:
                    cls.__hash__ = _hash
                elif eq:
                    cls.__hash__ = None
            if frozen:
                cls.__setattr__ = _frozen_setattr
                cls.__delattr__ = _frozen_delattr
            cls.__match_args__ = tuple(f.name for f in all_fields if f.init)
            return cls

        return wrap if cls is None else wrap(cls)

    def fields(obj):
        try:
            return obj.__record_fields__
        except AttributeError:
            raise TypeError("must be called with a dataclass type or instance") from None

    _ATOMS = (str, int, float, bool, bytes, type(None))

    def _inner(value):
        if hasattr(type(value), "__record_fields__"):
            return {f.name: _inner(getattr(value, f.name)) for f in value.__record_fields__}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*[_inner(v) for v in value])
        if isinstance(value, list | tuple):
            return type(value)(_inner(v) for v in value)
        if isinstance(value, dict):
            return type(value)((_inner(k), _inner(v)) for k, v in value.items())
        if isinstance(value, _ATOMS):
            return value
        import copy

        return copy.deepcopy(value)

    def asdict(obj):
        if not hasattr(type(obj), "__record_fields__"):
            raise TypeError("asdict() should be called on dataclass instances")
        return _inner(obj)

    def replace(obj, /, **changes):
        for f in obj.__record_fields__:
            if not f.init:
                if f.name in changes:
                    raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified with "
                                     "replace()")
                continue
            if f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return obj.__class__(**changes)

__all__ = ["FrozenInstanceError", "asdict", "dataclass", "field", "fields", "replace"]
