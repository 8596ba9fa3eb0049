// Op kinds: one table of what qalign knows about each op type, read by dispatch, the alignment
// pass and the tests, so names and behaviour cannot drift apart.
#pragma once

#include <cstdint>
#include <string>

namespace qalign {

enum OpKind : uint32_t {
  // Reads only its input's shape (Shape, Size): not a consumer of the values, and its output is
  // a shape.
  kReadsOnlyShape = 1u << 0,
  // Seen in shape arithmetic (Shape -> Gather -> Cast -> Mul -> Concat -> Reshape): a float
  // tensor whose every use is such an op producing only shape tensors is a shape itself.
  kShapeArithmetic = 1u << 1,
  // Input 1 is a weight, input 2 (except MatMul) a bias: Conv, ConvTranspose, Gemm, MatMul.
  kWeightOp = 1u << 2,
  // Values pass through unchanged or are pooled: input 0 and the output(s) may share params.
  kPassThrough = 1u << 3,
  // Joins its inputs into its output: the inputs and the output may share params (Concat).
  kConcatLike = 1u << 4,
  // Combines inputs of one shape element by element: the inputs may share params (Add on some
  // accelerators).
  kElementwise = 1u << 5,
  // An activation a Conv/Gemm/MatMul output may fuse into (one quantization point after it).
  kFusableActivation = 1u << 6,
};

// The kinds of an op type (0 for an op type the table does not list).
uint32_t OpKindsOf(const std::string& op_type);
inline bool IsOpKind(const std::string& op_type, OpKind kind) {
  return (OpKindsOf(op_type) & kind) != 0;
}

// True if input `index` of an op of type `op_type` is a shape or index operand (never quantized).
bool IsShapeOperand(const std::string& op_type, int index);
// True if input `index` is a float operand that acts as an attribute (Clip min/max, Pad's
// constant value, normalization parameters): read by the kernel as plain numbers, not quantized.
bool IsFloatAttributeOperand(const std::string& op_type, int index);

}  // namespace qalign
