// JSON quantization table and TensorRT calibration cache (see quant_tables.h).
#include "export/quant_tables.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

namespace qalign {
namespace {

const char* DtypeName(DataType t) {
  switch (t) {
    case DataType::kUint8: return "uint8";
    case DataType::kInt8: return "int8";
    case DataType::kInt32: return "int32";
    default: return DataTypeName(t);
  }
}

nlohmann::json ParamsJson(const QdqParams& p, const TQC* tqc, int group) {
  nlohmann::json j;
  j["scale"] = p.scale;
  j["zero_point"] = p.zero_point;
  if (p.per_channel()) j["axis"] = p.axis;
  j["bits"] = tqc != nullptr ? tqc->scheme.num_bits : 8;
  j["dtype"] = DtypeName(p.dtype);
  j["quant_min"] = p.quant_min;
  j["quant_max"] = p.quant_max;
  j["group"] = group;
  j["state"] = tqc != nullptr ? QuantStateName(tqc->state) : "";
  return j;
}

nlohmann::json ReadersJson(const std::vector<Reader>& readers) {
  nlohmann::json r = nlohmann::json::array();
  for (const Reader& x : readers) r.push_back(x.op->name());
  return r;
}

}  // namespace

std::string QuantTableJson(const QuantPlan& plan) {
  nlohmann::json tensors = nlohmann::json::array();
  int64_t activations = 0, requantizes = 0;
  for (const ActivationPoint& p : plan.activations) {
    nlohmann::json j = ParamsJson(p.params, p.tqc, p.group);
    j["tensor"] = p.tensor->name();
    j["kind"] = p.requantize ? "requantize" : "activation";
    j["readers"] = ReadersJson(p.readers);
    tensors.push_back(std::move(j));
    ++(p.requantize ? requantizes : activations);
  }
  for (const ParameterPoint& p : plan.parameters) {
    nlohmann::json j = ParamsJson(p.params, p.tqc, p.group);
    j["tensor"] = p.tensor->name();
    j["kind"] = p.role == TensorRole::kWeight ? "weight"
                : p.role == TensorRole::kBias ? "bias"
                                              : "parameter";
    j["readers"] = ReadersJson(p.readers);
    tensors.push_back(std::move(j));
  }
  nlohmann::json out;
  out["tensors"] = std::move(tensors);
  out["summary"] = {{"activations", activations},
                    {"requantizes", requantizes},
                    {"parameters", plan.parameters.size()}};
  return out.dump(2) + "\n";
}

std::string FloatToBigEndianHex(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  char buffer[9];
  std::snprintf(buffer, sizeof(buffer), "%08x", bits);
  return buffer;
}

StatusOr<float> BigEndianHexToFloat(const std::string& hex) {
  if (hex.size() != 8 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return InvalidArgumentError("'", hex, "' is not 8 hex digits");
  }
  const uint32_t bits = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
  float value = 0;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

float TrtScale(const QdqParams& p) {
  const float s = p.scale.empty() ? 0.0f : p.scale[0];
  const int64_t zp = p.zero_point.empty() ? 0 : p.zero_point[0];
  if (p.dtype == DataType::kInt8 && zp == 0) return s;
  const double lo = std::fabs(static_cast<double>(p.quant_min - zp) * s);
  const double hi = std::fabs(static_cast<double>(p.quant_max - zp) * s);
  return static_cast<float>(std::max(lo, hi) / 127.0);
}

std::string TrtCalibrationCache(const QuantPlan& plan, int trt_version) {
  std::string out = "TRT-" + std::to_string(trt_version) + "-EntropyCalibration2\n";
  std::set<const Variable*> written;
  // Producer points first (the value the tensor holds), then tensors only quantized on edges.
  for (int pass = 0; pass < 2; ++pass) {
    for (const ActivationPoint& p : plan.activations) {
      if (p.requantize || (pass == 0) != p.producer_side) continue;
      if (!written.insert(p.tensor).second) continue;
      out += p.tensor->name() + ": " + FloatToBigEndianHex(TrtScale(p.params)) + "\n";
    }
  }
  return out;
}

}  // namespace qalign
