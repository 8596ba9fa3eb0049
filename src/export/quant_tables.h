// Quantization tables written next to a QDQ model: a JSON table of every quantized tensor's params
// and a TensorRT calibration cache.
#pragma once

#include <cstdint>
#include <string>

#include "export/quant_plan.h"
#include "qalign/status.h"

namespace qalign {

// JSON: {"tensors": [{"tensor", "kind" ("activation" | "requantize" | "weight" | "bias" |
// "parameter"), "readers": ["op", ..], "scale": [..], "zero_point": [..], "axis" (per channel
// only), "bits", "dtype" ("int8" | "uint8" | "int32"), "quant_min", "quant_max", "group", "state"}],
// "summary": {"activations", "requantizes", "parameters"}}
std::string QuantTableJson(const QuantPlan& plan);

// The TensorRT calibration cache text:
//   TRT-<version>-EntropyCalibration2
//   <tensor>: <scale as the 8 hex digits of its float32 bits, most significant first>
// one line per activation tensor (its producer point, else its first consumer point). TensorRT
// int8 is symmetric with 127 steps a side, so the value written is amax / 127 where amax is the
// larger magnitude of the range the params represent ((qmin - zp) * s, (qmax - zp) * s); for
// symmetric int8 params (zero point 0) that is the scale itself.
std::string TrtCalibrationCache(const QuantPlan& plan, int trt_version = 8600);

// "3c010a14" for 1/127: the float's bits as big-endian hex.
std::string FloatToBigEndianHex(float value);
// The inverse; fails on anything but 8 hex digits.
StatusOr<float> BigEndianHexToFloat(const std::string& hex);
// The value a TensorRT cache stores for an activation point (see TrtCalibrationCache).
float TrtScale(const QdqParams& params);

}  // namespace qalign
