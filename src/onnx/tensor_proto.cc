// TensorProto <-> Tensor conversions.
#include "onnx/tensor_proto.h"

#include <limits.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/file_util.h"

namespace qalign {
namespace {

std::string TensorLabel(const onnx::TensorProto& proto) {
  return proto.name().empty() ? std::string("tensor (unnamed)") : "tensor '" + proto.name() + "'";
}

bool IsKnownDataType(int32_t type) {
  return type >= static_cast<int32_t>(DataType::kFloat) &&
         type <= static_cast<int32_t>(DataType::kBFloat16);
}

// The file an external-data `location` names, which must stay inside the model's folder: ONNX
// defines `location` as relative to it, and ONNX Runtime refuses anything else. Without this a
// model could read any file the user can (location "/etc/passwd" or "../../.ssh/id_rsa") into
// its weights. Refused: absolute paths, ".." components, and a path that leaves the folder
// through a symbolic link (resolved with realpath on both sides).
StatusOr<std::string> ConfinedPath(const onnx::TensorProto& proto, const std::string& location,
                                   const std::string& base_dir) {
  auto refuse = [&](const std::string& why) {
    return InvalidArgumentError(TensorLabel(proto), ": external data location '", location, "' ",
                                why, "; it must name a file inside the model's folder");
  };
  if (location.find('\0') != std::string::npos) return refuse("contains a NUL byte");
  if (location[0] == '/') return refuse("is an absolute path");
  size_t start = 0;
  while (start <= location.size()) {
    const size_t slash = std::min(location.find('/', start), location.size());
    if (location.compare(start, slash - start, "..") == 0 && slash - start == 2) {
      return refuse("contains '..'");
    }
    start = slash + 1;
  }
  const std::string path = base_dir + "/" + location;
  char resolved_dir[PATH_MAX];
  char resolved_file[PATH_MAX];
  if (::realpath(base_dir.c_str(), resolved_dir) == nullptr) {
    return NotFoundError(TensorLabel(proto), ": model folder ", base_dir, ": ",
                         std::strerror(errno));
  }
  if (::realpath(path.c_str(), resolved_file) == nullptr) {
    return NotFoundError(TensorLabel(proto), ": external data file ", path, ": ",
                         std::strerror(errno));
  }
  std::string folder = resolved_dir;
  if (folder.back() != '/') folder += '/';
  if (std::string(resolved_file).rfind(folder, 0) != 0) {
    return refuse(StrCat("resolves to ", resolved_file, " through a symbolic link"));
  }
  return path;
}

// Reads `length` bytes (all when negative) at `offset` of an external data file.
StatusOr<std::string> ReadExternalBytes(const onnx::TensorProto& proto,
                                        const std::string& base_dir) {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  for (const auto& entry : proto.external_data()) {
    try {
      if (entry.key() == "location") {
        location = entry.value();
      } else if (entry.key() == "offset") {
        offset = std::stoll(entry.value());
      } else if (entry.key() == "length") {
        length = std::stoll(entry.value());
      }
    } catch (const std::exception&) {
      return InvalidArgumentError(TensorLabel(proto), ": external data ", entry.key(), " '",
                                  entry.value(), "' is not a number");
    }
  }
  if (location.empty()) {
    return InvalidArgumentError(TensorLabel(proto), ": external data has no location");
  }
  if (offset < 0)
    return InvalidArgumentError(TensorLabel(proto), ": negative external data offset");
  QALIGN_ASSIGN_OR_RETURN(const std::string path, ConfinedPath(proto, location, base_dir));
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return NotFoundError(TensorLabel(proto), ": external data file ", path, ": ",
                         std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return InvalidArgumentError(TensorLabel(proto), ": external data file ", path,
                                S_ISDIR(info.st_mode) ? " is a directory" : " is not a regular file");
  }
  const int64_t file_size = static_cast<int64_t>(info.st_size);
  if (length < 0) length = file_size - offset;
  if (offset > file_size || length > file_size - offset) {
    return InvalidArgumentError(TensorLabel(proto), ": external data file ", path, " has ",
                                file_size, " bytes, fewer than offset ", offset, " + length ",
                                length);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(TensorLabel(proto), ": cannot open external data file ", path);
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  if (!in) return IoError(TensorLabel(proto), ": reading external data file ", path, " failed");
  return bytes;
}

template <typename Field>
Status CheckCount(const onnx::TensorProto& proto, const Field& field, int64_t expected,
                  int64_t per_element = 1) {
  const int64_t got = static_cast<int64_t>(field.size());
  if (got != expected * per_element) {
    return InvalidArgumentError(
        TensorLabel(proto), ": shape ",
        ShapeToString(std::vector<int64_t>(proto.dims().begin(), proto.dims().end())), " needs ",
        expected * per_element, " values, the proto holds ", got);
  }
  return Status::Ok();
}

// Copies typed-field values into the tensor, narrowing each entry to the element type.
template <typename Element, typename Field>
void CopyNarrowed(const Field& field, Tensor& tensor) {
  Element* out = static_cast<Element*>(tensor.raw_data());
  for (int i = 0; i < field.size(); ++i) out[i] = static_cast<Element>(field.Get(i));
}

}  // namespace

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& base_dir) {
  if (!IsKnownDataType(proto.data_type())) {
    return UnimplementedError(TensorLabel(proto), ": unsupported data type ", proto.data_type());
  }
  const DataType dtype = static_cast<DataType>(proto.data_type());
  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  for (int64_t d : shape) {
    if (d < 0) {
      return InvalidArgumentError(TensorLabel(proto), ": negative dimension in shape ",
                                  ShapeToString(shape));
    }
  }
  if (proto.has_segment()) {
    return UnimplementedError(TensorLabel(proto), ": segmented tensors are not supported");
  }
  // Element count without overflow, within the tensor limit: a corrupt file must not make us
  // allocate exabytes.
  QALIGN_RETURN_IF_ERROR(CheckedTensorBytes(dtype, shape, TensorLabel(proto)).status());
  const int64_t count = NumElements(shape);
  const size_t expected_bytes = static_cast<size_t>(count) * DataTypeSize(dtype);

  if (dtype == DataType::kString) {
    if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
      return UnimplementedError(TensorLabel(proto), ": string tensors with external data");
    }
    QALIGN_RETURN_IF_ERROR(CheckCount(proto, proto.string_data(), count));
    Tensor tensor(dtype, shape);
    for (int64_t i = 0; i < count; ++i)
      tensor.strings()[static_cast<size_t>(i)] = proto.string_data(i);
    return tensor;
  }

  auto from_bytes = [&](const std::string& bytes) -> StatusOr<Tensor> {
    if (bytes.size() != expected_bytes) {
      return InvalidArgumentError(TensorLabel(proto), ": ", bytes.size(), " data bytes for ",
                                  DataTypeName(dtype), " shape ", ShapeToString(shape),
                                  ", expected ", expected_bytes);
    }
    return Tensor::FromBytes(dtype, shape, bytes.data(), bytes.size());
  };
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    QALIGN_ASSIGN_OR_RETURN(std::string bytes, ReadExternalBytes(proto, base_dir));
    return from_bytes(bytes);
  }
  if (proto.has_raw_data()) return from_bytes(proto.raw_data());

  const bool complex = dtype == DataType::kComplex64 || dtype == DataType::kComplex128;
  const int64_t per_element = complex ? 2 : 1;
  int64_t held = 0;
  switch (dtype) {
    case DataType::kFloat:
    case DataType::kComplex64:
      held = proto.float_data_size();
      break;
    case DataType::kDouble:
    case DataType::kComplex128:
      held = proto.double_data_size();
      break;
    case DataType::kInt64:
      held = proto.int64_data_size();
      break;
    case DataType::kUint32:
    case DataType::kUint64:
      held = proto.uint64_data_size();
      break;
    default:
      held = proto.int32_data_size();
      break;
  }
  if (held != count * per_element) {
    return InvalidArgumentError(TensorLabel(proto), ": shape ", ShapeToString(shape), " needs ",
                                count * per_element, " values, the proto holds ", held);
  }
  Tensor tensor(dtype, shape);
  switch (dtype) {
    case DataType::kFloat:
      CopyNarrowed<float>(proto.float_data(), tensor);
      break;
    case DataType::kComplex64:
      CopyNarrowed<float>(proto.float_data(), tensor);
      break;
    case DataType::kDouble:
      CopyNarrowed<double>(proto.double_data(), tensor);
      break;
    case DataType::kComplex128:
      CopyNarrowed<double>(proto.double_data(), tensor);
      break;
    case DataType::kInt64:
      CopyNarrowed<int64_t>(proto.int64_data(), tensor);
      break;
    case DataType::kUint32:
      CopyNarrowed<uint32_t>(proto.uint64_data(), tensor);
      break;
    case DataType::kUint64:
      CopyNarrowed<uint64_t>(proto.uint64_data(), tensor);
      break;
    case DataType::kInt32:
      CopyNarrowed<int32_t>(proto.int32_data(), tensor);
      break;
    case DataType::kInt16:
      CopyNarrowed<int16_t>(proto.int32_data(), tensor);
      break;
    case DataType::kInt8:
      CopyNarrowed<int8_t>(proto.int32_data(), tensor);
      break;
    case DataType::kUint8:
    case DataType::kBool:
      CopyNarrowed<uint8_t>(proto.int32_data(), tensor);
      break;
    case DataType::kUint16:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      // 16-bit floats are stored as their bit pattern in the low half of each int32 entry.
      CopyNarrowed<uint16_t>(proto.int32_data(), tensor);
      break;
    case DataType::kString:
    case DataType::kUndefined:
      return InternalError(TensorLabel(proto), ": unreachable data type");
  }
  return tensor;
}

StatusOr<Tensor> ReadTensorProtoFile(const std::string& path) {
  QALIGN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  onnx::TensorProto proto;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !proto.ParseFromString(bytes)) {
    return InvalidArgumentError(path, ": not a serialized ONNX TensorProto");
  }
  auto tensor = TensorFromProto(proto, DirName(path));
  if (!tensor.ok()) return Status(tensor.status().code(), path + ": " + tensor.status().message());
  return tensor;
}

onnx::TensorProto TensorToProto(const Tensor& tensor, const std::string& name) {
  onnx::TensorProto proto;
  if (!name.empty()) proto.set_name(name);
  proto.set_data_type(static_cast<int32_t>(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto.add_dims(d);
  if (tensor.dtype() == DataType::kString) {
    for (const std::string& s : tensor.strings()) proto.add_string_data(s);
  } else {
    proto.set_raw_data(static_cast<const char*>(tensor.raw_data()), tensor.byte_size());
  }
  return proto;
}

}  // namespace qalign
