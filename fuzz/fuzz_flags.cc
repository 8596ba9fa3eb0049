// Fuzzes the parsers of --input-shape and --calib (random:N?..., image:DIR?..., and the image
// preprocessing query). The first byte picks the parser; the rest is the flag's value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "calib/data_loader.h"
#include "fuzz_util.h"
#include "onnx/importer.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<qalign::ModelInputSpec> inputs = {{"x", qalign::DataType::kFloat, {1, 3, 4, 4}},
                                                      {"ids", qalign::DataType::kInt64, {2}}};
  switch (data[0] % 4) {
    case 0: {
      auto parsed = qalign::ParseInputShapeFlag(text);
      if (parsed.ok()) {
        for (int64_t d : parsed->second) {
          if (d < 0) __builtin_trap();
        }
      }
      break;
    }
    case 1: {
      // Only random: specs here; a free-form spec would list the machine's folders.
      auto dataset = qalign::OpenCalibrationData("random:" + text, inputs);
      if (dataset.ok() && (*dataset)->size() > 0) (void)(*dataset)->Load(0);
      break;
    }
    case 2: {
      // The scratch folder holds only fuzz inputs, so the listing stays small.
      auto dataset = qalign::OpenCalibrationData("image:" + qalign::fuzz::ScratchDir() + "?" + text,
                                                 {inputs[0]});
      (void)dataset;
      break;
    }
    default: {
      auto preprocess = qalign::ParseImagePreprocess(text);
      (void)preprocess;
      break;
    }
  }
  return 0;
}
