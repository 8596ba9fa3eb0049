// NumPy .npy files: read into and write from Tensor (format versions 1.0-3.0, little-endian, C order).
#pragma once

#include <string>

#include "ir/tensor.h"
#include "qalign/status.h"

namespace qalign {

// Parses .npy bytes; `source` names the file in errors.
StatusOr<Tensor> ParseNpy(const std::string& bytes, const std::string& source);
StatusOr<Tensor> ReadNpy(const std::string& path);
// Serializes a numeric or bool tensor as a version 1.0 .npy.
StatusOr<std::string> SerializeNpy(const Tensor& tensor);
// Writes atomically (temp file + rename).
Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace qalign
