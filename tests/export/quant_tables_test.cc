// The JSON quantization table and the TensorRT calibration cache format.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "export/qdq_fixture.h"
#include "export/quant_tables.h"

namespace qalign {
namespace {

TEST(TrtCacheTest, HexIsTheBigEndianFloat32Bits) {
  EXPECT_EQ(FloatToBigEndianHex(1.0f), "3f800000");
  EXPECT_EQ(FloatToBigEndianHex(0.5f), "3f000000");
  EXPECT_EQ(FloatToBigEndianHex(1.0f / 127.0f), "3c010204");
  auto back = BigEndianHexToFloat("3c010a14");
  ASSERT_TRUE(back.ok());
  EXPECT_NEAR(*back, 0.00787, 1e-5);
  EXPECT_FALSE(BigEndianHexToFloat("3c01").ok());
  EXPECT_FALSE(BigEndianHexToFloat("zzzzzzzz").ok());
}

TEST(TrtCacheTest, ScaleIsAmaxOver127) {
  QdqParams symmetric;
  symmetric.scale = {0.02f};
  symmetric.zero_point = {0};
  symmetric.dtype = DataType::kInt8;
  EXPECT_EQ(TrtScale(symmetric), 0.02f);
  QdqParams u8;  // [0, 255] with zero point 0 represents [0, 255 s]: amax = 255 s
  u8.scale = {0.01f};
  u8.zero_point = {0};
  u8.dtype = DataType::kUint8;
  u8.quant_min = 0;
  u8.quant_max = 255;
  EXPECT_FLOAT_EQ(TrtScale(u8), 255 * 0.01f / 127);
}

TEST(TrtCacheTest, OneLinePerActivationTensor) {
  auto q = testing::QuantizeForTest(testing::SmallConvGraph(), "trt-int8", std::nullopt);
  ASSERT_NE(q, nullptr);
  const std::string cache = TrtCalibrationCache(q->plan);
  std::istringstream in(cache);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "TRT-8600-EntropyCalibration2");
  std::set<std::string> names;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    const size_t colon = line.rfind(": ");
    ASSERT_NE(colon, std::string::npos) << line;
    const std::string name = line.substr(0, colon);
    auto value = BigEndianHexToFloat(line.substr(colon + 2));
    ASSERT_TRUE(value.ok()) << line;
    EXPECT_GT(*value, 0.0f);
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
    // trt-int8 is symmetric int8: the cache holds the producer point's scale itself.
    const int p = q->plan.ProducerPoint(name);
    if (p >= 0) {
      EXPECT_EQ(*value, q->plan.activations[static_cast<size_t>(p)].params.scale[0]);
    }
  }
  EXPECT_GT(lines, 3);
  EXPECT_TRUE(names.count("x"));  // the graph input, quantized on its consumers' edges
}

TEST(QuantTableTest, ListsEveryQuantizedTensor) {
  auto q = testing::QuantizeForTest(testing::SmallConvGraph(), "tflite-int8", false);
  ASSERT_NE(q, nullptr);
  auto j = nlohmann::json::parse(QuantTableJson(q->plan));
  ASSERT_TRUE(j["tensors"].is_array());
  EXPECT_EQ(j["tensors"].size(), q->plan.activations.size() + q->plan.parameters.size());
  int biases = 0, requantizes = 0;
  for (const auto& t : j["tensors"]) {
    for (const char* key : {"tensor", "kind", "scale", "zero_point", "bits", "dtype", "group", "state"}) {
      EXPECT_TRUE(t.contains(key)) << key;
    }
    if (t["kind"] == "bias") {
      ++biases;
      EXPECT_EQ(t["dtype"], "int32");
      EXPECT_EQ(t["bits"], 32);
      EXPECT_EQ(t["axis"], 0);
    }
    requantizes += t["kind"] == "requantize";
  }
  EXPECT_EQ(biases, 2);
  EXPECT_EQ(requantizes, q->plan.requantizes());
  EXPECT_EQ(j["summary"]["requantizes"], q->plan.requantizes());
}

}  // namespace
}  // namespace qalign
