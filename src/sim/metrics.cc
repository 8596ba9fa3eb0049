// SNR and cosine accumulation (see metrics.h).
#include "sim/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace qalign {

Status ErrorAccumulator::Add(const Tensor& reference, const Tensor& x, const std::string& what) {
  if (reference.shape() != x.shape()) {
    return InvalidArgumentError(what, ": shapes differ, ", ShapeToString(reference.shape()), " vs ",
                                ShapeToString(x.shape()));
  }
  QALIGN_ASSIGN_OR_RETURN(std::vector<float> r, reference.AsFloats());
  QALIGN_ASSIGN_OR_RETURN(std::vector<float> q, x.AsFloats());
  for (size_t i = 0; i < r.size(); ++i) {
    const double a = r[i], b = q[i], e = a - b;
    ref_energy += a * a;
    error_energy += e * e;
    dot += a * b;
    x_energy += b * b;
    max_abs_error = std::max(max_abs_error, std::fabs(e));
  }
  count += static_cast<int64_t>(r.size());
  return Status::Ok();
}

double ErrorAccumulator::SnrDb() const {
  if (error_energy == 0.0) return std::numeric_limits<double>::infinity();
  if (ref_energy == 0.0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(ref_energy / error_energy);
}

double ErrorAccumulator::Cosine() const {
  if (ref_energy == 0.0 || x_energy == 0.0) return ref_energy == x_energy ? 1.0 : 0.0;
  return dot / std::sqrt(ref_energy * x_energy);
}

Status AccumulateOutputs(const std::map<std::string, Tensor>& reference,
                         const std::map<std::string, Tensor>& quantized, OutputErrors* errors) {
  for (const auto& [name, ref] : reference) {
    auto it = quantized.find(name);
    if (it == quantized.end()) continue;
    if (!IsFloatingPoint(ref.dtype()) || !IsFloatingPoint(it->second.dtype())) continue;
    QALIGN_RETURN_IF_ERROR((*errors)[name].Add(ref, it->second, StrCat("tensor '", name, "'")));
  }
  return Status::Ok();
}

std::string FormatOutputErrors(const OutputErrors& errors) {
  std::string out;
  for (const auto& [name, e] : errors) {
    char line[512];
    std::snprintf(line, sizeof(line), "  %s: SNR %.2f dB, cosine %.6f, max |err| %.4g\n",
                  name.c_str(), e.SnrDb(), e.Cosine(), e.max_abs_error);
    out += line;
  }
  return out;
}

}  // namespace qalign
