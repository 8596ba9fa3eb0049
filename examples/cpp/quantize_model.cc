// Quantizes an FP32 ONNX model for a target with qalign's C++ API, on calibration samples held in
// memory, checks the result against the target's rules, and prints what was done.
//   OMP_WAIT_POLICY=PASSIVE quantize_model MODEL TARGET OUTPUT [SAMPLES]
// (SAMPLES random inputs in [0, 1), seed 0). OMP_WAIT_POLICY=PASSIVE: oneDNN's OpenMP threads
// otherwise spin between its calls and take the cores from qalign's executor (several times
// slower); the qalign CLI and Python package set it themselves.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "qalign/check.h"
#include "qalign/quantize.h"
#include "qalign/targets.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL TARGET OUTPUT [SAMPLES]\n", argv[0]);
    return 2;
  }
  std::printf("targets:");
  for (const std::string& name : qalign::TargetNames()) std::printf(" %s", name.c_str());
  std::printf("\n");

  // The model's single input: 1x3x48x192 floats (PP-OCR's cls model) unless it says otherwise.
  const int num_samples = argc > 4 ? std::atoi(argv[4]) : 8;
  const std::vector<int64_t> dims = {1, 3, 48, 192};
  std::vector<std::vector<float>> buffers(num_samples, std::vector<float>(1 * 3 * 48 * 192));
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  qalign::QuantizeOptions options;
  for (auto& buffer : buffers) {
    for (float& v : buffer) v = uniform(rng);
    qalign::InputArray array;  // by position: the model's first input
    array.onnx_dtype = 1;      // float
    array.dims = dims;
    array.data = buffer.data();
    array.bytes = buffer.size() * sizeof(float);
    options.samples.push_back({array});
  }
  options.model_path = argv[1];
  options.target = argv[2];
  options.output_path = argv[3];
  options.quiet = true;
  auto summary = qalign::QuantizeModel(options);
  if (!summary.ok()) {
    std::fprintf(stderr, "error: %s\n", summary.status().message().c_str());
    return 1;
  }
  std::fputs(summary->ToText().c_str(), stdout);

  qalign::CheckOptions check;
  check.model_path = argv[3];
  check.target = argv[2];
  auto checked = qalign::CheckModel(check);
  if (!checked.ok()) {
    std::fprintf(stderr, "error: %s\n", checked.status().message().c_str());
    return 1;
  }
  std::printf("check: %zu violations in %lld ops\n", checked->violations.size(),
              static_cast<long long>(checked->ops_checked));
  return checked->violations.empty() ? 0 : 1;
}
