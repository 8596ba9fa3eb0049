// ranges.json load/save and ApplyRanges: calibration ranges from any tool into the TQCs.
#include "quant/ranges.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/file_util.h"
#include "core/logging.h"

namespace qalign {
namespace {

using json = nlohmann::json;

StatusOr<float> ReadNumber(const json& value, const std::string& source, const std::string& tensor,
                           const char* key) {
  if (!value.is_number()) {
    return InvalidArgumentError(source, ": tensor '", tensor, "': \"", key, "\" must be a number");
  }
  const double v = value.get<double>();
  // Ranges and counts are kept as float: a value beyond float's range would become inf.
  if (!std::isfinite(v) || !std::isfinite(static_cast<float>(v))) {
    return InvalidArgumentError(source, ": tensor '", tensor, "': \"", key, "\" is ", v,
                                ", not a finite float");
  }
  return static_cast<float>(v);
}

StatusOr<TensorRange> ParseEntry(const json& entry, const std::string& source,
                                 const std::string& tensor) {
  if (!entry.is_object()) {
    return InvalidArgumentError(source, ": tensor '", tensor,
                                "': expected an object {\"min\": x, \"max\": y}");
  }
  TensorRange range;
  bool has_min = false, has_max = false;
  for (const auto& [key, value] : entry.items()) {
    if (key == "min") {
      QALIGN_ASSIGN_OR_RETURN(range.min, ReadNumber(value, source, tensor, "min"));
      has_min = true;
    } else if (key == "max") {
      QALIGN_ASSIGN_OR_RETURN(range.max, ReadNumber(value, source, tensor, "max"));
      has_max = true;
    } else if (key == "histogram") {
      if (!value.is_object()) {
        return InvalidArgumentError(source, ": tensor '", tensor,
                                    "': \"histogram\" must be an object {min, max, counts}");
      }
      bool h_min = false, h_max = false, h_counts = false;
      for (const auto& [hkey, hvalue] : value.items()) {
        if (hkey == "min") {
          QALIGN_ASSIGN_OR_RETURN(range.hist_min, ReadNumber(hvalue, source, tensor, "histogram.min"));
          h_min = true;
        } else if (hkey == "max") {
          QALIGN_ASSIGN_OR_RETURN(range.hist_max, ReadNumber(hvalue, source, tensor, "histogram.max"));
          h_max = true;
        } else if (hkey == "counts") {
          if (!hvalue.is_array() || hvalue.empty()) {
            return InvalidArgumentError(source, ": tensor '", tensor,
                                        "': \"histogram.counts\" must be a non-empty array");
          }
          for (const json& c : hvalue) {
            QALIGN_ASSIGN_OR_RETURN(float count, ReadNumber(c, source, tensor, "histogram.counts"));
            if (count < 0) {
              return InvalidArgumentError(source, ": tensor '", tensor,
                                          "': \"histogram.counts\" has a negative count");
            }
            range.counts.push_back(count);
          }
          h_counts = true;
        } else {
          return InvalidArgumentError(source, ": tensor '", tensor, "': unknown key \"histogram.",
                                      hkey, "\" (expected min, max, counts)");
        }
      }
      if (!h_min || !h_max || !h_counts) {
        return InvalidArgumentError(source, ": tensor '", tensor,
                                    "': \"histogram\" needs \"min\", \"max\" and \"counts\"");
      }
      if (range.hist_min > range.hist_max) {
        return InvalidArgumentError(source, ": tensor '", tensor, "': histogram min ",
                                    range.hist_min, " > max ", range.hist_max);
      }
      range.has_histogram = true;
    } else {
      return InvalidArgumentError(source, ": tensor '", tensor, "': unknown key \"", key,
                                  "\" (expected min, max, histogram)");
    }
  }
  if (!has_min || !has_max) {
    return InvalidArgumentError(source, ": tensor '", tensor, "': needs both \"min\" and \"max\"");
  }
  if (range.min > range.max) {
    return InvalidArgumentError(source, ": tensor '", tensor, "': min ", range.min, " > max ",
                                range.max);
  }
  return range;
}

bool NeedsRange(const TQC& tqc) {
  if (tqc.role != TensorRole::kActivation) return false;
  switch (tqc.state) {
    case QuantState::kInitial:
    case QuantState::kActivated:
    case QuantState::kPassive:
    case QuantState::kPassiveInit:
      return true;
    default:
      return false;  // FP32, SOI, OVERLAPPED (not quantized here), BAKED (already quantized)
  }
}

// min/max over a parameter's values; false if it has none or is not numeric.
bool RangeOfParameter(const Variable& v, float* min, float* max) {
  const Tensor* data = v.data();
  if (data == nullptr || data->num_elements() == 0) return false;
  auto values = data->AsFloats();
  if (!values.ok()) return false;
  auto [lo, hi] = std::minmax_element(values->begin(), values->end());
  if (!std::isfinite(*lo) || !std::isfinite(*hi)) return false;
  *min = *lo;
  *max = *hi;
  return true;
}

}  // namespace

const TensorRange* RangeMap::Find(const std::string& tensor) const {
  auto it = ranges.find(tensor);
  return it == ranges.end() ? nullptr : &it->second;
}

StatusOr<RangeMap> ParseRanges(const std::string& text, const std::string& source) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return InvalidArgumentError(source, ": not valid JSON");
  }
  if (!root.is_object()) {
    return InvalidArgumentError(source,
                                ": expected an object mapping tensor names to {\"min\", \"max\"}");
  }
  RangeMap map;
  map.source = source;
  for (const auto& [name, entry] : root.items()) {
    QALIGN_ASSIGN_OR_RETURN(TensorRange range, ParseEntry(entry, source, name));
    map.ranges.emplace(name, std::move(range));
  }
  return map;
}

StatusOr<RangeMap> LoadRanges(const std::string& path) {
  QALIGN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseRanges(text, path);
}

std::string SerializeRanges(const RangeMap& ranges) {
  json root = json::object();
  for (const auto& [name, range] : ranges.ranges) {
    json entry = {{"min", range.min}, {"max", range.max}};
    if (range.has_histogram) {
      entry["histogram"] = {{"min", range.hist_min}, {"max", range.hist_max}, {"counts", range.counts}};
    }
    root[name] = std::move(entry);
  }
  return root.dump(2) + "\n";
}

Status SaveRanges(const RangeMap& ranges, const std::string& path) {
  return WriteFileAtomically(path, SerializeRanges(ranges));
}

StatusOr<ApplyRangesStats> ApplyRanges(const RangeMap& ranges, QuantConfigTable* table,
                                       bool allow_missing) {
  ApplyRangesStats stats;
  const std::string source = ranges.source.empty() ? std::string("ranges") : ranges.source;
  // Group the TQCs needing a range by tensor, in table order (deterministic messages).
  std::vector<Variable*> tensors;
  std::unordered_map<Variable*, std::vector<TQC*>> by_tensor;
  std::unordered_map<Variable*, std::vector<TQC*>> all_by_tensor;
  for (TQC* tqc : table->all()) {
    Variable* v = tqc->port.tensor;
    if (v == nullptr) continue;
    all_by_tensor[v].push_back(tqc);
    if (!NeedsRange(*tqc)) continue;
    auto [it, inserted] = by_tensor.try_emplace(v);
    if (inserted) tensors.push_back(v);
    it->second.push_back(tqc);
  }
  // Validate first: report the first missing tensor before mutating anything.
  std::vector<Variable*> missing;
  for (Variable* v : tensors) {
    if (ranges.Find(v->name()) != nullptr) continue;
    float lo, hi;
    if (v->is_parameter() && RangeOfParameter(*v, &lo, &hi)) continue;
    if (!allow_missing) {
      const TQC* first = by_tensor[v].front();
      return NotFoundError(source, ": no range for tensor '", v->name(), "' quantized at ",
                           DescribeTqc(*first), " (use --allow-missing to keep it FP32)");
    }
    missing.push_back(v);
  }
  for (Variable* v : missing) {
    LogWarning(source, ": no range for tensor '", v->name(), "'; it stays FP32");
    for (TQC* tqc : all_by_tensor[v]) {
      if (tqc->state != QuantState::kSoi) tqc->state = QuantState::kFp32;
    }
    by_tensor.erase(v);
    ++stats.tensors_missing;
  }
  for (Variable* v : tensors) {
    auto it = by_tensor.find(v);
    if (it == by_tensor.end()) continue;
    CalibrationStats cs;
    cs.has_range = true;
    if (const TensorRange* r = ranges.Find(v->name())) {
      cs.min = r->min;
      cs.max = r->max;
    } else {
      RangeOfParameter(*v, &cs.min, &cs.max);
      stats.from_parameters += static_cast<int64_t>(it->second.size());
    }
    for (TQC* tqc : it->second) {
      tqc->stats = cs;
      ++stats.tqcs_filled;
    }
  }
  std::unordered_map<std::string, bool> names;
  for (const auto& [v, list] : all_by_tensor) names.emplace(v->name(), true);
  for (const auto& [name, range] : ranges.ranges) {
    if (names.find(name) == names.end()) ++stats.ranges_unused;
  }
  return stats;
}

}  // namespace qalign
