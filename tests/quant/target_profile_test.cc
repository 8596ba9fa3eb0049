// Target profiles: every shipped profile loads with the facts of its target, and every kind of
// bad profile gives a one-line error naming the file and the key.
#include "quant/target_profile.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace qalign {
namespace {

using nlohmann::json;

const std::string kTargetsDir = std::string(QALIGN_SOURCE_DIR) + "/targets";

TargetProfile Load(const std::string& name) {
  auto profile = LoadTargetProfileFile(kTargetsDir + "/" + name + ".json");
  EXPECT_TRUE(profile.ok()) << profile.status().ToString();
  return profile.ok() ? *profile : TargetProfile();
}

TEST(TargetProfileTest, EveryShippedProfileLoads) {
  const std::vector<std::string> expected = {"ort-qdq-u8s8", "ppq-default", "qnn-u8", "tflite-int8",
                                             "trt-int8"};
  auto names = BuiltinTargetNames();
  for (const std::string& name : expected) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  for (const std::string& name : names) {
    auto profile = LoadTargetProfile(name);
    ASSERT_TRUE(profile.ok()) << name << ": " << profile.status().ToString();
    EXPECT_EQ(profile->name, name);
    EXPECT_FALSE(profile->notes.empty());
    EXPECT_NE(profile->notes.find("http"), std::string::npos) << name << " cites no source";
    EXPECT_TRUE(profile->Quantizes("Conv"));
    EXPECT_EQ(profile->bias.num_bits, 32);
    EXPECT_TRUE(profile->weight.policy.Has(kSymmetric));
    for (const AlignmentRule& rule : profile->rules) {
      EXPECT_TRUE(profile->Quantizes(rule.op_type)) << rule.op_type;
      EXPECT_EQ(profile->FindRule(rule.op_type), &rule);
    }
    EXPECT_FALSE(profile->Quantizes("Shape"));
    EXPECT_EQ(profile->FindRule("Shape"), nullptr);
  }
}

TEST(TargetProfileTest, TfliteFollowsTheSpec) {
  TargetProfile p = Load("tflite-int8");
  EXPECT_EQ(p.activation.quant_min, -128);
  EXPECT_EQ(p.activation.quant_max, 127);
  EXPECT_TRUE(p.activation.policy.Has(kAsymmetric));
  EXPECT_TRUE(p.activation.policy.Has(kPerTensor));
  EXPECT_EQ(p.weight.quant_min, -127);
  EXPECT_EQ(p.weight.quant_max, 127);
  EXPECT_TRUE(p.weight.policy.Has(kSymmetric));
  EXPECT_TRUE(p.weight.policy.Has(kPerChannel));
  EXPECT_EQ(p.bias.quant_min, INT64_C(-2147483648));
  for (const char* op : {"Softmax", "Sigmoid"}) {
    const AlignmentRule* rule = p.FindRule(op);
    ASSERT_NE(rule, nullptr) << op;
    EXPECT_EQ(rule->kind, RuleKind::kFixedOutput);
    EXPECT_EQ(rule->fixed_scale, 1.0f / 256.0f);
    EXPECT_EQ(rule->fixed_zero_point, -128);
  }
  const AlignmentRule* tanh = p.FindRule("Tanh");
  ASSERT_NE(tanh, nullptr);
  EXPECT_EQ(tanh->fixed_scale, 1.0f / 128.0f);
  EXPECT_EQ(tanh->fixed_zero_point, 0);
  for (const char* op : {"Concat", "Max", "Min"}) {
    ASSERT_NE(p.FindRule(op), nullptr) << op;
    EXPECT_EQ(p.FindRule(op)->kind, RuleKind::kShareInputsAndOutput);
  }
  for (const char* op : {"AveragePool", "GlobalAveragePool", "MaxPool", "Reshape", "Transpose",
                         "Squeeze", "Unsqueeze", "Flatten", "Slice", "Split", "Pad", "Gather",
                         "Resize", "DepthToSpace", "SpaceToDepth"}) {
    ASSERT_NE(p.FindRule(op), nullptr) << op;
    EXPECT_EQ(p.FindRule(op)->kind, RuleKind::kShareInputOutput) << op;
  }
  for (const char* op : {"Add", "Sub", "Mul"}) {
    EXPECT_EQ(p.FindRule(op), nullptr) << op;
    EXPECT_TRUE(p.Quantizes(op)) << op;
  }
}

TEST(TargetProfileTest, OtherProfilesFollowTheirTargets) {
  TargetProfile ort = Load("ort-qdq-u8s8");
  EXPECT_EQ(ort.activation.quant_min, 0);
  EXPECT_EQ(ort.activation.quant_max, 255);
  EXPECT_TRUE(ort.weight.policy.Has(kPerChannel));
  EXPECT_EQ(ort.FindRule("Concat"), nullptr);
  EXPECT_EQ(ort.FindRule("Add"), nullptr);
  EXPECT_TRUE(ort.Quantizes("Concat"));
  for (const char* op : {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "MaxPool", "AveragePool",
                         "Slice", "Resize", "Split", "Gather"}) {
    ASSERT_NE(ort.FindRule(op), nullptr) << op;
    EXPECT_EQ(ort.FindRule(op)->method, AlignMethod::kInput);
  }
  // Reduce-range weights: |w| <= 64 cannot saturate ORT's int16 pair sums on x86 without VNNI
  // (2 * 255 * 64 = 32640 <= 32767); the VNNI variant uses the whole symmetric range.
  EXPECT_EQ(ort.weight.quant_min, -64);
  EXPECT_EQ(ort.weight.quant_max, 64);
  EXPECT_LE(2 * 255 * ort.weight.quant_max, 32767);
  TargetProfile vnni = Load("ort-qdq-u8s8-vnni");
  EXPECT_EQ(vnni.weight.quant_min, -127);
  EXPECT_EQ(vnni.weight.quant_max, 127);
  for (const TargetProfile* p : {&ort, &vnni}) {
    // Only ops with an integer kernel in ORT's CPU provider are quantized.
    for (const char* op : {"ConvTranspose", "HardSigmoid", "HardSwish", "Pad", "Div",
                           "LayerNormalization", "InstanceNormalization"}) {
      EXPECT_FALSE(p->Quantizes(op)) << p->name << " " << op;
    }
    EXPECT_FALSE(p->standalone_activations) << p->name;
    EXPECT_TRUE(p->hardswish_op) << p->name;
    EXPECT_TRUE(p->quantize_bias) << p->name;
    EXPECT_TRUE(p->quantize_constant_adds) << p->name;
  }
  TargetProfile trt = Load("trt-int8");
  EXPECT_TRUE(trt.activation.policy.Has(kSymmetric));
  EXPECT_FALSE(trt.quantize_bias);  // TensorRT takes float biases
  EXPECT_FALSE(trt.quantize_constant_adds);  // nor are shifts among its Q/DQ placements
  EXPECT_EQ(trt.FindRule("Concat")->kind, RuleKind::kShareInputsAndOutput);
  TargetProfile qnn = Load("qnn-u8");
  EXPECT_EQ(qnn.activation.quant_min, 0);
  EXPECT_EQ(qnn.FindRule("Add")->kind, RuleKind::kShareInputs);
  EXPECT_EQ(qnn.FindRule("Add")->method, AlignMethod::kLarge);
  // AIMET's HTP configuration: int8 symmetric weights, per channel except MatMul and Gemm.
  EXPECT_TRUE(qnn.WeightSchemeFor("Conv").policy.Has(kPerChannel));
  EXPECT_TRUE(qnn.WeightSchemeFor("Conv").policy.Has(kSymmetric));
  EXPECT_TRUE(qnn.WeightSchemeFor("MatMul").policy.Has(kPerTensor));
  EXPECT_FALSE(qnn.WeightSchemeFor("MatMul").policy.Has(kPerChannel));
  EXPECT_TRUE(qnn.WeightSchemeFor("Gemm").policy.Has(kPerTensor));
  TargetProfile ppq = Load("ppq-default");
  EXPECT_TRUE(ppq.force_overlap);
  EXPECT_EQ(ppq.FindRule("Add")->method, AlignMethod::kLarge);
  EXPECT_EQ(ppq.FindRule("Concat")->method, AlignMethod::kOutput);
  EXPECT_EQ(ppq.FindRule("AveragePool")->method, AlignMethod::kNone);
  EXPECT_EQ(ppq.FindRule("Resize")->method, AlignMethod::kOutput);
  EXPECT_EQ(ppq.FindRule("Resize")->op_class, "resize");
}

TEST(TargetProfileTest, MethodAndRuleNamesRoundTrip) {
  for (AlignMethod m : {AlignMethod::kNone, AlignMethod::kInput, AlignMethod::kOutput,
                        AlignMethod::kLarge, AlignMethod::kOptimal}) {
    EXPECT_EQ(*ParseAlignMethod(AlignMethodName(m)), m);
  }
  EXPECT_FALSE(ParseAlignMethod("largest").ok());
  for (RuleKind k : {RuleKind::kShareInputsAndOutput, RuleKind::kShareInputOutput,
                     RuleKind::kShareInputs, RuleKind::kFixedOutput}) {
    EXPECT_EQ(*ParseRuleKind(RuleKindName(k)), k);
  }
  EXPECT_TRUE(IsKnownOnnxOpType("Conv"));
  EXPECT_FALSE(IsKnownOnnxOpType("conv"));
}

// ---------------------------------------------------------------- bad profiles

json ValidProfile() {
  return json::parse(R"({
    "name": "test",
    "notes": "unit test profile, http://example.invalid",
    "schemes": {
      "activation": {"num_bits": 8, "quant_min": -128, "quant_max": 127,
                     "policy": ["per_tensor", "asymmetric", "linear"]},
      "weight": {"num_bits": 8, "quant_min": -127, "quant_max": 127,
                 "policy": ["per_channel", "symmetric", "linear"]},
      "bias": {"num_bits": 32, "quant_min": -2147483648, "quant_max": 2147483647,
               "policy": ["per_channel", "symmetric", "linear"]}
    },
    "quantized_ops": ["Conv", "Relu"],
    "op_classes": {
      "concat": {"ops": ["Concat"], "rule": "share_inputs_and_output", "method": "large"},
      "sigmoid": {"ops": ["Sigmoid"], "rule": "fixed_output", "scale": 0.00390625, "zero_point": -128}
    }
  })");
}

class BadProfileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    const std::string path = ::testing::TempDir() + "/qalign_bad_profile_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                             "_" + std::to_string(counter_++) + ".json";
    std::ofstream(path) << text;
    return path;
  }
  // Loads `mutate(ValidProfile())` and expects an error naming the file, `key` and `words`.
  void ExpectError(const std::function<void(json&)>& mutate, const std::string& key,
                   const std::string& words) {
    json j = ValidProfile();
    mutate(j);
    const std::string path = Write(j.dump(2));
    auto profile = LoadTargetProfileFile(path);
    ASSERT_FALSE(profile.ok()) << "accepted: " << j.dump();
    const std::string& msg = profile.status().message();
    EXPECT_EQ(profile.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(msg.rfind(path + ": " + key + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  }
  int counter_ = 0;
};

TEST_F(BadProfileTest, TheValidBaseLoads) {
  auto profile = LoadTargetProfileFile(Write(ValidProfile().dump()));
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  EXPECT_TRUE(profile->Quantizes("Concat"));  // op classes add their ops
  EXPECT_TRUE(profile->Quantizes("Sigmoid"));
  EXPECT_EQ(profile->quantized_op_types.size(), 4u);
  EXPECT_TRUE(profile->force_overlap);
  EXPECT_EQ(profile->activation.rounding, RoundingMode::kHalfEven);
}

TEST_F(BadProfileTest, PerTensorWeightOpsNeedAWeight) {
  json j = ValidProfile();
  j["per_tensor_weight_ops"] = {"MatMul"};
  auto profile = LoadTargetProfileFile(Write(j.dump()));
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  EXPECT_EQ(profile->per_tensor_weight_ops, std::vector<std::string>{"MatMul"});
  ExpectError([](json& j) { j["per_tensor_weight_ops"] = {"Conv", "Relu"}; },
              "per_tensor_weight_ops[1]", "has no weight");
  ExpectError([](json& j) { j["per_tensor_weight_ops"] = "MatMul"; }, "per_tensor_weight_ops",
              "");
}

TEST_F(BadProfileTest, UnknownKeys) {
  ExpectError([](json& j) { j["colour"] = "red"; }, "colour", "unknown key");
  ExpectError([](json& j) { j["schemes"]["weight"]["bits"] = 8; }, "schemes.weight.bits",
              "unknown key");
  ExpectError([](json& j) { j["schemes"]["output"] = j["schemes"]["weight"]; }, "schemes.output",
              "unknown key");
  ExpectError([](json& j) { j["op_classes"]["concat"]["axis"] = 1; }, "op_classes.concat.axis",
              "unknown key");
}

TEST_F(BadProfileTest, MissingKeys) {
  ExpectError([](json& j) { j.erase("notes"); }, "notes", "missing");
  ExpectError([](json& j) { j["schemes"].erase("bias"); }, "schemes.bias", "missing");
  ExpectError([](json& j) { j["schemes"]["activation"].erase("quant_max"); },
              "schemes.activation.quant_max", "missing");
  ExpectError([](json& j) { j["op_classes"]["sigmoid"].erase("scale"); },
              "op_classes.sigmoid.scale", "missing");
}

TEST_F(BadProfileTest, UnknownOpTypesRulesAndMethods) {
  ExpectError([](json& j) { j["op_classes"]["concat"]["ops"].push_back("Concatt"); },
              "op_classes.concat.ops[1]", "unknown op type 'Concatt'");
  ExpectError([](json& j) { j["quantized_ops"].push_back("conv"); }, "quantized_ops[2]",
              "unknown op type 'conv'");
  ExpectError([](json& j) { j["op_classes"]["concat"]["rule"] = "share_all"; },
              "op_classes.concat.rule", "unknown rule 'share_all'");
  ExpectError([](json& j) { j["op_classes"]["concat"]["method"] = "largest"; },
              "op_classes.concat.method", "unknown alignment method 'largest'");
  ExpectError([](json& j) { j["op_classes"]["sigmoid"]["method"] = "output"; },
              "op_classes.sigmoid.method", "not allowed on a fixed_output rule");
  ExpectError([](json& j) { j["op_classes"]["concat"]["scale"] = 0.5; },
              "op_classes.concat.scale", "only allowed on a fixed_output rule");
  ExpectError(
      [](json& j) {
        j["op_classes"]["again"] = {{"ops", {"Concat"}}, {"rule", "share_inputs"}};
      },
      "op_classes.concat.ops", "already in op class 'again'");
}

TEST_F(BadProfileTest, BadRangesAndEnums) {
  ExpectError([](json& j) { j["schemes"]["activation"]["quant_min"] = 127; },
              "schemes.activation.quant_min", "must be below quant_max");
  ExpectError([](json& j) { j["schemes"]["activation"]["num_bits"] = 4; },
              "schemes.activation.num_bits", "does not fit in 4 bits");
  ExpectError([](json& j) { j["schemes"]["weight"]["num_bits"] = 16; },
              "schemes.weight.num_bits", "needs fewer than num_bits 16");
  ExpectError([](json& j) { j["schemes"]["bias"]["num_bits"] = 64; }, "schemes.bias.num_bits",
              "outside [2, 32]");
  ExpectError([](json& j) { j["schemes"]["activation"]["policy"][1] = "asymetric"; },
              "schemes.activation.policy[1]", "unknown policy flag 'asymetric'");
  ExpectError([](json& j) { j["schemes"]["activation"]["policy"].push_back("symmetric"); },
              "schemes.activation.policy", "exactly one of symmetric and asymmetric");
  ExpectError([](json& j) { j["schemes"]["activation"]["rounding"] = "up"; },
              "schemes.activation.rounding", "unknown rounding mode 'up'");
  ExpectError([](json& j) { j["op_classes"]["sigmoid"]["zero_point"] = 300; },
              "op_classes.sigmoid.zero_point", "outside the activation range");
  ExpectError([](json& j) { j["op_classes"]["sigmoid"]["scale"] = -1; },
              "op_classes.sigmoid.scale", "positive finite number");
}

TEST_F(BadProfileTest, WrongTypes) {
  ExpectError([](json& j) { j["force_overlap"] = "yes"; }, "force_overlap", "true or false");
  ExpectError([](json& j) { j["standalone_activations"] = 1; }, "standalone_activations",
              "true or false");
  ExpectError([](json& j) { j["quantize_bias"] = "no"; }, "quantize_bias", "true or false");
  ExpectError([](json& j) { j["hardswish_op"] = nullptr; }, "hardswish_op", "true or false");
  ExpectError([](json& j) { j["quantize_constant_adds"] = 1; }, "quantize_constant_adds",
              "true or false");
  ExpectError([](json& j) { j["quantized_ops"] = "Conv"; }, "quantized_ops", "list of strings");
  ExpectError([](json& j) { j["schemes"]["activation"]["quant_max"] = 127.5; },
              "schemes.activation.quant_max", "integer");
  ExpectError([](json& j) { j["name"] = 3; }, "name", "expected a string");
}

TEST_F(BadProfileTest, NotJsonMissingFileAndUnknownName) {
  const std::string path = Write("{\"name\": ");
  auto profile = LoadTargetProfileFile(path);
  ASSERT_FALSE(profile.ok());
  EXPECT_EQ(profile.status().message().rfind(path + ": not valid JSON", 0), 0u)
      << profile.status().message();
  // A number beyond double's range: the JSON reader throws out_of_range, not parse_error.
  const std::string huge = Write(R"({"name": "x", "force_overlap": 1e999})");
  auto overflow = LoadTargetProfileFile(huge);
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.status().message().rfind(huge + ": not a usable JSON document", 0), 0u)
      << overflow.status().message();
  auto missing = LoadTargetProfile("/nonexistent/dir/p.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/p.json"), std::string::npos);
  auto unknown = LoadTargetProfile("no-such-target");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("tflite-int8"), std::string::npos)
      << unknown.status().message();
}

TEST_F(BadProfileTest, EnvironmentChoosesTheTargetsDirectory) {
  const std::string dir = ::testing::TempDir() + "/qalign_targets_env";
  std::filesystem::create_directories(dir);
  json j = ValidProfile();
  j["name"] = "mine";
  std::ofstream(dir + "/mine.json") << j.dump();
  ASSERT_EQ(setenv("QALIGN_TARGETS_DIR", dir.c_str(), 1), 0);
  auto profile = LoadTargetProfile("mine");
  auto names = BuiltinTargetNames();
  unsetenv("QALIGN_TARGETS_DIR");
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  EXPECT_EQ(profile->name, "mine");
  EXPECT_EQ(profile->source_path, dir + "/mine.json");
  EXPECT_EQ(names, std::vector<std::string>{"mine"});
  EXPECT_TRUE(LoadTargetProfile("tflite-int8").ok());  // back to the source tree
}

TEST_F(BadProfileTest, Activation16IsOptionalAndChecked) {
  auto plain = LoadTargetProfileFile(Write(ValidProfile().dump()));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->activation16.has_value());
  const json wide = json::parse(R"({"num_bits": 16, "quant_min": -32768, "quant_max": 32767,
                                    "policy": ["per_tensor", "asymmetric", "linear"]})");
  json j = ValidProfile();
  j["op_classes"].erase("sigmoid");
  j["schemes"]["activation16"] = wide;
  auto profile = LoadTargetProfileFile(Write(j.dump()));
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  ASSERT_TRUE(profile->activation16.has_value());
  EXPECT_EQ(profile->activation16->num_bits, 16);
  EXPECT_EQ(profile->activation16->quant_min, -32768);
  auto with = [&wide](const std::function<void(json&)>& change) {
    return [&wide, change](json& j) {
      j["op_classes"].erase("sigmoid");
      j["schemes"]["activation16"] = wide;
      change(j["schemes"]["activation16"]);
    };
  };
  ExpectError(with([](json& a) { a["num_bits"] = 12; a["quant_min"] = 0; a["quant_max"] = 4095; }),
              "schemes.activation16.num_bits", "must be 16");
  ExpectError(with([](json& a) { a["quant_min"] = -40000; a["quant_max"] = 20000; }),
              "schemes.activation16.num_bits", "does not fit in 16 bits");
  ExpectError(with([](json& a) { a["policy"][0] = "per_channel"; }),
              "schemes.activation16.policy", "per_tensor and linear");
  ExpectError(with([](json& a) { a["policy"][1] = "symmetric"; }),
              "schemes.activation16.policy", "symmetry");
  // Fixed output params are for the 8-bit grid.
  ExpectError([&wide](json& j) { j["schemes"]["activation16"] = wide; }, "op_classes.sigmoid",
              "cannot be combined with schemes.activation16");
}

TEST(TargetProfileTest, QnnHas16BitActivations) {
  TargetProfile p = Load("qnn-u8");
  ASSERT_TRUE(p.activation16.has_value());
  EXPECT_EQ(p.activation16->num_bits, 16);
  EXPECT_EQ(p.activation16->quant_min, 0);
  EXPECT_EQ(p.activation16->quant_max, 65535);
  EXPECT_TRUE(p.activation16->policy.Has(kAsymmetric));
  for (const char* other : {"tflite-int8", "ort-qdq-u8s8", "trt-int8", "ppq-default"}) {
    EXPECT_FALSE(Load(other).activation16.has_value()) << other;
  }
}

}  // namespace
}  // namespace qalign
