// Tests of the union-find and the TQC table: merges, reads through the root, states, no cycles.
#include "quant/quant_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "testing/graph_builder.h"

namespace qalign {
namespace {

// ---------------------------------------------------------------- union-find

TEST(UnionFindTest, SingletonsAreTheirOwnRoots) {
  UnionFind uf;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(uf.Add(), i);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(uf.Find(i), i);
    EXPECT_EQ(uf.parent(i), i);
    EXPECT_EQ(uf.rank(i), 0);
  }
  EXPECT_FALSE(uf.Same(0, 1));
}

TEST(UnionFindTest, UnionMergesAndReportsRepeats) {
  UnionFind uf;
  for (int i = 0; i < 6; ++i) uf.Add();
  EXPECT_TRUE(uf.Union(0, 1));
  EXPECT_TRUE(uf.Union(2, 3));
  EXPECT_FALSE(uf.Union(1, 0));
  EXPECT_TRUE(uf.Same(0, 1));
  EXPECT_FALSE(uf.Same(1, 2));
  EXPECT_TRUE(uf.Union(1, 3));
  EXPECT_TRUE(uf.Same(0, 2));
  EXPECT_FALSE(uf.Union(0, 3));
  EXPECT_FALSE(uf.Same(4, 0));
  EXPECT_EQ(uf.FindNoCompress(5), 5);
}

TEST(UnionFindTest, UnionLinksRootToRootByRank) {
  UnionFind uf;
  for (int i = 0; i < 4; ++i) uf.Add();
  ASSERT_TRUE(uf.Union(0, 1));  // equal ranks: one root gains rank 1
  const int32_t r01 = uf.Find(0);
  EXPECT_EQ(uf.rank(r01), 1);
  // Uniting a non-root member (the non-root of {0,1}) with 2 must re-point 2 (rank 0) under the
  // root of {0,1}, never re-point the member itself (the original implementation's bug).
  const int32_t member = r01 == 0 ? 1 : 0;
  ASSERT_TRUE(uf.Union(2, member));
  EXPECT_EQ(uf.parent(2), r01);
  EXPECT_EQ(uf.parent(member), r01);
  EXPECT_EQ(uf.rank(r01), 1);
  // {3} joined with member 2: 3 hangs under r01.
  ASSERT_TRUE(uf.Union(member, 3));
  EXPECT_EQ(uf.parent(3), r01);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(uf.Find(i), r01);
}

TEST(UnionFindTest, PathCompressionPointsAtTheRoot) {
  UnionFind uf;
  for (int i = 0; i < 8; ++i) uf.Add();
  // Build a tree of rank 3: pairs, then pairs of pairs, then the two halves.
  uf.Union(0, 1); uf.Union(2, 3); uf.Union(4, 5); uf.Union(6, 7);
  uf.Union(0, 2); uf.Union(4, 6);
  uf.Union(0, 4);
  const int32_t root = uf.FindNoCompress(0);
  EXPECT_EQ(uf.rank(root), 3);
  // Some node is 3 links away from the root before compression.
  int deepest = 0;
  for (int i = 0; i < 8; ++i) {
    int depth = 0;
    for (int32_t x = i; uf.parent(x) != x; x = uf.parent(x)) ++depth;
    deepest = std::max(deepest, depth);
  }
  EXPECT_EQ(deepest, 3);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(uf.Find(i), root);
    EXPECT_EQ(uf.parent(i), root) << "node " << i << " not compressed";
  }
}

// Random unions on n nodes: every parent chain reaches a root within log2(n) + 1 steps (no cycle
// can exist, and union by rank bounds the depth), and Find agrees with a naive labelling.
TEST(UnionFindTest, RandomUnionsFormNoCycleAndStayShallow) {
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    const int n = 2000;
    UnionFind uf;
    for (int i = 0; i < n; ++i) uf.Add();
    std::vector<int> label(n);
    std::iota(label.begin(), label.end(), 0);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> pick(0, n - 1);
    for (int k = 0; k < 1500; ++k) {
      const int a = pick(rng), b = pick(rng);
      const bool merged = uf.Union(a, b);
      EXPECT_EQ(merged, label[a] != label[b]);
      if (label[a] != label[b]) {
        const int from = label[b], to = label[a];
        for (int& l : label) if (l == from) l = to;
      }
      if (k % 3 == 0) uf.Find(pick(rng));  // interleave compressing reads
    }
    const int bound = static_cast<int>(std::floor(std::log2(n))) + 1;
    for (int i = 0; i < n; ++i) {
      int steps = 0;
      int32_t x = i;
      while (uf.parent(x) != x && steps <= bound) { x = uf.parent(x); ++steps; }
      ASSERT_LE(steps, bound) << "chain from " << i << " too long or cyclic (seed " << seed << ")";
      EXPECT_EQ(uf.FindNoCompress(i), x);
    }
    for (int i = 0; i < n; ++i) {
      for (int j : {0, n / 2, n - 1, (i * 7) % n}) {
        EXPECT_EQ(uf.Find(i) == uf.Find(j), label[i] == label[j]);
      }
    }
  }
}

// The partition depends only on the set of unions, not on their order.
TEST(UnionFindTest, UnionOrderDoesNotChangeThePartition) {
  const int n = 300;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, n - 1);
  std::vector<std::pair<int, int>> pairs;
  for (int k = 0; k < 200; ++k) pairs.emplace_back(pick(rng), pick(rng));

  auto partition = [&](const std::vector<std::pair<int, int>>& order) {
    UnionFind uf;
    for (int i = 0; i < n; ++i) uf.Add();
    for (auto [a, b] : order) uf.Union(a, b);
    // Canonical form: each node labelled by the smallest node in its set.
    std::map<int32_t, int> smallest;
    for (int i = 0; i < n; ++i) smallest.try_emplace(uf.Find(i), i);
    std::vector<int> out(n);
    for (int i = 0; i < n; ++i) out[i] = smallest[uf.Find(i)];
    return out;
  };
  const std::vector<int> reference = partition(pairs);
  EXPECT_GT(std::set<int>(reference.begin(), reference.end()).size(), 1u);
  for (uint32_t seed = 0; seed < 5; ++seed) {
    auto shuffled = pairs;
    std::mt19937 shuffle_rng(100 + seed);
    std::shuffle(shuffled.begin(), shuffled.end(), shuffle_rng);
    for (auto& [a, b] : shuffled) if (shuffle_rng() & 1) std::swap(a, b);
    EXPECT_EQ(partition(shuffled), reference) << "seed " << seed;
  }
}

// ---------------------------------------------------------------- names

TEST(QuantNamesTest, PolicyStateRoleAndPortNames) {
  QuantPolicy policy;
  EXPECT_EQ(policy.ToString(), "per_tensor|asymmetric|linear");
  policy.flags = kPerChannel | kSymmetric | kLinear | kPowerOf2;
  EXPECT_EQ(policy.ToString(), "per_channel|symmetric|linear|power_of_2");
  EXPECT_STREQ(QuantStateName(QuantState::kPassiveInit), "PASSIVE_INIT");
  EXPECT_STREQ(QuantStateName(QuantState::kSoi), "SOI");
  EXPECT_STREQ(TensorRoleName(TensorRole::kBias), "bias");
  EXPECT_FALSE(IsQuantizedState(QuantState::kFp32));
  EXPECT_FALSE(IsQuantizedState(QuantState::kSoi));
  EXPECT_TRUE(IsQuantizedState(QuantState::kOverlapped));
  Port port;
  port.is_input = true;
  port.index = 0;
  EXPECT_EQ(port.ToString(), "input:0");
  port.is_input = false;
  port.index = 1;
  EXPECT_EQ(port.ToString(), "output:1");
  QuantScheme scheme;
  EXPECT_EQ(scheme.ToString(), "int8[-128,127] per_tensor|asymmetric|linear");
  for (QuantPolicyFlag f : {kPerTensor, kPerChannel, kSymmetric, kAsymmetric, kLinear, kFloating,
                            kPowerOf2}) {
    auto parsed = ParsePolicyFlag(PolicyFlagName(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_FALSE(ParsePolicyFlag("symetric").ok());
  EXPECT_EQ(*ParseRoundingMode("half_up"), RoundingMode::kHalfUp);
  EXPECT_FALSE(ParseRoundingMode("up").ok());
}

TEST(QuantNamesTest, ValidateScheme) {
  QuantScheme s;
  EXPECT_TRUE(ValidateScheme(s).ok());
  s.quant_min = -127;
  EXPECT_TRUE(ValidateScheme(s).ok());
  s.quant_min = 0; s.quant_max = 255;
  EXPECT_TRUE(ValidateScheme(s).ok());
  s.quant_max = 256;
  EXPECT_FALSE(ValidateScheme(s).ok());   // does not fit 8 bits
  s.quant_max = 15;
  EXPECT_FALSE(ValidateScheme(s).ok());   // a 4-bit range
  s.quant_min = 5; s.quant_max = 5;
  EXPECT_FALSE(ValidateScheme(s).ok());   // empty
  s = QuantScheme();
  s.policy.flags = kPerTensor | kSymmetric | kAsymmetric | kLinear;
  EXPECT_FALSE(ValidateScheme(s).ok());
  s.policy.flags = kSymmetric | kLinear;
  EXPECT_FALSE(ValidateScheme(s).ok());
  s = QuantScheme();
  s.num_bits = 32; s.quant_min = INT64_C(-2147483648); s.quant_max = 2147483647;
  EXPECT_TRUE(ValidateScheme(s).ok());
}

// ---------------------------------------------------------------- the table

class TableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Variable* x = builder_.Input("x", {1, 4});
    a_ = builder_.Op("Relu", "a", {x});
    b_ = builder_.Op("Relu", "b", {x});
    cat_ = builder_.Op("Concat", "cat", {a_, b_}, {{"axis", Attribute::Int(1)}});
    pool_ = builder_.Op("MaxPool", "pool", {cat_});
  }
  TQC* Make(const std::string& op_name, bool is_input, int index,
            QuantState state = QuantState::kInitial, QuantScheme scheme = QuantScheme()) {
    Operation* op = builder_.graph().FindOperation(op_name);
    Port port{op, is_input, index, is_input ? op->input(index) : op->output(index)};
    return table_.Create(port, TensorRole::kActivation, scheme, state);
  }

  testing::GraphBuilder builder_;
  Variable *a_ = nullptr, *b_ = nullptr, *cat_ = nullptr, *pool_ = nullptr;
  QuantConfigTable table_;
};

TEST_F(TableTest, CreateFillsPerOperationConfigsInInsertionOrder) {
  TQC* cat_in1 = Make("cat", true, 1);
  TQC* a_out = Make("a", false, 0);
  TQC* cat_out = Make("cat", false, 0);
  EXPECT_EQ(cat_in1->id, 0);
  EXPECT_EQ(a_out->id, 1);
  EXPECT_EQ(table_.size(), 3u);
  EXPECT_EQ(table_.Get(2), cat_out);
  auto configs = table_.op_configs();
  ASSERT_EQ(configs.size(), 2u);
  EXPECT_EQ(configs[0]->op->name(), "cat");
  EXPECT_EQ(configs[1]->op->name(), "a");
  ASSERT_EQ(configs[0]->inputs.size(), 2u);
  EXPECT_EQ(configs[0]->inputs[0], nullptr);
  EXPECT_EQ(configs[0]->inputs[1], cat_in1);
  EXPECT_EQ(configs[0]->outputs[0], cat_out);
  EXPECT_EQ(table_.FindOp(builder_.graph().FindOperation("pool")), nullptr);
  EXPECT_EQ(DescribeTqc(*cat_in1), "Concat 'cat' input:1 (tensor 'b_out')");
}

TEST_F(TableTest, LinkMergesRootToRootAndReadsThroughTheRoot) {
  TQC* pool_in = Make("pool", true, 0);
  TQC* pool_out = Make("pool", false, 0);
  TQC* cat_out = Make("cat", false, 0);
  TQC* cat_in0 = Make("cat", true, 0);
  TQC* cat_in1 = Make("cat", true, 1);
  // MaxPool input<->output first, then the Concat's ports: the earlier link must survive.
  ASSERT_TRUE(*table_.Link(pool_in, pool_out));
  ASSERT_TRUE(*table_.Link(cat_out, cat_in0));
  ASSERT_TRUE(*table_.Link(cat_in1, cat_out));
  ASSERT_TRUE(*table_.Link(cat_out, pool_in));
  EXPECT_FALSE(*table_.Link(pool_out, cat_in1));  // already one group
  for (TQC* t : {pool_in, pool_out, cat_out, cat_in0, cat_in1}) {
    EXPECT_TRUE(table_.SameGroup(t, pool_out));
  }
  table_.SetGroupParams(cat_in1, std::vector<float>{0.5f}, std::vector<int64_t>{3});
  for (TQC* t : {pool_in, pool_out, cat_out, cat_in0, cat_in1}) {
    EXPECT_EQ(table_.scale(t), std::vector<float>{0.5f});
    EXPECT_EQ(table_.zero_point(t), std::vector<int64_t>{3});
  }
  TQC* root = table_.Root(cat_in0);
  EXPECT_EQ(root->scale, std::vector<float>{0.5f});
  // Only the root holds params; the other members' own slots stay empty.
  int with_params = 0;
  for (TQC* t : table_.all()) with_params += !t->scale.empty();
  EXPECT_EQ(with_params, 1);
  auto groups = table_.Groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].size(), 5u);
  EXPECT_EQ(table_.Members(pool_out).size(), 5u);
}

TEST_F(TableTest, StatesAfterMerges) {
  TQC* x = Make("cat", true, 0);
  TQC* y = Make("cat", true, 1);
  TQC* z = Make("cat", false, 0);
  TQC* w = Make("pool", false, 0);
  ASSERT_TRUE(table_.Link(x, y).ok());
  TQC* root = table_.Root(x);
  TQC* other = root == x ? y : x;
  EXPECT_EQ(root->state, QuantState::kInitial);
  EXPECT_EQ(other->state, QuantState::kPassiveInit);  // root has no params yet
  table_.SetGroupParams(other, std::vector<float>{0.25f}, std::vector<int64_t>{0});
  EXPECT_EQ(root->state, QuantState::kActivated);
  EXPECT_EQ(other->state, QuantState::kPassive);
  // A new member joining a calibrated group becomes PASSIVE at once.
  ASSERT_TRUE(table_.Link(z, x).ok());
  EXPECT_EQ(table_.Root(z), root);
  EXPECT_EQ(z->state, QuantState::kPassive);
  EXPECT_EQ(root->state, QuantState::kActivated);
  // Merge with another group {w} whose root has its own params: the absorbed side turns passive.
  table_.SetGroupParams(w, std::vector<float>{2.0f}, std::vector<int64_t>{1});
  ASSERT_TRUE(table_.Link(w, y).ok());
  int activated = 0, passive = 0;
  for (TQC* t : table_.Members(w)) {
    activated += t->state == QuantState::kActivated;
    passive += t->state == QuantState::kPassive;
  }
  EXPECT_EQ(activated, 1);
  EXPECT_EQ(passive, 3);
  EXPECT_EQ(table_.Root(w)->state, QuantState::kActivated);
}

TEST_F(TableTest, BakedAndOverlappedMembersKeepTheirKind) {
  TQC* baked = Make("cat", true, 0, QuantState::kBaked);
  TQC* overlapped = Make("cat", true, 1, QuantState::kOverlapped);
  TQC* plain = Make("cat", false, 0);
  TQC* plain2 = Make("pool", true, 0);
  ASSERT_TRUE(table_.Link(plain, plain2).ok());  // rank 1: absorbs the next singletons
  ASSERT_TRUE(table_.Link(plain, baked).ok());
  ASSERT_TRUE(table_.Link(plain, overlapped).ok());
  EXPECT_EQ(baked->state, QuantState::kPassiveBaked);
  EXPECT_EQ(overlapped->state, QuantState::kOverlapped);
}

TEST_F(TableTest, LinkRefusesFp32SoiFloatingPerChannelAndSchemeMismatch) {
  TQC* ok = Make("cat", false, 0);
  TQC* fp32 = Make("cat", true, 0, QuantState::kFp32);
  TQC* soi = Make("cat", true, 1, QuantState::kSoi);
  QuantScheme per_channel;
  per_channel.policy.flags = kPerChannel | kSymmetric | kLinear;
  TQC* pc = Make("pool", true, 0, QuantState::kInitial, per_channel);
  QuantScheme floating;
  floating.policy.flags = kPerTensor | kAsymmetric | kFloating;
  TQC* fl = Make("pool", false, 0, QuantState::kInitial, floating);
  QuantScheme u8;
  u8.quant_min = 0;
  u8.quant_max = 255;
  TQC* unsigned8 = Make("a", false, 0, QuantState::kInitial, u8);

  auto r = table_.Link(ok, fp32);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("FP32"), std::string::npos) << r.status().message();
  r = table_.Link(soi, ok);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("SOI"), std::string::npos);
  r = table_.Link(ok, pc);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("per-channel"), std::string::npos);
  r = table_.Link(ok, fl);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("floating"), std::string::npos);
  r = table_.Link(ok, unsigned8);
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  // Names both ports: op, port and tensor of each, and both schemes.
  EXPECT_NE(msg.find("Concat 'cat' output:0 (tensor 'cat_out')"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Relu 'a' output:0 (tensor 'a_out')"), std::string::npos) << msg;
  EXPECT_NE(msg.find("uint8[0,255]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("int8[-128,127]"), std::string::npos) << msg;
  // Nothing was merged by the refused links.
  EXPECT_EQ(table_.Groups().size(), table_.size());
  for (TQC* t : {fp32, soi, pc, fl, unsigned8}) EXPECT_EQ(t->state == QuantState::kPassiveInit, false);
}

TEST_F(TableTest, GroupsAreOrderedByRootId) {
  std::vector<TQC*> t;
  for (int i = 0; i < 6; ++i) t.push_back(Make(i % 2 ? "cat" : "pool", false, 0));
  ASSERT_TRUE(table_.Link(t[5], t[3]).ok());
  ASSERT_TRUE(table_.Link(t[4], t[0]).ok());
  auto groups = table_.Groups();
  ASSERT_EQ(groups.size(), 4u);
  std::vector<int32_t> roots;
  size_t members = 0;
  for (auto& g : groups) {
    ASSERT_FALSE(g.empty());
    roots.push_back(table_.Root(g[0])->id);
    for (TQC* m : g) EXPECT_EQ(table_.Root(m)->id, roots.back());
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end(),
                               [](TQC* a, TQC* b) { return a->id < b->id; }));
    members += g.size();
  }
  EXPECT_EQ(members, 6u);
  EXPECT_TRUE(std::is_sorted(roots.begin(), roots.end()));
}

// Many random links through the table: the member rings, the union-find and the states agree.
TEST_F(TableTest, RandomLinksKeepRingsAndUnionFindConsistent) {
  std::vector<TQC*> t;
  for (int i = 0; i < 400; ++i) t.push_back(Make("pool", false, 0));
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pick(0, 399);
  for (int k = 0; k < 300; ++k) ASSERT_TRUE(table_.Link(t[pick(rng)], t[pick(rng)]).ok());
  size_t total = 0;
  for (auto& g : table_.Groups()) {
    EXPECT_EQ(table_.Members(g[0]), g);
    total += g.size();
    TQC* root = table_.Root(g[0]);
    for (TQC* m : g) {
      EXPECT_EQ(m->state, m == root ? QuantState::kInitial : QuantState::kPassiveInit);
    }
  }
  EXPECT_EQ(total, 400u);
}

// ---------------------------------------------------------------- storage

// Many TQCs: ids stay dense, pointers stay put as the table grows, and a moved table keeps them.
TEST(TableStorageTest, TqcsKeepIdsAndAddressesAndSurviveAMove) {
  testing::GraphBuilder builder;
  Variable* x = builder.Input("x", {1, 4});
  Variable* y = builder.Op("Relu", "relu", {x});
  Operation* relu = y->producer();
  auto table = std::make_unique<QuantConfigTable>();
  QuantScheme scheme;
  constexpr int kCount = 70'000;
  std::vector<TQC*> made;
  for (int i = 0; i < kCount; ++i) {
    // Ports without an op, so the op's config is not resized 70k times.
    Port port{nullptr, i % 2 == 0, i, i % 2 == 0 ? x : y};
    made.push_back(table->Create(port, TensorRole::kActivation, scheme));
    made.back()->stats.min = static_cast<float>(i);
  }
  table->Create(Port{relu, true, 0, x}, TensorRole::kActivation, scheme);
  ASSERT_EQ(table->size(), static_cast<size_t>(kCount) + 1);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(table->Get(i), made[static_cast<size_t>(i)]) << i;
    ASSERT_EQ(made[static_cast<size_t>(i)]->id, i);
  }
  ASSERT_TRUE(table->Link(made[100], made[kCount - 1]).ok());
  QuantConfigTable moved = std::move(*table);
  table.reset();  // the moved-from table frees nothing the new one holds
  EXPECT_EQ(moved.size(), static_cast<size_t>(kCount) + 1);
  EXPECT_EQ(moved.Get(kCount - 1)->stats.min, static_cast<float>(kCount - 1));
  EXPECT_TRUE(moved.SameGroup(moved.Get(100), moved.Get(kCount - 1)));
  EXPECT_EQ(moved.FindOp(relu)->inputs[0], moved.Get(kCount));
}

// A scale float cannot hold (2^128 after power-of-2 rounding) is an error naming the range.
TEST(ComputeParamsTest, ScaleFloatCannotHoldIsAnError) {
  QuantScheme narrow;
  narrow.policy.flags = kPerTensor | kAsymmetric | kLinear | kPowerOf2;
  narrow.num_bits = 2;
  narrow.quant_min = -2;
  narrow.quant_max = 1;
  float s = 0;
  int64_t z = 0;
  Status status = ComputeParams(narrow, -3e38f, 3e38f, &s, &z);
  EXPECT_NE(status.message().find("which float cannot hold"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace qalign
