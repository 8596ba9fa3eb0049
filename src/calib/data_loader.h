// Calibration data: the `--calib SPEC` forms, loaded one sample at a time and checked against the
// model's inputs.
//
// SPEC is one of:
//   random:N[?seed=S&low=A&high=B]
//       N samples of values uniform in [A, B) (default [0, 1)), seeded (default seed 0): sample i
//       is the same whatever else is loaded. Every input needs a fully known shape.
//   npy:DIR        (or just DIR, detected from its contents)
//       NumPy .npy files. Single-input model: one file per sample, in DIR, sorted by name.
//       Any model: one subdirectory per sample (sorted by name), each holding `<input name>.npy`.
//   pb:DIR         (or just DIR)
//       Serialized ONNX TensorProto files, laid out like the .npy form with `.pb` files.
//   image:DIR[?key=value&...]   (or just DIR when it holds only images)
//       PNG and JPEG files (by content, decoded with libpng / libjpeg), one per sample, sorted by
//       name, for a model with one 4-D float input of 1 or 3 channels and batch 1. Keys:
//         size=WxH           resize to W x H, bilinear with half-pixel centres (OpenCV's
//                            INTER_LINEAR; no aspect-ratio preservation). Default: the input's
//                            H and W.
//         order=rgb|bgr      channel order given to the model (default rgb). A 1-channel input
//                            gets luma 0.299 R + 0.587 G + 0.114 B.
//         scale=F            multiplies the 0..255 pixel value first; "1/255" style fractions are
//                            accepted (default 1/255).
//         mean=a[,b,c]       subtracted per channel after scaling (default 0).
//         std=a[,b,c]        divides per channel after the mean (default 1).
//         layout=nchw|nhwc   default: nchw if the input's dim 1 is the channel count, nhwc if its
//                            last dim is.
//       So each value is  (pixel[c] * scale - mean[c]) / std[c].
//       Example: image:imgs?size=640x640&mean=0.485,0.456,0.406&std=0.229,0.224,0.225
//
// Every sample is checked when it is loaded: dtype equal to the input's, same rank, every known
// dim equal, and no NaN or Inf; each error is one line naming the file and the input.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "ir/tensor.h"
#include "qalign/data.h"
#include "qalign/status.h"

namespace qalign {

// What a sample must look like for one graph input. dims[i] = -1 where the model leaves it open.
struct ModelInputSpec {
  std::string name;
  DataType dtype = DataType::kFloat;
  std::vector<int64_t> dims;
  bool fully_known() const;
};

// The graph's inputs that are not parameters, in graph order.
std::vector<ModelInputSpec> ModelInputSpecs(const Graph& graph);

// One sample: a tensor for each model input, by input name (what Executor::Run takes).
using Sample = std::map<std::string, Tensor>;

// Reads one tensor file (e.g. ReadTensorProtoFile from onnx/tensor_proto.h for .pb files). The
// calib library takes it as a callback so it does not depend on the ONNX library.
using TensorFileReader = std::function<StatusOr<Tensor>(const std::string& path)>;

struct DataLoaderOptions {
  TensorFileReader read_tensor_proto;  // needed for pb:DIR
};

class CalibrationDataset {
 public:
  virtual ~CalibrationDataset() = default;
  virtual size_t size() const = 0;
  // Loads and checks sample `index` (< size()).
  virtual StatusOr<Sample> Load(size_t index) const = 0;
  // What sample `index` is, for messages: its file or folder, or "random sample 3".
  virtual std::string SampleName(size_t index) const = 0;
  // "npy", "pb", "image", "random".
  virtual std::string kind() const = 0;
};

// Opens a SPEC (see the top of this file). Listing errors (missing folder, no samples, an
// unknown key, a missing `<input>.npy`) come here; per-sample errors come from Load.
StatusOr<std::shared_ptr<const CalibrationDataset>> OpenCalibrationData(
    const std::string& spec, const std::vector<ModelInputSpec>& inputs,
    const DataLoaderOptions& options = {});

// Samples the caller holds in memory (the public API's InputSample). A loaded sample's tensors
// borrow the arrays' bytes (Tensor::Borrow), which must outlive the dataset and its samples.
// The arrays' names and count are checked here; values, dtype and shape when a sample is loaded,
// as for files. Errors name "sample N" and the input.
StatusOr<std::shared_ptr<const CalibrationDataset>> OpenArrayData(
    std::vector<InputSample> samples, const std::vector<ModelInputSpec>& inputs);

// Checks one tensor against an input: dtype, rank, known dims, finite values. Errors read
// "<source>: input '<name>': ...".
Status CheckSampleTensor(const Tensor& tensor, const ModelInputSpec& input,
                         const std::string& source);

// Samples [begin, end) of `data`, in order.
std::shared_ptr<const CalibrationDataset> SubsetOf(std::shared_ptr<const CalibrationDataset> data,
                                                   size_t begin, size_t end);

// The first `num_calibration` samples for calibration, the rest held out (for evaluating the
// quantized model on data it was not calibrated on). num_calibration is capped at size().
struct HoldoutSplit {
  std::shared_ptr<const CalibrationDataset> calibration;
  std::shared_ptr<const CalibrationDataset> holdout;
};
HoldoutSplit SplitHoldout(std::shared_ptr<const CalibrationDataset> data, size_t num_calibration);

// ------------------------------------------------------------ image preprocessing (exposed for tests)

struct ImagePreprocess {
  int width = 0;   // 0: from the model input
  int height = 0;
  bool bgr = false;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean;  // empty: 0 for every channel; one value: the same for all
  std::vector<float> std;   // empty: 1 for every channel
  enum class Layout { kAuto, kNchw, kNhwc } layout = Layout::kAuto;
};

// Parses the `key=value&...` part of an image spec.
StatusOr<ImagePreprocess> ParseImagePreprocess(const std::string& query);

// A decoded 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
};

// Decodes a PNG or JPEG file (chosen by its first bytes, not its name). Gray, palette, 16-bit and
// alpha PNGs are converted to 8-bit RGB (alpha composited on black). Errors name the file.
StatusOr<RgbImage> DecodeImageFile(const std::string& path);

// Resizes (bilinear, half-pixel centres) and normalises an image into a float tensor for `input`
// (4-D, batch 1, 1 or 3 channels); `source` names the file in errors.
StatusOr<Tensor> PreprocessImage(const RgbImage& image, const ImagePreprocess& preprocess,
                                 const ModelInputSpec& input, const std::string& source);

}  // namespace qalign
