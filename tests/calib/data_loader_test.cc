// Calibration data loaders: .npy / .pb / PNG / JPEG fixtures written here, random data, checks.
#include "calib/data_loader.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

// jpeglib.h uses size_t and FILE without including their headers.
#include <jpeglib.h>
#include <png.h>

#include "core/limits.h"
#include "ir/npy.h"
#include "onnx/tensor_proto.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;

class DataLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "qalign_calib_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (fs::path(dir_) / name).string(); }
  std::string MakeDir(const std::string& name) const {
    fs::create_directories(Path(name));
    return Path(name);
  }

  static Tensor Floats(std::vector<int64_t> shape, float start) {
    Tensor t(DataType::kFloat, shape);
    float v = start;
    for (float& x : t.values<float>()) x = v++;
    return t;
  }

  static void WriteText(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  static void WritePb(const std::string& path, const Tensor& t) {
    const onnx::TensorProto proto = TensorToProto(t, "x");
    std::ofstream out(path, std::ios::binary);
    out << proto.SerializeAsString();
  }

  // RGB rows top to bottom.
  static void WritePng(const std::string& path, int w, int h, const std::vector<uint8_t>& rgb) {
    png_image image;
    std::memset(&image, 0, sizeof(image));
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(w);
    image.height = static_cast<png_uint_32>(h);
    image.format = PNG_FORMAT_RGB;
    ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, rgb.data(), 0, nullptr))
        << image.message;
  }

  static void WriteJpeg(const std::string& path, int w, int h, const std::vector<uint8_t>& rgb) {
    FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    jpeg_compress_struct info;
    jpeg_error_mgr errors;
    info.err = jpeg_std_error(&errors);
    jpeg_create_compress(&info);
    jpeg_stdio_dest(&info, file);
    info.image_width = static_cast<JDIMENSION>(w);
    info.image_height = static_cast<JDIMENSION>(h);
    info.input_components = 3;
    info.in_color_space = JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, 100, TRUE);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
      JSAMPROW row = const_cast<uint8_t*>(rgb.data()) + static_cast<size_t>(info.next_scanline) * w * 3;
      jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    std::fclose(file);
  }

  static ModelInputSpec Input(const std::string& name, std::vector<int64_t> dims,
                              DataType dtype = DataType::kFloat) {
    return ModelInputSpec{name, dtype, std::move(dims)};
  }

  std::string dir_;
};

// Expects a failure whose one-line message contains every piece.
void ExpectError(const Status& status, std::initializer_list<std::string> pieces) {
  ASSERT_FALSE(status.ok());
  for (const std::string& piece : pieces) {
    EXPECT_NE(status.message().find(piece), std::string::npos)
        << "'" << piece << "' missing from: " << status.message();
  }
  EXPECT_EQ(status.message().find('\n'), std::string::npos);
}

TEST_F(DataLoaderTest, NpyFilesInSortedOrder) {
  const std::string d = MakeDir("npy");
  ASSERT_TRUE(WriteNpy(d + "/b.npy", Floats({1, 2, 3}, 10)).ok());
  ASSERT_TRUE(WriteNpy(d + "/a.npy", Floats({1, 2, 3}, 0)).ok());
  ASSERT_TRUE(WriteNpy(d + "/c.npy", Floats({1, 2, 3}, 20)).ok());
  WriteText(d + "/README.txt", "ignored");
  for (const std::string& spec : {"npy:" + d, d}) {
    auto data = OpenCalibrationData(spec, {Input("x", {1, 2, 3})});
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    ASSERT_EQ((*data)->size(), 3u);
    EXPECT_EQ((*data)->kind(), "npy");
    EXPECT_EQ((*data)->SampleName(0), d + "/a.npy");
    for (size_t i = 0; i < 3; ++i) {
      auto sample = (*data)->Load(i);
      ASSERT_TRUE(sample.ok()) << sample.status().ToString();
      EXPECT_EQ(sample->at("x").values<float>()[0], 10.0f * i);
      EXPECT_EQ(sample->at("x").values<float>()[5], 10.0f * i + 5);
    }
  }
}

TEST_F(DataLoaderTest, NpyFoldersForMultiInputModels) {
  for (const char* s : {"s1", "s0"}) {
    const std::string d = MakeDir(std::string("multi/") + s);
    const float base = s[1] == '0' ? 0.0f : 100.0f;
    ASSERT_TRUE(WriteNpy(d + "/image.npy", Floats({2, 2}, base)).ok());
    ASSERT_TRUE(WriteNpy(d + "/mask.npy", Floats({3}, base + 50)).ok());
  }
  const std::vector<ModelInputSpec> inputs = {Input("image", {2, -1}), Input("mask", {3})};
  auto data = OpenCalibrationData(Path("multi"), inputs);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ((*data)->size(), 2u);
  auto first = (*data)->Load(0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->at("image").values<float>()[3], 3.0f);
  EXPECT_EQ(first->at("mask").values<float>()[0], 50.0f);
  auto second = (*data)->Load(1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->at("mask").values<float>()[2], 152.0f);

  // A sample folder missing an input's file fails when the data is opened, naming both.
  fs::remove(Path("multi/s1/mask.npy"));
  auto missing = OpenCalibrationData(Path("multi"), inputs);
  ExpectError(missing.status(), {"multi/s1", "'mask'"});

  // Loose files for a two-input model are refused.
  const std::string loose = MakeDir("loose");
  ASSERT_TRUE(WriteNpy(loose + "/a.npy", Floats({2, 2}, 0)).ok());
  ExpectError(OpenCalibrationData(loose, inputs).status(), {"2 inputs"});
}

TEST_F(DataLoaderTest, WrongShapeDtypeAndNonFiniteValuesNameTheFile) {
  const std::string d = MakeDir("bad");
  ASSERT_TRUE(WriteNpy(d + "/0_ok.npy", Floats({1, 4}, 0)).ok());
  ASSERT_TRUE(WriteNpy(d + "/1_shape.npy", Floats({1, 5}, 0)).ok());
  Tensor doubles(DataType::kDouble, {1, 4});
  ASSERT_TRUE(WriteNpy(d + "/2_dtype.npy", doubles).ok());
  Tensor nan = Floats({1, 4}, 0);
  nan.values<float>()[2] = NAN;
  ASSERT_TRUE(WriteNpy(d + "/3_nan.npy", nan).ok());
  Tensor inf = Floats({1, 4}, 0);
  inf.values<float>()[1] = -INFINITY;
  ASSERT_TRUE(WriteNpy(d + "/4_inf.npy", inf).ok());
  WriteText(d + "/5_garbage.npy", "not numpy");

  auto data = OpenCalibrationData(d, {Input("x", {1, 4})});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ((*data)->size(), 6u);
  EXPECT_TRUE((*data)->Load(0).ok());
  ExpectError((*data)->Load(1).status(), {"1_shape.npy", "input 'x'", "[1,5]", "[1,4]"});
  ExpectError((*data)->Load(2).status(), {"2_dtype.npy", "input 'x'", "f64"});
  ExpectError((*data)->Load(3).status(), {"3_nan.npy", "input 'x'", "NaN", "element 2"});
  ExpectError((*data)->Load(4).status(), {"4_inf.npy", "input 'x'", "Inf"});
  ExpectError((*data)->Load(5).status(), {"5_garbage.npy"});
}

TEST_F(DataLoaderTest, TensorProtoFiles) {
  const std::string d = MakeDir("pb");
  WritePb(d + "/input_1.pb", Floats({1, 3}, 7));
  WritePb(d + "/input_0.pb", Floats({1, 3}, 1));
  DataLoaderOptions options;
  options.read_tensor_proto = ReadTensorProtoFile;
  // Without a reader the .pb form cannot be read.
  EXPECT_FALSE(OpenCalibrationData("pb:" + d, {Input("x", {1, 3})}).ok());
  for (const std::string& spec : {"pb:" + d, d}) {
    auto data = OpenCalibrationData(spec, {Input("x", {1, 3})}, options);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    ASSERT_EQ((*data)->size(), 2u);
    EXPECT_EQ((*data)->kind(), "pb");
    auto s0 = (*data)->Load(0);
    ASSERT_TRUE(s0.ok()) << s0.status().ToString();
    EXPECT_EQ(s0->at("x").values<float>()[2], 3.0f);
    auto s1 = (*data)->Load(1);
    ASSERT_TRUE(s1.ok());
    EXPECT_EQ(s1->at("x").values<float>()[0], 7.0f);
  }
  auto wrong = OpenCalibrationData("pb:" + d, {Input("x", {1, 4})}, options);
  ASSERT_TRUE(wrong.ok());
  ExpectError((*wrong)->Load(0).status(), {"input_0.pb", "input 'x'", "[1,3]"});
}

TEST_F(DataLoaderTest, PngPixelsAndPreprocessingMath) {
  // 4x2 image with distinct channel values per pixel.
  const int w = 4, h = 2;
  std::vector<uint8_t> rgb(w * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 10);
  const std::string d = MakeDir("png");
  WritePng(d + "/img.png", w, h, rgb);

  auto decoded = DecodeImageFile(d + "/img.png");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->width, w);
  EXPECT_EQ(decoded->height, h);
  EXPECT_EQ(decoded->pixels, rgb);

  const float mean[3] = {0.485f, 0.456f, 0.406f};
  const float stdv[3] = {0.229f, 0.224f, 0.225f};
  auto data = OpenCalibrationData(
      "image:" + d + "?mean=0.485,0.456,0.406&std=0.229,0.224,0.225&scale=1/255",
      {Input("x", {1, 3, h, w})});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  auto sample = (*data)->Load(0);
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  const Tensor& t = sample->at("x");
  ASSERT_EQ(t.shape(), (std::vector<int64_t>{1, 3, h, w}));
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const float pixel = rgb[(y * w + x) * 3 + c];
        const float expected = (pixel / 255.0f - mean[c]) / stdv[c];
        EXPECT_NEAR(t.values<float>()[(c * h + y) * w + x], expected, 1e-5)
            << "c=" << c << " y=" << y << " x=" << x;
      }
    }
  }

  // BGR order and NHWC layout, no normalisation beyond scale=1.
  auto bgr = OpenCalibrationData("image:" + d + "?order=bgr&scale=1&layout=nhwc",
                                 {Input("x", {1, h, w, 3})});
  ASSERT_TRUE(bgr.ok()) << bgr.status().ToString();
  auto s2 = (*bgr)->Load(0);
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  const Tensor& t2 = s2->at("x");
  for (int p = 0; p < w * h; ++p) {
    EXPECT_EQ(t2.values<float>()[p * 3 + 0], rgb[p * 3 + 2]);
    EXPECT_EQ(t2.values<float>()[p * 3 + 1], rgb[p * 3 + 1]);
    EXPECT_EQ(t2.values<float>()[p * 3 + 2], rgb[p * 3 + 0]);
  }
}

TEST_F(DataLoaderTest, BilinearResizeWithHalfPixelCentres) {
  // 2x1 image: left pixel 0, right pixel 200 (all channels), resized to 4x1.
  const std::string d = MakeDir("resize");
  WritePng(d + "/two.png", 2, 1, {0, 0, 0, 200, 200, 200});
  auto data = OpenCalibrationData("image:" + d + "?scale=1", {Input("x", {1, 1, 1, 4})});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  auto s = (*data)->Load(0);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // Output x samples input (x + 0.5) * 2/4 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped to [0, 1].
  const float expected[4] = {0.0f, 50.0f, 150.0f, 200.0f};
  for (int x = 0; x < 4; ++x) EXPECT_NEAR(s->at("x").values<float>()[x], expected[x], 1e-3);
}

TEST_F(DataLoaderTest, JpegDecodesCloseToTheSource) {
  const int w = 16, h = 8;
  std::vector<uint8_t> rgb;
  for (int i = 0; i < w * h; ++i) rgb.insert(rgb.end(), {200, 100, 50});
  const std::string d = MakeDir("jpg");
  WriteJpeg(d + "/a.jpg", w, h, rgb);
  auto decoded = DecodeImageFile(d + "/a.jpg");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->width, w);
  EXPECT_EQ(decoded->height, h);
  for (size_t i = 0; i < rgb.size(); ++i) {
    EXPECT_NEAR(decoded->pixels[i], rgb[i], 3) << i;
  }
  // A bare folder of images is detected; the size comes from the model input.
  auto data = OpenCalibrationData(d, {Input("x", {1, 3, 4, 8})});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ((*data)->kind(), "image");
  auto s = (*data)->Load(0);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_NEAR(s->at("x").values<float>()[0], 200.0f / 255.0f, 3.0f / 255.0f);
}

TEST_F(DataLoaderTest, NonImageAndCorruptFilesNameTheFile) {
  const std::string d = MakeDir("broken");
  WriteText(d + "/a_text.png", "this is not an image");
  WriteText(d + "/b_cut.png", std::string("\x89PNG\r\n\x1a\n", 8) + "truncated");
  WriteText(d + "/c_cut.jpg", std::string("\xff\xd8\xff\xe0", 4) + "truncated");
  auto data = OpenCalibrationData("image:" + d, {Input("x", {1, 3, 4, 4})});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ((*data)->size(), 3u);
  ExpectError((*data)->Load(0).status(), {"a_text.png", "not a PNG or JPEG"});
  ExpectError((*data)->Load(1).status(), {"b_cut.png", "PNG"});
  ExpectError((*data)->Load(2).status(), {"c_cut.jpg", "JPEG"});
}

TEST_F(DataLoaderTest, TruncatedJpegIsRejectedLikeATruncatedPng) {
  // libjpeg only warns at a premature end and fills the rest with gray: this decoded, exit 0.
  const int w = 32, h = 32;
  std::vector<uint8_t> rgb;
  for (int i = 0; i < w * h; ++i) {
    rgb.insert(rgb.end(), {static_cast<uint8_t>(i), static_cast<uint8_t>(3 * i), 77});
  }
  const std::string d = MakeDir("cut_jpeg");
  WriteJpeg(d + "/full.jpg", w, h, rgb);
  std::ifstream in(d + "/full.jpg", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 400u);
  std::ofstream(d + "/half.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  ASSERT_TRUE(DecodeImageFile(d + "/full.jpg").ok());
  auto cut = DecodeImageFile(d + "/half.jpg");
  ExpectError(cut.status(), {"half.jpg", "cannot decode JPEG", "Premature end"});
}

TEST_F(DataLoaderTest, ImageLargerThanTheTensorLimitIsRefusedBeforeDecoding) {
  const std::string d = MakeDir("big_image");
  WritePng(d + "/a.png", 64, 64, std::vector<uint8_t>(64 * 64 * 3, 1));
  WriteJpeg(d + "/b.jpg", 64, 64, std::vector<uint8_t>(64 * 64 * 3, 1));
  SetMaxTensorBytes(1000);
  auto png = DecodeImageFile(d + "/a.png");
  auto jpeg = DecodeImageFile(d + "/b.jpg");
  SetMaxTensorBytes(0);
  ExpectError(png.status(), {"a.png", "64x64 pixels need 12288 bytes", "limit of 1000"});
  ExpectError(jpeg.status(), {"b.jpg", "64x64 pixels need 12288 bytes", "limit of 1000"});
}

TEST_F(DataLoaderTest, ImageSpecErrors) {
  const std::string d = MakeDir("imgs");
  WritePng(d + "/a.png", 2, 2, std::vector<uint8_t>(12, 9));
  ExpectError(OpenCalibrationData("image:" + d + "?colour=rgb", {Input("x", {1, 3, 2, 2})}).status(),
              {"colour"});
  ExpectError(OpenCalibrationData("image:" + d + "?size=12", {Input("x", {1, 3, 2, 2})}).status(),
              {"size=12"});
  auto data = OpenCalibrationData("image:" + d + "?size=4x4", {Input("x", {1, 3, 2, 2})});
  ASSERT_TRUE(data.ok());
  ExpectError((*data)->Load(0).status(), {"a.png", "input 'x'", "size=4x4"});
  auto dynamic = OpenCalibrationData("image:" + d, {Input("x", {1, 3, -1, -1})});
  ASSERT_TRUE(dynamic.ok());
  ExpectError((*dynamic)->Load(0).status(), {"a.png", "size=WxH"});
  auto sized = OpenCalibrationData("image:" + d + "?size=3x5", {Input("x", {1, 3, -1, -1})});
  ASSERT_TRUE(sized.ok());
  auto s = (*sized)->Load(0);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->at("x").shape(), (std::vector<int64_t>{1, 3, 5, 3}));
}

TEST_F(DataLoaderTest, RandomDataIsSeededAndInRange) {
  const std::vector<ModelInputSpec> inputs = {Input("x", {1, 3, 8, 8}),
                                              Input("ids", {4}, DataType::kInt64)};
  auto data = OpenCalibrationData("random:5", inputs);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ((*data)->size(), 5u);
  auto a = (*data)->Load(3);
  auto b = (*data)->Load(3);
  auto c = (*data)->Load(4);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(a->at("x").BitwiseEqual(b->at("x")));
  EXPECT_FALSE(a->at("x").BitwiseEqual(c->at("x")));
  for (float v : a->at("x").values<float>()) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LT(v, 1.0f);
  }
  auto other_seed = OpenCalibrationData("random:5?seed=9&low=-2&high=2", inputs);
  ASSERT_TRUE(other_seed.ok()) << other_seed.status().ToString();
  auto d = (*other_seed)->Load(3);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(a->at("x").BitwiseEqual(d->at("x")));
  float lo = 0, hi = 0;
  for (float v : d->at("x").values<float>()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_LT(lo, -1.0f);
  EXPECT_GT(hi, 1.0f);
  ExpectError(OpenCalibrationData("random:0", inputs).status(), {"random"});
  // Beyond the bound (this ran forever) or beyond int64.
  ExpectError(OpenCalibrationData("random:9223372036854775807", inputs).status(),
              {"random:9223372036854775807", "at most 100000"});
  ExpectError(OpenCalibrationData("random:100000000000000000000", inputs).status(),
              {"at most 100000"});
  ExpectError(OpenCalibrationData("random:1e20", inputs).status(), {"random:1e20"});
  ExpectError(OpenCalibrationData("random:3?seed=-1", inputs).status(), {"seed '-1'"});
  ExpectError(OpenCalibrationData("random:3?seed=1.5", inputs).status(), {"seed '1.5'"});
  // Found by fuzzing: low=-1e91 became -inf as a float, and every value NaN.
  ExpectError(OpenCalibrationData("random:3?low=-1e91", inputs).status(), {"finite"});
  ExpectError(OpenCalibrationData("random:3?low=-3e38&high=3e38", inputs).status(), {"finite"});
  ExpectError(OpenCalibrationData("random:3?low=-1e12", inputs).status(), {"input 'ids'", "i64"});
  EXPECT_TRUE(OpenCalibrationData("random:100000", inputs).ok());
  ExpectError(OpenCalibrationData("random:3", {Input("x", {-1, 3})}).status(),
              {"'x'", "--input-shape"});
  ExpectError(OpenCalibrationData("random:3?mean=1", inputs).status(), {"mean"});
}

TEST_F(DataLoaderTest, HoldoutSplit) {
  auto data = OpenCalibrationData("random:10", {Input("x", {2})});
  ASSERT_TRUE(data.ok());
  HoldoutSplit split = SplitHoldout(*data, 7);
  EXPECT_EQ(split.calibration->size(), 7u);
  EXPECT_EQ(split.holdout->size(), 3u);
  auto held = split.holdout->Load(0);
  auto original = (*data)->Load(7);
  ASSERT_TRUE(held.ok() && original.ok());
  EXPECT_TRUE(held->at("x").BitwiseEqual(original->at("x")));
  EXPECT_EQ(split.holdout->SampleName(2), (*data)->SampleName(9));
  HoldoutSplit all = SplitHoldout(*data, 50);
  EXPECT_EQ(all.calibration->size(), 10u);
  EXPECT_EQ(all.holdout->size(), 0u);
}

TEST_F(DataLoaderTest, MissingOrEmptyFolders) {
  ExpectError(OpenCalibrationData(Path("nope"), {Input("x", {1})}).status(), {"nope"});
  const std::string empty = MakeDir("empty");
  ExpectError(OpenCalibrationData(empty, {Input("x", {1})}).status(), {"empty"});
}

}  // namespace
}  // namespace qalign
