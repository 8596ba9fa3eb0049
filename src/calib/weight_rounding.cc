// Weight rounding optimization (see weight_rounding.h for the math).
#include "calib/weight_rounding.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/logging.h"
#include "runtime/kernels/nn/nn_util.h"

namespace qalign {
namespace {

constexpr double kZeta = 1.1;
constexpr double kGamma = -0.1;
constexpr double kBetaStart = 20.0;
constexpr double kBetaEnd = 2.0;
constexpr double kWarmup = 0.2;  // the first fifth of the iterations runs without the regulariser

// The integer the export writes for x (QuantizeValue of export/quant_plan.h, which calib cannot
// depend on; a test holds the two equal): x / scale in float, rounded half to even, then zp and
// the clamp.
int64_t ExportRounding(float x, float scale, int64_t zero_point, int64_t qmin, int64_t qmax) {
  const double q = std::nearbyint(static_cast<double>(x / scale)) + static_cast<double>(zero_point);
  if (!(q >= static_cast<double>(qmin))) return std::isnan(q) ? zero_point : qmin;
  if (q > static_cast<double>(qmax)) return qmax;
  return static_cast<int64_t>(q);
}

// C (m x n) = A (m x k) B (k x n), row-major floats, through oneDNN's sgemm: the optimization
// multiplies every row's error by the Gram matrix a few hundred times per layer, which a plain
// loop made the slowest step of quantizing det (the README's time).
// With transpose_a, `a` is stored k x m and A is its transpose.
void MultiplyRowMajor(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
                      bool transpose_a = false) {
  if (dnnl_sgemm(transpose_a ? 'T' : 'N', 'N', m, n, k, 1.0f, a, transpose_a ? m : k, b, n, 0.0f, c,
                 n) == dnnl_success) {
    return;
  }
  for (int64_t i = 0; i < m; ++i) {  // the same product, plainly, should oneDNN refuse
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t l = 0; l < k; ++l) {
        sum += static_cast<double>(transpose_a ? a[l * m + i] : a[i * k + l]) * b[l * n + j];
      }
      c[i * n + j] = static_cast<float>(sum);
    }
  }
}

// One row's loss dW H dW^T for errors `e` (k values).
double RowLoss(const std::vector<double>& gram, const double* e, int64_t k) {
  double loss = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    double hi = 0.0;
    for (int64_t j = 0; j < k; ++j) hi += gram[static_cast<size_t>(i * k + j)] * e[j];
    loss += e[i] * hi;
  }
  return loss;
}

// Row r's errors s * (q - zp) - W under integers `q`.
std::vector<double> RowErrors(const RoundingProblem& p, const std::vector<int64_t>& q, int64_t r) {
  std::vector<double> e(static_cast<size_t>(p.k));
  for (int64_t j = 0; j < p.k; ++j) {
    const size_t i = static_cast<size_t>(r * p.k + j);
    e[static_cast<size_t>(j)] =
        static_cast<double>(p.scales[i]) * static_cast<double>(q[i] - p.zero_points[i]) -
        static_cast<double>(p.weights[i]);
  }
  return e;
}

}  // namespace

std::vector<int64_t> NearestRounding(const RoundingProblem& p) {
  std::vector<int64_t> q(p.weights.size());
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = ExportRounding(p.weights[i], p.scales[i], p.zero_points[i], p.quant_min, p.quant_max);
  }
  return q;
}

double ReconstructionLoss(const RoundingProblem& p, const std::vector<int64_t>& q) {
  double loss = 0.0;
  for (int64_t r = 0; r < p.rows; ++r) loss += RowLoss(p.gram, RowErrors(p, q, r).data(), p.k);
  return loss;
}

std::vector<int64_t> OptimizeRounding(const RoundingProblem& p,
                                      const WeightRoundingOptions& options) {
  const std::vector<int64_t> nearest = NearestRounding(p);
  const int64_t k = p.k;
  const size_t n = p.weights.size();
  // Per weight: t = W / s, base = floor(t) + zp, x = t - floor(t); h in [0, 1] picks base + h.
  // A weight whose two candidates are not both in [qmin, qmax] (or that the caller fixed) keeps
  // nearest rounding: h is then a constant.
  std::vector<int64_t> base(n);
  std::vector<double> frac(n);
  std::vector<float> h(n), v(n, 0.0f);
  std::vector<uint8_t> free(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(p.weights[i]) / static_cast<double>(p.scales[i]);
    const double f = std::floor(t);
    base[i] = static_cast<int64_t>(f) + p.zero_points[i];
    frac[i] = t - f;
    const bool in_range = base[i] >= p.quant_min && base[i] + 1 <= p.quant_max;
    const bool nearest_is_candidate = nearest[i] == base[i] || nearest[i] == base[i] + 1;
    free[i] = in_range && nearest_is_candidate && (p.fixed.empty() || p.fixed[i] == 0);
    if (free[i]) {
      // Start where h(V) = x, the unrounded weight: sigmoid(V) = (x - gamma) / (zeta - gamma).
      const double s = (frac[i] - kGamma) / (kZeta - kGamma);
      v[i] = static_cast<float>(std::log(s / (1.0 - s)));
    }
  }
  // Per row: its normaliser s^2 * mean diag H (mean s^2 over the row).
  double diag = 0.0;
  for (int64_t j = 0; j < k; ++j) diag += p.gram[static_cast<size_t>(j * k + j)];
  diag /= static_cast<double>(std::max<int64_t>(k, 1));
  if (!(diag > 0.0) || !std::isfinite(diag)) return nearest;
  std::vector<double> norm(static_cast<size_t>(p.rows));
  for (int64_t r = 0; r < p.rows; ++r) {
    double s2 = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      const double s = p.scales[static_cast<size_t>(r * k + j)];
      s2 += s * s;
    }
    norm[static_cast<size_t>(r)] = s2 / static_cast<double>(k) * diag;
  }
  std::vector<float> gram_f(p.gram.begin(), p.gram.end());
  std::vector<float> e(n), g(n), m1(n, 0.0f), m2(n, 0.0f), sig(n, 0.0f);
  // The fixed weights' own error, s * (q - zp) - W.
  for (size_t i = 0; i < n; ++i) {
    if (!free[i]) {
      e[i] = static_cast<float>(static_cast<double>(p.scales[i]) *
                                    static_cast<double>(nearest[i] - p.zero_points[i]) -
                                static_cast<double>(p.weights[i]));
    }
  }
  const int iterations = std::max(options.iterations, 1);
  const float lambda = static_cast<float>(options.regularization);
  const float lr = static_cast<float>(options.learning_rate);
  const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  const float stretch = static_cast<float>(kZeta - kGamma), shift = static_cast<float>(kGamma);
  for (int it = 0; it < iterations; ++it) {
    // h = h(V), e = s * (base + h - zp) - W = s * (h - x) for the free weights.
    for (size_t i = 0; i < n; ++i) {
      if (!free[i]) continue;
      sig[i] = 1.0f / (1.0f + std::exp(-static_cast<float>(v[i])));
      h[i] = std::clamp(sig[i] * stretch + shift, 0.0f, 1.0f);
      e[i] = static_cast<float>(static_cast<double>(p.scales[i]) * (h[i] - frac[i]));
    }
    MultiplyRowMajor(p.rows, k, k, e.data(), gram_f.data(), g.data());  // g = e H
    const double progress = static_cast<double>(it) / iterations;
    const bool regularise = progress >= kWarmup;
    const float beta = static_cast<float>(
        kBetaEnd + (kBetaStart - kBetaEnd) * (1.0 - (progress - kWarmup) / (1.0 - kWarmup)));
    const float c1 = 1.0f - std::pow(beta1, static_cast<float>(it + 1));
    const float c2 = 1.0f - std::pow(beta2, static_cast<float>(it + 1));
    for (size_t i = 0; i < n; ++i) {
      if (!free[i]) continue;
      const float raw = sig[i] * stretch + shift;
      // Outside (0, 1) the clamp's gradient is zero; Adam's momentum still moves V a little.
      float grad = 0.0f;
      if (raw > 0.0f && raw < 1.0f) {
        // d(L_r / n_r)/dh = 2 (e H)_i s_i / n_r
        grad = static_cast<float>(2.0 * static_cast<double>(g[i]) * p.scales[i] /
                                  norm[i / static_cast<size_t>(k)]);
        if (regularise) {
          // d/dh of lambda (1 - |2h - 1|^beta) = -2 lambda beta |2h - 1|^(beta - 1) sign(2h - 1)
          const float u = 2.0f * raw - 1.0f;
          const float magnitude = 2.0f * lambda * beta * std::pow(std::abs(u), beta - 1.0f);
          grad += u > 0.0f ? -magnitude : magnitude;
        }
        grad *= stretch * sig[i] * (1.0f - sig[i]);  // dh/dV
      }
      m1[i] = beta1 * m1[i] + (1.0f - beta1) * grad;
      m2[i] = beta2 * m2[i] + (1.0f - beta2) * grad * grad;
      v[i] -= lr * (m1[i] / c1) / (std::sqrt(m2[i] / c2) + eps);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (free[i]) h[i] = std::clamp((1.0f / (1.0f + std::exp(-v[i]))) * stretch + shift, 0.0f, 1.0f);
  }
  // Hard rounding, then per row the better of it and nearest (ties: nearest).
  std::vector<int64_t> q = nearest;
  for (size_t i = 0; i < n; ++i) {
    if (free[i]) q[i] = base[i] + (h[i] >= 0.5 ? 1 : 0);
  }
  for (int64_t r = 0; r < p.rows; ++r) {
    const double optimized = RowLoss(p.gram, RowErrors(p, q, r).data(), k);
    const double plain = RowLoss(p.gram, RowErrors(p, nearest, r).data(), k);
    if (!(optimized < plain)) {
      std::copy(nearest.begin() + r * k, nearest.begin() + (r + 1) * k, q.begin() + r * k);
    }
  }
  return q;
}

// ------------------------------------------------------------------------------ the layers

namespace {

bool IsCandidate(const Operation& op) {
  const std::string& t = op.type();
  if (t != "Conv" && t != "Gemm" && t != "MatMul") return false;
  if (!op.in_default_domain() || op.inputs().size() < 2) return false;
  const Variable* w = op.input(1);
  if (op.input(0) == nullptr || w == nullptr || !w->is_parameter() || w->data() == nullptr) {
    return false;
  }
  if (w->uses().size() != 1 || w->data()->dtype() != DataType::kFloat) return false;
  if (t == "Conv") return w->data()->rank() == 4;  // 2-D Convs
  return w->data()->rank() == 2;                   // Gemm B, MatMul B [K, N]
}

}  // namespace

WeightRounding::WeightRounding(const Graph& graph, WeightRoundingOptions options)
    : options_(std::move(options)) {
  for (Operation* op : graph.operations()) {
    if (!IsCandidate(*op)) continue;
    const Tensor& w = *op->input(1)->data();
    Layer layer;
    layer.op = op;
    if (op->type() == "Conv") {
      auto groups = nn::ReadGroup(*op);
      if (!groups.ok() || w.shape()[0] % *groups != 0) continue;
      layer.groups = *groups;
      layer.rows = w.shape()[0];
      layer.k = w.shape()[1] * w.shape()[2] * w.shape()[3];
    } else if (op->type() == "Gemm" && op->GetInt("transB", 0) != 0) {
      layer.rows = w.shape()[0];
      layer.k = w.shape()[1];
    } else {
      layer.rows = w.shape()[1];
      layer.k = w.shape()[0];
    }
    const auto values = w.values<float>();
    layer.original.assign(values.begin(), values.end());
    layer.rng.seed(options_.seed + layers_.size());
    layers_by_input_.emplace(op->input(0), layers_.size());
    layers_.push_back(std::move(layer));
  }
}

std::vector<const Variable*> WeightRounding::ObservedInputs() const {
  std::vector<const Variable*> out;
  for (const Layer& l : layers_) out.push_back(l.op->input(0));
  return out;
}

const std::vector<float>* WeightRounding::OriginalWeight(const Operation* op) const {
  for (const Layer& l : layers_) {
    if (l.op == op) return &l.original;
  }
  return nullptr;
}

void WeightRounding::Observe(const Variable& variable, const Tensor& value) {
  auto [begin, end] = layers_by_input_.equal_range(&variable);
  for (auto it = begin; it != end; ++it) {
    Layer& layer = layers_[it->second];
    if (!layer.error.ok()) continue;
    if (value.dtype() != DataType::kFloat) {
      layer.error = InvalidArgumentError(layer.op->Describe(), ": input is not float");
    } else {
      layer.error = Accumulate(&layer, value);
    }
  }
}

Status WeightRounding::Accumulate(Layer* layer, const Tensor& x) {
  const Operation& op = *layer->op;
  const int64_t k = layer->k;
  // The columns of this sample: every position, or a seeded sample of them.
  auto sample_positions = [&](int64_t total) {
    const int64_t per_sample =
        options_.samples > 0
            ? (options_.columns_per_layer + static_cast<int64_t>(options_.samples) - 1) /
                  static_cast<int64_t>(options_.samples)
            : options_.columns_per_layer;
    std::vector<int64_t> positions;
    if (per_sample >= total) {
      for (int64_t p = 0; p < total; ++p) positions.push_back(p);
    } else {
      std::uniform_int_distribution<int64_t> pick(0, total - 1);
      for (int64_t i = 0; i < per_sample; ++i) positions.push_back(pick(layer->rng));
      std::sort(positions.begin(), positions.end());
    }
    return positions;
  };
  // columns[group] holds m rows of k values; H_group += columns^T columns.
  std::vector<std::vector<float>> columns(static_cast<size_t>(layer->groups));
  int64_t m = 0;
  const float* data = x.values<float>().data();
  if (op.type() == "Conv") {
    const std::vector<int64_t>& ws = op.input(1)->data()->shape();
    if (x.rank() != 4) return InvalidArgumentError(op.Describe(), ": input is not 4-D");
    const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
    if (c != ws[1] * layer->groups) {
      return InvalidArgumentError(op.Describe(), ": input has ", c, " channels, the weight ",
                                  ws[1] * layer->groups);
    }
    QALIGN_ASSIGN_OR_RETURN(nn::WindowAttributes attrs, nn::ReadWindowAttributes(op));
    QALIGN_ASSIGN_OR_RETURN(nn::WindowGeometry g,
                            nn::ComputeWindowGeometry(op, attrs, {h, w}, {ws[2], ws[3]}));
    const int64_t oh = g.output[0], ow = g.output[1];
    const std::vector<int64_t> positions = sample_positions(n * oh * ow);
    m = static_cast<int64_t>(positions.size());
    const int64_t c_group = ws[1];
    for (int64_t gi = 0; gi < layer->groups; ++gi) {
      std::vector<float>& col = columns[static_cast<size_t>(gi)];
      col.assign(static_cast<size_t>(m * k), 0.0f);
      for (int64_t pi = 0; pi < m; ++pi) {
        const int64_t p = positions[static_cast<size_t>(pi)];
        const int64_t b = p / (oh * ow), y = (p / ow) % oh, xo = p % ow;
        float* out = col.data() + pi * k;
        for (int64_t ci = 0; ci < c_group; ++ci) {
          const float* plane = data + (b * c + gi * c_group + ci) * h * w;
          for (int64_t ky = 0; ky < ws[2]; ++ky) {
            const int64_t iy = y * g.strides[0] + ky * g.dilations[0] - g.pads_begin[0];
            if (iy < 0 || iy >= h) continue;
            for (int64_t kx = 0; kx < ws[3]; ++kx) {
              const int64_t ix = xo * g.strides[1] + kx * g.dilations[1] - g.pads_begin[1];
              if (ix < 0 || ix >= w) continue;
              out[(ci * ws[2] + ky) * ws[3] + kx] = plane[iy * w + ix];
            }
          }
        }
      }
    }
  } else {
    // Gemm A [M, K] (or [K, M] with transA); MatMul A [..., M, K]: every row is a column of X.
    const bool trans_a = op.type() == "Gemm" && op.GetInt("transA", 0) != 0;
    if (x.rank() < 1 || (op.type() == "Gemm" && x.rank() != 2)) {
      return InvalidArgumentError(op.Describe(), ": input A has rank ", x.rank());
    }
    const int64_t inner = trans_a ? x.shape()[0] : x.shape()[static_cast<size_t>(x.rank() - 1)];
    if (inner != k) {
      return InvalidArgumentError(op.Describe(), ": input A's reduced dim is ", inner,
                                  ", the weight's ", k);
    }
    const int64_t total = x.num_elements() / std::max<int64_t>(k, 1);
    const std::vector<int64_t> positions = sample_positions(total);
    m = static_cast<int64_t>(positions.size());
    std::vector<float>& col = columns[0];
    col.resize(static_cast<size_t>(m * k));
    for (int64_t pi = 0; pi < m; ++pi) {
      const int64_t row = positions[static_cast<size_t>(pi)];
      for (int64_t j = 0; j < k; ++j) {
        col[static_cast<size_t>(pi * k + j)] = trans_a ? data[j * total + row] : data[row * k + j];
      }
    }
  }
  if (layer->gram.empty()) layer->gram.assign(static_cast<size_t>(layer->groups * k * k), 0.0);
  std::vector<float> product(static_cast<size_t>(k * k));
  for (int64_t gi = 0; gi < layer->groups; ++gi) {
    if (m == 0) break;
    MultiplyRowMajor(k, k, m, columns[static_cast<size_t>(gi)].data(),
                     columns[static_cast<size_t>(gi)].data(), product.data(),
                     /*transpose_a=*/true);
    double* gram = layer->gram.data() + gi * k * k;
    for (size_t i = 0; i < product.size(); ++i) gram[i] += product[i];
  }
  layer->columns += static_cast<double>(m);
  return Status::Ok();
}

int64_t WeightRounding::WeightIndex(const Layer& layer, int64_t r, int64_t j) const {
  const Operation& op = *layer.op;
  if (op.type() == "Conv" || (op.type() == "Gemm" && op.GetInt("transB", 0) != 0)) {
    return r * layer.k + j;  // W [C_out, C_in / group, kh, kw] or B [N, K]
  }
  return j * layer.rows + r;  // B [K, N]
}

StatusOr<WeightRoundingStats> WeightRounding::Apply(QuantConfigTable* table) {
  WeightRoundingStats stats;
  ProgressReporter progress("optimize weights", layers_.size(), options_.progress);
  size_t done = 0;
  for (Layer& layer : layers_) {
    QALIGN_RETURN_IF_ERROR(RoundLayer(&layer, table, &stats));
    ++done;
    progress.Update(done);
    if (options_.on_layer && !options_.on_layer(done, layers_.size())) {
      return CancelledError("optimize weights: stopped after ", done, " of ", layers_.size(),
                            " layers");
    }
  }
  progress.Finish();
  return stats;
}

Status WeightRounding::RoundLayer(Layer* layer_ptr, QuantConfigTable* table,
                                  WeightRoundingStats* stats) {
  Layer& layer = *layer_ptr;
  Tensor& weight = *layer.op->input(1)->mutable_data();
  std::span<float> w = weight.values<float>();
  if (w.size() != layer.original.size()) {
    return InternalError(layer.op->Describe(), ": weight changed size");
  }
  std::copy(layer.original.begin(), layer.original.end(), w.begin());
  const OperationQuantConfig* config = table->FindOp(layer.op);
  const TQC* t = config != nullptr && config->inputs.size() > 1 ? config->inputs[1] : nullptr;
  if (t == nullptr || !IsQuantizedState(t->state) || IsBakedState(t->state) ||
      t->state == QuantState::kOverlapped || t->floating()) {
    return Status::Ok();  // FP32 (kept so, or not quantized by the target)
  }
  const std::vector<float> scales = table->scale(t);
  const std::vector<int64_t> zero_points = table->zero_point(t);
  if (!layer.error.ok() || layer.columns == 0.0 || scales.empty() ||
      scales.size() != zero_points.size()) {
    if (!layer.error.ok()) LogDebug("optimize weights: skipped ", layer.error.message());
    ++stats->skipped;
    return Status::Ok();
  }
  // Each weight's channel under its params (one channel for per-tensor params).
  int64_t channels = 1, inner = 1;
  if (scales.size() > 1) {
    const size_t axis = static_cast<size_t>(t->channel_axis < 0 ? 0 : t->channel_axis);
    if (axis >= weight.shape().size() ||
        weight.shape()[axis] != static_cast<int64_t>(scales.size())) {
      ++stats->skipped;
      return Status::Ok();
    }
    channels = weight.shape()[axis];
    for (size_t d = axis + 1; d < weight.shape().size(); ++d) inner *= weight.shape()[d];
  }
  auto channel_of = [&](int64_t i) { return static_cast<size_t>((i / inner) % channels); };
  if (layer.chosen.empty() || layer.scales != scales || layer.zero_points != zero_points) {
    const auto start = std::chrono::steady_clock::now();
    // Each channel's extremes, which keep their value (so the params derived again are equal).
    std::vector<float> lo(static_cast<size_t>(channels)), hi(static_cast<size_t>(channels));
    std::vector<uint8_t> seen(static_cast<size_t>(channels), 0);
    for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i) {
      const size_t c = channel_of(i);
      const float v = w[static_cast<size_t>(i)];
      lo[c] = seen[c] ? std::min(lo[c], v) : v;
      hi[c] = seen[c] ? std::max(hi[c], v) : v;
      seen[c] = 1;
    }
    layer.chosen.assign(w.size(), 0);
    layer.loss_nearest = layer.loss_optimized = 0.0;
    layer.changed = 0;
    const int64_t rows_per_group = layer.rows / layer.groups;
    for (int64_t gi = 0; gi < layer.groups; ++gi) {
      RoundingProblem p;
      p.rows = rows_per_group;
      p.k = layer.k;
      p.quant_min = t->scheme.quant_min;
      p.quant_max = t->scheme.quant_max;
      p.gram.assign(layer.gram.begin() + gi * layer.k * layer.k,
                    layer.gram.begin() + (gi + 1) * layer.k * layer.k);
      const size_t size = static_cast<size_t>(p.rows * p.k);
      p.weights.resize(size);
      p.scales.resize(size);
      p.zero_points.resize(size);
      p.fixed.assign(size, 0);
      std::vector<int64_t> index(size);
      for (int64_t r = 0; r < p.rows; ++r) {
        for (int64_t j = 0; j < p.k; ++j) {
          const size_t e = static_cast<size_t>(r * p.k + j);
          index[e] = WeightIndex(layer, gi * rows_per_group + r, j);
          const size_t c = channel_of(index[e]);
          p.weights[e] = w[static_cast<size_t>(index[e])];
          p.scales[e] = scales[c];
          p.zero_points[e] = zero_points[c];
        }
      }
      // A weight may take the other rounding only when it is not its channel's min or max and
      // its grid value stays within [min, max] and rounds back to itself.
      const std::vector<int64_t> nearest = NearestRounding(p);
      for (size_t e = 0; e < size; ++e) {
        const size_t c = channel_of(index[e]);
        const float v = p.weights[e];
        if (v == lo[c] || v == hi[c]) {
          p.fixed[e] = 1;
          continue;
        }
        const double t_value = static_cast<double>(v) / static_cast<double>(p.scales[e]);
        const int64_t other =
            nearest[e] - p.zero_points[e] == static_cast<int64_t>(std::floor(t_value))
                ? nearest[e] + 1
                : nearest[e] - 1;
        const float grid = static_cast<float>(other - p.zero_points[e]) * p.scales[e];
        if (grid < lo[c] || grid > hi[c] || other < p.quant_min || other > p.quant_max ||
            ExportRounding(grid, p.scales[e], p.zero_points[e], p.quant_min, p.quant_max) !=
                other) {
          p.fixed[e] = 1;
        }
      }
      const std::vector<int64_t> q = OptimizeRounding(p, options_);
      layer.loss_nearest += ReconstructionLoss(p, nearest);
      layer.loss_optimized += ReconstructionLoss(p, q);
      for (size_t e = 0; e < size; ++e) {
        layer.chosen[static_cast<size_t>(index[e])] = q[e];
        layer.changed += q[e] != nearest[e] ? 1 : 0;
      }
    }
    layer.scales = scales;
    layer.zero_points = zero_points;
    LogInfo("optimize weights: ", layer.op->Describe(), " (", layer.rows, " x ", layer.k, ", ",
            layer.groups, " groups, ", layer.columns, " columns): loss ", layer.loss_nearest,
            " -> ", layer.loss_optimized, ", ", layer.changed, " changed, in ",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), " s");
  }
  // Move each weight rounded the other way onto its grid value; the others keep their value.
  for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i) {
    const size_t c = channel_of(i);
    const float v = w[static_cast<size_t>(i)];
    const int64_t q = layer.chosen[static_cast<size_t>(i)];
    if (ExportRounding(v, scales[c], zero_points[c], t->scheme.quant_min, t->scheme.quant_max) !=
        q) {
      w[static_cast<size_t>(i)] = static_cast<float>(q - zero_points[c]) * scales[c];
    }
  }
  // Mean squared error per output value: the Gram sums cover `columns` columns of every row.
  const double outputs = layer.columns * static_cast<double>(layer.rows);
  stats->loss_nearest += layer.loss_nearest / outputs;
  stats->loss_optimized += layer.loss_optimized / outputs;
  stats->changed_weights += layer.changed;
  stats->weights += static_cast<int64_t>(w.size());
  ++stats->optimized;
  return Status::Ok();
}

}  // namespace qalign
