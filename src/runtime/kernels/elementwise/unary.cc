// Unary elementwise ops: math functions, activations (Relu, Sigmoid, HardSwish, ...), Clip, Not.
// The fast kernels split the contiguous array over threads; the reference runs one plain loop.
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

enum class Types { kFloat, kSigned, kNumeric };

template <typename T>
constexpr bool Accepts(Types types) {
  if constexpr (std::is_floating_point_v<T>) return true;
  if constexpr (std::is_signed_v<T>) return types != Types::kFloat;
  return types == Types::kNumeric;
}

template <typename T, typename Out, typename F>
void Apply(KernelContext& ctx, bool reference, const Tensor& in, Tensor& out, F f) {
  const T* p = in.data<T>();
  Out* q = out.data<Out>();
  auto body = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) q[i] = f(p[i]);
  };
  if (reference) {
    body(0, in.num_elements());
  } else {
    ParallelFor(ctx.pool, in.num_elements(), body, kParallelGrain);
  }
}

// `make(op)` reads the attributes and returns a generic functor x -> f(x).
template <Types kTypes, typename MakeFn>
KernelFactory UnaryFactory(bool reference, MakeFn make) {
  return [reference, make](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    auto f = make(op);
    return MakeKernel([reference, f](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      return DispatchNumeric(*ctx.op, in->dtype(), [&](auto tag) -> Status {
        using T = decltype(tag);
        if constexpr (!Accepts<T>(kTypes)) {
          return OpUnimplemented(*ctx.op, "element type ", DataTypeName(in->dtype()),
                                 " is not supported");
        } else {
          Tensor& out = SetOutputForOverwrite(ctx, 0, in->dtype(), in->shape());
          Apply<T, T>(ctx, reference, *in, out, [&f](T x) { return static_cast<T>(f(x)); });
          return Status::Ok();
        }
      });
    });
  };
}

// A functor without attributes.
template <typename F>
auto Fixed(F f) {
  return [f](const Operation&) { return f; };
}

// Predicates with a bool output: IsNaN, IsInf.
template <typename MakeFn>
KernelFactory PredicateFactory(bool reference, MakeFn make) {
  return [reference, make](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    auto f = make(op);
    return MakeKernel([reference, f](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      return DispatchFloat(*ctx.op, in->dtype(), [&](auto tag) -> Status {
        using T = decltype(tag);
        Tensor& out = SetOutputForOverwrite(ctx, 0, DataType::kBool, in->shape());
        Apply<T, bool>(ctx, reference, *in, out, [&f](T x) { return f(x); });
        return Status::Ok();
      });
    });
  };
}

// Clip: bounds from attributes (opset < 11, float) or optional scalar inputs (opset >= 11).
KernelFactory ClipFactory(bool reference) {
  return [reference](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    const bool from_attributes = op.opset() < 11;
    const float attr_min = op.GetFloat("min", -std::numeric_limits<float>::infinity());
    const float attr_max = op.GetFloat("max", std::numeric_limits<float>::infinity());
    return MakeKernel([=](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      return DispatchNumeric(*ctx.op, in->dtype(), [&](auto tag) -> Status {
        using T = decltype(tag);
        T lo = std::numeric_limits<T>::lowest();
        T hi = std::numeric_limits<T>::max();
        if (from_attributes) {
          lo = static_cast<T>(attr_min);
          hi = static_cast<T>(attr_max);
        } else {
          for (size_t k = 1; k <= 2; ++k) {
            const Tensor* bound = OptionalInput(ctx, k);
            if (!bound) continue;
            if (bound->dtype() != in->dtype() || bound->num_elements() != 1) {
              return OpError(*ctx.op, k == 1 ? "min" : "max", " must be a scalar of the input's type");
            }
            (k == 1 ? lo : hi) = bound->data<T>()[0];
          }
        }
        Tensor& out = SetOutputForOverwrite(ctx, 0, in->dtype(), in->shape());
        Apply<T, T>(ctx, reference, *in, out, [lo, hi](T x) { return x < lo ? lo : (x > hi ? hi : x); });
        return Status::Ok();
      });
    });
  };
}

KernelFactory NotFactory() {
  return [](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    return MakeKernel([](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      if (in->dtype() != DataType::kBool) return OpError(*ctx.op, "input must be bool");
      Tensor& out = SetOutputForOverwrite(ctx, 0, DataType::kBool, in->shape());
      const uint8_t* p = in->data<uint8_t>();
      uint8_t* q = out.data<uint8_t>();
      for (int64_t i = 0; i < in->num_elements(); ++i) q[i] = p[i] ? 0 : 1;
      return Status::Ok();
    });
  };
}

template <typename T>
T Sigmoid(T x) {
  // exp of a non-positive value only, so large |x| neither overflows nor loses the tail.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

void RegisterFlavor(KernelRegistry& r, bool ref) {
  const KernelFlavor fl = ref ? KernelFlavor::kReference : KernelFlavor::kFast;
  constexpr Types F = Types::kFloat, S = Types::kSigned, N = Types::kNumeric;
  auto add = [&](const char* name, int64_t since, KernelFactory factory) {
    Add(r, name, since, kMaxOpset, std::move(factory), fl);
  };
  add("Neg", 6, UnaryFactory<S>(ref, Fixed([](auto x) { return -x; })));
  add("Abs", 6, UnaryFactory<N>(ref, Fixed([](auto x) {
        using T = decltype(x);
        if constexpr (std::is_unsigned_v<T>) return x; else return x < T(0) ? T(-x) : x;
      })));
  add("Sign", 9, UnaryFactory<N>(ref, Fixed([](auto x) {
        using T = decltype(x);
        return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
      })));
  add("Relu", 6, UnaryFactory<S>(ref, Fixed([](auto x) { return x > decltype(x)(0) ? x : decltype(x)(0); })));
  add("Floor", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return std::floor(x); })));
  add("Ceil", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return std::ceil(x); })));
  add("Round", 11, UnaryFactory<F>(ref, Fixed([](auto x) { return std::nearbyint(x); })));
  add("Sqrt", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return std::sqrt(x); })));
  add("Exp", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return std::exp(x); })));
  add("Log", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return std::log(x); })));
  add("Reciprocal", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return decltype(x)(1) / x; })));
  add("Erf", 9, UnaryFactory<F>(ref, Fixed([](auto x) { return std::erf(x); })));
  add("Tanh", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return std::tanh(x); })));
  add("Sigmoid", 6, UnaryFactory<F>(ref, Fixed([](auto x) { return Sigmoid(x); })));
  add("Sin", 7, UnaryFactory<F>(ref, Fixed([](auto x) { return std::sin(x); })));
  add("Cos", 7, UnaryFactory<F>(ref, Fixed([](auto x) { return std::cos(x); })));
  add("Tan", 7, UnaryFactory<F>(ref, Fixed([](auto x) { return std::tan(x); })));
  add("Asin", 7, UnaryFactory<F>(ref, Fixed([](auto x) { return std::asin(x); })));
  add("Acos", 7, UnaryFactory<F>(ref, Fixed([](auto x) { return std::acos(x); })));
  add("Atan", 7, UnaryFactory<F>(ref, Fixed([](auto x) { return std::atan(x); })));
  add("Sinh", 9, UnaryFactory<F>(ref, Fixed([](auto x) { return std::sinh(x); })));
  add("Cosh", 9, UnaryFactory<F>(ref, Fixed([](auto x) { return std::cosh(x); })));
  add("Asinh", 9, UnaryFactory<F>(ref, Fixed([](auto x) { return std::asinh(x); })));
  add("Acosh", 9, UnaryFactory<F>(ref, Fixed([](auto x) { return std::acosh(x); })));
  add("Atanh", 9, UnaryFactory<F>(ref, Fixed([](auto x) { return std::atanh(x); })));
  add("Softplus", 1, UnaryFactory<F>(ref, Fixed([](auto x) {
        // log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))
        return (x > 0 ? x : decltype(x)(0)) + std::log1p(std::exp(-std::abs(x)));
      })));
  add("Softsign", 1, UnaryFactory<F>(ref, Fixed([](auto x) { return x / (decltype(x)(1) + std::abs(x)); })));
  add("HardSwish", 14, UnaryFactory<F>(ref, Fixed([](auto x) {
        using T = decltype(x);
        // x * max(0, min(1, x / 6 + 0.5)), with alpha = 1/6 as the spec writes it
        const T g = x * T(1.0 / 6.0) + T(0.5);
        return x * (g < T(0) ? T(0) : (g > T(1) ? T(1) : g));
      })));
  add("LeakyRelu", 6, UnaryFactory<F>(ref, [](const Operation& op) {
        const double alpha = op.GetFloat("alpha", 0.01f);
        return [alpha](auto x) { using T = decltype(x); return x < T(0) ? T(alpha * x) : x; };
      }));
  add("ThresholdedRelu", 10, UnaryFactory<F>(ref, [](const Operation& op) {
        const double alpha = op.GetFloat("alpha", 1.0f);
        return [alpha](auto x) { using T = decltype(x); return x > T(alpha) ? x : T(0); };
      }));
  add("Elu", 6, UnaryFactory<F>(ref, [](const Operation& op) {
        const double alpha = op.GetFloat("alpha", 1.0f);
        return [alpha](auto x) { using T = decltype(x); return x < T(0) ? T(alpha * (std::exp(x) - T(1))) : x; };
      }));
  add("Celu", 12, UnaryFactory<F>(ref, [](const Operation& op) {
        const double alpha = op.GetFloat("alpha", 1.0f);
        return [alpha](auto x) {
          using T = decltype(x);
          const T neg = T(alpha * (std::exp(x / T(alpha)) - T(1)));
          return (x > T(0) ? x : T(0)) + (neg < T(0) ? neg : T(0));
        };
      }));
  add("Selu", 6, UnaryFactory<F>(ref, [](const Operation& op) {
        const double alpha = op.GetFloat("alpha", 1.67326319217681884765625f);
        const double gamma = op.GetFloat("gamma", 1.05070102214813232421875f);
        return [alpha, gamma](auto x) {
          using T = decltype(x);
          return x > T(0) ? T(gamma * x) : T(gamma * (alpha * std::exp(x) - alpha));
        };
      }));
  add("HardSigmoid", 6, UnaryFactory<F>(ref, [](const Operation& op) {
        const float alpha = op.GetFloat("alpha", 0.2f);
        const float beta = op.GetFloat("beta", 0.5f);
        return [alpha, beta](auto x) {
          using T = decltype(x);
          const T v = T(alpha) * x + T(beta);
          return v < T(0) ? T(0) : (v > T(1) ? T(1) : v);
        };
      }));
  add("Shrink", 9, UnaryFactory<N>(ref, [](const Operation& op) {
        const double bias = op.GetFloat("bias", 0.0f);
        const double lambd = op.GetFloat("lambd", 0.5f);
        return [bias, lambd](auto x) {
          using T = decltype(x);
          const double v = static_cast<double>(x);
          return v < -lambd ? T(v + bias) : (v > lambd ? T(v - bias) : T(0));
        };
      }));
  add("IsNaN", 9, PredicateFactory(ref, Fixed([](auto x) { return std::isnan(x); })));
  add("IsInf", 10, PredicateFactory(ref, [](const Operation& op) {
        const bool negative = op.GetInt("detect_negative", 1) != 0;
        const bool positive = op.GetInt("detect_positive", 1) != 0;
        return [negative, positive](auto x) {
          return std::isinf(x) && ((x > 0 && positive) || (x < 0 && negative));
        };
      }));
  add("Clip", 6, ClipFactory(ref));
  add("Not", 1, NotFactory());
}

}  // namespace

void RegisterUnaryKernels(KernelRegistry& r) {
  RegisterFlavor(r, false);
  RegisterFlavor(r, true);
}

}  // namespace qalign::kernels
