// QuantPlan construction and the shared quantize / dequantize arithmetic (see quant_plan.h).
#include "export/quant_plan.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <unordered_map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/logging.h"

namespace qalign {

bool QdqParams::SameAs(const QdqParams& other) const {
  return scale == other.scale && zero_point == other.zero_point && dtype == other.dtype &&
         (scale.size() <= 1 || axis == other.axis) && quant_min == other.quant_min &&
         quant_max == other.quant_max;
}

int QuantPlan::ProducerPoint(const std::string& tensor) const {
  for (size_t i = 0; i < activations.size(); ++i) {
    if (activations[i].producer_side && activations[i].tensor->name() == tensor) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

int64_t QuantPlan::requantizes() const {
  int64_t n = 0;
  for (const ActivationPoint& p : activations) n += p.requantize ? 1 : 0;
  return n;
}

StatusOr<DataType> QuantizedDataType(const QuantScheme& scheme) {
  if (scheme.num_bits == 32 && scheme.quant_min >= std::numeric_limits<int32_t>::min() &&
      scheme.quant_max <= std::numeric_limits<int32_t>::max()) {
    return DataType::kInt32;
  }
  if (scheme.num_bits == 8 && scheme.quant_min >= 0 && scheme.quant_max <= 255) {
    return DataType::kUint8;
  }
  if (scheme.num_bits == 8 && scheme.quant_min >= -128 && scheme.quant_max <= 127) {
    return DataType::kInt8;
  }
  // 16-bit: ONNX QuantizeLinear has them from opset 21 only; the export writes com.microsoft's.
  if (scheme.num_bits == 16 && scheme.quant_min >= 0 && scheme.quant_max <= 65535) {
    return DataType::kUint16;
  }
  if (scheme.num_bits == 16 && scheme.quant_min >= -32768 && scheme.quant_max <= 32767) {
    return DataType::kInt16;
  }
  return UnimplementedError("scheme ", scheme.ToString(),
                            " has no QuantizeLinear type (int8, uint8, int16, uint16, int32 only)");
}

int64_t QuantizeValue(float x, float scale, int64_t zero_point, int64_t qmin, int64_t qmax) {
  // round half to even: nearbyint under the default FE_TONEAREST mode.
  const double q = std::nearbyint(static_cast<double>(x / scale)) + static_cast<double>(zero_point);
  if (!(q >= static_cast<double>(qmin))) return std::isnan(q) ? zero_point : qmin;
  if (q > static_cast<double>(qmax)) return qmax;
  return static_cast<int64_t>(q);
}

float FakeQuantizeValue(float x, float scale, int64_t zero_point, int64_t qmin, int64_t qmax) {
  const int64_t q = QuantizeValue(x, scale, zero_point, qmin, qmax);
  return static_cast<float>(q - zero_point) * scale;
}

namespace {

// One step of a (possibly per-channel) parameter walk: channel of flat index i.
struct ChannelWalk {
  int64_t channels = 1;
  int64_t inner = 1;
  int64_t ChannelOf(int64_t i) const { return channels == 1 ? 0 : (i / inner) % channels; }
};

StatusOr<ChannelWalk> WalkFor(const Tensor& data, const QdqParams& params, const std::string& what) {
  ChannelWalk walk;
  if (!params.per_channel()) return walk;
  const int axis = params.axis;
  if (axis < 0 || axis >= data.rank()) {
    return InvalidArgumentError(what, ": channel axis ", axis, " out of range for shape ",
                                ShapeToString(data.shape()));
  }
  if (data.shape()[static_cast<size_t>(axis)] != static_cast<int64_t>(params.scale.size())) {
    return InvalidArgumentError(what, ": ", params.scale.size(), " channel scales for axis ", axis,
                                " of shape ", ShapeToString(data.shape()));
  }
  walk.channels = static_cast<int64_t>(params.scale.size());
  for (int64_t d = axis + 1; d < data.rank(); ++d) walk.inner *= data.shape()[static_cast<size_t>(d)];
  return walk;
}

}  // namespace

StatusOr<Tensor> QuantizeParameter(const Tensor& data, const QdqParams& params,
                                   const std::string& what) {
  QALIGN_ASSIGN_OR_RETURN(std::vector<float> values, data.AsFloats());
  QALIGN_ASSIGN_OR_RETURN(ChannelWalk walk, WalkFor(data, params, what));
  Tensor out(params.dtype, data.shape());
  for (int64_t i = 0; i < static_cast<int64_t>(values.size()); ++i) {
    const int64_t c = walk.ChannelOf(i);
    const int64_t q = QuantizeValue(values[static_cast<size_t>(i)], params.scale[static_cast<size_t>(c)],
                                    params.zero_point[static_cast<size_t>(c)], params.quant_min,
                                    params.quant_max);
    switch (params.dtype) {
      case DataType::kInt8: out.data<int8_t>()[i] = static_cast<int8_t>(q); break;
      case DataType::kUint8: out.data<uint8_t>()[i] = static_cast<uint8_t>(q); break;
      case DataType::kInt32: out.data<int32_t>()[i] = static_cast<int32_t>(q); break;
      case DataType::kInt16: out.data<int16_t>()[i] = static_cast<int16_t>(q); break;
      case DataType::kUint16: out.data<uint16_t>()[i] = static_cast<uint16_t>(q); break;
      default: return UnimplementedError(what, ": cannot store ", DataTypeName(params.dtype));
    }
  }
  return out;
}

StatusOr<Tensor> FakeQuantizeParameter(const Tensor& data, const QdqParams& params,
                                       const std::string& what) {
  QALIGN_ASSIGN_OR_RETURN(Tensor q, QuantizeParameter(data, params, what));
  QALIGN_ASSIGN_OR_RETURN(ChannelWalk walk, WalkFor(data, params, what));
  QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> ints, q.AsInt64s());
  Tensor out(DataType::kFloat, data.shape());
  float* o = out.data<float>();
  for (int64_t i = 0; i < static_cast<int64_t>(ints.size()); ++i) {
    const size_t c = static_cast<size_t>(walk.ChannelOf(i));
    o[i] = static_cast<float>(ints[static_cast<size_t>(i)] - params.zero_point[c]) * params.scale[c];
  }
  return out;
}

void FakeQuantizeInPlace(std::span<float> values, const QdqParams& params) {
  if (params.scale.empty()) return;
  // FakeQuantizeValue four values at a time: the same float division, NaN replaced by 0 (the
  // zero point), the quotient clamped to one step beyond the integer range (which changes no
  // result: values out there saturate anyway) so that adding and subtracting 1.5 * 2^23 rounds
  // it half to even in the default rounding mode, then the integer range and the scale.
  const float scale = params.scale[0];
  const float zp = static_cast<float>(params.zero_point[0]);
  const float lo = static_cast<float>(params.quant_min) - zp;
  const float hi = static_cast<float>(params.quant_max) - zp;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  float* data = values.data();
  const size_t n = values.size();
  size_t i = 0;
#if defined(__SSE2__)
  const __m128 v_scale = _mm_set1_ps(scale);
  const __m128 v_lo = _mm_set1_ps(lo), v_hi = _mm_set1_ps(hi);
  const __m128 v_lo1 = _mm_set1_ps(lo - 1.0f), v_hi1 = _mm_set1_ps(hi + 1.0f);
  const __m128 v_round = _mm_set1_ps(kRound);
  for (; i + 4 <= n; i += 4) {
    __m128 r = _mm_div_ps(_mm_loadu_ps(data + i), v_scale);
    r = _mm_and_ps(r, _mm_cmpord_ps(r, r));
    r = _mm_min_ps(_mm_max_ps(r, v_lo1), v_hi1);
    __m128 q = _mm_sub_ps(_mm_add_ps(r, v_round), v_round);
    q = _mm_min_ps(_mm_max_ps(q, v_lo), v_hi);
    _mm_storeu_ps(data + i, _mm_mul_ps(q, v_scale));
  }
#endif
  for (; i < n; ++i) {
    float r = data[i] / scale;
    r = r == r ? r : 0.0f;
    r = std::min(std::max(r, lo - 1.0f), hi + 1.0f);
    float q = (r + kRound) - kRound;
    q = std::min(std::max(q, lo), hi);
    data[i] = q * scale;
  }
}

bool IntegerRange(DataType dtype, int64_t* qmin, int64_t* qmax) {
  switch (dtype) {
    case DataType::kUint8: *qmin = 0; *qmax = 255; return true;
    case DataType::kInt8: *qmin = -128; *qmax = 127; return true;
    case DataType::kUint16: *qmin = 0; *qmax = 65535; return true;
    case DataType::kInt16: *qmin = -32768; *qmax = 32767; return true;
    case DataType::kInt32:
      *qmin = std::numeric_limits<int32_t>::min();
      *qmax = std::numeric_limits<int32_t>::max();
      return true;
    default: return false;
  }
}

bool IsSixteenBit(DataType dtype) { return dtype == DataType::kUint16 || dtype == DataType::kInt16; }

namespace {

bool IsPointState(const TQC* t) {
  return t != nullptr && IsQuantizedState(t->state) && t->state != QuantState::kOverlapped &&
         !t->floating();
}

class PlanBuilder {
 public:
  PlanBuilder(const Graph& graph, QuantConfigTable& table) : graph_(graph), table_(table) {}

  StatusOr<QdqParams> ParamsOf(const TQC* t, bool parameter) {
    QdqParams p;
    p.scale = table_.scale(t);
    p.zero_point = table_.zero_point(t);
    if (p.scale.empty() || p.zero_point.size() != p.scale.size()) {
      return FailedPreconditionError(DescribeTqc(*t), ": quantized (", QuantStateName(t->state),
                                     ") but has no params; calibrate and align first");
    }
    for (float s : p.scale) {
      if (!(s > 0.0f) || !std::isfinite(s)) {
        return InvalidArgumentError(DescribeTqc(*t), ": scale ", s, " is not a positive number");
      }
    }
    QALIGN_ASSIGN_OR_RETURN(p.dtype, QuantizedDataType(t->scheme));
    if (parameter) {
      p.quant_min = t->scheme.quant_min;
      p.quant_max = t->scheme.quant_max;
    } else {
      // What QuantizeLinear saturates to: the whole range of its output type.
      IntegerRange(p.dtype, &p.quant_min, &p.quant_max);
      if (p.dtype == DataType::kInt32) {
        return UnimplementedError(DescribeTqc(*t), ": 32-bit activations cannot be exported as QDQ");
      }
      if (t->scheme.quant_min != p.quant_min || t->scheme.quant_max != p.quant_max) {
        LogDebug(DescribeTqc(*t), ": activation range [", t->scheme.quant_min, ",",
                 t->scheme.quant_max, "] saturates to the full ", DataTypeName(p.dtype),
                 " range in QDQ");
      }
    }
    for (int64_t z : p.zero_point) {
      if (z < p.quant_min || z > p.quant_max) {
        return InvalidArgumentError(DescribeTqc(*t), ": zero point ", z, " outside [", p.quant_min,
                                    ",", p.quant_max, "]");
      }
    }
    if (p.per_channel()) {
      if (!parameter) {
        return UnimplementedError(DescribeTqc(*t), ": per-channel activation params");
      }
      p.axis = t->channel_axis < 0 ? 0 : t->channel_axis;
      if (t->role == TensorRole::kBias) p.axis = 0;
    }
    return p;
  }

  const TQC* ConsumerTqc(const Use& use) const {
    const OperationQuantConfig* config = table_.FindOp(use.op);
    if (config == nullptr || use.index < 0 ||
        static_cast<size_t>(use.index) >= config->inputs.size()) {
      return nullptr;
    }
    return config->inputs[static_cast<size_t>(use.index)];
  }

  const TQC* ProducerTqc(const Variable& v) const {
    if (v.producer() == nullptr) return nullptr;
    const OperationQuantConfig* config = table_.FindOp(v.producer());
    if (config == nullptr || v.producer_index() < 0 ||
        static_cast<size_t>(v.producer_index()) >= config->outputs.size()) {
      return nullptr;
    }
    return config->outputs[static_cast<size_t>(v.producer_index())];
  }

  // An op kept FP32 on purpose (mixed precision) reads `v` itself, not a dequantized value.
  bool ReadsFloat(const Use& use) const {
    const OperationQuantConfig* config = table_.FindOp(use.op);
    return config != nullptr && config->kept_fp32;
  }

  Status AddActivation(const Variable& v, QuantPlan& plan) {
    std::vector<ActivationPoint> points;
    const TQC* producer = ProducerTqc(v);
    int producer_point = -1;
    // A reader kept FP32 needs the float tensor: then every quantized reader gets its own point
    // (with the same params, so the numbers do not change) instead of one after the producer.
    bool float_reader = false;
    for (const Use& use : v.uses()) float_reader = float_reader || (!use.implicit() && ReadsFloat(use));
    if (IsPointState(producer) && !float_reader) {
      ActivationPoint p;
      p.tensor = &v;
      QALIGN_ASSIGN_OR_RETURN(p.params, ParamsOf(producer, false));
      p.producer_side = true;
      p.feeds_graph_output = v.is_graph_output();
      p.tqc = producer;
      p.group = table_.Root(producer)->id;
      producer_point = 0;
      points.push_back(std::move(p));
    }
    for (const Use& use : v.uses()) {
      if (use.implicit()) continue;
      const TQC* c = ConsumerTqc(use);
      Reader reader{use.op, use.index};
      if (!IsPointState(c)) {
        if (producer_point >= 0) points[0].readers.push_back(reader);
        continue;
      }
      QALIGN_ASSIGN_OR_RETURN(QdqParams params, ParamsOf(c, false));
      if (producer_point >= 0 && params.SameAs(points[0].params)) {
        points[0].readers.push_back(reader);
        continue;
      }
      bool merged = false;
      for (size_t i = producer_point >= 0 ? 1 : 0; i < points.size(); ++i) {
        if (points[i].params.SameAs(params)) {
          points[i].readers.push_back(reader);
          merged = true;
          break;
        }
      }
      if (merged) continue;
      ActivationPoint p;
      p.tensor = &v;
      p.params = std::move(params);
      p.requantize = producer_point >= 0;
      p.tqc = c;
      p.group = table_.Root(c)->id;
      p.readers.push_back(reader);
      points.push_back(std::move(p));
    }
    for (ActivationPoint& p : points) plan.activations.push_back(std::move(p));
    return Status::Ok();
  }

  Status AddParameter(const Variable& v, QuantPlan& plan) {
    std::vector<ParameterPoint> points;
    for (const Use& use : v.uses()) {
      if (use.implicit()) continue;
      const TQC* c = ConsumerTqc(use);
      if (!IsPointState(c)) continue;
      QALIGN_ASSIGN_OR_RETURN(QdqParams params, ParamsOf(c, true));
      const std::string what = DescribeTqc(*c);
      if (params.per_channel()) {
        QALIGN_RETURN_IF_ERROR(WalkFor(*v.data(), params, what).status());
      }
      bool merged = false;
      for (ParameterPoint& p : points) {
        if (p.params.SameAs(params)) {
          p.readers.push_back({use.op, use.index});
          merged = true;
          break;
        }
      }
      if (merged) continue;
      ParameterPoint p;
      p.tensor = &v;
      p.params = std::move(params);
      p.role = c->role;
      p.tqc = c;
      p.group = table_.Root(c)->id;
      p.readers.push_back({use.op, use.index});
      points.push_back(std::move(p));
    }
    for (ParameterPoint& p : points) plan.parameters.push_back(std::move(p));
    return Status::Ok();
  }

  StatusOr<QuantPlan> Build() {
    QuantPlan plan;
    QALIGN_ASSIGN_OR_RETURN(std::vector<Operation*> order, graph_.TopologicalOrder());
    std::set<const Variable*> seen;
    auto visit = [&](const Variable* v) -> Status {
      if (v == nullptr || !seen.insert(v).second) return Status::Ok();
      if (v->dtype() != DataType::kFloat) return Status::Ok();
      if (v->is_parameter()) return AddParameter(*v, plan);
      return AddActivation(*v, plan);
    };
    for (const Variable* v : graph_.inputs()) QALIGN_RETURN_IF_ERROR(visit(v));
    for (const Operation* op : order) {
      for (const Variable* v : op->inputs()) {
        if (v != nullptr && v->is_parameter()) QALIGN_RETURN_IF_ERROR(visit(v));
      }
      for (const Variable* v : op->outputs()) QALIGN_RETURN_IF_ERROR(visit(v));
    }
    return plan;
  }

 private:
  const Graph& graph_;
  QuantConfigTable& table_;
};

}  // namespace

StatusOr<QuantPlan> BuildQuantPlan(const Graph& graph, QuantConfigTable& table,
                                   const std::vector<RequantizeEdge>& requantizes) {
  PlanBuilder builder(graph, table);
  QALIGN_ASSIGN_OR_RETURN(QuantPlan plan, builder.Build());
  // Every requantize the plan makes should be one the alignment pass recorded (the verifier
  // reports the others as violations); say so here too, since the export makes them real.
  std::set<std::pair<std::string, std::string>> recorded;
  for (const RequantizeEdge& e : requantizes) {
    if (e.tensor != nullptr && e.consumer != nullptr) {
      recorded.insert({e.tensor->name(), e.consumer->name()});
    }
  }
  for (const ActivationPoint& p : plan.activations) {
    if (!p.requantize) continue;
    for (const Reader& r : p.readers) {
      if (!recorded.count({p.tensor->name(), r.op->name()})) {
        LogWarning("tensor '", p.tensor->name(), "' is requantized for ", r.op->Describe(),
                   " without a recorded requantize edge");
      }
    }
  }
  return plan;
}

}  // namespace qalign
