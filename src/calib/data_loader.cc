// Calibration datasets: random, .npy and .pb folders, image folders; checks and hold-out splits.
#include "calib/data_loader.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>

#include "ir/npy.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsImageExtension(const std::string& ext) {
  const std::string e = Lower(ext);
  return e == ".png" || e == ".jpg" || e == ".jpeg";
}

template <typename T>
Status CheckFinite(const Tensor& tensor, const std::string& where) {
  const auto values = tensor.values<T>();
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return InvalidArgumentError(where, ": contains ", std::isnan(values[i]) ? "NaN" : "Inf",
                                  " at element ", i);
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- random

class RandomDataset : public CalibrationDataset {
 public:
  RandomDataset(std::vector<ModelInputSpec> inputs, size_t count, uint32_t seed, float low,
                float high)
      : inputs_(std::move(inputs)), count_(count), seed_(seed), low_(low), high_(high) {}

  size_t size() const override { return count_; }
  std::string kind() const override { return "random"; }
  std::string SampleName(size_t index) const override {
    return StrCat("random sample ", index);
  }

  StatusOr<Sample> Load(size_t index) const override {
    Sample sample;
    for (size_t k = 0; k < inputs_.size(); ++k) {
      const ModelInputSpec& input = inputs_[k];
      // Each (sample, input) has its own stream, so sample i never depends on what came before.
      std::seed_seq seq{seed_, static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                        static_cast<uint32_t>(k)};
      std::mt19937 rng(seq);
      std::uniform_real_distribution<float> dist(low_, high_);
      Tensor t(input.dtype, input.dims);
      switch (input.dtype) {
        case DataType::kFloat:
          for (float& v : t.values<float>()) v = dist(rng);
          break;
        case DataType::kDouble:
          for (double& v : t.values<double>()) v = dist(rng);
          break;
        case DataType::kInt64:
          for (int64_t& v : t.values<int64_t>()) v = static_cast<int64_t>(std::floor(dist(rng)));
          break;
        case DataType::kInt32:
          for (int32_t& v : t.values<int32_t>()) v = static_cast<int32_t>(std::floor(dist(rng)));
          break;
        case DataType::kBool:
          for (int64_t i = 0; i < t.num_elements(); ++i) {
            t.data<uint8_t>()[i] = dist(rng) >= (low_ + high_) / 2 ? 1 : 0;
          }
          break;
        default:
          return UnimplementedError(SampleName(index), ": input '", input.name,
                                    "': random data of type ", DataTypeName(input.dtype),
                                    " is not supported");
      }
      sample.emplace(input.name, std::move(t));
    }
    return sample;
  }

 private:
  std::vector<ModelInputSpec> inputs_;
  size_t count_;
  uint32_t seed_;
  float low_, high_;
};

// ---------------------------------------------------------------- tensor files (.npy, .pb)

// Sample i is either one file (single-input models) or one folder holding <input>.<ext>.
class TensorFileDataset : public CalibrationDataset {
 public:
  TensorFileDataset(std::string kind, std::vector<ModelInputSpec> inputs,
                    std::vector<std::string> entries, bool per_folder, std::string extension,
                    TensorFileReader reader)
      : kind_(std::move(kind)),
        inputs_(std::move(inputs)),
        entries_(std::move(entries)),
        per_folder_(per_folder),
        extension_(std::move(extension)),
        reader_(std::move(reader)) {}

  size_t size() const override { return entries_.size(); }
  std::string kind() const override { return kind_; }
  std::string SampleName(size_t index) const override { return entries_[index]; }

  StatusOr<Sample> Load(size_t index) const override {
    Sample sample;
    for (const ModelInputSpec& input : inputs_) {
      const std::string path =
          per_folder_ ? (fs::path(entries_[index]) / (input.name + extension_)).string()
                      : entries_[index];
      QALIGN_ASSIGN_OR_RETURN(Tensor tensor, reader_(path));
      QALIGN_RETURN_IF_ERROR(CheckSampleTensor(tensor, input, path));
      sample.emplace(input.name, std::move(tensor));
    }
    return sample;
  }

 private:
  std::string kind_;
  std::vector<ModelInputSpec> inputs_;
  std::vector<std::string> entries_;
  bool per_folder_;
  std::string extension_;
  TensorFileReader reader_;
};

// ---------------------------------------------------------------- images

class ImageDataset : public CalibrationDataset {
 public:
  ImageDataset(ModelInputSpec input, std::vector<std::string> files, ImagePreprocess preprocess)
      : input_(std::move(input)), files_(std::move(files)), preprocess_(std::move(preprocess)) {}

  size_t size() const override { return files_.size(); }
  std::string kind() const override { return "image"; }
  std::string SampleName(size_t index) const override { return files_[index]; }

  StatusOr<Sample> Load(size_t index) const override {
    QALIGN_ASSIGN_OR_RETURN(RgbImage image, DecodeImageFile(files_[index]));
    QALIGN_ASSIGN_OR_RETURN(Tensor tensor,
                            PreprocessImage(image, preprocess_, input_, files_[index]));
    QALIGN_RETURN_IF_ERROR(CheckSampleTensor(tensor, input_, files_[index]));
    Sample sample;
    sample.emplace(input_.name, std::move(tensor));
    return sample;
  }

 private:
  ModelInputSpec input_;
  std::vector<std::string> files_;
  ImagePreprocess preprocess_;
};

// ---------------------------------------------------------------- arrays in memory

// For CountInputArrays.
std::atomic<int64_t> arrays_read_in_place{0};
std::atomic<int64_t> arrays_copied{0};

// The caller's arrays (the public InputSample), read in place: a loaded sample's tensors borrow
// the arrays' bytes. An array not aligned to its element size (a view at an odd offset into a
// byte buffer) is copied instead.
class ArrayDataset : public CalibrationDataset {
 public:
  ArrayDataset(std::vector<ModelInputSpec> inputs, std::vector<InputSample> samples)
      : inputs_(std::move(inputs)), samples_(std::move(samples)) {}

  size_t size() const override { return samples_.size(); }
  std::string kind() const override { return "array"; }
  std::string SampleName(size_t index) const override { return StrCat("sample ", index); }

  StatusOr<Sample> Load(size_t index) const override {
    const InputSample& arrays = samples_[index];
    const std::string name = SampleName(index);
    Sample sample;
    for (size_t i = 0; i < arrays.size(); ++i) {
      const InputArray& array = arrays[i];
      const ModelInputSpec* input = nullptr;
      if (array.input.empty()) {
        input = &inputs_[i];
      } else {
        for (const ModelInputSpec& candidate : inputs_) {
          if (candidate.name == array.input) input = &candidate;
        }
      }
      const DataType dtype = static_cast<DataType>(array.onnx_dtype);
      const bool aligned = reinterpret_cast<uintptr_t>(array.data) % DataTypeSize(dtype) == 0;
      auto tensor = aligned ? Tensor::Borrow(dtype, array.dims, array.data, array.bytes)
                            : Tensor::FromBytes(dtype, array.dims, array.data, array.bytes);
      if (!tensor.ok()) {
        return InvalidArgumentError(name, ": input '", input->name,
                                    "': ", tensor.status().message());
      }
      if (aligned) {
        ++arrays_read_in_place;
      } else {
        ++arrays_copied;
      }
      QALIGN_RETURN_IF_ERROR(CheckSampleTensor(*tensor, *input, name));
      sample.emplace(input->name, std::move(*tensor));
    }
    return sample;
  }

 private:
  std::vector<ModelInputSpec> inputs_;
  std::vector<InputSample> samples_;
};

// ---------------------------------------------------------------- subsets

class SubsetDataset : public CalibrationDataset {
 public:
  SubsetDataset(std::shared_ptr<const CalibrationDataset> data, size_t begin, size_t end)
      : data_(std::move(data)), begin_(begin), end_(end) {}
  size_t size() const override { return end_ - begin_; }
  std::string kind() const override { return data_->kind(); }
  std::string SampleName(size_t index) const override {
    return data_->SampleName(begin_ + index);
  }
  StatusOr<Sample> Load(size_t index) const override { return data_->Load(begin_ + index); }

 private:
  std::shared_ptr<const CalibrationDataset> data_;
  size_t begin_, end_;
};

// ---------------------------------------------------------------- spec parsing

struct DirListing {
  std::vector<std::string> files;    // regular files, sorted
  std::vector<std::string> folders;  // subdirectories, sorted
};

StatusOr<DirListing> ListDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFoundError("--calib: '", dir, "' is not a directory");
  }
  DirListing listing;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name[0] == '.') continue;  // hidden files
    if (entry.is_directory()) {
      listing.folders.push_back(entry.path().string());
    } else if (entry.is_regular_file()) {
      listing.files.push_back(entry.path().string());
    }
  }
  if (ec) return IoError("--calib: cannot list '", dir, "': ", ec.message());
  std::sort(listing.files.begin(), listing.files.end());
  std::sort(listing.folders.begin(), listing.folders.end());
  return listing;
}

std::vector<std::string> WithExtension(const std::vector<std::string>& files,
                                       const std::string& extension) {
  std::vector<std::string> out;
  for (const auto& f : files) {
    if (Lower(fs::path(f).extension().string()) == extension) out.push_back(f);
  }
  return out;
}

std::vector<std::string> Images(const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) {
    if (IsImageExtension(fs::path(f).extension().string())) out.push_back(f);
  }
  return out;
}

StatusOr<std::shared_ptr<const CalibrationDataset>> OpenTensorFiles(
    const std::string& kind, const std::string& dir, const std::vector<ModelInputSpec>& inputs,
    TensorFileReader reader) {
  const std::string extension = "." + kind;
  QALIGN_ASSIGN_OR_RETURN(DirListing listing, ListDir(dir));
  std::vector<std::string> files = WithExtension(listing.files, extension);
  if (!files.empty()) {
    if (inputs.size() != 1) {
      return InvalidArgumentError("--calib ", dir, ": the model has ", inputs.size(),
                                  " inputs; give one subdirectory per sample holding <input name>",
                                  extension);
    }
    return std::shared_ptr<const CalibrationDataset>(std::make_shared<TensorFileDataset>(
        kind, inputs, std::move(files), false, extension, std::move(reader)));
  }
  if (listing.folders.empty()) {
    return NotFoundError("--calib ", dir, ": no ", extension, " files and no sample folders");
  }
  // One folder per sample: every input's file must be there.
  for (const std::string& folder : listing.folders) {
    for (const ModelInputSpec& input : inputs) {
      const fs::path path = fs::path(folder) / (input.name + extension);
      std::error_code ec;
      if (!fs::is_regular_file(path, ec)) {
        return NotFoundError(folder, ": no file for input '", input.name, "' (expected ",
                             path.string(), ")");
      }
    }
  }
  return std::shared_ptr<const CalibrationDataset>(std::make_shared<TensorFileDataset>(
      kind, inputs, listing.folders, true, extension, std::move(reader)));
}

StatusOr<std::shared_ptr<const CalibrationDataset>> OpenImages(
    const std::string& dir, const std::string& query, const std::vector<ModelInputSpec>& inputs) {
  QALIGN_ASSIGN_OR_RETURN(ImagePreprocess preprocess, ParseImagePreprocess(query));
  if (inputs.size() != 1) {
    return InvalidArgumentError("--calib image:", dir, ": images feed single-input models; the model has ",
                                inputs.size(), " inputs");
  }
  QALIGN_ASSIGN_OR_RETURN(DirListing listing, ListDir(dir));
  std::vector<std::string> files = Images(listing.files);
  if (files.empty()) return NotFoundError("--calib image:", dir, ": no .png/.jpg/.jpeg files");
  return std::shared_ptr<const CalibrationDataset>(
      std::make_shared<ImageDataset>(inputs[0], std::move(files), std::move(preprocess)));
}

constexpr long long kMaxRandomSamples = 100000;

StatusOr<std::shared_ptr<const CalibrationDataset>> OpenRandom(
    const std::string& body, const std::vector<ModelInputSpec>& inputs) {
  const size_t question = body.find('?');
  const std::string count_text = body.substr(0, question);
  char* end = nullptr;
  errno = 0;
  const long long count = std::strtoll(count_text.c_str(), &end, 10);
  if (count_text.empty() || end != count_text.c_str() + count_text.size() || count <= 0) {
    return InvalidArgumentError("--calib random:", body, ": expected random:N with N > 0");
  }
  // Each sample is a full forward pass: N = 2^63 - 1 was accepted and ran forever.
  if (errno == ERANGE || count > kMaxRandomSamples) {
    return InvalidArgumentError("--calib random:", body, ": at most ", kMaxRandomSamples,
                                " samples (calibration needs hundreds)");
  }
  uint32_t seed = 0;
  float low = 0.0f, high = 1.0f;
  if (question != std::string::npos) {
    const std::string query = body.substr(question + 1);
    size_t start = 0;
    while (start < query.size()) {
      size_t amp = query.find('&', start);
      if (amp == std::string::npos) amp = query.size();
      const std::string item = query.substr(start, amp - start);
      start = amp + 1;
      const size_t eq = item.find('=');
      const std::string key = item.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
      char* vend = nullptr;
      const double number = std::strtod(value.c_str(), &vend);
      if (value.empty() || vend != value.c_str() + value.size() || !std::isfinite(number)) {
        return InvalidArgumentError("--calib random: '", item, "' is not key=number");
      }
      if (key == "seed") {
        // Casting a negative or too large double to uint32_t is undefined (found by fuzzing).
        if (number < 0 || number > 4294967295.0 || number != std::floor(number)) {
          return InvalidArgumentError("--calib random: seed '", value,
                                      "' is not a whole number from 0 to 4294967295");
        }
        seed = static_cast<uint32_t>(number);
      } else if (key == "low") {
        low = static_cast<float>(number);
      } else if (key == "high") {
        high = static_cast<float>(number);
      } else {
        return InvalidArgumentError("--calib random: unknown key '", key,
                                    "' (expected seed, low, high)");
      }
    }
  }
  if (!(high > low)) return InvalidArgumentError("--calib random: high must exceed low");
  // The draw is a float in [low, high): both ends and their distance must be finite floats
  // (low=-1e91 became -inf and every value NaN, found by fuzzing), and integer inputs take
  // floor(value), which must fit in 32 bits.
  if (!std::isfinite(high - low)) {
    return InvalidArgumentError("--calib random: low and high must be finite 32-bit floats "
                                "less than 3.4e38 apart");
  }
  for (const ModelInputSpec& input : inputs) {
    const bool integer = input.dtype == DataType::kInt64 || input.dtype == DataType::kInt32;
    if (integer && (low < -2147483648.0f || high > 2147483648.0f)) {
      return InvalidArgumentError("--calib random: input '", input.name, "' is ",
                                  DataTypeName(input.dtype),
                                  "; low and high must lie within +-2147483648");
    }
  }
  for (const ModelInputSpec& input : inputs) {
    if (!input.fully_known()) {
      return InvalidArgumentError("--calib random: input '", input.name, "' has open dims ",
                                  ShapeToString(input.dims), "; fix them with --input-shape");
    }
  }
  return std::shared_ptr<const CalibrationDataset>(
      std::make_shared<RandomDataset>(inputs, static_cast<size_t>(count), seed, low, high));
}

}  // namespace

bool ModelInputSpec::fully_known() const {
  return std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d >= 0; });
}

std::vector<ModelInputSpec> ModelInputSpecs(const Graph& graph) {
  std::vector<ModelInputSpec> specs;
  for (const Variable* v : graph.inputs()) {
    if (v->is_parameter()) continue;
    ModelInputSpec spec;
    spec.name = v->name();
    spec.dtype = v->dtype();
    for (const Dim& d : v->shape().dims) spec.dims.push_back(d.known() ? d.value : -1);
    specs.push_back(std::move(spec));
  }
  return specs;
}

Status CheckSampleTensor(const Tensor& tensor, const ModelInputSpec& input,
                         const std::string& source) {
  const std::string where = StrCat(source, ": input '", input.name, "'");
  if (tensor.dtype() != input.dtype) {
    return InvalidArgumentError(where, ": data type ", DataTypeName(tensor.dtype()),
                                " does not match the model's ", DataTypeName(input.dtype));
  }
  bool shape_ok = tensor.shape().size() == input.dims.size();
  for (size_t i = 0; shape_ok && i < input.dims.size(); ++i) {
    if (input.dims[i] >= 0 && tensor.shape()[i] != input.dims[i]) shape_ok = false;
  }
  if (!shape_ok) {
    std::string expected = "[";
    for (size_t i = 0; i < input.dims.size(); ++i) {
      if (i) expected += ",";
      expected += input.dims[i] >= 0 ? std::to_string(input.dims[i]) : "?";
    }
    expected += "]";
    return InvalidArgumentError(where, ": shape ", ShapeToString(tensor.shape()),
                                " does not match the model's ", expected);
  }
  if (tensor.dtype() == DataType::kFloat) return CheckFinite<float>(tensor, where);
  if (tensor.dtype() == DataType::kDouble) return CheckFinite<double>(tensor, where);
  return Status::Ok();
}

StatusOr<std::shared_ptr<const CalibrationDataset>> OpenCalibrationData(
    const std::string& spec, const std::vector<ModelInputSpec>& inputs,
    const DataLoaderOptions& options) {
  if (inputs.empty()) return InvalidArgumentError("--calib: the model has no inputs to feed");
  auto starts_with = [&](const char* prefix) { return spec.rfind(prefix, 0) == 0; };
  auto pb_reader = [&]() -> StatusOr<TensorFileReader> {
    if (!options.read_tensor_proto) {
      return InvalidArgumentError("--calib ", spec, ": no TensorProto reader was configured");
    }
    return options.read_tensor_proto;
  };
  if (starts_with("random:")) return OpenRandom(spec.substr(7), inputs);
  if (starts_with("npy:")) return OpenTensorFiles("npy", spec.substr(4), inputs, ReadNpy);
  if (starts_with("pb:")) {
    QALIGN_ASSIGN_OR_RETURN(TensorFileReader reader, pb_reader());
    return OpenTensorFiles("pb", spec.substr(3), inputs, std::move(reader));
  }
  if (starts_with("image:")) {
    const std::string body = spec.substr(6);
    const size_t question = body.find('?');
    return OpenImages(body.substr(0, question), question == std::string::npos ? "" : body.substr(question + 1),
                      inputs);
  }
  // A bare folder: look at what it (or its first sample folder) holds.
  QALIGN_ASSIGN_OR_RETURN(DirListing listing, ListDir(spec));
  const std::vector<std::string>* files = &listing.files;
  DirListing first_folder;
  if (listing.files.empty() && !listing.folders.empty()) {
    QALIGN_ASSIGN_OR_RETURN(first_folder, ListDir(listing.folders.front()));
    files = &first_folder.files;
  }
  const bool has_npy = !WithExtension(*files, ".npy").empty();
  const bool has_pb = !WithExtension(*files, ".pb").empty();
  const bool has_images = !Images(*files).empty() && files == &listing.files;
  const int kinds = int{has_npy} + int{has_pb} + int{has_images};
  if (kinds == 0) {
    return NotFoundError("--calib ", spec, ": no .npy, .pb or image files found");
  }
  if (kinds > 1) {
    return InvalidArgumentError("--calib ", spec,
                                ": holds more than one kind of data; say npy:, pb: or image:");
  }
  if (has_npy) return OpenTensorFiles("npy", spec, inputs, ReadNpy);
  if (has_pb) {
    QALIGN_ASSIGN_OR_RETURN(TensorFileReader reader, pb_reader());
    return OpenTensorFiles("pb", spec, inputs, std::move(reader));
  }
  return OpenImages(spec, "", inputs);
}

InputArrayCounts CountInputArrays() {
  InputArrayCounts counts;
  counts.read_in_place = arrays_read_in_place.load();
  // Tensor counts every borrowed tensor written to; only the loader above makes them.
  counts.copied = arrays_copied.load() + Tensor::BorrowedCopies();
  return counts;
}

StatusOr<std::shared_ptr<const CalibrationDataset>> OpenArrayData(
    std::vector<InputSample> samples, const std::vector<ModelInputSpec>& inputs) {
  if (inputs.empty()) return InvalidArgumentError("calibration data: the model has no inputs");
  if (samples.empty()) return InvalidArgumentError("calibration data: no samples");
  std::string names;
  for (const ModelInputSpec& input : inputs) names += (names.empty() ? "'" : ", '") + input.name + "'";
  // The names and counts are checked for every sample here, so that Load only checks values.
  for (size_t i = 0; i < samples.size(); ++i) {
    const InputSample& arrays = samples[i];
    const std::string where = StrCat("sample ", i);
    if (arrays.size() != inputs.size()) {
      return InvalidArgumentError(where, ": ", arrays.size(), " arrays for the model's ",
                                  inputs.size(), " inputs (", names, ")");
    }
    std::set<std::string> seen;
    for (const InputArray& array : arrays) {
      if (array.input.empty() != arrays.front().input.empty()) {
        return InvalidArgumentError(where, ": give every input by name or none");
      }
      if (array.input.empty()) continue;
      bool known = false;
      for (const ModelInputSpec& input : inputs) known = known || input.name == array.input;
      if (!known) {
        return InvalidArgumentError(where, ": the model has no input '", array.input,
                                    "' (inputs: ", names, ")");
      }
      if (!seen.insert(array.input).second) {
        return InvalidArgumentError(where, ": input '", array.input, "' given twice");
      }
      const DataType dtype = static_cast<DataType>(array.onnx_dtype);
      if (DataTypeSize(dtype) == 0 || array.onnx_dtype > 16) {
        return InvalidArgumentError(where, ": input '", array.input,
                                    "': unsupported element type ", array.onnx_dtype);
      }
    }
    if (!arrays.empty() && arrays.front().input.empty()) {
      for (size_t k = 0; k < arrays.size(); ++k) {
        const DataType dtype = static_cast<DataType>(arrays[k].onnx_dtype);
        if (DataTypeSize(dtype) == 0 || arrays[k].onnx_dtype > 16) {
          return InvalidArgumentError(where, ": input '", inputs[k].name,
                                      "': unsupported element type ", arrays[k].onnx_dtype);
        }
      }
    }
  }
  // Every sample's values are checked now too: a held-out sample is otherwise first read after
  // the model is written, and arrays read in place are cheap to read twice.
  auto data = std::make_shared<ArrayDataset>(inputs, std::move(samples));
  for (size_t i = 0; i < data->size(); ++i) QALIGN_RETURN_IF_ERROR(data->Load(i).status());
  return std::shared_ptr<const CalibrationDataset>(std::move(data));
}

std::shared_ptr<const CalibrationDataset> SubsetOf(std::shared_ptr<const CalibrationDataset> data,
                                                   size_t begin, size_t end) {
  end = std::min(end, data->size());
  begin = std::min(begin, end);
  return std::make_shared<SubsetDataset>(std::move(data), begin, end);
}

HoldoutSplit SplitHoldout(std::shared_ptr<const CalibrationDataset> data, size_t num_calibration) {
  const size_t n = data->size();
  const size_t k = std::min(num_calibration, n);
  HoldoutSplit split;
  split.calibration = SubsetOf(data, 0, k);
  split.holdout = SubsetOf(std::move(data), k, n);
  return split;
}

}  // namespace qalign
