// The Conv rewrites quantize runs before dispatch: FoldIntoConv (which ops fold) and
// EqualizeConvPairs (which pairs, and the balanced ranges); both must compute the same function.
#include "passes/equalize_conv_pairs.h"
#include "passes/fold_into_conv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>

#include "runtime/executor.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::AttributeList;
using testing::GraphBuilder;

Tensor RandomTensor(std::vector<int64_t> shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(DataType::kFloat, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& x : t.values<float>()) x = dist(rng);
  return t;
}

std::map<std::string, Tensor> RunGraph(const Graph& graph, const Tensor& x) {
  auto ex = Executor::Create(graph);
  EXPECT_TRUE(ex.ok()) << ex.status().ToString();
  auto out = (*ex)->Run({{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

std::map<std::string, int> CountTypes(const Graph& graph) {
  std::map<std::string, int> counts;
  for (const Operation* op : graph.operations()) ++counts[op->type()];
  return counts;
}

// Largest |a - b| relative to the largest |a|.
double RelativeError(const Tensor& a, const Tensor& b) {
  double max_diff = 0, max_abs = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    max_diff = std::max(max_diff, std::fabs(double(a.data<float>()[i]) - b.data<float>()[i]));
    max_abs = std::max(max_abs, std::fabs(double(a.data<float>()[i])));
  }
  return max_diff / max_abs;
}

const AttributeList kPads = {{"pads", Attribute::Ints({1, 1, 1, 1})}};

TEST(FoldIntoConvTest, BatchNormMulAddChainFoldsIntoOneConvThatComputesTheSame) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3, 8, 8});
  Variable* conv = b.Op("Conv", "conv", {x, b.RandomParam("w", {4, 3, 3, 3}, 1),
                                         b.RandomParam("bias", {4}, 2)}, kPads);
  Variable* bn = b.Op("BatchNormalization", "bn",
                      {conv, b.RandomParam("gamma", {4}, 3, 0.5f, 2.0f),
                       b.RandomParam("beta", {4}, 4), b.RandomParam("mean", {4}, 5),
                       b.RandomParam("var", {4}, 6, 0.1f, 3.0f)},
                      {{"epsilon", Attribute::Float(1e-3f)}});
  Variable* mul = b.Op("Mul", "mul", {b.RandomParam("k", {1, 4, 1, 1}, 7), bn});
  Variable* add = b.Op("Add", "add", {mul, b.Param("c", Tensor::FromVector<float>({}, {0.25f}))});
  Variable* div = b.Op("Div", "div", {add, b.RandomParam("d", {4, 1, 1}, 8, 0.5f, 2.0f)});
  Variable* sub = b.Op("Sub", "sub", {div, b.RandomParam("s", {1}, 9)});
  Variable* relu = b.Op("Relu", "relu", {sub});
  b.Output(relu);
  auto graph = b.Build();
  const Tensor input = RandomTensor({1, 3, 8, 8}, 10);
  const auto before = RunGraph(*graph, input);
  const std::string conv_out = conv->name();  // the pass deletes this tensor

  auto stats = FoldIntoConv(graph.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->batch_norms, 1);
  EXPECT_EQ(stats->elementwise, 4);
  EXPECT_EQ(CountTypes(*graph), (std::map<std::string, int>{{"Conv", 1}, {"Relu", 1}}));
  // The Conv took over the last folded op's output tensor, name included.
  Operation* c = graph->FindOperation("conv");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->output(0)->name(), sub->name());
  EXPECT_EQ(graph->FindVariable(conv_out), nullptr);
  // The folded-away parameters are gone; the new weight and bias are the Conv's.
  for (const char* gone : {"w", "bias", "gamma", "beta", "mean", "var", "k", "c", "d", "s"}) {
    EXPECT_EQ(graph->FindVariable(gone), nullptr) << gone;
  }
  EXPECT_EQ(c->inputs().size(), 3u);

  const auto after = RunGraph(*graph, input);
  EXPECT_LT(RelativeError(before.at(relu->name()), after.at(relu->name())), 1e-5);
}

TEST(FoldIntoConvTest, ConvWithoutBiasGetsOneAndAGraphOutputKeepsItsName) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 5, 5});
  Variable* conv = b.Op("Conv", "conv", {x, b.RandomParam("w", {3, 2, 1, 1}, 1)});
  Variable* add = b.Op("Add", "add", {conv, b.RandomParam("c", {1, 3, 1, 1}, 2)});
  b.Output(add);
  auto graph = b.Build();
  const Tensor input = RandomTensor({1, 2, 5, 5}, 3);
  const auto before = RunGraph(*graph, input);
  auto stats = FoldIntoConv(graph.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->elementwise, 1);
  ASSERT_EQ(graph->num_operations(), 1u);
  ASSERT_EQ(graph->outputs().size(), 1u);
  EXPECT_EQ(graph->outputs()[0]->name(), add->name());
  EXPECT_EQ(graph->outputs()[0]->producer()->type(), "Conv");
  const auto after = RunGraph(*graph, input);
  EXPECT_LT(RelativeError(before.at(add->name()), after.at(add->name())), 1e-6);
}

// PP-OCR det's head: ConvTranspose (no bias), its bias as an Add, then BatchNormalization. The
// output channels are weight axis 1 ([C_in, C_out, k, k]); a grouped ConvTranspose stays.
TEST(FoldIntoConvTest, ConvTransposeBiasAddAndBatchNormFoldOnOutputChannelAxis) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3, 4, 4});
  const AttributeList up = {{"strides", Attribute::Ints({2, 2})}};
  Variable* convt = b.Op("ConvTranspose", "convt", {x, b.RandomParam("w", {3, 5, 2, 2}, 1)}, up);
  Variable* add = b.Op("Add", "add", {convt, b.RandomParam("c", {5, 1, 1}, 2)});
  Variable* bn = b.Op("BatchNormalization", "bn",
                      {add, b.RandomParam("gamma", {5}, 3, 0.5f, 2.0f),
                       b.RandomParam("beta", {5}, 4), b.RandomParam("mean", {5}, 5),
                       b.RandomParam("var", {5}, 6, 0.1f, 3.0f)});
  Variable* grouped = b.Op("ConvTranspose", "grouped",
                           {bn, b.RandomParam("wg", {5, 1, 2, 2}, 7)},
                           {{"group", Attribute::Int(5)}});
  Variable* mul = b.Op("Mul", "mul", {grouped, b.RandomParam("k", {1, 5, 1, 1}, 8)});
  b.Output(mul);
  auto graph = b.Build();
  const Tensor input = RandomTensor({1, 3, 4, 4}, 9);
  const auto before = RunGraph(*graph, input);

  auto stats = FoldIntoConv(graph.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->batch_norms, 1);
  EXPECT_EQ(stats->elementwise, 1);  // the Add; the Mul after the grouped one stays
  EXPECT_EQ(CountTypes(*graph), (std::map<std::string, int>{{"ConvTranspose", 2}, {"Mul", 1}}));
  Operation* c = graph->FindOperation("convt");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->inputs().size(), 3u);
  EXPECT_EQ(c->input(2)->data()->shape(), (std::vector<int64_t>{5}));
  EXPECT_EQ(c->output(0)->name(), bn->name());
  const auto after = RunGraph(*graph, input);
  EXPECT_LT(RelativeError(before.at(mul->name()), after.at(mul->name())), 1e-5);
}

TEST(FoldIntoConvTest, LeavesWhatDoesNotFold) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 4, 4});
  auto conv = [&](const std::string& name, uint32_t seed) {
    return b.Op("Conv", name, {x, b.RandomParam(name + "_w", {4, 2, 1, 1}, seed)});
  };
  // Two consumers: the Conv output is needed as it is.
  Variable* shared = conv("shared", 1);
  Variable* m1 = b.Op("Mul", "m1", {shared, b.RandomParam("k1", {1, 4, 1, 1}, 2)});
  Variable* r1 = b.Op("Relu", "r1", {shared});
  // k - conv: the Conv is on the side that does not fold.
  Variable* sub = b.Op("Sub", "sub", {b.RandomParam("k2", {1, 4, 1, 1}, 3), conv("c2", 4)});
  // A 1-D [4] constant broadcasts over the last axis (width 4), not the channels.
  Variable* mul_w = b.Op("Mul", "mul_w", {conv("c3", 5), b.RandomParam("k3", {4}, 6)});
  // Mul by another activation, not a constant.
  Variable* c4 = conv("c4", 7);
  Variable* mul_x = b.Op("Mul", "mul_x", {c4, x});
  // Add of a full-size constant (varies per pixel).
  Variable* add_full = b.Op("Add", "add_full", {conv("c5", 8), b.RandomParam("k5", {1, 4, 4, 4}, 9)});
  for (Variable* v : {m1, r1, sub, mul_w, mul_x, add_full}) b.Output(v);
  auto graph = b.Build();
  const size_t ops = graph->num_operations();
  auto stats = FoldIntoConv(graph.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_FALSE(stats->changed());
  EXPECT_EQ(graph->num_operations(), ops);
}

TEST(FoldIntoConvTest, SharedWeightIsCopiedNotChanged) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 4, 4});
  Variable* w = b.RandomParam("w", {2, 2, 1, 1}, 1);
  Variable* a = b.Op("Conv", "a", {x, w});
  Variable* scaled = b.Op("Mul", "scale", {a, b.Param("two", Tensor::FromVector<float>({}, {2.0f}))});
  Variable* other = b.Op("Conv", "b", {x, w});
  b.Output(scaled);
  b.Output(other);
  auto graph = b.Build();
  const std::vector<float> original(w->data()->values<float>().begin(),
                                    w->data()->values<float>().end());
  auto stats = FoldIntoConv(graph.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->elementwise, 1);
  Variable* still = graph->FindVariable("w");
  ASSERT_NE(still, nullptr);
  EXPECT_EQ(graph->FindOperation("b")->input(1), still);
  const Variable* folded = graph->FindOperation("a")->input(1);
  ASSERT_NE(folded, still);
  for (size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(still->data()->values<float>()[i], original[i]);
    EXPECT_EQ(folded->data()->values<float>()[i], 2.0f * original[i]);
  }
}

// Max |w| of output channel i of a Conv weight [O, I, k...] and of input channel i.
double OutputChannelRange(const Tensor& w, int64_t i) {
  const int64_t per = w.num_elements() / w.shape()[0];
  double r = 0;
  for (int64_t j = 0; j < per; ++j) r = std::max(r, std::fabs(double(w.values<float>()[i * per + j])));
  return r;
}
double InputChannelRange(const Tensor& w, int64_t i) {
  const int64_t outputs = w.shape()[0], inputs = w.shape()[1];
  const int64_t area = w.num_elements() / (outputs * inputs);
  double r = 0;
  for (int64_t o = 0; o < outputs; ++o) {
    for (int64_t k = 0; k < area; ++k) {
      r = std::max(r, std::fabs(double(w.values<float>()[(o * inputs + i) * area + k])));
    }
  }
  return r;
}

TEST(EqualizeConvPairsTest, DepthwiseThenPointwiseGetsBalancedRangesAndTheSameOutput) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 6, 6});
  // Depthwise filters whose scales differ by 100x across channels.
  Tensor wd = RandomTensor({4, 1, 3, 3}, 1);
  for (int64_t c = 0; c < 4; ++c) {
    for (int64_t j = 0; j < 9; ++j) wd.values<float>()[c * 9 + j] *= std::pow(10.0f, c - 2.0f);
  }
  Variable* dw = b.Op("Conv", "dw", {x, b.Param("wd", std::move(wd)), b.RandomParam("bd", {4}, 2)},
                      {{"group", Attribute::Int(4)}, {"pads", Attribute::Ints({1, 1, 1, 1})}});
  Variable* pw = b.Op("Conv", "pw", {dw, b.RandomParam("wp", {3, 4, 1, 1}, 3)});
  // pw -> c2 is a pair too; c2 -> c3 is not: c2's output has two readers.
  Variable* c2 = b.Op("Conv", "c2", {pw, b.RandomParam("w2", {3, 3, 1, 1}, 4)});
  Variable* c3 = b.Op("Conv", "c3", {c2, b.RandomParam("w3", {2, 3, 1, 1}, 5)});
  Variable* relu = b.Op("Relu", "relu", {c2});
  b.Output(c3);
  b.Output(relu);
  auto graph = b.Build();
  const Tensor input = RandomTensor({1, 4, 6, 6}, 6);
  const auto before = RunGraph(*graph, input);
  const std::vector<float> w3(graph->FindVariable("w3")->data()->values<float>().begin(),
                              graph->FindVariable("w3")->data()->values<float>().end());

  auto stats = EqualizeConvPairs(graph.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->pairs, 2);
  const Tensor& wd_after = *graph->FindVariable("wd")->data();
  const Tensor& wp_after = *graph->FindVariable("wp")->data();
  const Tensor& w2_after = *graph->FindVariable("w2")->data();
  // One sweep in graph order: the last pair (pw -> c2) is exactly balanced; equalizing it
  // rescaled pw's filters, so dw -> pw is balanced only as of its own step.
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(OutputChannelRange(wp_after, c), InputChannelRange(w2_after, c),
                1e-5 * OutputChannelRange(wp_after, c)) << c;
  }
  // The depthwise output channels no longer span 10^4: within the spread of the pointwise ranges.
  double lo = 1e30, hi = 0;
  for (int64_t c = 0; c < 4; ++c) {
    lo = std::min(lo, OutputChannelRange(wd_after, c));
    hi = std::max(hi, OutputChannelRange(wd_after, c));
  }
  EXPECT_LT(hi / lo, 100.0);
  // The second pair is untouched.
  EXPECT_EQ(std::vector<float>(graph->FindVariable("w3")->data()->values<float>().begin(),
                               graph->FindVariable("w3")->data()->values<float>().end()),
            w3);
  const auto after = RunGraph(*graph, input);
  EXPECT_LT(RelativeError(before.at(c3->name()), after.at(c3->name())), 1e-5);
  EXPECT_LT(RelativeError(before.at(relu->name()), after.at(relu->name())), 1e-5);
}

}  // namespace
}  // namespace qalign
