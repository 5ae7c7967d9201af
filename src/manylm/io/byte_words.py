"""Eight bytes at a time in compiled code: unaligned 64-bit loads and stores into byte arrays,
and the bit length of an integer (LLVM's ``ctlz``).

Numba writes a ``uint8`` array one byte per store (each with its index check for negative
positions); the text writers (:mod:`manylm.io.number_text`, :mod:`manylm.io.delimited_rows`)
build eight characters in a register and store them at once. These functions do no bounds
checks: the caller has room for the eight bytes (the writers size their buffers for it).
Only C-contiguous arrays are accepted (the pointer arithmetic ignores strides), and only
writable ones for stores: anything else does not compile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["bit_length", "load_word", "store_word"]


def _word_pointer(context: Any, builder: Any, array_type: Any, array: Any, position: Any) -> Any:
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [position]), ir.IntType(64).as_pointer())


@intrinsic
def _store_word_intrinsic(typingctx: Any, out: Any, position: Any, word: Any) -> Any:
    """``out[position:position + 8] = word`` (little-endian, unaligned); ``out`` uint8, C."""
    if not (isinstance(out, types.Array) and out.dtype == types.uint8 and out.ndim == 1
            and out.layout == "C" and out.mutable):
        return None
    signature = types.void(out, types.int64, types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        pointer = _word_pointer(context, builder, sig.args[0], args[0], args[1])
        builder.store(args[2], pointer).align = 1
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def _load_word_intrinsic(typingctx: Any, data: Any, position: Any) -> Any:
    """``data[position:position + 8]`` as one uint64 (little-endian, unaligned); ``data``
    uint8, C."""
    if not (isinstance(data, types.Array) and data.dtype == types.uint8 and data.ndim == 1
            and data.layout == "C"):
        return None
    signature = types.uint64(data, types.int64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        pointer = _word_pointer(context, builder, sig.args[0], args[0], args[1])
        load = builder.load(pointer)
        load.align = 1
        return load

    return signature, codegen


@intrinsic
def _bit_length_intrinsic(typingctx: Any, value: Any) -> Any:
    """Bits of an unsigned 64-bit value without its leading zeros (0 for 0)."""
    signature = types.int64(types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        zeros = builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
        return builder.sub(ir.Constant(ir.IntType(64), 64), zeros)

    return signature, codegen


store_word = cast(Callable[[Any, int, Any], None], _store_word_intrinsic)
load_word = cast(Callable[[Any, int], Any], _load_word_intrinsic)
bit_length = cast(Callable[[Any], int], _bit_length_intrinsic)
