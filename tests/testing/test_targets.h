// Small target profiles for tests, written as JSON files where a test needs a --target path.
#pragma once

#include <fstream>
#include <string>

namespace qalign::testing {

// `add-only`: int8 asymmetric activations and only Add quantized, so every other op (a Sub, a
// Sigmoid) stays FP32 whatever the options. With `int16`, `add-only-16` also has an int16
// activation scheme (signed, as the 8-bit one is) for mixed precision.
inline std::string AddOnlyTargetJson(bool int16 = false) {
  const std::string name = int16 ? "add-only-16" : "add-only";
  const std::string notes =
      int16 ? "test target: int8 asymmetric activations, int16 for mixed precision, only Add "
              "quantized"
            : "test target: int8 asymmetric activations, only Add quantized";
  const std::string activation16 = int16 ? R"(
    "activation16": {"num_bits": 16, "quant_min": -32768, "quant_max": 32767,
                     "policy": ["per_tensor", "asymmetric", "linear"]},)"
                                         : "";
  return R"({
  "name": ")" + name + R"(",
  "notes": ")" + notes + R"(",
  "schemes": {
    "activation": {"num_bits": 8, "quant_min": -128, "quant_max": 127,
                   "policy": ["per_tensor", "asymmetric", "linear"]},)" +
         activation16 + R"(
    "weight": {"num_bits": 8, "quant_min": -127, "quant_max": 127,
               "policy": ["per_channel", "symmetric", "linear"]},
    "bias": {"num_bits": 32, "quant_min": -2147483648, "quant_max": 2147483647,
             "policy": ["per_channel", "symmetric", "linear"]}
  },
  "quantized_ops": ["Add"],
  "op_classes": {}
})";
}

// Writes AddOnlyTargetJson(int16) to `path`; false when the file cannot be written.
inline bool WriteAddOnlyTarget(const std::string& path, bool int16 = false) {
  std::ofstream out(path);
  out << AddOnlyTargetJson(int16);
  out.close();
  return static_cast<bool>(out);
}

}  // namespace qalign::testing
