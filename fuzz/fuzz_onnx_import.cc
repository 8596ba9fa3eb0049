// Fuzzes the ONNX importer: protobuf parse, model checks, Constant folding, the graph verifier and
// ONNX shape inference, on any bytes.
#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx_pb.h>

#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "onnx/importer.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream coded(data, static_cast<int>(size));
  if (!model.ParseFromCodedStream(&coded)) return 0;
  // External data resolves inside an empty folder: the fuzzer never reads the machine's files.
  auto graph = qalign::ImportOnnxModelFromProto(model, qalign::fuzz::ScratchDir(), {}, "fuzz");
  (void)graph;
  return 0;
}
