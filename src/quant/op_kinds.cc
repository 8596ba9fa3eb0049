// Op kinds: the table of op types qalign knows, and which operands are shapes or attributes.
#include "quant/op_kinds.h"

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <unordered_map>

namespace qalign {

namespace {

struct OpKindEntry {
  const char* op_type;
  uint32_t kinds;
};

// One row per op type. Each name is its own element: the original implementation's list of
// pass-through ops lost Slice and Dropout to a missing comma (see the design doc).
constexpr OpKindEntry kOpKinds[] = {
    {"Abs", kShapeArithmetic},
    {"Add", kShapeArithmetic | kElementwise},
    {"AveragePool", kPassThrough},
    {"Cast", kShapeArithmetic},
    {"Ceil", kShapeArithmetic},
    {"Clip", kFusableActivation},
    {"Concat", kShapeArithmetic | kConcatLike},
    {"Conv", kWeightOp},
    {"ConvTranspose", kWeightOp},
    {"DepthToSpace", kPassThrough},
    {"Div", kShapeArithmetic},
    {"Dropout", kPassThrough},
    {"Equal", kShapeArithmetic},
    {"Expand", kShapeArithmetic | kPassThrough},
    {"Flatten", kPassThrough},
    {"Floor", kShapeArithmetic},
    {"Gather", kShapeArithmetic | kPassThrough},
    {"Gemm", kWeightOp},
    {"GlobalAveragePool", kPassThrough},
    {"GlobalMaxPool", kPassThrough},
    {"Identity", kShapeArithmetic | kPassThrough},
    {"MatMul", kWeightOp},
    {"Max", kShapeArithmetic | kElementwise},
    {"MaxPool", kPassThrough},
    {"Mean", kElementwise},
    {"Min", kShapeArithmetic | kElementwise},
    {"Mod", kShapeArithmetic},
    {"Mul", kShapeArithmetic | kElementwise},
    {"Neg", kShapeArithmetic},
    {"Pad", kPassThrough},
    {"Range", kShapeArithmetic},
    {"ReduceProd", kShapeArithmetic},
    {"Relu", kFusableActivation},
    {"Reshape", kShapeArithmetic | kPassThrough},
    {"Resize", kPassThrough},
    {"Round", kShapeArithmetic},
    {"Shape", kReadsOnlyShape},
    {"Size", kReadsOnlyShape},
    {"Slice", kShapeArithmetic | kPassThrough},
    {"SpaceToDepth", kPassThrough},
    {"Split", kPassThrough},
    {"Sqrt", kShapeArithmetic},
    {"Squeeze", kShapeArithmetic | kPassThrough},
    {"Sub", kShapeArithmetic | kElementwise},
    {"Sum", kElementwise},
    {"Tile", kPassThrough},
    {"Transpose", kPassThrough},
    {"Unsqueeze", kShapeArithmetic | kPassThrough},
    {"Upsample", kPassThrough},
    {"Where", kShapeArithmetic},
};

struct OperandSlots {
  const char* op_type;
  std::initializer_list<int> inputs;
};

// Inputs that carry shapes, indices, axes or counts: never quantized, whatever their dtype.
constexpr OperandSlots kShapeOperands[] = {
    {"Reshape", {1}},
    {"Slice", {1, 2, 3, 4}},
    {"Gather", {1}},
    {"GatherElements", {1}},
    {"GatherND", {1}},
    {"ScatterElements", {1}},
    {"ScatterND", {1}},
    {"Resize", {1, 2, 3}},
    {"Upsample", {1}},
    {"Expand", {1}},
    {"Tile", {1}},
    {"ConstantOfShape", {0}},
    {"Range", {0, 1, 2}},
    {"Pad", {1, 3}},
    {"Split", {1}},
    {"Squeeze", {1}},
    {"Unsqueeze", {1}},
    {"ReduceSum", {1}},
    {"ReduceMean", {1}},
    {"ReduceMax", {1}},
    {"ReduceMin", {1}},
    {"ReduceProd", {1}},
    {"ReduceL1", {1}},
    {"ReduceL2", {1}},
    {"ReduceLogSum", {1}},
    {"ReduceLogSumExp", {1}},
    {"ReduceSumSquare", {1}},
    {"TopK", {1}},
    {"OneHot", {0, 1}},
    {"CumSum", {1}},
    {"Trilu", {1}},
    {"Compress", {1}},
    {"RoiAlign", {2}},
    {"NonMaxSuppression", {2, 3, 4}},
    {"Where", {0}},
    {"Dropout", {2}},
};

// Float inputs that act as attributes: read by the kernel as plain numbers, not quantized.
constexpr OperandSlots kFloatAttributeOperands[] = {
    {"Clip", {1, 2}},
    {"Pad", {2}},
    {"Dropout", {1}},
    {"BatchNormalization", {1, 2, 3, 4}},
    {"InstanceNormalization", {1, 2}},
    {"LayerNormalization", {1, 2}},
};

bool InSlots(const OperandSlots* begin, const OperandSlots* end, const std::string& op_type,
             int index) {
  for (const OperandSlots* e = begin; e != end; ++e) {
    if (op_type == e->op_type) {
      return std::find(e->inputs.begin(), e->inputs.end(), index) != e->inputs.end();
    }
  }
  return false;
}

}  // namespace

bool IsFloatAttributeOperand(const std::string& op_type, int index) {
  return InSlots(std::begin(kFloatAttributeOperands), std::end(kFloatAttributeOperands), op_type,
                 index);
}

uint32_t OpKindsOf(const std::string& op_type) {
  static const std::unordered_map<std::string, uint32_t> kByType = [] {
    std::unordered_map<std::string, uint32_t> by_type;
    for (const OpKindEntry& e : kOpKinds) by_type.emplace(e.op_type, e.kinds);
    return by_type;
  }();
  auto it = kByType.find(op_type);
  return it == kByType.end() ? 0 : it->second;
}

bool IsShapeOperand(const std::string& op_type, int index) {
  return InSlots(std::begin(kShapeOperands), std::end(kShapeOperands), op_type, index);
}

}  // namespace qalign
