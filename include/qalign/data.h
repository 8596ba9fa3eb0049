// Public API: calibration data given in memory, and the progress callback of long calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qalign {

// Called after each step of a long loop (a calibration or evaluation sample) on the calling
// thread: `stage` is "calibrate", "optimize weights" (one step per layer), "evaluate" or "eval",
// `done` of `total` steps are complete.
// Returning false stops the work: the call then fails with StatusCode::kCancelled.
using ProgressCallback =
    std::function<bool(const std::string& stage, int64_t done, int64_t total)>;

// A caller's array for one model input, read in place when its sample is loaded (the bytes must
// stay valid for the whole call): element type by ONNX TensorProto number (1 float, 2 uint8,
// 3 int8, 6 int32, 7 int64, 9 bool, 10 float16, 11 double), dims, and dense row-major bytes.
struct InputArray {
  std::string input;  // the model input's name; empty: the inputs in graph order
  int32_t onnx_dtype = 1;
  std::vector<int64_t> dims;
  const void* data = nullptr;
  size_t bytes = 0;
};
// One sample: an array per model input (all named, or all by position).
using InputSample = std::vector<InputArray>;

}  // namespace qalign
