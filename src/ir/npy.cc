// NumPy .npy reader and writer.
#include "ir/npy.h"

#include <cctype>
#include <charconv>
#include <cstring>

#include "core/file_util.h"

namespace qalign {
namespace {

// Maps a numpy dtype descriptor ("<f4", "|u1", "|b1", ...) to a DataType.
bool DescrToDataType(const std::string& descr, DataType* type) {
  if (descr.size() < 3) return false;
  const char order = descr[0];
  if (order == '>') return false;  // big-endian data is not supported
  const std::string kind = descr.substr(1);
  static const std::pair<const char*, DataType> kTable[] = {
      {"f4", DataType::kFloat},  {"f8", DataType::kDouble}, {"f2", DataType::kFloat16},
      {"i1", DataType::kInt8},   {"u1", DataType::kUint8},  {"i2", DataType::kInt16},
      {"u2", DataType::kUint16}, {"i4", DataType::kInt32},  {"u4", DataType::kUint32},
      {"i8", DataType::kInt64},  {"u8", DataType::kUint64}, {"b1", DataType::kBool},
  };
  for (const auto& [name, dt] : kTable) {
    if (kind == name) {
      *type = dt;
      return true;
    }
  }
  return false;
}

const char* DataTypeToDescr(DataType type) {
  switch (type) {
    case DataType::kFloat: return "<f4";
    case DataType::kDouble: return "<f8";
    case DataType::kFloat16: return "<f2";
    case DataType::kInt8: return "|i1";
    case DataType::kUint8: return "|u1";
    case DataType::kInt16: return "<i2";
    case DataType::kUint16: return "<u2";
    case DataType::kInt32: return "<i4";
    case DataType::kUint32: return "<u4";
    case DataType::kInt64: return "<i8";
    case DataType::kUint64: return "<u8";
    case DataType::kBool: return "|b1";
    default: return nullptr;
  }
}

// Finds the value text after 'key': in the header dict.
bool FindValue(const std::string& header, const std::string& key, std::string* value) {
  const std::string quoted = "'" + key + "'";
  size_t pos = header.find(quoted);
  if (pos == std::string::npos) return false;
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string::npos) return false;
  ++pos;
  while (pos < header.size() && std::isspace(static_cast<unsigned char>(header[pos]))) ++pos;
  if (pos >= header.size()) return false;
  size_t end;
  if (header[pos] == '\'') {
    end = header.find('\'', pos + 1);
    if (end == std::string::npos) return false;
    *value = header.substr(pos + 1, end - pos - 1);
  } else if (header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) return false;
    *value = header.substr(pos + 1, end - pos - 1);
  } else {
    end = header.find_first_of(",}", pos);
    *value = header.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    while (!value->empty() && std::isspace(static_cast<unsigned char>(value->back()))) {
      value->pop_back();
    }
  }
  return true;
}

}  // namespace

StatusOr<Tensor> ParseNpy(const std::string& bytes, const std::string& source) {
  static const char kMagic[] = "\x93NUMPY";
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0) {
    return InvalidArgumentError(source, ": not a .npy file (bad magic)");
  }
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return InvalidArgumentError(source, ": truncated .npy header");
    header_len = 0;
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + i]);
    header_start = 12;
  } else {
    return InvalidArgumentError(source, ": unsupported .npy version ", int(major));
  }
  if (header_start + header_len > bytes.size()) {
    return InvalidArgumentError(source, ": truncated .npy header");
  }
  const std::string header = bytes.substr(header_start, header_len);
  std::string descr, fortran, shape_text;
  if (!FindValue(header, "descr", &descr) || !FindValue(header, "fortran_order", &fortran) ||
      !FindValue(header, "shape", &shape_text)) {
    return InvalidArgumentError(source, ": malformed .npy header");
  }
  if (fortran != "False") {
    return InvalidArgumentError(source, ": Fortran-ordered arrays are not supported");
  }
  DataType dtype;
  if (!DescrToDataType(descr, &dtype)) {
    return InvalidArgumentError(source, ": unsupported .npy dtype '", descr, "'");
  }
  // "(2, 3)", "(5,)" or "()": whole numbers >= 0 separated by commas, one trailing comma allowed.
  std::vector<int64_t> shape;
  size_t pos = 0;
  while (pos < shape_text.size()) {
    size_t comma = shape_text.find(',', pos);
    if (comma == std::string::npos) comma = shape_text.size();
    std::string item = shape_text.substr(pos, comma - pos);
    pos = comma + 1;
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) {
      item.erase(0, 1);
    }
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    if (item.empty() && pos >= shape_text.size() && !shape.empty()) break;  // trailing comma
    int64_t dim = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), dim);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || dim < 0) {
      return InvalidArgumentError(source, ": .npy shape (", shape_text, ") has dim '", item,
                                  "'; dims must be whole numbers >= 0");
    }
    shape.push_back(dim);
  }
  QALIGN_ASSIGN_OR_RETURN(const int64_t needed, CheckedTensorBytes(dtype, shape, source));
  const size_t data_start = header_start + header_len;
  const size_t expected = static_cast<size_t>(needed);
  if (bytes.size() - data_start != expected) {
    return InvalidArgumentError(source, ": .npy data has ", bytes.size() - data_start,
                                " bytes, shape ", ShapeToString(shape), " needs ", expected);
  }
  return Tensor::FromBytes(dtype, shape, bytes.data() + data_start, expected);
}

StatusOr<Tensor> ReadNpy(const std::string& path) {
  QALIGN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  return ParseNpy(bytes, path);
}

StatusOr<std::string> SerializeNpy(const Tensor& tensor) {
  const char* descr = DataTypeToDescr(tensor.dtype());
  if (!descr) {
    return InvalidArgumentError("cannot write a ", DataTypeName(tensor.dtype()),
                                " tensor as .npy");
  }
  std::string shape = "(";
  for (size_t i = 0; i < tensor.shape().size(); ++i) {
    shape += std::to_string(tensor.shape()[i]);
    if (tensor.shape().size() == 1 || i + 1 < tensor.shape().size()) shape += ",";
    if (i + 1 < tensor.shape().size()) shape += " ";
  }
  shape += ")";
  std::string header =
      StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad with spaces so magic + length + header + '\n' is a multiple of 64 bytes.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  out += header;
  out.append(static_cast<const char*>(tensor.raw_data()), tensor.byte_size());
  return out;
}

Status WriteNpy(const std::string& path, const Tensor& tensor) {
  QALIGN_ASSIGN_OR_RETURN(std::string bytes, SerializeNpy(tensor));
  return WriteFileAtomically(path, bytes);
}

}  // namespace qalign
