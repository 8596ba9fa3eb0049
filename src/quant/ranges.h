// ranges.json: per-tensor calibration ranges (min, max, optional histogram) read from and written to
// disk, and applied to the TQCs of a QuantConfigTable, so alignment can run without an executor.
//
// Format (one object, keys are tensor names):
//   {"conv1_out": {"min": -1.5, "max": 3.25,
//                  "histogram": {"min": -1.5, "max": 3.25, "counts": [0, 4, 17, ...]}}}
// `histogram` is optional; its bins are uniform over [histogram.min, histogram.max].
#pragma once

#include <map>
#include <string>
#include <vector>

#include "quant/quant_config.h"
#include "qalign/status.h"

namespace qalign {

struct TensorRange {
  float min = 0.0f;
  float max = 0.0f;
  bool has_histogram = false;
  float hist_min = 0.0f;
  float hist_max = 0.0f;
  std::vector<float> counts;
};

struct RangeMap {
  std::map<std::string, TensorRange> ranges;  // sorted, so saved files are stable
  std::string source;                          // the file it came from, for messages
  const TensorRange* Find(const std::string& tensor) const;
};

// Parses ranges.json text; `source` names the file in errors ("ranges.json: tensor 'x': ...").
StatusOr<RangeMap> ParseRanges(const std::string& text, const std::string& source);
StatusOr<RangeMap> LoadRanges(const std::string& path);
std::string SerializeRanges(const RangeMap& ranges);
// Written atomically (temp file + rename).
Status SaveRanges(const RangeMap& ranges, const std::string& path);

struct ApplyRangesStats {
  int64_t tqcs_filled = 0;        // TQCs that received a range
  int64_t from_parameters = 0;    // of those, ranges computed from parameter data
  int64_t tensors_missing = 0;    // tensors made FP32 under allow_missing
  int64_t ranges_unused = 0;      // entries naming no tensor of the graph
};

// Fills the CalibrationStats of every quantized activation TQC from `ranges` (by tensor name).
// A parameter tensor without an entry takes its range from its own data. A tensor the target
// quantizes but `ranges` lacks is an error naming it; with `allow_missing` the tensor's TQCs all
// become FP32 instead and a warning names it. Weight and bias TQCs take their params from the data
// (the alignment pass does that), so they need no entry.
StatusOr<ApplyRangesStats> ApplyRanges(const RangeMap& ranges, QuantConfigTable* table,
                                       bool allow_missing);

}  // namespace qalign
