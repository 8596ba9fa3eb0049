// Image samples: PNG/JPEG decoding with libpng and libjpeg, bilinear resize, normalisation.
#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// jpeglib.h uses size_t and FILE without including their headers.
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "calib/data_loader.h"
#include "core/file_util.h"
#include "core/limits.h"

namespace qalign {
namespace {

// Pixels of an image `width` x `height` x 3 bytes must fit the tensor limit: a header can claim
// 65535 x 65535 in a few hundred bytes.
bool ImageFits(uint64_t width, uint64_t height, char* message) {
  const uint64_t bytes = width * height * 3;  // both < 2^32: no overflow
  if (bytes <= static_cast<uint64_t>(MaxTensorBytes())) return true;
  std::snprintf(message, JMSG_LENGTH_MAX, "%llux%llu pixels need %llu bytes, more than the limit "
                "of %lld (QALIGN_MAX_TENSOR_BYTES)", static_cast<unsigned long long>(width),
                static_cast<unsigned long long>(height), static_cast<unsigned long long>(bytes),
                static_cast<long long>(MaxTensorBytes()));
  return false;
}

StatusOr<RgbImage> DecodePng(const std::string& bytes, const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    return InvalidArgumentError(path, ": cannot decode PNG: ", image.message);
  }
  image.format = PNG_FORMAT_RGB;
  char too_large[JMSG_LENGTH_MAX];  // JMSG_LENGTH_MAX: ImageFits writes at most that
  if (!ImageFits(image.width, image.height, too_large)) {
    png_image_free(&image);
    return InvalidArgumentError(path, ": cannot decode PNG: ", too_large);
  }
  RgbImage out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  // A null background composites any alpha channel onto black.
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    return InvalidArgumentError(path, ": cannot decode PNG: ", message);
  }
  return out;
}

// libjpeg reports fatal errors through error_exit, which must not return: we jump back to the
// decoder with the message saved.
struct JpegErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr info) {
  auto* manager = reinterpret_cast<JpegErrorManager*>(info->err);
  (*info->err->format_message)(info, manager->message);
  std::longjmp(manager->jump, 1);
}

void JpegSilentMessage(j_common_ptr) {}

// libjpeg only warns when the data ends early and fills the rest of the image with gray; a
// truncated file would calibrate on made-up pixels. It fails here, like a truncated PNG does.
// Other warnings (extraneous bytes between markers) still decode.
void JpegEmitMessage(j_common_ptr info, int level) {
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) JpegErrorExit(info);
}


// Decodes into `pixels` (resized here); returns false with `message` set on a libjpeg error.
// Kept free of C++ objects with destructors between setjmp and longjmp.
bool DecodeJpegInto(const std::string& bytes, std::vector<uint8_t>& pixels, int* width,
                    int* height, char* message) {
  jpeg_decompress_struct info;
  JpegErrorManager errors;
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = JpegErrorExit;
  errors.base.output_message = JpegSilentMessage;
  errors.base.emit_message = JpegEmitMessage;
  errors.message[0] = '\0';
  if (setjmp(errors.jump)) {
    std::strncpy(message, errors.message, JMSG_LENGTH_MAX);
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  info.out_color_space = JCS_RGB;  // gray and YCbCr are converted; CMYK fails with a message
  jpeg_start_decompress(&info);
  if (info.output_components != 3) {
    std::snprintf(message, JMSG_LENGTH_MAX, "unsupported JPEG with %d components",
                  info.output_components);
    jpeg_destroy_decompress(&info);
    return false;
  }
  if (!ImageFits(info.output_width, info.output_height, message)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  *width = static_cast<int>(info.output_width);
  *height = static_cast<int>(info.output_height);
  const size_t row_bytes = static_cast<size_t>(info.output_width) * 3;
  pixels.resize(row_bytes * info.output_height);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = pixels.data() + row_bytes * info.output_scanline;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

StatusOr<RgbImage> DecodeJpeg(const std::string& bytes, const std::string& path) {
  RgbImage out;
  char message[JMSG_LENGTH_MAX] = {0};
  if (!DecodeJpegInto(bytes, out.pixels, &out.width, &out.height, message)) {
    return InvalidArgumentError(path, ": cannot decode JPEG: ", message);
  }
  return out;
}

StatusOr<float> ParseNumber(const std::string& text, const std::string& key) {
  // "1/255" style fractions as well as plain numbers.
  const size_t slash = text.find('/');
  if (slash != std::string::npos) {
    QALIGN_ASSIGN_OR_RETURN(float num, ParseNumber(text.substr(0, slash), key));
    QALIGN_ASSIGN_OR_RETURN(float den, ParseNumber(text.substr(slash + 1), key));
    if (den == 0) return InvalidArgumentError("image spec: ", key, "=", text, " divides by zero");
    return num / den;
  }
  char* end = nullptr;
  const float value = std::strtof(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value)) {
    return InvalidArgumentError("image spec: ", key, "=", text, " is not a number");
  }
  return value;
}

StatusOr<std::vector<float>> ParseNumberList(const std::string& text, const std::string& key) {
  std::vector<float> values;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    QALIGN_ASSIGN_OR_RETURN(float v, ParseNumber(text.substr(start, comma - start), key));
    values.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (values.size() != 1 && values.size() != 3) {
    return InvalidArgumentError("image spec: ", key, "=", text, " needs 1 or 3 values");
  }
  return values;
}

}  // namespace

StatusOr<RgbImage> DecodeImageFile(const std::string& path) {
  QALIGN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  static const unsigned char kPngMagic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngMagic, 8) == 0) {
    return DecodePng(bytes, path);
  }
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF) {
    return DecodeJpeg(bytes, path);
  }
  return InvalidArgumentError(path, ": not a PNG or JPEG image");
}

StatusOr<ImagePreprocess> ParseImagePreprocess(const std::string& query) {
  ImagePreprocess p;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string::npos) amp = query.size();
    const std::string item = query.substr(start, amp - start);
    start = amp + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return InvalidArgumentError("image spec: '", item, "' is not key=value");
    }
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    if (key == "size") {
      const size_t x = value.find('x');
      char* end = nullptr;
      const long w = x == std::string::npos ? 0 : std::strtol(value.c_str(), &end, 10);
      const bool w_ok = x != std::string::npos && end == value.c_str() + x;
      const long h = w_ok ? std::strtol(value.c_str() + x + 1, &end, 10) : 0;
      if (!w_ok || end != value.c_str() + value.size() || w <= 0 || h <= 0 || w > 65536 ||
          h > 65536) {
        return InvalidArgumentError("image spec: size=", value, " is not WIDTHxHEIGHT");
      }
      p.width = static_cast<int>(w);
      p.height = static_cast<int>(h);
    } else if (key == "order") {
      if (value != "rgb" && value != "bgr") {
        return InvalidArgumentError("image spec: order=", value, " is not rgb or bgr");
      }
      p.bgr = value == "bgr";
    } else if (key == "scale") {
      QALIGN_ASSIGN_OR_RETURN(p.scale, ParseNumber(value, key));
    } else if (key == "mean") {
      QALIGN_ASSIGN_OR_RETURN(p.mean, ParseNumberList(value, key));
    } else if (key == "std") {
      QALIGN_ASSIGN_OR_RETURN(p.std, ParseNumberList(value, key));
      for (float s : p.std) {
        if (s == 0) return InvalidArgumentError("image spec: std=", value, " has a zero");
      }
    } else if (key == "layout") {
      if (value == "nchw") {
        p.layout = ImagePreprocess::Layout::kNchw;
      } else if (value == "nhwc") {
        p.layout = ImagePreprocess::Layout::kNhwc;
      } else {
        return InvalidArgumentError("image spec: layout=", value, " is not nchw or nhwc");
      }
    } else {
      return InvalidArgumentError("image spec: unknown key '", key,
                                  "' (expected size, order, scale, mean, std, layout)");
    }
  }
  return p;
}

StatusOr<Tensor> PreprocessImage(const RgbImage& image, const ImagePreprocess& preprocess,
                                 const ModelInputSpec& input, const std::string& source) {
  const std::string where = StrCat(source, ": input '", input.name, "'");
  if (input.dtype != DataType::kFloat) {
    return InvalidArgumentError(where, ": images need a float input, the model's is ",
                                DataTypeName(input.dtype));
  }
  if (input.dims.size() != 4) {
    return InvalidArgumentError(where, ": images need a 4-D input, the model's has rank ",
                                input.dims.size());
  }
  const auto& d = input.dims;
  ImagePreprocess::Layout layout = preprocess.layout;
  if (layout == ImagePreprocess::Layout::kAuto) {
    const bool c_first = d[1] == 1 || d[1] == 3;
    const bool c_last = d[3] == 1 || d[3] == 3;
    if (c_first == c_last) {
      return InvalidArgumentError(where, ": cannot tell the layout of ", ShapeToString(d),
                                  "; add layout=nchw or layout=nhwc");
    }
    layout = c_first ? ImagePreprocess::Layout::kNchw : ImagePreprocess::Layout::kNhwc;
  }
  const bool nchw = layout == ImagePreprocess::Layout::kNchw;
  const int64_t channels = nchw ? d[1] : d[3];
  const int64_t model_h = nchw ? d[2] : d[1];
  const int64_t model_w = nchw ? d[3] : d[2];
  if (channels != 1 && channels != 3) {
    return InvalidArgumentError(where, ": images give 1 or 3 channels, the input ",
                                ShapeToString(d), " has ", channels);
  }
  if (d[0] != 1 && d[0] != -1) {
    return InvalidArgumentError(where, ": images are one per sample, the input's batch is ", d[0]);
  }
  const int out_w = preprocess.width > 0 ? preprocess.width : static_cast<int>(model_w);
  const int out_h = preprocess.height > 0 ? preprocess.height : static_cast<int>(model_h);
  if (out_w <= 0 || out_h <= 0) {
    return InvalidArgumentError(where, ": the input ", ShapeToString(d),
                                " has open height/width; add size=WxH");
  }
  if ((model_w >= 0 && model_w != out_w) || (model_h >= 0 && model_h != out_h)) {
    return InvalidArgumentError(where, ": size=", out_w, "x", out_h, " does not match the input ",
                                ShapeToString(d));
  }
  for (const auto* list : {&preprocess.mean, &preprocess.std}) {
    if (list->size() == 3 && channels == 1) {
      return InvalidArgumentError(where, ": mean/std have 3 values for a 1-channel input");
    }
  }
  auto per_channel = [](const std::vector<float>& v, int64_t c, float fallback) {
    if (v.empty()) return fallback;
    return v.size() == 1 ? v[0] : v[static_cast<size_t>(c)];
  };

  std::vector<int64_t> shape = nchw ? std::vector<int64_t>{1, channels, out_h, out_w}
                                    : std::vector<int64_t>{1, out_h, out_w, channels};
  Tensor tensor(DataType::kFloat, shape);
  float* out = tensor.data<float>();
  const int in_w = image.width, in_h = image.height;
  const double sx = static_cast<double>(in_w) / out_w;
  const double sy = static_cast<double>(in_h) / out_h;
  std::vector<int> x0(out_w), x1(out_w);
  std::vector<float> fx(out_w);
  for (int x = 0; x < out_w; ++x) {
    // Half-pixel centres: output pixel x samples input coordinate (x + 0.5) * sx - 0.5.
    const double src = std::clamp((x + 0.5) * sx - 0.5, 0.0, static_cast<double>(in_w - 1));
    x0[x] = static_cast<int>(std::floor(src));
    x1[x] = std::min(x0[x] + 1, in_w - 1);
    fx[x] = static_cast<float>(src - x0[x]);
  }
  float mean[3], inv_std[3];
  for (int c = 0; c < channels; ++c) {
    mean[c] = per_channel(preprocess.mean, c, 0.0f);
    inv_std[c] = 1.0f / per_channel(preprocess.std, c, 1.0f);
  }
  const uint8_t* px = image.pixels.data();
  const size_t plane = static_cast<size_t>(out_h) * out_w;
  for (int y = 0; y < out_h; ++y) {
    const double src = std::clamp((y + 0.5) * sy - 0.5, 0.0, static_cast<double>(in_h - 1));
    const int y0 = static_cast<int>(std::floor(src));
    const int y1 = std::min(y0 + 1, in_h - 1);
    const float fy = static_cast<float>(src - y0);
    for (int x = 0; x < out_w; ++x) {
      float rgb[3];
      for (int k = 0; k < 3; ++k) {
        auto at = [&](int yy, int xx) {
          return static_cast<float>(px[(static_cast<size_t>(yy) * in_w + xx) * 3 + k]);
        };
        const float top = at(y0, x0[x]) + (at(y0, x1[x]) - at(y0, x0[x])) * fx[x];
        const float bottom = at(y1, x0[x]) + (at(y1, x1[x]) - at(y1, x0[x])) * fx[x];
        rgb[k] = top + (bottom - top) * fy;
      }
      float values[3];
      if (channels == 1) {
        values[0] = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
      } else {
        values[0] = preprocess.bgr ? rgb[2] : rgb[0];
        values[1] = rgb[1];
        values[2] = preprocess.bgr ? rgb[0] : rgb[2];
      }
      for (int c = 0; c < channels; ++c) {
        const float v = (values[c] * preprocess.scale - mean[c]) * inv_std[c];
        const size_t pixel = static_cast<size_t>(y) * out_w + x;
        out[nchw ? static_cast<size_t>(c) * plane + pixel : pixel * channels + c] = v;
      }
    }
  }
  return tensor;
}

}  // namespace qalign
