"""Short fixed-width vector steps for the CGM kernels (kernels.py), as numba intrinsics.

numba leaves LLVM's straight-line (SLP) vectoriser off, so code over 8 neighbouring elements
stays scalar; loops vectorise only when they are long. The extremes between MAGE crossings (some
40 points each), the run copy of MAGE's grid build and the crossing scan work on short, fixed
groups of elements, so these helpers spell the vector operations out in LLVM IR (llvmlite's IR
builder, numba.extending.intrinsic). They are called only from @njit kernels. Each one reads (or
writes) elements [k, k + lanes) of a 1-D C-contiguous array: the caller guarantees that they lie
inside the array (no bounds check, like numba's own indexing). Anything but a 1-D C-contiguous
array of the stated dtype fails when the kernel is compiled, not at run time.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import types
from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros
from numba.extending import intrinsic as _intrinsic

# numba's annotations give an intrinsic's call the typing context as a first argument, which
# only the compiler passes; the kernels call intrinsics with their own arguments alone.
intrinsic: Any = _intrinsic
# numba's own count of trailing zero bits (one instruction), used by the kernels'
# byte-at-a-time searches over class and sign bytes (numba is pinned below 0.70).
trailing_zeros: Any = _trailing_zeros

GRID_STEP = 300  # s between points of the 5-min grid (kernels.MAGE_GRID)


def _lanes(context, builder, aryty, ary, k, lanes):
    # Pointer to <lanes x element> at element k of the array.
    data = context.make_array(aryty)(context, builder, ary).data
    elem = context.get_data_type(aryty.dtype)
    return builder.bitcast(builder.gep(data, [k]), ir.VectorType(elem, lanes).as_pointer())


def _splat(builder, x, lanes):
    vt = ir.VectorType(x.type, lanes)
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(
        v, v, ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    )


def _is_array(a, dtype) -> bool:
    return isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == dtype


def _reduce8(builder, v, pred):
    # Halving tree of compare/select (x86 minpd/maxpd); no NaN in the lanes.
    for half in (4, 2, 1):
        mask = list(range(half, 2 * half)) + [0] * (8 - half)
        w = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), 8), mask))
        v = builder.select(builder.fcmp_ordered(pred, v, w), v, w)
    return builder.extract_element(v, ir.Constant(ir.IntType(32), 0))


def _extreme8(pred):
    def typer(typingctx, a, k):
        if not (_is_array(a, types.float64) and isinstance(k, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            p = _lanes(context, builder, sig.args[0], args[0], args[1], 8)
            return _reduce8(builder, builder.load(p, align=8), pred)

        return types.float64(a, k), codegen

    return typer


min8 = intrinsic(_extreme8("<"))  # min of a[k : k + 8] (float64, no NaN)
max8 = intrinsic(_extreme8(">"))  # max of a[k : k + 8]


@intrinsic
def equal_mask8(typingctx, a, k, x):
    # Bit q set where a[k + q] == x (float64), q < 8.
    if not (_is_array(a, types.float64) and isinstance(k, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        v = builder.load(_lanes(context, builder, sig.args[0], args[0], args[1], 8), align=8)
        c = builder.fcmp_ordered("==", v, _splat(builder, args[2], 8))
        return builder.zext(builder.bitcast(c, ir.IntType(8)), ir.IntType(64))

    return types.int64(a, k, types.float64), codegen


@intrinsic
def step_breaks8(typingctx, t, k):
    # Bit q set where t[k + q + 1] - t[k + q] != GRID_STEP (int64 times), q < 8.
    if not (_is_array(t, types.int64) and isinstance(k, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        a = builder.load(_lanes(context, builder, sig.args[0], args[0], args[1], 8), align=8)
        k1 = builder.add(args[1], ir.Constant(args[1].type, 1))
        b = builder.load(_lanes(context, builder, sig.args[0], args[0], k1, 8), align=8)
        c = builder.icmp_signed(
            "!=", builder.sub(b, a), _splat(builder, ir.Constant(i64, GRID_STEP), 8)
        )
        return builder.zext(builder.bitcast(c, ir.IntType(8)), i64)

    return types.int64(t, k), codegen


@intrinsic
def copy8(typingctx, src, j, dst, k):
    # dst[k : k + 8] = src[j : j + 8] (float64).
    if not (_is_array(src, types.float64) and _is_array(dst, types.float64)):
        return None

    def codegen(context, builder, sig, args):
        v = builder.load(_lanes(context, builder, sig.args[0], args[0], args[1], 8), align=8)
        builder.store(v, _lanes(context, builder, sig.args[2], args[2], args[3], 8), align=8)
        return context.get_dummy_value()

    return types.none(src, j, dst, k), codegen


@intrinsic
def differ_mask64(typingctx, b, k, x):
    # Bit q set where b[k + q] != x (uint8 bytes), q < 64.
    if not (_is_array(b, types.uint8) and isinstance(k, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        i8 = ir.IntType(8)
        v = builder.load(_lanes(context, builder, sig.args[0], args[0], args[1], 64), align=1)
        x8 = builder.trunc(args[2], i8) if args[2].type != i8 else args[2]
        c = builder.icmp_unsigned("!=", v, _splat(builder, x8, 64))
        return builder.bitcast(c, ir.IntType(64))

    return types.uint64(b, k, x), codegen
