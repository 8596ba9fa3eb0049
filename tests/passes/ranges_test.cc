// ranges.json: parsing, errors naming the file and tensor, save/load round trip, ApplyRanges.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "align_testing.h"
#include "quant/ranges.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::GraphBuilder;
using testing::In;
using testing::MakeTable;
using testing::Out;

TEST(Ranges, ParsesMinMaxAndHistogram) {
  auto r = ParseRanges(R"({"a": {"min": -1.5, "max": 2},
                          "b": {"min": 0, "max": 4, "histogram": {"min": 0, "max": 4, "counts": [1, 2, 3, 4]}}})",
                       "r.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_NE(r->Find("a"), nullptr);
  EXPECT_FLOAT_EQ(r->Find("a")->min, -1.5f);
  EXPECT_FLOAT_EQ(r->Find("a")->max, 2.0f);
  EXPECT_FALSE(r->Find("a")->has_histogram);
  ASSERT_TRUE(r->Find("b")->has_histogram);
  EXPECT_EQ(r->Find("b")->counts, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(r->Find("c"), nullptr);
}

TEST(Ranges, ErrorsNameTheFileAndTensor) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"[1, 2]", "expected an object"},
      {"{not json", "not valid JSON"},
      {R"({"t1": {"min": 1}})", "needs both"},
      {R"({"t1": {"min": 3, "max": 1}})", "min 3 > max 1"},
      {R"({"t1": {"min": "a", "max": 1}})", "must be a number"},
      {R"({"t1": {"min": 0, "max": 1, "mean": 0.5}})", "unknown key \"mean\""},
      {R"({"t1": {"min": 0, "max": 1, "histogram": {"min": 0, "max": 1}}})", "needs"},
      {R"({"t1": {"min": 0, "max": 1, "histogram": {"min": 0, "max": 1, "counts": [-1]}}})",
       "negative"},
      // Beyond float's range: stored as inf, the file written back would not parse.
      {R"({"t1": {"min": 0, "max": 1e39}})", "not a finite float"},
      {R"({"t1": {"min": 0, "max": 1, "histogram": {"min": 0, "max": 1, "counts": [1e39]}}})",
       "not a finite float"},
  };
  for (const Case& c : cases) {
    auto r = ParseRanges(c.text, "calib/ranges.json");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find("calib/ranges.json"), std::string::npos) << c.text;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
    if (std::string(c.text).find("t1") != std::string::npos) {
      EXPECT_NE(r.status().message().find("'t1'"), std::string::npos) << r.status().message();
    }
  }
}

// A number beyond double's range is not JSON a reader can hold: an error naming the file.
TEST(Ranges, NumberBeyondDoubleIsAnError) {
  auto r = ParseRanges(R"({"t1": {"min": 0, "max": 1e999}})", "calib/ranges.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("calib/ranges.json"), std::string::npos)
      << r.status().message();
}

TEST(Ranges, SaveLoadRoundTrip) {
  RangeMap map;
  testing::AddRange(&map, "x", -0.25f, 7.5f);
  TensorRange h;
  h.min = 0;
  h.max = 1;
  h.has_histogram = true;
  h.hist_min = 0;
  h.hist_max = 1;
  h.counts = {3, 0, 5};
  map.ranges["y"] = h;
  const std::string dir = ::testing::TempDir() + "/qalign_ranges_test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/ranges.json";
  ASSERT_TRUE(SaveRanges(map, path).ok());
  auto loaded = LoadRanges(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->source, path);
  EXPECT_EQ(SerializeRanges(*loaded), SerializeRanges(map));
  EXPECT_FALSE(LoadRanges(dir + "/missing.json").ok());
}

std::unique_ptr<Graph> SmallGraph() {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2});
  Variable* k = b.Param("k", Tensor::FromVector<float>({2}, {-3.0f, 0.5f}));
  Variable* a = b.Op("Add", "add", {x, k});
  Variable* r = b.Op("Relu", "relu", {a});
  Variable* s = b.Op("Reshape", "reshape", {r, b.Int64Param("shape", {2})});
  b.Output(s);
  return b.Build();
}

TEST(Ranges, ApplyFillsEveryQuantizedTqcOfATensor) {
  auto g = SmallGraph();
  auto t = MakeTable(*g);
  RangeMap map;
  testing::AddRange(&map, "x", -1, 1);
  testing::AddRange(&map, "add_out", -4, 2);
  testing::AddRange(&map, "relu_out", 0, 2);
  testing::AddRange(&map, "reshape_out", 0, 2);
  testing::AddRange(&map, "not_in_graph", 0, 1);
  auto stats = ApplyRanges(map, t.get(), false);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  // add_out: the Add's output and the Relu's input.
  EXPECT_TRUE(Out(*t, *g, "add")->stats.has_range);
  EXPECT_FLOAT_EQ(Out(*t, *g, "add")->stats.min, -4.0f);
  EXPECT_FLOAT_EQ(In(*t, *g, "relu")->stats.min, -4.0f);
  // The constant k has no entry: its range comes from its data.
  EXPECT_FLOAT_EQ(In(*t, *g, "add", 1)->stats.min, -3.0f);
  EXPECT_FLOAT_EQ(In(*t, *g, "add", 1)->stats.max, 0.5f);
  EXPECT_EQ(stats->from_parameters, 1);
  EXPECT_EQ(stats->ranges_unused, 1);
  // The shape input is SOI: no range.
  EXPECT_FALSE(In(*t, *g, "reshape", 1)->stats.has_range);
}

TEST(Ranges, MissingTensorIsAnErrorOrFp32WithAllowMissing) {
  auto g = SmallGraph();
  RangeMap map;
  map.source = "my_ranges.json";
  testing::AddRange(&map, "x", -1, 1);
  testing::AddRange(&map, "add_out", -4, 2);
  testing::AddRange(&map, "reshape_out", 0, 2);
  {
    auto t = MakeTable(*g);
    auto stats = ApplyRanges(map, t.get(), false);
    ASSERT_FALSE(stats.ok());
    EXPECT_EQ(stats.status().code(), StatusCode::kNotFound);
    EXPECT_NE(stats.status().message().find("my_ranges.json"), std::string::npos);
    EXPECT_NE(stats.status().message().find("'relu_out'"), std::string::npos);
    EXPECT_NE(stats.status().message().find("Relu 'relu'"), std::string::npos);
    // Nothing was changed before the error.
    EXPECT_FALSE(Out(*t, *g, "add")->stats.has_range);
  }
  auto t = MakeTable(*g);
  auto stats = ApplyRanges(map, t.get(), true);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->tensors_missing, 1);
  EXPECT_EQ(Out(*t, *g, "relu")->state, QuantState::kFp32);
  EXPECT_EQ(In(*t, *g, "reshape", 0)->state, QuantState::kFp32);
  EXPECT_NE(Out(*t, *g, "reshape")->state, QuantState::kFp32);
}

}  // namespace
}  // namespace qalign
