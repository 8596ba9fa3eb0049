// Resize (opset 10..17) and Upsample (7..9): nearest (every nearest_mode), linear and cubic, every
// coordinate_transformation_mode. Each resized axis is one separable 1-D pass: for each output
// index a few (input index, weight) taps, so N-d linear is exactly multilinear interpolation.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <string>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn, kTfCropAndResize };
// kSimple: opset < 11 (and Upsample): floor when upsampling, ceil when downsampling.
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kSimple };

struct ResizeConfig {
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kHalfPixel;
  Nearest nearest = Nearest::kRoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
};

// The taps of one output index along one axis.
struct Taps {
  int count = 0;
  bool extrapolate = false;  // tf_crop_and_resize outside the input: write the extrapolation value
  int64_t index[4] = {0, 0, 0, 0};
  double weight[4] = {0, 0, 0, 0};
};

// `out_len` is the resized length as a real number: the output size when sizes are given, and
// in_len * scale (not floored) when scales are, as the ONNX reference implementation computes it.
double SourceCoordinate(const ResizeConfig& c, int64_t x, double scale, int64_t in_len,
                        double out_len, double roi_start, double roi_end) {
  const double xo = static_cast<double>(x);
  switch (c.coord) {
    case Coord::kHalfPixel: return (xo + 0.5) / scale - 0.5;
    case Coord::kPytorchHalfPixel: return out_len > 1 ? (xo + 0.5) / scale - 0.5 : 0.0;
    case Coord::kAlignCorners:
      return out_len == 1 ? 0.0 : xo * static_cast<double>(in_len - 1) / (out_len - 1);
    case Coord::kAsymmetric: return xo / scale;
    case Coord::kTfHalfPixelForNn: return (xo + 0.5) / scale;
    case Coord::kTfCropAndResize:
      return out_len > 1 ? roi_start * (in_len - 1) +
                               xo * (roi_end - roi_start) * (in_len - 1) / (out_len - 1)
                         : 0.5 * (roi_start + roi_end) * (in_len - 1);
  }
  return 0.0;
}

int64_t NearestIndex(Nearest mode, double x, bool downsampling) {
  switch (mode) {
    case Nearest::kRoundPreferFloor:
      return x == std::floor(x) + 0.5 ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x));
    case Nearest::kRoundPreferCeil:
      return x == std::floor(x) + 0.5 ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(std::round(x));
    case Nearest::kFloor: return static_cast<int64_t>(std::floor(x));
    case Nearest::kCeil: return static_cast<int64_t>(std::ceil(x));
    case Nearest::kSimple:
      return downsampling ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(x);
  }
  return 0;
}

double CubicWeight(double d, double a) {  // Keys' cubic convolution kernel at distance |d|
  d = std::abs(d);
  if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return 0;
}

std::vector<Taps> ComputeTaps(const ResizeConfig& c, int64_t in_len, int64_t out_len,
                              double out_length, double scale, double roi_start, double roi_end) {
  std::vector<Taps> taps(out_len);
  const int64_t hi = in_len - 1;
  for (int64_t x = 0; x < out_len; ++x) {
    Taps& t = taps[x];
    const double xs = SourceCoordinate(c, x, scale, in_len, out_length, roi_start, roi_end);
    if (c.coord == Coord::kTfCropAndResize && (xs < 0 || xs > hi)) {
      t.extrapolate = true;
      continue;
    }
    if (c.mode == Mode::kNearest) {
      t.count = 1;
      t.index[0] = std::clamp<int64_t>(NearestIndex(c.nearest, xs, scale < 1.0), 0, hi);
      t.weight[0] = 1;
    } else if (c.mode == Mode::kLinear) {
      const double xc = std::clamp(xs, 0.0, static_cast<double>(hi));
      const int64_t x0 = static_cast<int64_t>(std::floor(xc));
      const int64_t x1 = std::min(x0 + 1, hi);
      const double r = xc - static_cast<double>(x0);
      t.count = 2;
      t.index[0] = x0;
      t.index[1] = x1;
      t.weight[0] = 1 - r;
      t.weight[1] = r;
    } else {
      const int64_t x0 = static_cast<int64_t>(std::floor(xs));
      const double r = xs - static_cast<double>(x0);
      double sum = 0;
      for (int k = 0; k < 4; ++k) {
        const int64_t i = x0 - 1 + k;
        double w = CubicWeight(r - (k - 1), c.cubic_a);
        if (c.exclude_outside && (i < 0 || i > hi)) w = 0;
        t.index[k] = std::clamp<int64_t>(i, 0, hi);
        t.weight[k] = w;
        sum += w;
      }
      if (c.exclude_outside && sum != 0) {
        for (double& w : t.weight) w /= sum;
      }
      t.count = 4;
    }
  }
  return taps;
}

// True when every output index x reads exactly input x (so the pass can be skipped).
bool IsIdentity(const std::vector<Taps>& taps, int64_t in_len) {
  if (static_cast<int64_t>(taps.size()) != in_len) return false;
  for (int64_t x = 0; x < in_len; ++x) {
    const Taps& t = taps[x];
    if (t.extrapolate) return false;
    double on_x = 0;
    for (int k = 0; k < t.count; ++k) {
      if (t.index[k] == x) on_x += t.weight[k];
      else if (t.weight[k] != 0.0) return false;
    }
    if (on_x != 1.0) return false;
  }
  return true;
}

// One pass along `axis`: [outer, in_len, inner] -> [outer, out_len, inner].
template <typename T>
Tensor ResizeAxis(ThreadPool* pool, const Tensor& in, int64_t axis, const std::vector<Taps>& taps,
                  double extrapolation) {
  std::vector<int64_t> shape = in.shape();
  const int64_t in_len = shape[axis];
  const int64_t out_len = static_cast<int64_t>(taps.size());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
  for (int64_t d = axis + 1; d < in.rank(); ++d) inner *= shape[d];
  shape[axis] = out_len;
  Tensor out = Tensor::ForOverwrite(in.dtype(), shape);
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  const T extra = static_cast<T>(extrapolation);
  if (inner == 1) {  // the last axis: one gather per row, no per-element row bookkeeping
    ParallelFor(pool, outer, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        const T* in_row = src + o * in_len;
        T* out_row = dst + o * out_len;
        for (int64_t x = 0; x < out_len; ++x) {
          const Taps& t = taps[x];
          if (t.extrapolate) {
            out_row[x] = extra;
          } else if (t.count == 1) {
            out_row[x] = in_row[t.index[0]];
          } else if constexpr (std::is_floating_point_v<T>) {
            T v = 0;
            for (int k = 0; k < t.count; ++k) v += static_cast<T>(t.weight[k]) * in_row[t.index[k]];
            out_row[x] = v;
          }
        }
      }
    }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(out_len, 1)));
    return out;
  }
  ParallelFor(pool, outer * out_len, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r / out_len, x = r % out_len;
      const Taps& t = taps[x];
      T* row = dst + r * inner;
      const T* base = src + o * in_len * inner;
      if (t.extrapolate) {
        std::fill(row, row + inner, extra);
      } else if (t.count == 1) {
        std::copy(base + t.index[0] * inner, base + (t.index[0] + 1) * inner, row);
      } else if constexpr (std::is_floating_point_v<T>) {
        const T* a = base + t.index[0] * inner;
        const T* b = base + t.index[1] * inner;
        const T wa = static_cast<T>(t.weight[0]), wb = static_cast<T>(t.weight[1]);
        if (t.count == 2) {
          for (int64_t j = 0; j < inner; ++j) row[j] = wa * a[j] + wb * b[j];
        } else {
          const T* c = base + t.index[2] * inner;
          const T* d = base + t.index[3] * inner;
          const T wc = static_cast<T>(t.weight[2]), wd = static_cast<T>(t.weight[3]);
          for (int64_t j = 0; j < inner; ++j) row[j] = wa * a[j] + wb * b[j] + wc * c[j] + wd * d[j];
        }
      }
    }
  }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(inner, 1)));
  return out;
}

StatusOr<ResizeConfig> ReadConfig(const Operation& op, bool upsample) {
  ResizeConfig c;
  const std::string mode = op.GetString("mode", "nearest");
  if (mode == "nearest") c.mode = Mode::kNearest;
  else if (mode == "linear" || mode == "bilinear") c.mode = Mode::kLinear;
  else if (mode == "cubic" && !upsample && op.opset() >= 11) c.mode = Mode::kCubic;
  else return OpUnimplemented(op, "mode '", mode, "'");
  if (upsample || op.opset() < 11) {
    c.coord = Coord::kAsymmetric;
    c.nearest = Nearest::kSimple;
    return c;
  }
  const std::string coord = op.GetString("coordinate_transformation_mode", "half_pixel");
  if (coord == "half_pixel") c.coord = Coord::kHalfPixel;
  else if (coord == "pytorch_half_pixel") c.coord = Coord::kPytorchHalfPixel;
  else if (coord == "align_corners") c.coord = Coord::kAlignCorners;
  else if (coord == "asymmetric") c.coord = Coord::kAsymmetric;
  else if (coord == "tf_half_pixel_for_nn") c.coord = Coord::kTfHalfPixelForNn;
  else if (coord == "tf_crop_and_resize") c.coord = Coord::kTfCropAndResize;
  else return OpUnimplemented(op, "coordinate_transformation_mode '", coord, "'");
  const std::string nearest = op.GetString("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") c.nearest = Nearest::kRoundPreferFloor;
  else if (nearest == "round_prefer_ceil") c.nearest = Nearest::kRoundPreferCeil;
  else if (nearest == "floor") c.nearest = Nearest::kFloor;
  else if (nearest == "ceil") c.nearest = Nearest::kCeil;
  else return OpUnimplemented(op, "nearest_mode '", nearest, "'");
  c.cubic_a = op.GetFloat("cubic_coeff_a", -0.75f);
  c.exclude_outside = op.GetInt("exclude_outside", 0) != 0;
  c.extrapolation = op.GetFloat("extrapolation_value", 0.0f);
  return c;
}

KernelFactory ResizeFactory(bool upsample) {
  return [upsample](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    QALIGN_ASSIGN_OR_RETURN(ResizeConfig config, ReadConfig(op, upsample));
    const std::vector<float> scales_attr = op.GetFloats("scales");
    const bool scales_from_attr = upsample && op.opset() < 9;
    const int64_t opset = op.opset();
    return MakeKernel([=](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      const int64_t rank = in->rank();
      std::vector<double> scales;
      std::vector<int64_t> sizes;
      std::vector<double> roi;
      if (scales_from_attr) {
        scales.assign(scales_attr.begin(), scales_attr.end());
      } else if (upsample || opset < 11) {
        QALIGN_ASSIGN_OR_RETURN(const Tensor* s, RequiredInput(ctx, 1));
        auto v = s->AsFloats();
        if (!v.ok()) return OpError(*ctx.op, "scales: ", v.status().message());
        scales.assign(v->begin(), v->end());
      } else {
        if (const Tensor* r = OptionalInput(ctx, 1); r && r->num_elements() > 0) {
          auto v = r->AsFloats();
          if (!v.ok()) return OpError(*ctx.op, "roi: ", v.status().message());
          roi.assign(v->begin(), v->end());
        }
        if (const Tensor* s = OptionalInput(ctx, 2); s && s->num_elements() > 0) {
          auto v = s->AsFloats();
          if (!v.ok()) return OpError(*ctx.op, "scales: ", v.status().message());
          scales.assign(v->begin(), v->end());
        }
        if (const Tensor* z = OptionalInput(ctx, 3); z && z->num_elements() > 0) {
          QALIGN_ASSIGN_OR_RETURN(sizes, ReadInts(*ctx.op, *z, "sizes"));
        }
      }
      if (!scales.empty() && !sizes.empty()) return OpError(*ctx.op, "both scales and sizes are given");
      if (scales.empty() && sizes.empty()) return OpError(*ctx.op, "neither scales nor sizes is given");
      if (static_cast<int64_t>(scales.size() + sizes.size()) != rank) {
        return OpError(*ctx.op, "scales/sizes need ", rank, " values");
      }
      if (config.coord == Coord::kTfCropAndResize && static_cast<int64_t>(roi.size()) != 2 * rank) {
        return OpError(*ctx.op, "tf_crop_and_resize needs roi with ", 2 * rank, " values");
      }
      std::vector<int64_t> out_shape(rank);
      std::vector<double> axis_scale(rank), out_length(rank);
      for (int64_t d = 0; d < rank; ++d) {
        const int64_t in_len = in->shape()[d];
        if (!sizes.empty()) {
          out_shape[d] = sizes[d];
          axis_scale[d] = in_len == 0 ? 1.0 : static_cast<double>(sizes[d]) / static_cast<double>(in_len);
          out_length[d] = static_cast<double>(sizes[d]);
        } else {
          if (scales[d] <= 0) return OpError(*ctx.op, "scale ", scales[d], " must be positive");
          // floor(in * scale), computed in float like the reference implementations
          out_shape[d] = static_cast<int64_t>(std::floor(static_cast<float>(in_len) * static_cast<float>(scales[d])));
          axis_scale[d] = static_cast<float>(scales[d]);
          out_length[d] = static_cast<double>(in_len) * axis_scale[d];
        }
      }
      auto run = [&](auto tag) -> Status {
        using T = decltype(tag);
        if (!std::is_floating_point_v<T> && config.mode != Mode::kNearest) {
          return OpUnimplemented(*ctx.op, "linear/cubic resize of ", DataTypeName(in->dtype()));
        }
        Tensor current = *in;
        for (int64_t d = 0; d < rank; ++d) {
          const double roi_start = roi.empty() ? 0.0 : roi[d];
          const double roi_end = roi.empty() ? 1.0 : roi[d + rank];
          if (in->shape()[d] == 0 || out_shape[d] == 0) {
            std::vector<int64_t> shape = current.shape();
            shape[d] = out_shape[d];
            current = Tensor(in->dtype(), shape);
            continue;
          }
          std::vector<Taps> taps = ComputeTaps(config, in->shape()[d], out_shape[d], out_length[d],
                                               axis_scale[d], roi_start, roi_end);
          if (IsIdentity(taps, in->shape()[d])) continue;
          current = ResizeAxis<T>(ctx.pool, current, d, taps, config.extrapolation);
        }
        (*ctx.outputs)[0] = std::move(current);
        return Status::Ok();
      };
      if (in->dtype() == DataType::kBool) return run(uint8_t{});
      return DispatchNumeric(*ctx.op, in->dtype(), run);
    });
  };
}

}  // namespace

void RegisterResizeKernels(KernelRegistry& r) {
  Add(r, "Resize", 10, kMaxOpset, ResizeFactory(false));
  Add(r, "Upsample", 7, 9, ResizeFactory(true));
}

}  // namespace qalign::kernels
