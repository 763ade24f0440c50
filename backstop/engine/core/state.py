"""State containers of the compiled core: numba StructRefs that compiled code borrows.

The book, the portfolio, the verdicts, the guardrail state and the market view are each a
handful of arrays that a dozen kernels receive per signal. numba counts references on every
array and struct it passes or reads: an atomic increment and decrement each time, which was
half of a backtest's time as NamedTuples of arrays and still a fifth as plain StructRefs
(bench/PROFILE.md). These structs take no part in reference counting:

- A state struct is built by its Python helper (``new_book``, ``new_portfolio``,
  ``new_decisions``, ``new_guard``, ``new_market``): a ``_make_*`` kernel allocates it and
  hands it straight to Python, whose proxy object is its only owner. Compiled code borrows it
  for the length of a call (``BorrowedStructModel``: the struct type carries no count).
- Its array fields are borrowed views (``borrow_nb``: the data without its owner), and the
  proxy holds the owning numpy arrays (``StateStruct.hold``). Python reads the fields from
  there; a helper that grows a buffer replaces both (``StateStruct.replace_held``).

So compiled code must never create a state struct (nothing would free it), return one (it
would be freed twice) or hand one of its field arrays to Python (the view has no owner).
``tests/test_state_structs.py`` checks the ownership rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel import default_manager, models
from numba.experimental import structref
from numba.extending import NativeValue, box, intrinsic, overload, unbox


class StateType(types.StructRef):
    """Base of the state structs' numba types: fields typed by the arrays given."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class BorrowedStructModel(models.StructRefModel):
    """A StructRef's layout (a pointer to its meminfo) without reference counting: numba
    emits no incref or decref for a value of this type."""

    def traverse(self, builder):
        return []

    def has_nrt_meminfo(self) -> bool:
        return False


def state_type(cls: type[StateType]) -> type[StateType]:
    """Register ``cls`` as a StructRef type whose values compiled code only borrows."""
    structref.register(cls)
    default_manager.register(cls, BorrowedStructModel)
    return cls


def define_state_proxy(
    proxy: type[StateStruct], struct_type: type[StateType], fields: tuple[str, ...]
) -> None:
    """``structref.define_proxy`` for a borrowed state type, and the field names.

    The jit constructor stores a borrowed view of each array it is given (structref's
    stores the array and its owner). Boxing is structref's: it takes over the reference a
    ``_make_*`` kernel's new struct holds. Unboxing differs: numba's acquires a reference
    that the call's clean-up would release through the data model, which counts nothing
    here, so it is released at once (the proxy keeps the struct alive for the call)."""
    _define_borrowing_constructor(proxy, struct_type, fields)
    obj_ctor = proxy._numba_box_
    mip_type = types.MemInfoPointer(types.voidptr)

    @box(struct_type)
    def box_state(typ, val, c):
        meminfo = cgutils.create_struct_proxy(typ)(c.context, c.builder, value=val).meminfo
        boxed_meminfo = c.box(mip_type, meminfo)
        ctor = c.pyapi.unserialize(c.pyapi.serialize_object(obj_ctor))
        ty_obj = c.pyapi.unserialize(c.pyapi.serialize_object(typ))
        res = c.pyapi.call_function_objargs(ctor, [ty_obj, boxed_meminfo])
        c.pyapi.decref(ctor)
        c.pyapi.decref(ty_obj)
        c.pyapi.decref(boxed_meminfo)
        return res

    @unbox(struct_type)
    def unbox_state(typ, obj, c):
        mi_obj = c.pyapi.object_getattr_string(obj, "_meminfo")
        meminfo = c.unbox(mip_type, mi_obj).value  # acquired ...
        c.context.nrt.decref(c.builder, mip_type, meminfo)  # ... and released: borrowed
        c.pyapi.decref(mi_obj)
        ref = cgutils.create_struct_proxy(typ)(c.context, c.builder)
        ref.meminfo = meminfo
        return NativeValue(ref._getvalue())

    proxy._names = tuple(fields)


def _define_borrowing_constructor(
    proxy: type[StateStruct], struct_type: type[StateType], fields: tuple[str, ...]
) -> None:
    """``structref.define_constructor``, with every field stored through ``borrow_nb``
    (generated the same way: an overload of ``proxy`` whose source names the fields)."""
    params = ", ".join(fields)
    stores = "\n        ".join(f"st.{name} = borrow_nb({name})" for name in fields)
    source = f"""
def ctor({params}):
    struct_type = struct_typeclass(list(zip({list(fields)!r}, [{params}])))
    def impl({params}):
        st = new(struct_type)
        {stores}
        return st
    return impl
"""
    scope: dict[str, Any] = {
        "struct_typeclass": struct_type,
        "new": structref.new,
        "borrow_nb": borrow_nb,
    }
    exec(source, scope)
    overload(proxy)(scope["ctor"])


@intrinsic
def borrow_nb(typingctx, arr):
    """A view of ``arr`` without its owner: same data, shape and type, no reference count.

    Valid while the owner lives; a state struct's proxy holds the owner of every field."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        view = context.make_array(sig.args[0])(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return arr(arr), codegen


class StateStruct(structref.StructRefProxy):
    """Python face of a state struct: owner of its field arrays, which it exposes as
    attributes (the arrays themselves, shared with compiled code, not copies)."""

    _names: tuple[str, ...] = ()

    if TYPE_CHECKING:  # the fields are set per instance by ``hold``: each is an array

        def __getattr__(self, name: str) -> np.ndarray: ...

    def __new__(cls, *args: Any) -> StateStruct:
        raise TypeError(f"build a {cls.__name__} with its new_* helper, which holds its arrays")

    @classmethod
    def build(cls, make: Callable[..., StateStruct], arrays: tuple[np.ndarray, ...]) -> Any:
        """Call the ``_make_*`` kernel ``make`` on ``arrays`` and hold them."""
        obj = make(*arrays)
        obj.hold(arrays)
        return obj

    def hold(self, arrays: tuple[np.ndarray, ...]) -> None:
        """Own ``arrays`` (one per field, in order): the struct's fields are views of them."""
        arrays = tuple(arrays)
        self.__dict__["_held"] = arrays
        self.__dict__.update(zip(self._names, arrays, strict=True))

    def replace_held(self, **new: np.ndarray) -> None:
        """Own ``new`` in place of the named fields' arrays (after a kernel set them)."""
        unknown = sorted(set(new) - set(self._names))
        if unknown:
            raise KeyError(f"{type(self).__name__} has no field {unknown[0]!r}")
        held = self.__dict__["_held"]
        self.hold(tuple(new.get(n, a) for n, a in zip(self._names, held, strict=True)))


@intrinsic
def prefetch_nb(typingctx, arr, i):
    """Ask the CPU to bring ``arr[i]`` into cache (no bounds check: a prefetch never faults).

    For arrays the loop reads only on the few bars that fill an order: read sparsely, each
    such read missed the cache (a DRAM round trip per fill bar)."""
    if not isinstance(arr, types.Array) or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, value=args[0])
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [idx])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.none(arr, i), codegen
