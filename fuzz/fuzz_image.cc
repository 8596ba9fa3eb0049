// Fuzzes PNG and JPEG decoding (libpng, libjpeg through qalign's error handling) and the
// preprocessing of whatever decodes.
#include <cstddef>
#include <cstdint>

#include "calib/data_loader.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = qalign::fuzz::WriteScratchFile("image", data, size);
  auto image = qalign::DecodeImageFile(path);
  if (!image.ok()) return 0;
  auto preprocess = qalign::ParseImagePreprocess("size=8x8&scale=1/255");
  if (!preprocess.ok()) __builtin_trap();
  qalign::ModelInputSpec input{"x", qalign::DataType::kFloat, {1, 3, 8, 8}};
  auto tensor = qalign::PreprocessImage(*image, *preprocess, input, "fuzz");
  (void)tensor;
  return 0;
}
