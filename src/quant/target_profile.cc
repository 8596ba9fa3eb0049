// Target profiles: JSON loading with key-by-key validation, name lookup in the targets directory.
#include "quant/target_profile.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace qalign {

using nlohmann::json;

// ---------------------------------------------------------------- names

const char* AlignMethodName(AlignMethod method) {
  switch (method) {
    case AlignMethod::kNone: return "none";
    case AlignMethod::kInput: return "input";
    case AlignMethod::kOutput: return "output";
    case AlignMethod::kLarge: return "large";
    case AlignMethod::kOptimal: return "optimal";
  }
  return "unknown";
}

StatusOr<AlignMethod> ParseAlignMethod(const std::string& name) {
  for (AlignMethod m : {AlignMethod::kNone, AlignMethod::kInput, AlignMethod::kOutput,
                        AlignMethod::kLarge, AlignMethod::kOptimal}) {
    if (name == AlignMethodName(m)) return m;
  }
  return InvalidArgumentError("unknown alignment method '", name,
                              "' (expected none, input, output, large or optimal)");
}

const char* RuleKindName(RuleKind kind) {
  switch (kind) {
    case RuleKind::kShareInputsAndOutput: return "share_inputs_and_output";
    case RuleKind::kShareInputOutput: return "share_input_output";
    case RuleKind::kShareInputs: return "share_inputs";
    case RuleKind::kFixedOutput: return "fixed_output";
  }
  return "unknown";
}

StatusOr<RuleKind> ParseRuleKind(const std::string& name) {
  for (RuleKind k : {RuleKind::kShareInputsAndOutput, RuleKind::kShareInputOutput,
                     RuleKind::kShareInputs, RuleKind::kFixedOutput}) {
    if (name == RuleKindName(k)) return k;
  }
  return InvalidArgumentError("unknown rule '", name,
                              "' (expected share_inputs_and_output, share_input_output, "
                              "share_inputs or fixed_output)");
}

bool IsKnownOnnxOpType(const std::string& op_type) {
  // Operators of the default domain (ai.onnx) up to opset 21, including ones removed since opset 7.
  static const std::unordered_set<std::string> kOps = {
      "Abs", "Acos", "Acosh", "Add", "AffineGrid", "And", "ArgMax", "ArgMin", "Asin", "Asinh",
      "Atan", "Atanh", "AveragePool", "BatchNormalization", "Bernoulli", "BitShift",
      "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "BlackmanWindow", "Cast",
      "CastLike", "Ceil", "Celu", "CenterCropPad", "Clip", "Col2Im", "Compress", "Concat",
      "ConcatFromSequence", "Constant", "ConstantOfShape", "Conv", "ConvInteger",
      "ConvTranspose", "Cos", "Cosh", "CumSum", "DFT", "DeformConv", "DepthToSpace",
      "DequantizeLinear", "Det", "Div", "Dropout", "DynamicQuantizeLinear", "Einsum", "Elu",
      "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "GRU", "Gather",
      "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool",
      "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization",
      "HammingWindow", "HannWindow", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "If",
      "ImageDecoder", "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM",
      "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop",
      "LpNormalization", "LpPool", "MatMul", "MatMulInteger", "Max", "MaxPool", "MaxRoiPool",
      "MaxUnpool", "Mean", "MeanVarianceNormalization", "MelWeightMatrix", "Min", "Mish", "Mod",
      "Mul", "Multinomial", "Neg", "NegativeLogLikelihoodLoss", "NonMaxSuppression", "NonZero",
      "Not", "OneHot", "Optional", "OptionalGetElement", "OptionalHasElement", "Or", "PRelu",
      "Pad", "Pow", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "RNN", "RandomNormal",
      "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal",
      "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
      "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "RegexFullMatch", "Relu",
      "Reshape", "Resize", "ReverseSequence", "RoiAlign", "Round", "STFT", "Scan", "Scatter",
      "ScatterElements", "ScatterND", "Selu", "SequenceAt", "SequenceConstruct",
      "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength", "SequenceMap",
      "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax",
      "SoftmaxCrossEntropyLoss", "Softplus", "Softsign", "SpaceToDepth", "Split",
      "SplitToSequence", "Sqrt", "Squeeze", "StringConcat", "StringNormalizer", "StringSplit",
      "Sub", "Sum", "Tan", "Tanh", "TfIdfVectorizer", "ThresholdedRelu", "Tile", "TopK",
      "Transpose", "Trilu", "Unique", "Unsqueeze", "Upsample", "Where", "Xor"};
  return kOps.count(op_type) != 0;
}

// ---------------------------------------------------------------- profile queries

const AlignmentRule* TargetProfile::FindRule(const std::string& op_type) const {
  for (const AlignmentRule& rule : rules) {
    if (rule.op_type == op_type) return &rule;
  }
  return nullptr;
}

bool TargetProfile::Quantizes(const std::string& op_type) const {
  return std::find(quantized_op_types.begin(), quantized_op_types.end(), op_type) !=
         quantized_op_types.end();
}

QuantScheme TargetProfile::WeightSchemeFor(const std::string& op_type) const {
  QuantScheme scheme = weight;
  if (std::find(per_tensor_weight_ops.begin(), per_tensor_weight_ops.end(), op_type) !=
      per_tensor_weight_ops.end()) {
    scheme.policy.flags = (scheme.policy.flags & ~static_cast<uint32_t>(kPerChannel)) | kPerTensor;
  }
  return scheme;
}

// ---------------------------------------------------------------- loading

namespace {

// Validation errors all read "<file>: <key path>: <problem>".
class ProfileReader {
 public:
  explicit ProfileReader(std::string path) : path_(std::move(path)) {}

  template <typename... Args>
  Status Error(const std::string& key, const Args&... args) const {
    return InvalidArgumentError(path_, ": ", key, ": ", args...);
  }

  // Refuses keys of `object` not in `allowed`.
  Status CheckKeys(const json& object, const std::string& where,
                   std::initializer_list<const char*> allowed) const {
    for (auto it = object.begin(); it != object.end(); ++it) {
      bool known = false;
      for (const char* key : allowed) known = known || it.key() == key;
      if (!known) {
        std::string list;
        for (const char* key : allowed) list += (list.empty() ? "" : ", ") + std::string(key);
        return Error(Join(where, it.key()), "unknown key (expected one of: ", list, ")");
      }
    }
    return Status::Ok();
  }

  static std::string Join(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  }

  StatusOr<std::string> String(const json& value, const std::string& key) const {
    if (!value.is_string()) return Error(key, "expected a string, got ", value.type_name());
    return value.get<std::string>();
  }

  StatusOr<int64_t> Integer(const json& value, const std::string& key) const {
    if (!value.is_number_integer()) return Error(key, "expected an integer, got ", value.dump());
    return value.get<int64_t>();
  }

  StatusOr<bool> Bool(const json& value, const std::string& key) const {
    if (!value.is_boolean()) return Error(key, "expected true or false, got ", value.dump());
    return value.get<bool>();
  }

  StatusOr<std::vector<std::string>> StringList(const json& value, const std::string& key) const {
    if (!value.is_array()) return Error(key, "expected a list of strings, got ", value.type_name());
    std::vector<std::string> out;
    for (size_t i = 0; i < value.size(); ++i) {
      QALIGN_ASSIGN_OR_RETURN(std::string s, String(value[i], StrCat(key, "[", i, "]")));
      out.push_back(std::move(s));
    }
    return out;
  }

  StatusOr<QuantScheme> Scheme(const json& value, const std::string& key) const {
    if (!value.is_object()) return Error(key, "expected an object, got ", value.type_name());
    QALIGN_RETURN_IF_ERROR(
        CheckKeys(value, key, {"num_bits", "quant_min", "quant_max", "policy", "rounding"}));
    for (const char* required : {"num_bits", "quant_min", "quant_max", "policy"}) {
      if (!value.contains(required)) return Error(Join(key, required), "missing");
    }
    QuantScheme scheme;
    QALIGN_ASSIGN_OR_RETURN(int64_t bits, Integer(value["num_bits"], Join(key, "num_bits")));
    if (bits < 2 || bits > 32) {
      return Error(Join(key, "num_bits"), bits, " is outside [2, 32]");
    }
    scheme.num_bits = static_cast<int>(bits);
    QALIGN_ASSIGN_OR_RETURN(scheme.quant_min, Integer(value["quant_min"], Join(key, "quant_min")));
    QALIGN_ASSIGN_OR_RETURN(scheme.quant_max, Integer(value["quant_max"], Join(key, "quant_max")));
    if (scheme.quant_min >= scheme.quant_max) {
      return Error(Join(key, "quant_min"), "quant_min ", scheme.quant_min,
                   " must be below quant_max ", scheme.quant_max);
    }
    const std::string policy_key = Join(key, "policy");
    QALIGN_ASSIGN_OR_RETURN(std::vector<std::string> flags, StringList(value["policy"], policy_key));
    scheme.policy.flags = 0;
    for (size_t i = 0; i < flags.size(); ++i) {
      auto flag = ParsePolicyFlag(flags[i]);
      if (!flag.ok()) return Error(StrCat(policy_key, "[", i, "]"), flag.status().message());
      scheme.policy.flags |= *flag;
    }
    if (value.contains("rounding")) {
      QALIGN_ASSIGN_OR_RETURN(std::string name, String(value["rounding"], Join(key, "rounding")));
      auto mode = ParseRoundingMode(name);
      if (!mode.ok()) return Error(Join(key, "rounding"), mode.status().message());
      scheme.rounding = *mode;
    }
    Status valid = ValidateScheme(scheme);
    if (!valid.ok()) {
      // Name the key the problem is most likely in.
      const bool range = valid.message().find("bits") != std::string::npos;
      return Error(Join(key, range ? "num_bits" : "policy"), valid.message());
    }
    return scheme;
  }

  // The 16-bit activation scheme: 16 bits in the range of uint16 or int16 (the types of
  // com.microsoft QuantizeLinear), per tensor and linear like every exported activation, and the
  // same symmetry as the 8-bit scheme, so that widening a group keeps its meaning.
  Status CheckActivation16(const QuantScheme& wide, const QuantScheme& narrow) const {
    const std::string key = "schemes.activation16";
    // Scheme() has checked that a 16-bit range fits uint16 (unsigned) or int16 (signed).
    if (wide.num_bits != 16) return Error(Join(key, "num_bits"), "must be 16, got ", wide.num_bits);
    if (!wide.policy.Has(kPerTensor) || !wide.policy.Has(kLinear)) {
      return Error(Join(key, "policy"), "must be per_tensor and linear");
    }
    if (wide.policy.Has(kSymmetric) != narrow.policy.Has(kSymmetric) ||
        wide.policy.Has(kPowerOf2) != narrow.policy.Has(kPowerOf2)) {
      return Error(Join(key, "policy"), "must have the symmetry and power_of_2 flags of ",
                   "schemes.activation");
    }
    return Status::Ok();
  }

  StatusOr<TargetProfile> Profile(const json& root) const {
    if (!root.is_object()) return Error("<top level>", "expected an object, got ", root.type_name());
    QALIGN_RETURN_IF_ERROR(CheckKeys(root, "", {"name", "notes", "schemes", "quantized_ops",
                                                "op_classes", "force_overlap",
                                                "fuse_activations", "standalone_activations", "quantize_bias",
                                                "hardswish_op", "per_tensor_weight_ops",
                                                "quantize_constant_adds"}));
    for (const char* required : {"name", "notes", "schemes", "quantized_ops"}) {
      if (!root.contains(required)) return Error(required, "missing");
    }
    TargetProfile profile;
    profile.source_path = path_;
    QALIGN_ASSIGN_OR_RETURN(profile.name, String(root["name"], "name"));
    if (profile.name.empty()) return Error("name", "must not be empty");

    const json& notes = root["notes"];
    if (notes.is_string()) {
      profile.notes = notes.get<std::string>();
    } else {
      QALIGN_ASSIGN_OR_RETURN(std::vector<std::string> lines, StringList(notes, "notes"));
      for (const std::string& line : lines) {
        profile.notes += (profile.notes.empty() ? "" : "\n") + line;
      }
    }
    if (profile.notes.empty()) return Error("notes", "must list the profile's sources");

    const json& schemes = root["schemes"];
    if (!schemes.is_object()) return Error("schemes", "expected an object");
    QALIGN_RETURN_IF_ERROR(
        CheckKeys(schemes, "schemes", {"activation", "weight", "bias", "activation16"}));
    for (const char* role : {"activation", "weight", "bias"}) {
      if (!schemes.contains(role)) return Error(Join("schemes", role), "missing");
    }
    QALIGN_ASSIGN_OR_RETURN(profile.activation, Scheme(schemes["activation"], "schemes.activation"));
    QALIGN_ASSIGN_OR_RETURN(profile.weight, Scheme(schemes["weight"], "schemes.weight"));
    QALIGN_ASSIGN_OR_RETURN(profile.bias, Scheme(schemes["bias"], "schemes.bias"));
    if (schemes.contains("activation16")) {
      QALIGN_ASSIGN_OR_RETURN(QuantScheme wide,
                              Scheme(schemes["activation16"], "schemes.activation16"));
      QALIGN_RETURN_IF_ERROR(CheckActivation16(wide, profile.activation));
      profile.activation16 = wide;
    }

    std::set<std::string> seen;
    auto add_quantized = [&](const std::string& op_type) {
      if (seen.insert(op_type).second) profile.quantized_op_types.push_back(op_type);
    };
    QALIGN_ASSIGN_OR_RETURN(std::vector<std::string> ops,
                            StringList(root["quantized_ops"], "quantized_ops"));
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!IsKnownOnnxOpType(ops[i])) {
        return Error(StrCat("quantized_ops[", i, "]"), "unknown op type '", ops[i], "'");
      }
      add_quantized(ops[i]);
    }

    if (root.contains("op_classes")) {
      const json& classes = root["op_classes"];
      if (!classes.is_object()) return Error("op_classes", "expected an object of op classes");
      std::map<std::string, std::string> class_of_op;
      for (auto it = classes.begin(); it != classes.end(); ++it) {
        const std::string key = "op_classes." + it.key();
        QALIGN_ASSIGN_OR_RETURN(std::vector<AlignmentRule> rules, OpClass(it.value(), key, it.key()));
        for (AlignmentRule& rule : rules) {
          auto [prev, inserted] = class_of_op.emplace(rule.op_type, it.key());
          if (!inserted) {
            return Error(key + ".ops", "op type '", rule.op_type, "' is already in op class '",
                         prev->second, "'");
          }
          add_quantized(rule.op_type);
          profile.rules.push_back(std::move(rule));
        }
      }
    }
    if (root.contains("per_tensor_weight_ops")) {
      QALIGN_ASSIGN_OR_RETURN(profile.per_tensor_weight_ops,
                              StringList(root["per_tensor_weight_ops"], "per_tensor_weight_ops"));
      for (size_t i = 0; i < profile.per_tensor_weight_ops.size(); ++i) {
        const std::string& op = profile.per_tensor_weight_ops[i];
        if (op != "Conv" && op != "ConvTranspose" && op != "Gemm" && op != "MatMul") {
          return Error(StrCat("per_tensor_weight_ops[", i, "]"), "'", op,
                       "' has no weight (Conv, ConvTranspose, Gemm or MatMul)");
        }
      }
    }
    if (root.contains("force_overlap")) {
      QALIGN_ASSIGN_OR_RETURN(profile.force_overlap, Bool(root["force_overlap"], "force_overlap"));
    }
    if (root.contains("fuse_activations")) {
      QALIGN_ASSIGN_OR_RETURN(profile.fuse_activations,
                              Bool(root["fuse_activations"], "fuse_activations"));
    }
    if (root.contains("standalone_activations")) {
      QALIGN_ASSIGN_OR_RETURN(profile.standalone_activations,
                              Bool(root["standalone_activations"], "standalone_activations"));
    }
    if (root.contains("quantize_bias")) {
      QALIGN_ASSIGN_OR_RETURN(profile.quantize_bias, Bool(root["quantize_bias"], "quantize_bias"));
    }
    if (root.contains("quantize_constant_adds")) {
      QALIGN_ASSIGN_OR_RETURN(profile.quantize_constant_adds,
                              Bool(root["quantize_constant_adds"], "quantize_constant_adds"));
    }
    if (root.contains("hardswish_op")) {
      QALIGN_ASSIGN_OR_RETURN(profile.hardswish_op, Bool(root["hardswish_op"], "hardswish_op"));
    }
    // Fixed output params must lie on the activation grid.
    for (const AlignmentRule& rule : profile.rules) {
      if (rule.kind != RuleKind::kFixedOutput) continue;
      if (profile.activation16) {
        // Their params are for the 8-bit grid: a 16-bit group holding one would need others.
        return Error(StrCat("op_classes.", rule.op_class), "a fixed_output rule cannot be combined ",
                     "with schemes.activation16");
      }
      if (rule.fixed_zero_point < profile.activation.quant_min ||
          rule.fixed_zero_point > profile.activation.quant_max) {
        return Error(StrCat("op_classes.", rule.op_class, ".zero_point"), "zero_point ",
                     rule.fixed_zero_point, " is outside the activation range [",
                     profile.activation.quant_min, ", ", profile.activation.quant_max, "]");
      }
    }
    return profile;
  }

  StatusOr<std::vector<AlignmentRule>> OpClass(const json& value, const std::string& key,
                                               const std::string& class_name) const {
    if (!value.is_object()) return Error(key, "expected an object, got ", value.type_name());
    QALIGN_RETURN_IF_ERROR(
        CheckKeys(value, key, {"ops", "rule", "method", "scale", "zero_point"}));
    for (const char* required : {"ops", "rule"}) {
      if (!value.contains(required)) return Error(Join(key, required), "missing");
    }
    AlignmentRule base;
    base.op_class = class_name;
    QALIGN_ASSIGN_OR_RETURN(std::string rule_name, String(value["rule"], Join(key, "rule")));
    auto kind = ParseRuleKind(rule_name);
    if (!kind.ok()) return Error(Join(key, "rule"), kind.status().message());
    base.kind = *kind;
    const bool fixed = base.kind == RuleKind::kFixedOutput;
    if (fixed) {
      if (value.contains("method")) {
        return Error(Join(key, "method"), "not allowed on a fixed_output rule");
      }
      for (const char* required : {"scale", "zero_point"}) {
        if (!value.contains(required)) return Error(Join(key, required), "missing (fixed_output)");
      }
      const json& scale = value["scale"];
      if (!scale.is_number() || !std::isfinite(scale.get<double>()) || scale.get<double>() <= 0) {
        return Error(Join(key, "scale"), "expected a positive finite number, got ", scale.dump());
      }
      base.fixed_scale = scale.get<float>();
      QALIGN_ASSIGN_OR_RETURN(base.fixed_zero_point,
                              Integer(value["zero_point"], Join(key, "zero_point")));
    } else {
      for (const char* only_fixed : {"scale", "zero_point"}) {
        if (value.contains(only_fixed)) {
          return Error(Join(key, only_fixed), "only allowed on a fixed_output rule");
        }
      }
      if (value.contains("method")) {
        QALIGN_ASSIGN_OR_RETURN(std::string name, String(value["method"], Join(key, "method")));
        auto method = ParseAlignMethod(name);
        if (!method.ok()) return Error(Join(key, "method"), method.status().message());
        base.method = *method;
      }
    }
    QALIGN_ASSIGN_OR_RETURN(std::vector<std::string> ops, StringList(value["ops"], Join(key, "ops")));
    if (ops.empty()) return Error(Join(key, "ops"), "lists no op type");
    std::vector<AlignmentRule> rules;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!IsKnownOnnxOpType(ops[i])) {
        return Error(StrCat(key, ".ops[", i, "]"), "unknown op type '", ops[i], "'");
      }
      AlignmentRule rule = base;
      rule.op_type = ops[i];
      rules.push_back(std::move(rule));
    }
    return rules;
  }

 private:
  std::string path_;
};

}  // namespace

StatusOr<TargetProfile> LoadTargetProfileFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(path, ": is a directory, not a target profile");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path, ": cannot open target profile");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return IoError(path, ": cannot read target profile");
  json root;
  try {
    root = json::parse(text.str());
  } catch (const json::parse_error& e) {
    return InvalidArgumentError(path, ": not valid JSON at byte ", e.byte, ": ", e.what());
  } catch (const json::exception& e) {  // e.g. a number beyond double's range (1e999)
    return InvalidArgumentError(path, ": not a usable JSON document: ", e.what());
  }
  ProfileReader reader(path);
  return reader.Profile(root);
}

namespace {

// The install layout, relative to the prefix (GNUInstallDirs at configure time): where the
// binary, the library and the Python module go, and where the profiles go.
#ifndef QALIGN_INSTALL_BINDIR
#define QALIGN_INSTALL_BINDIR "bin"
#endif
#ifndef QALIGN_INSTALL_LIBDIR
#define QALIGN_INSTALL_LIBDIR "lib"
#endif
#ifndef QALIGN_INSTALL_DATADIR
#define QALIGN_INSTALL_DATADIR "share"
#endif
#ifndef QALIGN_INSTALL_PYTHONDIR
#define QALIGN_INSTALL_PYTHONDIR ""
#endif

// The file holding this code: libqalign.so, the Python module, or the executable that linked
// libqalign.a. dladdr names a shared object by the path it was loaded from; for the main program
// it gives argv[0], which may be a bare name found on PATH, so /proc/self/exe comes too.
std::vector<std::filesystem::path> FilesHoldingThisCode() {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&FilesHoldingThisCode), &info) != 0 &&
      info.dli_fname != nullptr && info.dli_fname[0] == '/') {
    auto path = std::filesystem::canonical(info.dli_fname, ec);
    if (!ec) files.push_back(path);
  }
  auto exe = std::filesystem::canonical("/proc/self/exe", ec);
  if (!ec) files.push_back(exe);
  return files;
}

// `dir` minus its trailing components `tail` ("lib/x86_64-linux-gnu"), or empty when `dir` does
// not end with them.
std::filesystem::path PrefixBefore(const std::filesystem::path& dir, const std::string& tail) {
  if (tail.empty() || std::filesystem::path(tail).is_absolute()) return {};
  std::filesystem::path prefix = dir;
  std::vector<std::string> parts;
  for (const auto& part : std::filesystem::path(tail).lexically_normal()) {
    if (!part.empty() && part != ".") parts.push_back(part.string());
  }
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (prefix.filename() != *it) return {};
    prefix = prefix.parent_path();
  }
  return prefix;
}

}  // namespace

std::string TargetsDir() {
  const char* env = std::getenv("QALIGN_TARGETS_DIR");
  if (env != nullptr && *env != '\0') return env;
  // Installed: PREFIX/share/qalign/targets next to PREFIX/bin/qalign, PREFIX/lib/libqalign.so or
  // the Python module, wherever PREFIX was moved to.
  const std::string python_package = std::string(QALIGN_INSTALL_PYTHONDIR).empty()
                                         ? std::string()
                                         : std::string(QALIGN_INSTALL_PYTHONDIR) + "/qalign";
  std::error_code ec;
  for (const std::filesystem::path& file : FilesHoldingThisCode()) {
    for (const std::string& tail : {std::string(QALIGN_INSTALL_BINDIR),
                                    std::string(QALIGN_INSTALL_LIBDIR), python_package}) {
      const std::filesystem::path prefix = PrefixBefore(file.parent_path(), tail);
      if (prefix.empty()) continue;
      const std::filesystem::path dir = prefix / QALIGN_INSTALL_DATADIR / "qalign" / "targets";
      if (std::filesystem::is_directory(dir, ec)) return dir.string();
    }
  }
  // A build tree: the source tree's targets/.
#ifdef QALIGN_SOURCE_TARGETS_DIR
  return QALIGN_SOURCE_TARGETS_DIR;
#else
  return "targets";
#endif
}

StatusOr<TargetProfile> LoadTargetProfile(const std::string& name_or_path) {
  std::error_code ec;
  const bool looks_like_path = name_or_path.size() >= 5 &&
                               name_or_path.compare(name_or_path.size() - 5, 5, ".json") == 0;
  if (looks_like_path || std::filesystem::exists(name_or_path, ec)) {
    return LoadTargetProfileFile(name_or_path);
  }
  const std::string path = (std::filesystem::path(TargetsDir()) / (name_or_path + ".json")).string();
  if (!std::filesystem::exists(path, ec)) {
    std::string names;
    for (const std::string& n : BuiltinTargetNames()) names += (names.empty() ? "" : ", ") + n;
    return NotFoundError("unknown target '", name_or_path, "': no file ", path,
                         " (built-in targets: ", names.empty() ? "none" : names, ")");
  }
  return LoadTargetProfileFile(path);
}

std::vector<std::string> BuiltinTargetNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(TargetsDir(), ec)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace qalign
