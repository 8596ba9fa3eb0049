// Per-tensor observer choice: which ends of which tensors' ranges are kept (Softmax logits and
// outputs, what a mean reads), and what keeping them does to the argmax a classifier reads.
#include "calib/observer_choice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "calib/calibrator.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

constexpr KeptEnds kMax{.max = true};
constexpr KeptEnds kWhole{.min = true, .max = true};

// `keep` for each of `variables`, by name, as UnclippedEnds returns it.
std::map<std::string, KeptEnds> Keep(KeptEnds keep,
                                     std::initializer_list<const Variable*> variables) {
  std::map<std::string, KeptEnds> ends;
  for (const Variable* v : variables) ends[v->name()] = keep;
  return ends;
}

TEST(ObserverChoiceTest, LogitsAreSoftmaxInputsAndTheirAffineSourcesWithOneConsumer) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 8});
  Variable* w = b.RandomParam("w", {8, 6}, /*seed=*/1);
  Variable* bias = b.RandomParam("bias", {6}, /*seed=*/2);
  Variable* scale = b.Param("scale", Tensor::FromVector<float>({1}, {0.5f}));
  // Head: MatMul -> Add(bias) -> Mul(temperature) -> Reshape -> Softmax: all but x are logits.
  Variable* matmul = b.Op("MatMul", "matmul", {x, w});
  Variable* biased = b.Op("Add", "add_bias", {matmul, bias});
  Variable* scaled = b.Op("Mul", "temperature", {biased, scale});
  Variable* shaped = b.Op("Reshape", "reshape", {scaled, b.Int64Param("shape", {4, 6})});
  Variable* probs = b.Op("Softmax", "softmax", {shaped});
  b.Output(probs);
  // Second head: the MatMul output also feeds a Relu, so only the Add output is a logit tensor;
  // a LogSoftmax of the sum of two activations stops at the sum.
  Variable* shared = b.Op("MatMul", "matmul_shared", {x, w});
  b.Output(b.Op("Relu", "relu", {shared}));
  Variable* shared_biased = b.Op("Add", "add_shared", {shared, bias});
  Variable* shared_probs = b.Op("Softmax", "softmax_shared", {shared_biased});
  b.Output(shared_probs);
  Variable* other = b.Op("MatMul", "matmul_other", {x, w});
  Variable* sum = b.Op("Add", "add_activations", {other, shared});
  Variable* log_probs = b.Op("LogSoftmax", "log_softmax", {sum});
  b.Output(log_probs);
  std::unique_ptr<Graph> graph = b.Build();

  // The logits, and the three outputs (the next test's rule).
  EXPECT_EQ(UnclippedEnds(*graph), Keep(kMax, {matmul, biased, scaled, shaped, shared_biased, sum,
                                               probs, shared_probs, log_probs}));
}

// Index of the largest value (the first on ties, as a greedy CTC decoder reads it).
size_t Argmax(const std::vector<float>& row) {
  return static_cast<size_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// One tensor calibrated on one thread under `observer`, without and with its maximum kept.
struct PlainAndKept {
  TensorCalibration plain, kept;
};
PlainAndKept CalibrateWithoutAndWithKeepMax(const Graph& graph, const Variable* tensor,
                                            const QuantScheme& scheme,
                                            const CalibrationDataset& data,
                                            const ObserverOptions& observer) {
  CalibrationOptions options;
  options.observer = observer;
  options.progress = ProgressMode::kQuiet;
  options.num_threads = 1;
  PlainAndKept result;
  for (bool keep_max : {false, true}) {
    auto run = RunCalibration(graph, {{tensor, scheme, {.max = keep_max}}}, data, options);
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    if (run.ok()) (keep_max ? result.kept : result.plain) = run->tensors.at(tensor->name());
  }
  return result;
}

// FakeQuantize(x) under a calibration's params and scheme.
float Quantized(float x, const TensorCalibration& c) {
  return FakeQuantize(x, c.params.scale, c.params.zero_point, c.scheme.quant_min,
                      c.scheme.quant_max);
}

// What a classifier's argmax reads on one row: exact, and with the observed tensor fake-quantized
// under the plain and under the kept params.
struct RowScores {
  std::vector<float> exact, with_plain, with_kept;
};

// For how many rows the argmax with the plain (kept) params agrees with the exact one, over every
// sample of `data` and every row of its input "x" (row_size values each); `scores` computes a
// row's scores from that row of "x".
struct Agreement {
  int plain = 0, kept = 0;
};
Agreement CountAgreeingArgmaxes(const CalibrationDataset& data, size_t row_size,
                                const std::function<RowScores(std::span<const float>)>& scores) {
  Agreement agreement;
  for (size_t i = 0; i < data.size(); ++i) {
    auto sample = data.Load(i);
    EXPECT_TRUE(sample.ok()) << sample.status().ToString();
    if (!sample.ok()) continue;
    const std::span<const float> xv = sample->at("x").values<float>();
    for (size_t begin = 0; begin + row_size <= xv.size(); begin += row_size) {
      const RowScores row = scores(xv.subspan(begin, row_size));
      agreement.plain += Argmax(row.with_plain) == Argmax(row.exact) ? 1 : 0;
      agreement.kept += Argmax(row.with_kept) == Argmax(row.exact) ? 1 : 0;
    }
  }
  return agreement;
}

// rec's head in small: logits = x W + bias over 4096 classes and 256 rows (x in [0, 1)), where
// two rival classes (0, like CTC's blank, with a bias of 1.5, and 1 without) have large positive,
// correlated columns and the others small ones, so the rivals' pre-bias scores (the MatMul
// output, which a target quantizes before the Add) are the rare large values of the tensor. The
// mse observer clips them; once both rivals sit at the clipped level, the bias makes class 0 win.
// Keeping the maximum restores the top of the range (the lower end stays mse's), and the argmax
// of FakeQuantize(x W) + bias agrees with FP32's on more rows.
TEST(ObserverChoiceTest, KeepingTheMaximumOfLogitsKeepsMoreArgmaxesThanMse) {
  constexpr int64_t kRows = 256, kDepth = 16, kClasses = 4096;
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, kRows, kDepth});
  std::vector<float> w_values(static_cast<size_t>(kDepth * kClasses));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : w_values) v = 0.25f * uniform(rng);
  for (int64_t d = 0; d < kDepth; ++d) {
    float* row = &w_values[static_cast<size_t>(d * kClasses)];
    row[0] = 4.0f * std::fabs(uniform(rng));
    row[1] = row[0] + uniform(rng);
  }
  std::vector<float> bias_values(kClasses, 0.0f);
  bias_values[0] = 1.5f;
  Variable* w = b.Param("w", Tensor::FromVector<float>({kDepth, kClasses}, w_values));
  Variable* bias = b.Param("bias", Tensor::FromVector<float>({kClasses}, bias_values));
  Variable* scores = b.Op("MatMul", "head", {x, w});
  Variable* logits = b.Op("Add", "head_bias", {scores, bias});
  Variable* probs = b.Op("Softmax", "softmax", {logits});
  b.Output(probs);
  std::unique_ptr<Graph> graph = b.Build();
  ASSERT_EQ(UnclippedEnds(*graph), Keep(kMax, {scores, logits, probs}));

  auto data = OpenCalibrationData("random:2?seed=5&low=0&high=1", ModelInputSpecs(*graph));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ObserverOptions mse;
  mse.kind = ObserverKind::kMse;
  const QuantScheme scheme;  // int8 asymmetric per tensor
  const auto [p, k] = CalibrateWithoutAndWithKeepMax(*graph, scores, scheme, **data, mse);
  const float data_max = p.histogram.data_max();
  ASSERT_LT(p.params.range.max, 0.9f * data_max);  // mse clips the rivals' large scores
  EXPECT_EQ(k.params.range.max, data_max);
  EXPECT_EQ(k.params.range.min, p.params.range.min);

  // scores[r][c] = sum_d x[r][d] * w[d][c]; each row's argmax of scores + bias, exact and with the
  // scores fake-quantized under each observer's params.
  const std::span<const float> wv = w->data()->values<float>();
  const Agreement agree =
      CountAgreeingArgmaxes(**data, kDepth, [&, &p = p, &k = k](std::span<const float> x_row) {
        RowScores row;
        for (size_t c = 0; c < bias_values.size(); ++c) {
          double sum = 0;
          for (size_t d = 0; d < x_row.size(); ++d) sum += double(x_row[d]) * wv[d * kClasses + c];
          const float score = static_cast<float>(sum);
          row.exact.push_back(score + bias_values[c]);
          row.with_plain.push_back(Quantized(score, p) + bias_values[c]);
          row.with_kept.push_back(Quantized(score, k) + bias_values[c]);
        }
        return row;
      });
  // 477 and 499 of the 512 rows when written.
  EXPECT_GT(agree.kept, agree.plain);
  EXPECT_GE(agree.kept, 2 * kRows * 95 / 100);
}

TEST(ObserverChoiceTest, ProbabilitiesAreSoftmaxOutputsAndTheirLayoutsWithOneConsumer) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 6});
  // Softmax -> Reshape -> Transpose -> output: all three are probabilities.
  Variable* probs = b.Op("Softmax", "softmax", {x});
  Variable* shaped = b.Op("Reshape", "reshape", {probs, b.Int64Param("shape", {1, 6, 4})});
  Variable* moved = b.Op("Transpose", "transpose", {shaped});
  b.Output(moved);
  // A LogSoftmax whose output feeds a Reshape and a Relu: only its own output.
  Variable* log_probs = b.Op("LogSoftmax", "log_softmax", {x});
  b.Output(b.Op("Reshape", "reshape_log", {log_probs, b.Int64Param("shape_log", {1, 24})}));
  b.Output(b.Op("Relu", "relu", {log_probs}));
  // A Softmax followed by a Mul of a constant: the product is not a probability.
  Variable* other = b.Op("Softmax", "softmax_other", {x});
  b.Output(b.Op("Mul", "scale", {other, b.Param("half", Tensor::FromVector<float>({1}, {0.5f}))}));
  std::unique_ptr<Graph> graph = b.Build();

  // The outputs, and x: the input of the three (the rule of the tests above).
  EXPECT_EQ(UnclippedEnds(*graph), Keep(kMax, {probs, shaped, moved, log_probs, other, x}));
}

// A classifier's probabilities: a Softmax over 512 classes of logits uniform in [0, 8) on 256
// rows. Nearly every value is close to 0 and each row's winner is among its top few, so the
// percentile 99.9 observer sets the top of the range under many winners; they read as one level
// and the argmax falls to the first of them. keep_max keeps the data's maximum, and the argmax of
// the fake-quantized probabilities agrees with FP32's on more rows.
TEST(ObserverChoiceTest, KeepingTheMaximumOfProbabilitiesKeepsMoreArgmaxesThanPercentile) {
  constexpr int64_t kRows = 256, kClasses = 512;
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, kRows, kClasses});
  Variable* probs = b.Op("Softmax", "softmax", {x});
  b.Output(probs);
  std::unique_ptr<Graph> graph = b.Build();
  ASSERT_EQ(UnclippedEnds(*graph), Keep(kMax, {x, probs}));

  auto data = OpenCalibrationData("random:2?seed=3&low=0&high=8", ModelInputSpecs(*graph));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ObserverOptions percentile;
  percentile.kind = ObserverKind::kPercentile;
  percentile.percentile = 99.9;
  QuantScheme scheme;  // uint8 asymmetric per tensor, as ort-qdq-u8s8 quantizes a Softmax output
  scheme.quant_min = 0;
  scheme.quant_max = 255;
  const auto [p, k] = CalibrateWithoutAndWithKeepMax(*graph, probs, scheme, **data, percentile);
  const float data_max = p.histogram.data_max();
  ASSERT_LT(p.params.range.max, 0.9f * data_max);  // the percentile clips the winners
  EXPECT_EQ(k.params.range.max, data_max);

  const Agreement agree =
      CountAgreeingArgmaxes(**data, kClasses, [&p = p, &k = k](std::span<const float> logits) {
        const float top = *std::max_element(logits.begin(), logits.end());
        double sum = 0;
        for (float l : logits) sum += std::exp(double(l) - top);
        RowScores row;
        for (float l : logits) {
          const float probability = static_cast<float>(std::exp(double(l) - top) / sum);
          row.exact.push_back(probability);
          row.with_plain.push_back(Quantized(probability, p));
          row.with_kept.push_back(Quantized(probability, k));
        }
        return row;
      });
  // 431 and 479 of the 512 rows when written (the rest: top two within a step of each other).
  EXPECT_GE(agree.kept, agree.plain + 2 * kRows / 20);
  EXPECT_GE(agree.kept, 2 * kRows * 90 / 100);
}

TEST(ObserverChoiceTest, AveragedTensorsAreTheInputsOfMeans) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 8, 8});
  Variable* relu = b.Op("Relu", "relu", {x});
  Variable* pooled = b.Op("GlobalAveragePool", "gap", {relu});
  b.Output(b.Op("Mul", "gate", {relu, pooled}));
  Variable* conv_in = b.Op("Sigmoid", "sigmoid", {x});
  b.Output(b.Op("AveragePool", "avg", {conv_in}, {{"kernel_shape", Attribute::Ints({2, 2})}}));
  Variable* tanh = b.Op("Tanh", "tanh", {x});
  b.Output(b.Op("ReduceMean", "mean", {tanh}));
  b.Output(b.Op("MaxPool", "max", {tanh}, {{"kernel_shape", Attribute::Ints({2, 2})}}));
  std::unique_ptr<Graph> graph = b.Build();
  EXPECT_EQ(UnclippedEnds(*graph), Keep(kWhole, {relu, conv_in, tanh}));
}

// A tensor under two rules keeps the ends of both: the input of a Softmax that a ReduceMean also
// reads keeps its whole range, the Softmax's output its maximum.
TEST(ObserverChoiceTest, ATensorUnderTwoRulesKeepsTheEndsOfBoth) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 8});
  Variable* relu = b.Op("Relu", "relu", {x});
  Variable* probs = b.Op("Softmax", "softmax", {relu});
  b.Output(probs);
  b.Output(b.Op("ReduceMean", "mean", {relu}));
  std::unique_ptr<Graph> graph = b.Build();
  std::map<std::string, KeptEnds> expected = Keep(kWhole, {relu});
  expected.merge(Keep(kMax, {probs}));
  EXPECT_EQ(UnclippedEnds(*graph), expected);
}

// A mean of a tensor with rare large values: 9992 values spread over [0, 1) and 8 at 50 (0.08 %).
// The percentile 99.9 observer clips at about 1, so the mean of the fake-quantized values loses
// 8 * 49 / 10000 = 0.039; with both ends kept the range is the data's and only the
// rounding error remains, which averages out.
TEST(ObserverChoiceTest, KeepingTheWholeRangeKeepsTheMeanThatPercentileBiases) {
  std::vector<float> values;
  for (int i = 0; i < 9992; ++i) values.push_back((static_cast<float>(i) + 0.5f) / 9992.0f);
  values.insert(values.end(), 8, 50.0f);
  Histogram histogram;
  histogram.Add(values);
  const QuantScheme scheme;  // int8 asymmetric per tensor
  ObserverOptions clipped;
  clipped.kind = ObserverKind::kPercentile;
  clipped.percentile = 99.9;
  ObserverOptions whole = clipped;
  whole.keep = kWhole;
  auto c = ObserveParams(histogram, scheme, clipped);
  auto w = ObserveParams(histogram, scheme, whole);
  ASSERT_TRUE(c.ok() && w.ok());
  EXPECT_LT(c->range.max, 1.5f);
  EXPECT_EQ(w->range.min, histogram.data_min());
  EXPECT_EQ(w->range.max, 50.0f);

  auto mean_error = [&](const ObservedParams& p) {
    double exact = 0, quantized = 0;
    for (float v : values) {
      exact += v;
      quantized += FakeQuantize(v, p.scale, p.zero_point, scheme.quant_min, scheme.quant_max);
    }
    return std::fabs(quantized - exact) / static_cast<double>(values.size());
  };
  EXPECT_GT(mean_error(*c), 0.035);
  EXPECT_LT(mean_error(*w), 0.005);
}

}  // namespace
}  // namespace qalign
