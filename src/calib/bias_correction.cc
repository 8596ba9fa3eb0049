// Bias correction (see bias_correction.h for the math).
#include "calib/bias_correction.h"

#include <algorithm>
#include <cmath>

#include "runtime/kernels/nn/nn_util.h"

namespace qalign {
namespace {

bool IsCandidate(const Operation& op) {
  const std::string& t = op.type();
  if (t != "Conv" && t != "ConvTranspose" && t != "Gemm") return false;
  if (!op.in_default_domain() || op.inputs().size() < 3) return false;
  const Variable* w = op.input(1);
  const Variable* b = op.input(2);
  if (op.input(0) == nullptr || w == nullptr || b == nullptr) return false;
  if (!w->is_parameter() || !b->is_parameter() || b->uses().size() != 1) return false;
  if (w->data() == nullptr || b->data() == nullptr) return false;
  if (w->data()->dtype() != DataType::kFloat || b->data()->dtype() != DataType::kFloat) {
    return false;
  }
  return t == "Gemm" || w->data()->rank() == 4;  // 2-D Conv / ConvTranspose only
}

// For one spatial axis and tap k: the input indices whose value the tap reads (Conv: one per
// output position inside the input) or writes inside the output (ConvTranspose).
std::vector<int64_t> TapIndices(bool transpose, int64_t in, int64_t out, int64_t k, int64_t stride,
                                int64_t dilation, int64_t pad_begin) {
  std::vector<int64_t> rows;
  if (!transpose) {
    for (int64_t o = 0; o < out; ++o) {
      const int64_t i = o * stride + k * dilation - pad_begin;
      if (i >= 0 && i < in) rows.push_back(i);
    }
  } else {
    for (int64_t i = 0; i < in; ++i) {
      const int64_t o = i * stride + k * dilation - pad_begin;
      if (o >= 0 && o < out) rows.push_back(i);
    }
  }
  return rows;
}

Status AccumulateConv(const Operation& op, const Tensor& x, std::vector<double>* sums,
                      double* positions) {
  const bool transpose = op.type() == "ConvTranspose";
  const std::vector<int64_t>& ws = op.input(1)->data()->shape();
  if (x.rank() != 4) return InvalidArgumentError(op.Describe(), ": input is not 4-D");
  const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const int64_t kh_size = ws[2], kw_size = ws[3];
  QALIGN_ASSIGN_OR_RETURN(nn::WindowAttributes attrs, nn::ReadWindowAttributes(op));
  nn::WindowGeometry g;
  if (transpose) {
    std::vector<int64_t> output_padding;
    QALIGN_ASSIGN_OR_RETURN(g, nn::ComputeConvTransposeGeometry(
                                   op, attrs, {h, w}, {kh_size, kw_size}, &output_padding));
  } else {
    QALIGN_ASSIGN_OR_RETURN(g, nn::ComputeWindowGeometry(op, attrs, {h, w}, {kh_size, kw_size}));
  }
  if (sums->empty()) sums->assign(static_cast<size_t>(c * kh_size * kw_size), 0.0);
  if (sums->size() != static_cast<size_t>(c * kh_size * kw_size)) {
    return InvalidArgumentError(op.Describe(), ": input channels changed between samples");
  }
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(kh_size)),
      cols(static_cast<size_t>(kw_size));
  for (int64_t k = 0; k < kh_size; ++k) {
    rows[static_cast<size_t>(k)] =
        TapIndices(transpose, h, g.output[0], k, g.strides[0], g.dilations[0], g.pads_begin[0]);
  }
  for (int64_t k = 0; k < kw_size; ++k) {
    cols[static_cast<size_t>(k)] =
        TapIndices(transpose, w, g.output[1], k, g.strides[1], g.dilations[1], g.pads_begin[1]);
  }
  const float* data = x.values<float>().data();
  std::vector<double> column_sums(static_cast<size_t>(w));
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ci = 0; ci < c; ++ci) {
      const float* plane = data + (b * c + ci) * h * w;
      for (int64_t kh = 0; kh < kh_size; ++kh) {
        // The rows this tap reads, summed per column; then each tap's columns of that.
        std::fill(column_sums.begin(), column_sums.end(), 0.0);
        for (int64_t r : rows[static_cast<size_t>(kh)]) {
          const float* row = plane + r * w;
          for (int64_t col = 0; col < w; ++col) column_sums[static_cast<size_t>(col)] += row[col];
        }
        for (int64_t kw = 0; kw < kw_size; ++kw) {
          double s = 0.0;
          for (int64_t col : cols[static_cast<size_t>(kw)]) {
            s += column_sums[static_cast<size_t>(col)];
          }
          (*sums)[static_cast<size_t>((ci * kh_size + kh) * kw_size + kw)] += s;
        }
      }
    }
  }
  *positions += static_cast<double>(n * g.output[0] * g.output[1]);
  return Status::Ok();
}

Status AccumulateGemm(const Operation& op, const Tensor& a, std::vector<double>* sums,
                      double* positions) {
  if (a.rank() != 2) return InvalidArgumentError(op.Describe(), ": input A is not 2-D");
  const bool trans_a = op.GetInt("transA", 0) != 0;
  const int64_t m = a.shape()[trans_a ? 1 : 0], k = a.shape()[trans_a ? 0 : 1];
  if (sums->empty()) sums->assign(static_cast<size_t>(k), 0.0);
  if (sums->size() != static_cast<size_t>(k)) {
    return InvalidArgumentError(op.Describe(), ": K changed between samples");
  }
  const float* data = a.values<float>().data();
  for (int64_t i = 0; i < a.shape()[0]; ++i) {
    for (int64_t j = 0; j < a.shape()[1]; ++j) {
      (*sums)[static_cast<size_t>(trans_a ? i : j)] += data[i * a.shape()[1] + j];
    }
  }
  *positions += static_cast<double>(m);
  return Status::Ok();
}

// Wq - W of a weight under its TQC's params (one scale, or one per channel along channel_axis):
// Wq = (clamp(round(V / scale) + zero_point, qmin, qmax) - zero_point) * scale, where V is the
// graph's weight now (weight rounding may have moved it onto another grid value) and W the FP32
// weight as given.
std::vector<double> WeightError(const Tensor& weight, const std::vector<float>& original,
                                const TQC& tqc, const std::vector<float>& scale,
                                const std::vector<int64_t>& zero_point) {
  const std::span<const float> w = weight.values<float>();
  const std::vector<int64_t>& shape = weight.shape();
  int64_t inner = 1, channels = 1;
  if (scale.size() > 1) {
    const size_t axis = static_cast<size_t>(tqc.channel_axis);
    channels = shape[axis];
    for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  }
  std::vector<double> error(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t ch = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
    const double s = scale[ch];
    const double z = static_cast<double>(zero_point[ch]);
    double q = RoundWith(tqc.scheme.rounding, w[i] / s) + z;
    q = std::clamp(q, static_cast<double>(tqc.scheme.quant_min),
                   static_cast<double>(tqc.scheme.quant_max));
    error[i] = (q - z) * s - original[i];
  }
  return error;
}

}  // namespace

BiasCorrection::BiasCorrection(const Graph& graph) {
  for (Operation* op : graph.operations()) {
    if (!IsCandidate(*op)) continue;
    ops_by_input_.emplace(op->input(0), ops_.size());
    std::vector<float> bias;
    if (op->input(2)->data()->dtype() == DataType::kFloat) {
      const auto values = op->input(2)->data()->values<float>();
      bias.assign(values.begin(), values.end());
    }
    const auto weight = op->input(1)->data()->values<float>();
    ops_.push_back(OpSums{op, {}, 0.0, Status::Ok(), std::move(bias),
                          std::vector<float>(weight.begin(), weight.end())});
  }
}

std::vector<const Variable*> BiasCorrection::ObservedInputs() const {
  std::vector<const Variable*> out;
  for (const OpSums& s : ops_) out.push_back(s.op->input(0));
  return out;
}

void BiasCorrection::Observe(const Variable& variable, const Tensor& value) {
  auto [begin, end] = ops_by_input_.equal_range(&variable);
  for (auto it = begin; it != end; ++it) {
    OpSums& s = ops_[it->second];
    if (!s.error.ok()) continue;
    if (value.dtype() != DataType::kFloat) {
      s.error = InvalidArgumentError(s.op->Describe(), ": input is not float");
    } else if (s.op->type() == "Gemm") {
      s.error = AccumulateGemm(*s.op, value, &s.sums, &s.positions);
    } else {
      s.error = AccumulateConv(*s.op, value, &s.sums, &s.positions);
    }
  }
}

StatusOr<BiasCorrectionStats> BiasCorrection::Apply(QuantConfigTable* table) const {
  BiasCorrectionStats stats;
  for (const OpSums& s : ops_) {
    std::span<float> b = s.op->input(2)->mutable_data()->values<float>();
    if (s.original_bias.size() != b.size()) {
      ++stats.skipped;
      continue;
    }
    std::copy(s.original_bias.begin(), s.original_bias.end(), b.begin());
    const OperationQuantConfig* config = table->FindOp(s.op);
    const TQC* w = config != nullptr && config->inputs.size() > 1 ? config->inputs[1] : nullptr;
    if (w == nullptr || !IsQuantizedState(w->state) || w->floating()) continue;
    const std::vector<float>& scale = table->scale(w);
    const std::vector<int64_t>& zero_point = table->zero_point(w);
    if (!s.error.ok() || s.positions == 0.0 || scale.empty() || scale.size() != zero_point.size()) {
      ++stats.skipped;
      continue;
    }
    const Tensor& weight = *s.op->input(1)->data();
    if (s.original_weight.size() != static_cast<size_t>(weight.num_elements())) {
      ++stats.skipped;
      continue;
    }
    const std::vector<double> dw = WeightError(weight, s.original_weight, *w, scale, zero_point);
    const std::vector<int64_t>& ws = weight.shape();
    std::vector<double> shift;
    if (s.op->type() == "Gemm") {
      // B' [K, N]: B[k, n], or B[n, k] with transB.
      const bool trans_b = s.op->GetInt("transB", 0) != 0;
      const int64_t k_size = ws[trans_b ? 1 : 0], n_size = ws[trans_b ? 0 : 1];
      const double alpha = s.op->GetFloat("alpha", 1.0f), beta = s.op->GetFloat("beta", 1.0f);
      if (static_cast<int64_t>(b.size()) != n_size || beta == 0.0 ||
          static_cast<int64_t>(s.sums.size()) != k_size) {
        ++stats.skipped;
        continue;
      }
      shift.assign(static_cast<size_t>(n_size), 0.0);
      for (int64_t k = 0; k < k_size; ++k) {
        for (int64_t n = 0; n < n_size; ++n) {
          const double d = dw[static_cast<size_t>(trans_b ? n * k_size + k : k * n_size + n)];
          shift[static_cast<size_t>(n)] += alpha / beta * d * s.sums[static_cast<size_t>(k)];
        }
      }
    } else {
      // Conv W [C_out, C_in / group, KH, KW]; ConvTranspose W [C_in, C_out / group, KH, KW].
      const bool transpose = s.op->type() == "ConvTranspose";
      QALIGN_ASSIGN_OR_RETURN(int64_t groups, nn::ReadGroup(*s.op));
      const int64_t taps = ws[2] * ws[3];
      const int64_t c_in = static_cast<int64_t>(s.sums.size()) / taps;
      const int64_t c_out = transpose ? ws[1] * groups : ws[0];
      if (static_cast<int64_t>(b.size()) != c_out || c_in % groups != 0 || c_out % groups != 0) {
        ++stats.skipped;
        continue;
      }
      const int64_t in_per_group = c_in / groups, out_per_group = c_out / groups;
      shift.assign(static_cast<size_t>(c_out), 0.0);
      for (int64_t co = 0; co < c_out; ++co) {
        const int64_t group = co / out_per_group;
        for (int64_t j = 0; j < in_per_group; ++j) {
          const int64_t ci = group * in_per_group + j;
          const int64_t base = transpose ? (ci * out_per_group + co % out_per_group) * taps
                                         : (co * in_per_group + j) * taps;
          for (int64_t t = 0; t < taps; ++t) {
            shift[static_cast<size_t>(co)] +=
                dw[static_cast<size_t>(base + t)] * s.sums[static_cast<size_t>(ci * taps + t)];
          }
        }
      }
    }
    for (size_t c = 0; c < shift.size(); ++c) {
      const double mean_shift = shift[c] / s.positions;
      b[c] = static_cast<float>(s.original_bias[c] - mean_shift);
      stats.max_shift = std::max(stats.max_shift, std::abs(mean_shift));
    }
    ++stats.corrected;
  }
  return stats;
}

}  // namespace qalign
