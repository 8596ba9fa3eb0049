// Tests for the graph IR: links, queries, edits, verifier and printer.
#include "ir/graph.h"

#include <gtest/gtest.h>

#include "testing/graph_builder.h"
#include "ir/printer.h"
#include "ir/verifier.h"

namespace qalign {
namespace {

using testing::GraphBuilder;

// x -> Conv1 -> Relu -> (Concat with x2) -> out ; Relu output also feeds MaxPool.
std::unique_ptr<Graph> SmallGraph() {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3, 8, 8});
  Variable* w = b.RandomParam("w", {4, 3, 3, 3}, 1);
  Variable* conv = b.Op("Conv", "conv1", {x, w}, {{"pads", Attribute::Ints({1, 1, 1, 1})}});
  Variable* relu = b.Op("Relu", "relu1", {conv});
  Variable* pool = b.Op("MaxPool", "pool1", {relu}, {{"kernel_shape", Attribute::Ints({1, 1})}});
  Variable* cat = b.Op("Concat", "cat1", {relu, pool}, {{"axis", Attribute::Int(1)}});
  b.Output(cat);
  return b.Build();
}

TEST(GraphTest, ProducerAndConsumerLinks) {
  auto g = SmallGraph();
  Variable* relu = g->FindVariable("relu1_out");
  ASSERT_NE(relu, nullptr);
  EXPECT_EQ(relu->producer()->name(), "relu1");
  ASSERT_EQ(relu->consumers().size(), 2u);
  EXPECT_EQ(relu->consumers()[0]->name(), "pool1");
  EXPECT_EQ(relu->consumers()[1]->name(), "cat1");
  EXPECT_EQ(g->FindOperation("conv1")->opset(), 13);
  EXPECT_TRUE(g->FindVariable("cat1_out")->is_graph_output());
  EXPECT_TRUE(g->FindVariable("x")->is_graph_input());
  EXPECT_TRUE(g->FindVariable("w")->is_parameter());
  EXPECT_EQ(g->ParameterCount(), 4 * 3 * 3 * 3);
  EXPECT_EQ(g->ParameterBytes(), 4 * 3 * 3 * 3 * 4);
}

TEST(GraphTest, UpstreamAndDownstream) {
  auto g = SmallGraph();
  Operation* cat = g->FindOperation("cat1");
  auto up = g->Upstream(cat);
  ASSERT_EQ(up.size(), 2u);
  EXPECT_EQ(up[0]->name(), "relu1");
  EXPECT_EQ(up[1]->name(), "pool1");
  auto down = g->Downstream(g->FindOperation("relu1"));
  ASSERT_EQ(down.size(), 2u);
  EXPECT_TRUE(g->Upstream(g->FindOperation("conv1")).empty());
}

TEST(GraphTest, TopologicalOrderIgnoresStorageOrder) {
  auto g = SmallGraph();
  auto ops = g->operations();
  std::reverse(ops.begin(), ops.end());
  ASSERT_TRUE(g->SetStorageOrder(ops).ok());
  auto order = g->TopologicalOrder();
  ASSERT_TRUE(order.ok());
  std::vector<std::string> names;
  for (auto* op : *order) names.push_back(op->name());
  EXPECT_EQ(names, (std::vector<std::string>{"conv1", "relu1", "pool1", "cat1"}));
}

TEST(GraphTest, CycleIsReportedWithAnOpName) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1});
  Variable* loop_back = *b.graph().AddVariable("b_out");
  Variable* a = b.Op("Add", "a", {x, loop_back});
  ASSERT_TRUE(b.graph().AddOperation("Relu", "b", {a}, {loop_back}).ok());
  b.Output(a);
  auto order = b.graph().TopologicalOrder();
  ASSERT_FALSE(order.ok());
  EXPECT_NE(order.status().message().find("cycle"), std::string::npos);
  EXPECT_FALSE(VerifyGraph(b.graph()).ok());
}

TEST(GraphTest, VerifierFindsDanglingInput) {
  GraphBuilder b;
  Variable* ghost = *b.graph().AddVariable("ghost");
  Variable* y = b.Op("Relu", "r", {ghost});
  b.Output(y);
  Status s = VerifyGraph(b.graph());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ghost"), std::string::npos);
  EXPECT_NE(s.message().find("Relu 'r'"), std::string::npos);
  EXPECT_TRUE(VerifyGraph(*SmallGraph()).ok());
}

TEST(GraphTest, SecondProducerIsRejected) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1});
  Variable* y = b.Op("Relu", "r1", {x});
  auto again = b.graph().AddOperation("Relu", "r2", {x}, {y});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already produced"), std::string::npos);
}

TEST(GraphTest, InsertOpOnOneEdgeByRewiring) {
  // Put an Identity between relu1 and cat1 only; pool1 keeps reading relu1 directly.
  auto g = SmallGraph();
  Variable* relu = g->FindVariable("relu1_out");
  Operation* cat = g->FindOperation("cat1");
  Variable* mid = *g->AddVariable(g->UniqueName("relu1_out"));
  ASSERT_TRUE(g->AddOperation("Identity", "id", {relu}, {mid}).ok());
  ASSERT_TRUE(g->SetInput(cat, 0, mid).ok());
  EXPECT_EQ(cat->input(0), mid);
  EXPECT_EQ(relu->consumers().size(), 2u);  // pool1 and id
  EXPECT_TRUE(VerifyGraph(*g).ok());
}

TEST(GraphTest, RemoveOperationAndReplaceUses) {
  auto g = SmallGraph();
  // Bypass the MaxPool: its consumers read the Relu output instead.
  Operation* pool = g->FindOperation("pool1");
  Variable* pool_out = pool->output(0);
  g->ReplaceAllUses(pool_out, pool->input(0));
  ASSERT_TRUE(g->RemoveOperation(pool).ok());
  ASSERT_TRUE(g->RemoveVariable(pool_out).ok());
  EXPECT_EQ(g->FindOperation("pool1"), nullptr);
  EXPECT_EQ(g->FindOperation("cat1")->input(1)->name(), "relu1_out");
  EXPECT_TRUE(VerifyGraph(*g).ok());
  EXPECT_EQ(g->num_operations(), 3u);
}

TEST(GraphTest, ReplaceAllUsesMovesGraphOutput) {
  auto g = SmallGraph();
  Variable* cat = g->FindVariable("cat1_out");
  Variable* relu = g->FindVariable("relu1_out");
  g->ReplaceAllUses(cat, relu);
  EXPECT_EQ(g->outputs()[0], relu);
  EXPECT_TRUE(relu->is_graph_output());
  EXPECT_FALSE(cat->is_graph_output());
}

TEST(GraphTest, PrinterIsCompactAndDeterministic) {
  auto g = SmallGraph();
  const std::string expected =
      "input %x: f32[1,3,8,8]\n"
      "%conv1_out = Conv(%x, @w:f32[4,3,3,3]) {pads=[1,1,1,1]}  # conv1\n"
      "%relu1_out = Relu(%conv1_out)  # relu1\n"
      "%pool1_out = MaxPool(%relu1_out) {kernel_shape=[1,1]}  # pool1\n"
      "%cat1_out = Concat(%relu1_out, %pool1_out) {axis=1}  # cat1\n"
      "output %cat1_out\n";
  EXPECT_EQ(PrintGraph(*g), expected);
}

TEST(GraphTest, ShapeToStringShowsSymbols) {
  Shape s;
  s.rank_known = true;
  s.dims = {Dim{1, ""}, Dim{-1, "batch"}, Dim{-1, ""}};
  EXPECT_EQ(s.ToString(), "[1,batch,?]");
  EXPECT_FALSE(s.fully_known());
  EXPECT_EQ(Shape::Unknown().ToString(), "?");
}

}  // namespace
}  // namespace qalign
