// RunCalibration on small built graphs: every value observed, closed-form ranges, NaN detection.
#include "calib/calibrator.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "testing/graph_builder.h"

namespace qalign {
namespace {

QuantScheme Int8() { return QuantScheme{}; }  // per-tensor asymmetric int8 [-128, 127]

CalibrationOptions Quiet(ObserverKind kind = ObserverKind::kMinMax) {
  CalibrationOptions options;
  options.observer.kind = kind;
  options.progress = ProgressMode::kQuiet;
  options.num_threads = 1;
  return options;
}

TEST(CalibratorTest, ObservesEveryActivationWithClosedFormRanges) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 8});
  Variable* r = b.Op("Relu", "relu", {x});
  Variable* two = b.Param("two", Tensor::FromVector<float>({1}, {2.0f}));
  Variable* m = b.Op("Mul", "mul", {r, two});
  b.Output(m);
  std::unique_ptr<Graph> graph = b.Build();

  const std::vector<ObservedTensor> tensors = FloatActivationTensors(*graph, Int8());
  ASSERT_EQ(tensors.size(), 3u);  // x, relu_out, mul_out; not the parameter
  auto data = OpenCalibrationData("random:3?low=-1&high=1", ModelInputSpecs(*graph));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  auto result = RunCalibration(*graph, tensors, **data, Quiet());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->samples, 3u);

  // The extremes of the inputs, computed from the samples themselves.
  float lo = 1, hi = -1;
  for (size_t i = 0; i < 3; ++i) {
    auto sample = (*data)->Load(i);
    ASSERT_TRUE(sample.ok());
    for (float v : sample->at("x").values<float>()) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  ASSERT_LT(lo, 0.0f);
  const auto& cx = result->tensors.at("x");
  const auto& cr = result->tensors.at(r->name());
  const auto& cm = result->tensors.at(m->name());
  for (const auto* c : {&cx, &cr, &cm}) EXPECT_EQ(c->histogram.total(), 3.0 * 32);
  EXPECT_EQ(cx.params.range.min, lo);
  EXPECT_EQ(cx.params.range.max, hi);
  EXPECT_EQ(cr.params.range.min, 0.0f);  // Relu output
  EXPECT_EQ(cr.params.range.max, hi);
  EXPECT_FLOAT_EQ(cm.params.range.max, 2 * hi);
  // Params follow the scheme: scale = (max - min) / 255 with 0 inside the range.
  EXPECT_NEAR(cr.params.scale, hi / 255.0f, 1e-7);

  // Minmax does not bin unless asked: the ranges are the same either way, the histograms only
  // exist when kept, and the ranges.json round trip keeps both.
  for (const auto* c : {&cx, &cr, &cm}) EXPECT_FALSE(c->histogram.binned());
  CalibrationOptions keep = Quiet();
  keep.keep_histograms = true;
  auto with_histograms = RunCalibration(*graph, tensors, **data, keep);
  ASSERT_TRUE(with_histograms.ok()) << with_histograms.status().ToString();
  for (const auto& [name, c] : with_histograms->tensors) {
    EXPECT_TRUE(c.histogram.binned()) << name;
    EXPECT_EQ(c.params.range.min, result->tensors.at(name).params.range.min) << name;
    EXPECT_EQ(c.params.range.max, result->tensors.at(name).params.range.max) << name;
  }
  EXPECT_FALSE(ParseRanges(SerializeRanges(ToRangeMap(*result)), "t.json")->Find(m->name())
                   ->has_histogram);
  const RangeMap map = ToRangeMap(*with_histograms);
  auto parsed = ParseRanges(SerializeRanges(map), "test.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const TensorRange* tr = parsed->Find(m->name());
  ASSERT_NE(tr, nullptr);
  EXPECT_FLOAT_EQ(tr->max, 2 * hi);
  ASSERT_TRUE(tr->has_histogram);
  EXPECT_EQ(tr->counts.size(), static_cast<size_t>(Histogram::kDefaultBins));
  double total = 0;
  for (float c : tr->counts) total += c;
  EXPECT_EQ(total, 96.0);
}

// Minmax on strictly positive data records the data's own minimum, not 0: the params would come
// out the same (ComputeParams widens every range to 0), so only the recorded range shows a wrong
// merge of the first sample's extremes with a default. Also strictly negative data's maximum.
TEST(CalibratorTest, MinMaxRecordsTheDataMinimumOfPositiveData) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 16});
  Variable* n = b.Op("Neg", "neg", {x});
  b.Output(n);
  std::unique_ptr<Graph> graph = b.Build();
  const std::vector<ObservedTensor> tensors = FloatActivationTensors(*graph, Int8());
  auto data = OpenCalibrationData("random:4?seed=3&low=2&high=5", ModelInputSpecs(*graph));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  float lo = 5, hi = 2;
  for (size_t i = 0; i < 4; ++i) {
    auto sample = (*data)->Load(i);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    for (float v : sample->at("x").values<float>()) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  ASSERT_GE(lo, 2.0f);
  for (bool keep_histograms : {false, true}) {
    SCOPED_TRACE(keep_histograms ? "binned" : "range only");
    CalibrationOptions options = Quiet();
    options.keep_histograms = keep_histograms;
    auto result = RunCalibration(*graph, tensors, **data, options);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    const RangeMap map = ToRangeMap(*result);
    const TensorRange* rx = map.Find("x");
    const TensorRange* rn = map.Find(n->name());
    ASSERT_NE(rx, nullptr);
    ASSERT_NE(rn, nullptr);
    EXPECT_EQ(rx->min, lo);
    EXPECT_EQ(rx->max, hi);
    EXPECT_EQ(rn->min, -hi);
    EXPECT_EQ(rn->max, -lo);
  }
}

TEST(CalibratorTest, NaNInATensorNamesTheTensorOpAndSample) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 16});
  Variable* half = b.Param("half", Tensor::FromVector<float>({1}, {0.5f}));
  Variable* d = b.Op("Sub", "shift", {x, half});
  Variable* s = b.Op("Sqrt", "root", {d});
  b.Output(s);
  std::unique_ptr<Graph> graph = b.Build();
  auto data = OpenCalibrationData("random:2", ModelInputSpecs(*graph));
  ASSERT_TRUE(data.ok());
  auto result = RunCalibration(*graph, FloatActivationTensors(*graph, Int8()), **data, Quiet());
  ASSERT_FALSE(result.ok());
  const std::string& message = result.status().message();
  EXPECT_NE(message.find("random sample 0"), std::string::npos) << message;
  EXPECT_NE(message.find(s->name()), std::string::npos) << message;
  EXPECT_NE(message.find("Sqrt 'root'"), std::string::npos) << message;
}

TEST(CalibratorTest, KlObserverRunsOverTheGraph) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 256});
  Variable* r = b.Op("Relu", "relu", {x});
  b.Output(r);
  std::unique_ptr<Graph> graph = b.Build();
  auto data = OpenCalibrationData("random:2?low=-3&high=3", ModelInputSpecs(*graph));
  ASSERT_TRUE(data.ok());
  auto result =
      RunCalibration(*graph, FloatActivationTensors(*graph, Int8()), **data, Quiet(ObserverKind::kKl));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const auto& c = result->tensors.at(r->name());
  EXPECT_GE(c.params.range.min, 0.0f);
  EXPECT_LE(c.params.range.max, c.histogram.data_max());
  EXPECT_GT(c.params.range.max, 0.5f * c.histogram.data_max());  // uniform: little to clip
}

}  // namespace
}  // namespace qalign
