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

// A caller's array for one model input, read in place, not copied (the bytes must stay valid and
// unchanged for the whole call): element type by ONNX TensorProto number (1 float, 2 uint8,
// 3 int8, 6 int32, 7 int64, 9 bool, 10 float16, 11 double), dims, and dense row-major bytes in
// the machine's byte order. Data not aligned to its element size is copied.
struct InputArray {
  std::string input;  // the model input's name; empty: the inputs in graph order
  int32_t onnx_dtype = 1;
  std::vector<int64_t> dims;
  const void* data = nullptr;
  size_t bytes = 0;
};
// One sample: an array per model input (all named, or all by position).
using InputSample = std::vector<InputArray>;

// What this process did with callers' arrays so far, for tests: each time a sample is loaded,
// each of its arrays is either read in place or copied (misaligned data); `copied` also counts
// an array read in place and then written to, which copies it first (evaluating a quantized
// model fake-quantizes its inputs).
struct InputArrayCounts {
  int64_t read_in_place = 0;
  int64_t copied = 0;
};
InputArrayCounts CountInputArrays();

}  // namespace qalign
