// Conversions between onnx::TensorProto and Tensor, including external data and .pb tensor files.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "ir/tensor.h"
#include "qalign/status.h"

namespace qalign {

// Decodes a TensorProto: raw_data or the typed fields (float_data; int32_data holding int8, uint8,
// int16, uint16, bool, float16 and bfloat16 one value per entry; int64_data; double_data;
// uint64_data; string_data), or external data read from `base_dir`/location at offset/length.
// Errors name the tensor and, for external data, the file.
StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& base_dir);

// Reads a serialized TensorProto file (the ONNX backend tests' input_0.pb / output_0.pb); external
// data is resolved relative to the file's folder.
StatusOr<Tensor> ReadTensorProtoFile(const std::string& path);

// Encodes a tensor with raw_data (string tensors use string_data).
onnx::TensorProto TensorToProto(const Tensor& tensor, const std::string& name);

// The folder part of a path ("." when there is none).
std::string DirName(const std::string& path);

}  // namespace qalign
