// Binary and variadic elementwise ops with numpy broadcasting: arithmetic, comparisons, logic,
// Pow, Mod, PRelu, Max/Min/Sum/Mean. Fast kernels collapse dims and run contiguous rows the
// compiler vectorizes, in parallel; the reference kernels index every element on its own.
#include <cmath>
#include <type_traits>

#include "runtime/kernels/elementwise/broadcast.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

// Applies out[i] = f(a[i], b[i]) on one row; the branches give the compiler contiguous loops.
template <typename T, typename Out, typename F>
inline void BinaryRow(const T* a, int64_t sa, const T* b, int64_t sb, Out* out, int64_t n, F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T y = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], y);
  } else if (sa == 0 && sb == 1) {
    const T x = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(x, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i * sa], b[i * sb]);
  }
}

template <typename T, typename Out, typename F>
Status BinaryFast(KernelContext& ctx, const Tensor& a, const Tensor& b, DataType out_type, F f) {
  QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> shape,
                          BroadcastShapes(*ctx.op, {a.shape(), b.shape()}));
  Tensor& out = SetOutputForOverwrite(ctx, 0, out_type, shape);
  BroadcastIter it(shape, {a.shape(), b.shape()});
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  Out* po = out.data<Out>();
  const int64_t sa = it.inner_step(0), sb = it.inner_step(1);
  ForEachRow(it, ctx.pool, [&](int64_t o, const int64_t* off, int64_t len) {
    BinaryRow(pa + off[0], sa, pb + off[1], sb, po + o, len, f);
  });
  return Status::Ok();
}

// The oracle: unravel each output index and read both inputs through broadcast strides.
template <typename T, typename Out, typename F>
Status BinaryReference(KernelContext& ctx, const Tensor& a, const Tensor& b, DataType out_type,
                       F f) {
  QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> shape,
                          BroadcastShapes(*ctx.op, {a.shape(), b.shape()}));
  Tensor& out = SetOutputForOverwrite(ctx, 0, out_type, shape);
  const std::vector<int64_t> stride_a = BroadcastStrides(a.shape(), shape);
  const std::vector<int64_t> stride_b = BroadcastStrides(b.shape(), shape);
  const int64_t total = out.num_elements();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  Out* po = out.data<Out>();
  for (int64_t i = 0; i < total; ++i) {
    int64_t rest = i, ia = 0, ib = 0;
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      const int64_t c = rest % shape[d];
      rest /= shape[d];
      ia += c * stride_a[d];
      ib += c * stride_b[d];
    }
    po[i] = f(pa[ia], pb[ib]);
  }
  return Status::Ok();
}

template <typename T, typename Out, typename F>
Status Binary(KernelContext& ctx, bool reference, const Tensor& a, const Tensor& b,
              DataType out_type, F f) {
  return reference ? BinaryReference<T, Out>(ctx, a, b, out_type, f)
                   : BinaryFast<T, Out>(ctx, a, b, out_type, f);
}

Status CheckSameType(const Operation& op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) {
    return OpError(op, "input types differ: ", DataTypeName(a.dtype()), " and ",
                   DataTypeName(b.dtype()));
  }
  return Status::Ok();
}

enum class Arith { kAdd, kSub, kMul, kDiv, kMax, kMin, kMod, kFmod };

template <typename T>
Status RunArith(KernelContext& ctx, bool reference, Arith kind, const Tensor& a, const Tensor& b) {
  const DataType t = a.dtype();
  switch (kind) {
    case Arith::kAdd: return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) { return T(x + y); });
    case Arith::kSub: return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) { return T(x - y); });
    case Arith::kMul: return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) { return T(x * y); });
    case Arith::kDiv:
      if constexpr (std::is_integral_v<T>) {
        return Binary<T, T>(ctx, reference, a, b, t,
                            [](T x, T y) { return y == 0 ? T(0) : T(x / y); });
      } else {
        return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) { return T(x / y); });
      }
    case Arith::kMax:
      if constexpr (std::is_floating_point_v<T>) {  // NaN propagates, as in numpy.maximum
        return Binary<T, T>(ctx, reference, a, b, t,
                            [](T x, T y) { return std::isnan(x) || x > y ? x : y; });
      } else {
        return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) { return x > y ? x : y; });
      }
    case Arith::kMin:
      if constexpr (std::is_floating_point_v<T>) {
        return Binary<T, T>(ctx, reference, a, b, t,
                            [](T x, T y) { return std::isnan(x) || x < y ? x : y; });
      } else {
        return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) { return x < y ? x : y; });
      }
    case Arith::kFmod:  // sign of the dividend, like C fmod
      if constexpr (std::is_floating_point_v<T>) {
        return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) { return T(std::fmod(x, y)); });
      } else {
        return Binary<T, T>(ctx, reference, a, b, t,
                            [](T x, T y) { return y == 0 ? T(0) : T(x % y); });
      }
    case Arith::kMod:  // sign of the divisor, like Python's %
      if constexpr (std::is_floating_point_v<T>) {
        return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) {
          T r = std::fmod(x, y);
          if (r != 0 && ((r < 0) != (y < 0))) r += y;
          return r;
        });
      } else {
        return Binary<T, T>(ctx, reference, a, b, t, [](T x, T y) {
          if (y == 0) return T(0);
          T r = T(x % y);
          if constexpr (std::is_signed_v<T>) {
            if (r != 0 && ((r < 0) != (y < 0))) r = T(r + y);
          }
          return r;
        });
      }
  }
  return InternalError("unknown arithmetic op");
}

KernelFactory ArithFactory(Arith kind, bool reference) {
  return [kind, reference](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    Arith k = kind;
    if (k == Arith::kMod && op.GetInt("fmod", 0) != 0) k = Arith::kFmod;
    return MakeKernel([k, reference](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* a, RequiredInput(ctx, 0));
      QALIGN_ASSIGN_OR_RETURN(const Tensor* b, RequiredInput(ctx, 1));
      QALIGN_RETURN_IF_ERROR(CheckSameType(*ctx.op, *a, *b));
      return DispatchNumeric(*ctx.op, a->dtype(), [&](auto tag) {
        return RunArith<decltype(tag)>(ctx, reference, k, *a, *b);
      });
    });
  };
}

// Max, Min, Sum, Mean over 1..N inputs, folded pairwise with broadcasting.
KernelFactory VariadicFactory(Arith kind, bool mean, bool reference) {
  return [kind, mean, reference](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    return MakeKernel([kind, mean, reference](KernelContext& ctx) -> Status {
      if (ctx.inputs.empty() || !ctx.inputs[0]) return OpError(*ctx.op, "needs at least one input");
      Tensor acc = *ctx.inputs[0];
      std::vector<Tensor> scratch(1);
      KernelContext inner = ctx;
      inner.outputs = &scratch;
      for (size_t k = 1; k < ctx.inputs.size(); ++k) {
        if (!ctx.inputs[k]) continue;
        QALIGN_RETURN_IF_ERROR(CheckSameType(*ctx.op, acc, *ctx.inputs[k]));
        QALIGN_RETURN_IF_ERROR(DispatchNumeric(*ctx.op, acc.dtype(), [&](auto tag) {
          return RunArith<decltype(tag)>(inner, reference, kind, acc, *ctx.inputs[k]);
        }));
        acc = std::move(scratch[0]);
      }
      if (mean) {
        const double count = static_cast<double>(ctx.inputs.size());
        QALIGN_RETURN_IF_ERROR(DispatchFloat(*ctx.op, acc.dtype(), [&](auto tag) {
          using T = decltype(tag);
          for (T& x : acc.values<T>()) x = static_cast<T>(x / count);
          return Status::Ok();
        }));
      }
      (*ctx.outputs)[0] = std::move(acc);
      return Status::Ok();
    });
  };
}

enum class Compare { kEqual, kLess, kGreater, kLessEqual, kGreaterEqual };

template <typename T>
Status RunCompare(KernelContext& ctx, bool reference, Compare kind, const Tensor& a,
                  const Tensor& b) {
  const DataType t = DataType::kBool;
  switch (kind) {
    case Compare::kEqual: return Binary<T, bool>(ctx, reference, a, b, t, [](T x, T y) { return x == y; });
    case Compare::kLess: return Binary<T, bool>(ctx, reference, a, b, t, [](T x, T y) { return x < y; });
    case Compare::kGreater: return Binary<T, bool>(ctx, reference, a, b, t, [](T x, T y) { return x > y; });
    case Compare::kLessEqual: return Binary<T, bool>(ctx, reference, a, b, t, [](T x, T y) { return x <= y; });
    case Compare::kGreaterEqual: return Binary<T, bool>(ctx, reference, a, b, t, [](T x, T y) { return x >= y; });
  }
  return InternalError("unknown comparison");
}

KernelFactory CompareFactory(Compare kind, bool reference) {
  return [kind, reference](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    return MakeKernel([kind, reference](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* a, RequiredInput(ctx, 0));
      QALIGN_ASSIGN_OR_RETURN(const Tensor* b, RequiredInput(ctx, 1));
      QALIGN_RETURN_IF_ERROR(CheckSameType(*ctx.op, *a, *b));
      if (a->dtype() == DataType::kBool) return RunCompare<uint8_t>(ctx, reference, kind, *a, *b);
      return DispatchNumeric(*ctx.op, a->dtype(), [&](auto tag) {
        return RunCompare<decltype(tag)>(ctx, reference, kind, *a, *b);
      });
    });
  };
}

enum class Logic { kAnd, kOr, kXor };

KernelFactory LogicFactory(Logic kind, bool reference) {
  return [kind, reference](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    return MakeKernel([kind, reference](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* a, RequiredInput(ctx, 0));
      QALIGN_ASSIGN_OR_RETURN(const Tensor* b, RequiredInput(ctx, 1));
      if (a->dtype() != DataType::kBool || b->dtype() != DataType::kBool) {
        return OpError(*ctx.op, "inputs must be bool");
      }
      const DataType t = DataType::kBool;
      using U = uint8_t;
      switch (kind) {
        case Logic::kAnd: return Binary<U, bool>(ctx, reference, *a, *b, t, [](U x, U y) { return x && y; });
        case Logic::kOr: return Binary<U, bool>(ctx, reference, *a, *b, t, [](U x, U y) { return x || y; });
        case Logic::kXor: return Binary<U, bool>(ctx, reference, *a, *b, t, [](U x, U y) { return (x != 0) != (y != 0); });
      }
      return InternalError("unknown logic op");
    });
  };
}

// Pow: the exponent may have another type; the result has the base's type. Float bases with a
// float exponent use std::pow in float; everything else goes through double.
template <typename T>
Status ToDouble(const Tensor& in, Tensor* out) {
  *out = Tensor(DataType::kDouble, in.shape());
  const T* p = in.data<T>();
  double* q = out->data<double>();
  for (int64_t i = 0; i < in.num_elements(); ++i) q[i] = static_cast<double>(p[i]);
  return Status::Ok();
}

KernelFactory PowFactory(bool reference) {
  return [reference](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    return MakeKernel([reference](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* a, RequiredInput(ctx, 0));
      QALIGN_ASSIGN_OR_RETURN(const Tensor* b, RequiredInput(ctx, 1));
      if (a->dtype() == DataType::kFloat && b->dtype() == DataType::kFloat) {
        return Binary<float, float>(ctx, reference, *a, *b, DataType::kFloat, [](float x, float y) {
          return y == 2.0f ? x * x : std::pow(x, y);
        });
      }
      Tensor da, db;
      QALIGN_RETURN_IF_ERROR(DispatchNumeric(*ctx.op, a->dtype(), [&](auto tag) {
        return ToDouble<decltype(tag)>(*a, &da);
      }));
      QALIGN_RETURN_IF_ERROR(DispatchNumeric(*ctx.op, b->dtype(), [&](auto tag) {
        return ToDouble<decltype(tag)>(*b, &db);
      }));
      std::vector<Tensor> scratch(1);
      KernelContext inner = ctx;
      inner.outputs = &scratch;
      auto pow = [](double x, double y) { return std::pow(x, y); };
      QALIGN_RETURN_IF_ERROR((Binary<double, double>(inner, reference, da, db, DataType::kDouble, pow)));
      const Tensor& r = scratch[0];
      return DispatchNumeric(*ctx.op, a->dtype(), [&](auto tag) {
        using T = decltype(tag);
        Tensor& out = SetOutputForOverwrite(ctx, 0, a->dtype(), r.shape());
        const double* p = r.data<double>();
        T* q = out.data<T>();
        for (int64_t i = 0; i < r.num_elements(); ++i) q[i] = static_cast<T>(p[i]);
        return Status::Ok();
      });
    });
  };
}

// PRelu: y = x < 0 ? slope * x : x, slope broadcast to x (unidirectional).
KernelFactory PReluFactory(bool reference) {
  return [reference](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    return MakeKernel([reference](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* x, RequiredInput(ctx, 0));
      QALIGN_ASSIGN_OR_RETURN(const Tensor* slope, RequiredInput(ctx, 1));
      QALIGN_RETURN_IF_ERROR(CheckSameType(*ctx.op, *x, *slope));
      return DispatchNumeric(*ctx.op, x->dtype(), [&](auto tag) {
        using T = decltype(tag);
        return Binary<T, T>(ctx, reference, *x, *slope, x->dtype(),
                            [](T v, T s) { return v < T(0) ? T(s * v) : v; });
      });
    });
  };
}

}  // namespace

void RegisterBinaryKernels(KernelRegistry& r) {
  for (bool ref : {false, true}) {
    const KernelFlavor flavor = ref ? KernelFlavor::kReference : KernelFlavor::kFast;
    Add(r, "Add", 7, kMaxOpset, ArithFactory(Arith::kAdd, ref), flavor);
    Add(r, "Sub", 7, kMaxOpset, ArithFactory(Arith::kSub, ref), flavor);
    Add(r, "Mul", 7, kMaxOpset, ArithFactory(Arith::kMul, ref), flavor);
    Add(r, "Div", 7, kMaxOpset, ArithFactory(Arith::kDiv, ref), flavor);
    Add(r, "Mod", 10, kMaxOpset, ArithFactory(Arith::kMod, ref), flavor);
    Add(r, "Max", 8, kMaxOpset, VariadicFactory(Arith::kMax, false, ref), flavor);
    Add(r, "Min", 8, kMaxOpset, VariadicFactory(Arith::kMin, false, ref), flavor);
    Add(r, "Sum", 8, kMaxOpset, VariadicFactory(Arith::kAdd, false, ref), flavor);
    Add(r, "Mean", 8, kMaxOpset, VariadicFactory(Arith::kAdd, true, ref), flavor);
    Add(r, "Pow", 7, kMaxOpset, PowFactory(ref), flavor);
    Add(r, "PRelu", 7, kMaxOpset, PReluFactory(ref), flavor);
    Add(r, "Equal", 7, kMaxOpset, CompareFactory(Compare::kEqual, ref), flavor);
    Add(r, "Less", 7, kMaxOpset, CompareFactory(Compare::kLess, ref), flavor);
    Add(r, "Greater", 7, kMaxOpset, CompareFactory(Compare::kGreater, ref), flavor);
    Add(r, "LessOrEqual", 12, kMaxOpset, CompareFactory(Compare::kLessEqual, ref), flavor);
    Add(r, "GreaterOrEqual", 12, kMaxOpset, CompareFactory(Compare::kGreaterEqual, ref), flavor);
    Add(r, "And", 7, kMaxOpset, LogicFactory(Logic::kAnd, ref), flavor);
    Add(r, "Or", 7, kMaxOpset, LogicFactory(Logic::kOr, ref), flavor);
    Add(r, "Xor", 7, kMaxOpset, LogicFactory(Logic::kXor, ref), flavor);
  }
}

}  // namespace qalign::kernels
