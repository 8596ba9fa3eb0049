// Fuzzes what `qalign check` and `qalign fix` read: a QDQ model of any quantizer, imported into
// qalign's table (Q/DQ pairs, requantize chains, constant DequantizeLinears), checked against a
// target's rules, and re-aligned by fix, under tflite-int8 (int8) and qnn-u8 (uint8).
#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx_pb.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "fuzz_util.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_fix.h"
#include "qdq/qdq_import.h"
#include "quant/target_profile.h"

namespace {

std::vector<qalign::TargetProfile>& Profiles() {
  static std::vector<qalign::TargetProfile> profiles;
  return profiles;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  for (const char* name : {"tflite-int8", "qnn-u8"}) {
    auto profile = qalign::LoadTargetProfile(name);
    if (!profile.ok()) std::abort();  // a broken set-up, not a finding: fail loudly at once
    Profiles().push_back(*profile);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream coded(data, static_cast<int>(size));
  if (!model.ParseFromCodedStream(&coded)) return 0;
  for (const qalign::TargetProfile& profile : Profiles()) {
    auto view = qalign::ImportQdqModel(model, qalign::fuzz::ScratchDir(), profile, {}, "fuzz.onnx");
    if (!view.ok()) continue;
    const qalign::QdqCheckResult check = qalign::CheckQdqModel(**view);
    (void)check;
    auto fixed = qalign::FixQdqModel(**view, {});
    (void)fixed;
  }
  return 0;
}
