// Weight and bias params, the step after alignment: weights from their own data, biases from the
// aligned input scale and the weight scales.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "qalign/status.h"
#include "quant/quant_config.h"

namespace qalign {

struct DerivedParamsStats {
  int64_t weights = 0;  // per-channel weights whose params were derived
  int64_t biases = 0;
  // Weight channels whose scale was raised so that their bias fits the int32 range, and a note
  // per bias naming it.
  int64_t raised_weight_channels = 0;
  std::vector<std::string> notes;
  bool changed = false;  // any params or state changed
};

// 1. Every per-channel weight (linear, quantized, not BAKED or OVERLAPPED, a parameter): per
//    channel c, params from [min_c, max_c] of its data under the weight's scheme (symmetric for
//    the usual int8 weight scheme: scale_c = max(|min_c|, |max_c|) / 127, zero point 0).
// 2. Every bias (quantized, not BAKED) of an op whose input 0 has per-tensor params and input 1
//    has params: scale[c] = input_scale * weight_scale[c], zero point 0 (quant/bias_params.h).
//    It reads the input's group params, so it runs after the alignment pass. Where a bias value
//    would not fit the int32 range at that scale, the weight channel's scale is raised until it
//    does (RaiseWeightScalesForBias in the .cc explains why) and a note says so.
// Fails on a channel axis outside the weight's rank or a range ComputeParams refuses, naming the
// TQC.
StatusOr<DerivedParamsStats> DeriveWeightAndBiasParams(QuantConfigTable* table);

}  // namespace qalign
