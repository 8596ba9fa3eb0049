// Target profiles: a hardware/runtime's quantization schemes and alignment rules, loaded from JSON.
//
// A target (TFLite int8, ONNX Runtime QDQ, TensorRT int8, QNN, ...) is data, not code: a file
// targets/<name>.json that users can copy and edit. The format (every key is checked; an unknown
// key, op type, rule, method, flag or a bad range is an error naming the file and the key):
//
//   {
//     "name": "tflite-int8",                       // required; the profile's name
//     "notes": ["TFLite int8 spec: https://..."],  // required; a string or a list of strings:
//                                                  //   where each rule comes from
//     "schemes": {                                 // required: activation, weight and bias
//       "activation": {"num_bits": 8, "quant_min": -128, "quant_max": 127,
//                      "policy": ["per_tensor", "asymmetric", "linear"],
//                      "rounding": "half_even"},   // rounding optional (default half_even)
//       "weight":     {...},                       // per_channel weights: the axis follows the op
//       "bias":       {...},                       //   (Conv 0, ConvTranspose 1, Gemm by transB,
//                                                  //    MatMul last)
//       "activation16": {"num_bits": 16, ...}      // optional: 16-bit activations (uint16 or
//     },                                           //   int16 range, per_tensor, linear, the
//                                                  //   8-bit scheme's symmetry; no fixed_output)
//     "quantized_ops": ["Conv", "Relu", ...],      // ops whose activation ports are quantized;
//                                                  //   ops named in op_classes are added to it
//     "op_classes": {                              // named classes of ops sharing one rule
//       "concat":  {"ops": ["Concat"], "rule": "share_inputs_and_output", "method": "output"},
//       "pooling": {"ops": ["MaxPool"], "rule": "share_input_output", "method": "input"},
//       "sigmoid": {"ops": ["Softmax", "Sigmoid"], "rule": "fixed_output",
//                   "scale": 0.00390625, "zero_point": -128}
//     },
//     "per_tensor_weight_ops": ["MatMul"],         // optional: these ops' weights are
//                                                  //   per-tensor under a per_channel scheme
//     "force_overlap": true,                       // optional (default true), see alignment.md
//     "fuse_activations": true,                    // optional (default true)
//     "standalone_activations": true,              // optional (default true): false runs a
//                                                  //   Relu / Clip not fused into a Conv in float
//     "quantize_bias": true,                       // optional (default true): false keeps biases
//                                                  //   float (TensorRT)
//     "quantize_constant_adds": true,              // optional (default true): false runs an Add
//                                                  //   or Sub of a constant in float (TensorRT)
//     "hardswish_op": false                        // optional (default false): export a
//                                                  //   decomposed HardSwish as one op (opset 14)
//   }
//
// policy flags: per_tensor | per_channel, symmetric | asymmetric, linear | floating, power_of_2.
// num_bits must match the range: it fits num_bits and needs all of them ([0,255] is 8 bits).
// rules:   share_inputs_and_output  all inputs and all outputs share params (Concat, Max, Min)
//          share_input_output       input 0 and the output(s) share (pooling, Reshape, Split, ...)
//          share_inputs             all inputs share, the output keeps its own (Add on some DSPs)
//          fixed_output             the output has fixed "scale" and "zero_point" (Softmax)
// methods: none, input, output, large, optimal (see docs/alignment.md); default
//          output; "method" is not allowed on fixed_output rules. An op type may appear in one
//          class only; every op type must be a known ONNX operator.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qalign/status.h"
#include "quant/quant_config.h"

namespace qalign {

enum class AlignMethod { kNone, kInput, kOutput, kLarge, kOptimal };
const char* AlignMethodName(AlignMethod method);  // "none", "input", "output", "large", "optimal"
StatusOr<AlignMethod> ParseAlignMethod(const std::string& name);

enum class RuleKind {
  kShareInputsAndOutput,  // every input and every output
  kShareInputOutput,      // input 0 and output(s)
  kShareInputs,           // every input; the output keeps its own params
  kFixedOutput,           // output params fixed by the target
};
// "share_inputs_and_output", "share_input_output", "share_inputs", "fixed_output"
const char* RuleKindName(RuleKind kind);
StatusOr<RuleKind> ParseRuleKind(const std::string& name);

struct AlignmentRule {
  std::string op_type;
  RuleKind kind;
  AlignMethod method = AlignMethod::kOutput;
  float fixed_scale = 0;  // kFixedOutput only
  int64_t fixed_zero_point = 0;
  std::string op_class;  // the op class in the profile that gave this rule (for reports)
};

struct TargetProfile {
  std::string name, notes, source_path;
  QuantScheme activation, weight, bias;  // weight per-channel on the op's output-channel axis
  // Optional 16-bit activation scheme ("activation16"): ops chosen for it (mixed precision,
  // --int16) quantize their activation ports, and every group those ports join, at 16 bits
  // instead of keeping them FP32 (A16W8 on Qualcomm's HTP).
  std::optional<QuantScheme> activation16;
  std::vector<std::string> quantized_op_types;  // ops whose activation ports get TQCs
  std::vector<AlignmentRule> rules;             // one per op type, in file order
  // Op types whose weights are per-tensor although the weight scheme is per_channel (QNN HTP:
  // per-channel Conv weights, per-tensor MatMul and Gemm weights).
  std::vector<std::string> per_tensor_weight_ops;
  bool force_overlap = true;
  // Conv/ConvTranspose/Gemm/MatMul followed by Relu/Clip: one quant point after the activation.
  bool fuse_activations = true;
  // Relu / Clip that no Conv / Gemm / MatMul absorbs are quantized (true) or run in float.
  bool standalone_activations = true;
  // Biases of Conv / ConvTranspose / Gemm as int32 (scale = input_scale * weight_scale) or, when
  // false, left float for the runtime to handle (TensorRT's explicit quantization keeps them so).
  bool quantize_bias = true;
  // An Add / Sub with a constant operand (a shift: a bias after a MatMul, a LayerNorm's beta, a
  // learnable affine block's offset) is quantized (true) or runs in float (false: TensorRT, whose
  // Q/DQ placement puts Q/DQ on residual Adds, both of whose inputs are activations, and runs a
  // shift in its float pointwise fusion; quantizing it would round the tensor once more before
  // the Conv or MatMul that quantizes it again).
  bool quantize_constant_adds = true;
  // Export each decomposed HardSwish (see quant/activation_patterns.h) as one HardSwish op at
  // opset 14: a runtime without an integer HardSwish then runs one float op between its DQ and Q
  // instead of four (ONNX Runtime).
  bool hardswish_op = false;

  const AlignmentRule* FindRule(const std::string& op_type) const;
  bool Quantizes(const std::string& op_type) const;
  // The weight scheme of `op_type`: `weight`, made per-tensor for per_tensor_weight_ops.
  QuantScheme WeightSchemeFor(const std::string& op_type) const;
};

// Reads and validates one profile file.
StatusOr<TargetProfile> LoadTargetProfileFile(const std::string& path);
// `name_or_path` is a path if it exists or ends in .json; otherwise <name>.json in TargetsDir().
StatusOr<TargetProfile> LoadTargetProfile(const std::string& name_or_path);
// Names of the profiles shipped in the targets directory, sorted.
std::vector<std::string> BuiltinTargetNames();
// The directory LoadTargetProfile searches for names: $QALIGN_TARGETS_DIR (environment) if set;
// else PREFIX/share/qalign/targets when this code runs from an installed PREFIX/bin/qalign,
// PREFIX/lib/libqalign or the installed Python module (found from the file's own location, so a
// moved prefix still works); else the source tree's targets/ (a build tree).
std::string TargetsDir();

// True for operator types of the default ONNX domain that qalign knows (opsets 7 to 21).
bool IsKnownOnnxOpType(const std::string& op_type);

}  // namespace qalign
