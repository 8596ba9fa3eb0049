// The op-kind table: the kinds dispatch and the alignment pass read, and the operand slots.
#include "quant/op_kinds.h"

#include <gtest/gtest.h>

#include "quant/target_profile.h"

namespace qalign {
namespace {

TEST(OpKindsTest, ShapeReadersAreShapeAndSizeOnly) {
  EXPECT_TRUE(IsOpKind("Shape", kReadsOnlyShape));
  EXPECT_TRUE(IsOpKind("Size", kReadsOnlyShape));
  EXPECT_FALSE(IsOpKind("Reshape", kReadsOnlyShape));
  EXPECT_EQ(OpKindsOf("NoSuchOp"), 0u);
}

// The original's pass-through list lost Slice and Dropout to a missing comma: every name of the
// table is its own entry.
TEST(OpKindsTest, SliceAndDropoutPassThrough) {
  for (const char* type : {"Slice", "Dropout", "MaxPool", "Reshape", "Resize", "Identity"}) {
    EXPECT_TRUE(IsOpKind(type, kPassThrough)) << type;
  }
  EXPECT_FALSE(IsOpKind("SliceDropout", kPassThrough));
  EXPECT_TRUE(IsOpKind("Concat", kConcatLike));
  EXPECT_TRUE(IsOpKind("Add", kElementwise));
  EXPECT_FALSE(IsOpKind("Add", kPassThrough));
}

// Every op type the table names is an ONNX operator (a typo would silently never match).
TEST(OpKindsTest, NamesAreKnownOnnxOps) {
  for (const char* type : {"Shape", "Size", "Cast", "Conv", "ConvTranspose", "Gemm", "MatMul",
                           "Relu", "Clip", "Concat", "Add", "Mean", "Tile", "Upsample"}) {
    EXPECT_TRUE(IsKnownOnnxOpType(type)) << type;
    EXPECT_NE(OpKindsOf(type), 0u) << type;
  }
}

TEST(OpKindsTest, OperandSlots) {
  EXPECT_TRUE(IsShapeOperand("Reshape", 1));
  EXPECT_FALSE(IsShapeOperand("Reshape", 0));
  EXPECT_TRUE(IsShapeOperand("Pad", 1));
  EXPECT_FALSE(IsShapeOperand("Pad", 2));  // the constant value is a float attribute
  EXPECT_TRUE(IsFloatAttributeOperand("Pad", 2));
  EXPECT_TRUE(IsFloatAttributeOperand("Clip", 1));
}

}  // namespace
}  // namespace qalign
