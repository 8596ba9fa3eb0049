// Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp and ArgMax/ArgMin.
// axes come from the attribute, or (ReduceSum from opset 13) an optional input with
// noop_with_empty_axes. One reduced block of axes runs as (outer, n, inner) loops in parallel;
// other axis patterns use a general element loop.
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

enum class Reduce { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <typename A>
A Init(Reduce kind) {
  switch (kind) {
    case Reduce::kMax: return std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::lowest();
    case Reduce::kMin: return std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity() : std::numeric_limits<A>::max();
    case Reduce::kProd: return A(1);
    default: return A(0);
  }
}

template <typename A>
inline A Step(Reduce kind, A acc, A x) {
  switch (kind) {
    case Reduce::kMax: return x > acc || x != x ? x : acc;
    case Reduce::kMin: return x < acc || x != x ? x : acc;
    case Reduce::kProd: return acc * x;
    case Reduce::kL1: return acc + (x < A(0) ? A(-x) : x);
    case Reduce::kL2:
    case Reduce::kSumSquare: return acc + x * x;
    case Reduce::kLogSumExp: return acc + static_cast<A>(std::exp(static_cast<double>(x)));
    default: return acc + x;
  }
}

template <typename A>
inline double Finish(Reduce kind, A acc, int64_t n) {
  switch (kind) {
    case Reduce::kMean: return static_cast<double>(acc) / static_cast<double>(n);
    case Reduce::kL2: return std::sqrt(static_cast<double>(acc));
    case Reduce::kLogSum:
    case Reduce::kLogSumExp: return std::log(static_cast<double>(acc));
    default: return static_cast<double>(acc);
  }
}

template <typename T>
void RunReduce(ThreadPool* pool, Reduce kind, const Tensor& in, const std::vector<bool>& reduced,
               Tensor& out) {
  using A = Acc<T>;
  const T* x = in.data<T>();
  T* y = out.data<T>();
  const std::vector<int64_t>& shape = in.shape();
  const int64_t rank = in.rank();
  int64_t reduce_count = 1;
  for (int64_t d = 0; d < rank; ++d) if (reduced[d]) reduce_count *= shape[d];
  // Is the reduced set one block of consecutive dims (ignoring size-1 dims)?
  int64_t first = -1, last = -1;
  bool one_block = true;
  for (int64_t d = 0; d < rank; ++d) {
    if (!reduced[d] || shape[d] == 1) continue;
    if (first < 0) first = d;
    else if (last != d - 1) {
      for (int64_t k = last + 1; k < d; ++k) if (shape[k] != 1) one_block = false;
    }
    last = d;
  }
  if (first < 0) {  // nothing to reduce over: apply the element function only
    for (int64_t i = 0; i < out.num_elements(); ++i) {
      y[i] = static_cast<T>(Finish<A>(kind, Step<A>(kind, Init<A>(kind), static_cast<A>(x[i])), 1));
    }
    return;
  }
  if (one_block) {
    int64_t outer = 1, n = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) {
      if (d < first) outer *= shape[d];
      else if (d <= last) n *= shape[d];
      else inner *= shape[d];
    }
    ParallelFor(pool, outer, [&](int64_t begin, int64_t end) {
      std::vector<A> acc(inner);
      for (int64_t o = begin; o < end; ++o) {
        std::fill(acc.begin(), acc.end(), Init<A>(kind));
        const T* base = x + o * n * inner;
        for (int64_t k = 0; k < n; ++k) {
          const T* row = base + k * inner;
          for (int64_t j = 0; j < inner; ++j) acc[j] = Step<A>(kind, acc[j], static_cast<A>(row[j]));
        }
        for (int64_t j = 0; j < inner; ++j) y[o * inner + j] = static_cast<T>(Finish<A>(kind, acc[j], n));
      }
    }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n * inner, 1)));
    return;
  }
  // General: walk the input in order, adding each element to its output slot.
  std::vector<int64_t> out_strides(rank, 0);
  int64_t s = 1;
  for (int64_t d = rank - 1; d >= 0; --d) {
    if (!reduced[d]) {
      out_strides[d] = s;
      s *= shape[d];
    }
  }
  std::vector<A> acc(out.num_elements(), Init<A>(kind));
  std::vector<int64_t> idx(rank, 0);
  int64_t o = 0;
  const int64_t total = in.num_elements();
  for (int64_t i = 0; i < total; ++i) {
    acc[o] = Step<A>(kind, acc[o], static_cast<A>(x[i]));
    for (int64_t d = rank - 1; d >= 0; --d) {
      ++idx[d];
      o += out_strides[d];
      if (idx[d] < shape[d]) break;
      o -= out_strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  for (size_t k = 0; k < acc.size(); ++k) y[k] = static_cast<T>(Finish<A>(kind, acc[k], reduce_count));
}

KernelFactory ReduceFactory(Reduce kind) {
  return [kind](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    const bool axes_from_input = op.type() == "ReduceSum" && op.opset() >= 13;
    const std::vector<int64_t> axes_attr = op.GetInts("axes");
    const bool keepdims = op.GetInt("keepdims", 1) != 0;
    const bool noop_with_empty_axes = op.GetInt("noop_with_empty_axes", 0) != 0;
    return MakeKernel([=](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      std::vector<int64_t> axes = axes_attr;
      if (axes_from_input) {
        axes.clear();
        if (const Tensor* a = OptionalInput(ctx, 1)) {
          QALIGN_ASSIGN_OR_RETURN(axes, ReadInts(*ctx.op, *a, "axes"));
        }
      }
      const int64_t rank = in->rank();
      QALIGN_ASSIGN_OR_RETURN(axes, NormalizeAxes(*ctx.op, axes, rank));
      std::vector<bool> reduced(rank, axes.empty() && !noop_with_empty_axes);
      for (int64_t a : axes) reduced[a] = true;
      std::vector<int64_t> out_shape;
      for (int64_t d = 0; d < rank; ++d) {
        if (!reduced[d]) out_shape.push_back(in->shape()[d]);
        else if (keepdims) out_shape.push_back(1);
      }
      return DispatchNumeric(*ctx.op, in->dtype(), [&](auto tag) {
        using T = decltype(tag);
        Tensor& out = SetOutput(ctx, 0, in->dtype(), out_shape);
        RunReduce<T>(ctx.pool, kind, *in, reduced, out);
        return Status::Ok();
      });
    });
  };
}

KernelFactory ArgFactory(bool is_max) {
  return [is_max](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    const int64_t axis_attr = op.GetInt("axis", 0);
    const bool keepdims = op.GetInt("keepdims", 1) != 0;
    const bool select_last = op.GetInt("select_last_index", 0) != 0;
    return MakeKernel([=](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      QALIGN_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(*ctx.op, axis_attr, in->rank()));
      std::vector<int64_t> out_shape;
      int64_t outer = 1, n = in->shape()[axis], inner = 1;
      for (int64_t d = 0; d < in->rank(); ++d) {
        if (d < axis) outer *= in->shape()[d];
        if (d > axis) inner *= in->shape()[d];
        if (d != axis) out_shape.push_back(in->shape()[d]);
        else if (keepdims) out_shape.push_back(1);
      }
      return DispatchNumeric(*ctx.op, in->dtype(), [&](auto tag) {
        using T = decltype(tag);
        Tensor& out = SetOutput(ctx, 0, DataType::kInt64, out_shape);
        const T* x = in->data<T>();
        int64_t* y = out.data<int64_t>();
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t j = 0; j < inner; ++j) {
            const T* p = x + o * n * inner + j;
            int64_t best = 0;
            for (int64_t k = 1; k < n; ++k) {
              const T v = p[k * inner], b = p[best * inner];
              const bool better = is_max ? (select_last ? v >= b : v > b) : (select_last ? v <= b : v < b);
              if (better) best = k;
            }
            y[o * inner + j] = best;
          }
        }
        return Status::Ok();
      });
    });
  };
}

}  // namespace

void RegisterReduceKernels(KernelRegistry& r) {
  Add(r, "ReduceSum", 1, kMaxOpset, ReduceFactory(Reduce::kSum));
  Add(r, "ReduceMean", 1, kMaxOpset, ReduceFactory(Reduce::kMean));
  Add(r, "ReduceMax", 1, kMaxOpset, ReduceFactory(Reduce::kMax));
  Add(r, "ReduceMin", 1, kMaxOpset, ReduceFactory(Reduce::kMin));
  Add(r, "ReduceProd", 1, kMaxOpset, ReduceFactory(Reduce::kProd));
  Add(r, "ReduceL1", 1, kMaxOpset, ReduceFactory(Reduce::kL1));
  Add(r, "ReduceL2", 1, kMaxOpset, ReduceFactory(Reduce::kL2));
  Add(r, "ReduceSumSquare", 1, kMaxOpset, ReduceFactory(Reduce::kSumSquare));
  Add(r, "ReduceLogSum", 1, kMaxOpset, ReduceFactory(Reduce::kLogSum));
  Add(r, "ReduceLogSumExp", 1, kMaxOpset, ReduceFactory(Reduce::kLogSumExp));
  Add(r, "ArgMax", 1, kMaxOpset, ArgFactory(true));
  Add(r, "ArgMin", 1, kMaxOpset, ArgFactory(false));
}

}  // namespace qalign::kernels
