// End to end on the real PP-OCR models: calibrate on rendered text images, align, export QDQ, and
// let ONNX Runtime judge: the exported model in ONNX Runtime agrees with qalign's fake-quant
// simulation within one quantization step of each output on at least 99% of the elements, and on
// at least as many as ONNX Runtime's fused kernels agree with its unfused run of the same file
// (see below for why not all), and the exported file itself satisfies
// every rule of the target (re-verified from its Q/DQ params). ONNX Runtime runs the QDQ graph as
// written (graph optimizations disabled: DQ -> float op -> Q); the deviation of its optimized run
// (fused integer kernels) from the same semantics is printed, not asserted. det runs at 320x320 (the issue's
// 640x640 is the benchmark's size) to keep the suite within CI time on two cores.
// For the ort-qdq-* targets, ONNX Runtime with its optimizations on is also checked: the graph it
// builds keeps in float only ops it has no integer kernel for (ExpectOrtFusesEveryIntegerOp), and
// its fused run is within 1 dB of its unfused run in SNR against the FP32 model run in ORT.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "calib/data_loader.h"
#include "core/file_util.h"
#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "onnx/importer.h"
#include "passes/fold_into_conv.h"
#include "qdq/qdq_verify.h"
#include "sim/metrics.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

struct ModelCase {
  std::string kind;  // det, rec, cls
  std::string file;
  std::vector<int64_t> shape;
  std::string preprocess;  // image spec query
};

const std::vector<ModelCase>& Cases() {
  static const std::vector<ModelCase> cases = {
      {"det", "ch_PP-OCRv4_det_infer.onnx", {1, 3, 320, 320},
       "size=320x320&mean=0.485,0.456,0.406&std=0.229,0.224,0.225"},
      {"rec", "ch_PP-OCRv4_rec_infer.onnx", {1, 3, 48, 320}, "size=320x48&mean=0.5&std=0.5"},
      {"cls", "ch_ppocr_mobile_v2.0_cls_infer.onnx", {1, 3, 48, 192}, "size=192x48&mean=0.5&std=0.5"},
  };
  return cases;
}

constexpr int kCalibImages = 4;  // + 1 held out for the comparison

// This process's scratch folder. ctest runs each case in its own process, two at a time: with a
// shared folder one case rewrote the images another was reading (a PNG failing its CRC check).
// Removed when the process's tests are done.
const std::string& ScratchDir() {
  static const std::string dir = [] {
    std::string d = ::testing::TempDir() + "/qalign_e2e_" + std::to_string(getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

class RemoveScratchDir : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(ScratchDir(), ignored);
  }
};
[[maybe_unused]] ::testing::Environment* const kRemoveScratchDir =
    ::testing::AddGlobalTestEnvironment(new RemoveScratchDir);

// Renders (once per process) kCalibImages + 1 text images of a kind; returns the folder.
std::string ImagesFor(const std::string& kind) {
  static std::map<std::string, std::string> made;
  if (made.count(kind)) return made[kind];
  const std::string dir = ScratchDir() + "/images_" + kind;
  const std::string command = std::string(QALIGN_SOURCE_DIR) + "/scripts/make_calib_images.sh " +
                              dir + " " + kind + " " + std::to_string(kCalibImages + 1) +
                              " > /dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  made[kind] = dir;
  return dir;
}

// Float ops ONNX Runtime's CPU provider has no integer kernel for, so DequantizeLinear -> op ->
// QuantizeLinear is the fastest it can run them (qdq_selector_action_transformer.cc lists the
// ops it fuses). Anything else between a DQ and a Q is a missed integer kernel.
const std::map<std::string, std::string>& OrtFloatOnlyOps() {
  static const std::map<std::string, std::string> ops = {
      {"HardSigmoid", "no integer HardSigmoid kernel (SE gates, 1 x C x 1 x 1 tensors)"},
      {"HardSwish", "no HardSwish kernel: ORT expands it into HardSigmoid x Mul in float"},
      {"ConvTranspose", "no integer ConvTranspose kernel on the CPU provider"},
  };
  return ops;
}

// Checks the graph ONNX Runtime builds from an ort-qdq-* export: every float op between a
// DequantizeLinear and a QuantizeLinear is one ORT has no integer kernel for. Prints what
// remains.
void ExpectOrtFusesEveryIntegerOp(const std::string& kind, const std::string& path) {
  auto fused = testing::OptimizedGraphInOnnxRuntime(path);
  ASSERT_TRUE(fused.ok()) << fused.status().ToString();
  std::map<std::string, int> remaining;
  for (const auto& trip : (*fused)["round_trips"]) {
    const std::string op = trip.value("expanded_from", trip["op"].get<std::string>());
    ++remaining[op];
    EXPECT_TRUE(OrtFloatOnlyOps().count(op))
        << kind << ": " << trip["op"] << " '" << trip["name"].get<std::string>()
        << "' runs in float between DequantizeLinear and QuantizeLinear although ORT has an "
           "integer kernel for it (or it is not known to lack one)";
  }
  for (const auto& [op, count] : remaining) {
    std::printf("[ e2e ] %s: ORT keeps %d %s between DQ and Q: %s\n", kind.c_str(), count,
                op.c_str(), OrtFloatOnlyOps().count(op) ? OrtFloatOnlyOps().at(op).c_str() : "?");
  }
  // The integer kernels are there: every Conv became a QLinearConv.
  EXPECT_EQ((*fused)["op_counts"].value("Conv", 0), 0) << kind << ": a float Conv remains";
  EXPECT_GT((*fused)["op_counts"].value("com.microsoft:QLinearConv", 0), 0) << kind;
}

class PpOcrE2eTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(PpOcrE2eTest, OnnxRuntimeAgreesWithSimulationAndRulesHold) {
  const ModelCase& c = Cases()[static_cast<size_t>(std::get<0>(GetParam()))];
  const std::string target = std::get<1>(GetParam());
  const std::string model_path = std::string(QALIGN_MODEL_DIR) + "/" + c.file;
  ASSERT_TRUE(std::filesystem::exists(model_path))
      << model_path << " missing: run scripts/fetch_models.sh";
  ImportOptions import_options;
  import_options.input_shapes["x"] = c.shape;
  auto graph = ImportOnnxModel(model_path, import_options);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  if (target.rfind("ort-", 0) == 0) {
    // The graph users get from `qalign quantize`: BatchNormalization folded into the Conv before
    // it (ONNX Runtime has no integer BatchNormalization; left alone it would run in float).
    ASSERT_TRUE(FoldIntoConv(graph->get()).ok());
  }

  // Calibrate on the first kCalibImages images; compare on the last one.
  const std::string images = ImagesFor(c.kind);
  const std::string spec = "image:" + images + "?" + c.preprocess;
  auto all = OpenCalibrationData(spec, ModelInputSpecs(**graph));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ((*all)->size(), static_cast<size_t>(kCalibImages + 1));
  const std::string calib_dir = ScratchDir() + "/calib_" + c.kind;
  std::filesystem::create_directories(calib_dir);
  for (const auto& entry : std::filesystem::directory_iterator(images)) {
    const std::string name = entry.path().filename().string();
    if (name.find(StrCat("_", std::string(3 - std::to_string(kCalibImages).size(), '0'),
                         kCalibImages, ".png")) != std::string::npos) {
      continue;  // the held-out image
    }
    std::filesystem::copy_file(entry.path(), calib_dir + "/" + name,
                               std::filesystem::copy_options::overwrite_existing);
  }
  auto q = testing::QuantizeForTest(std::move(graph).value(), target, std::nullopt,
                                    "image:" + calib_dir + "?" + c.preprocess);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->result.violations.empty())
      << q->result.violations.size() << " violations, first: " << q->result.violations.front().message;

  auto sample = (*all)->Load(kCalibImages);
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  auto shapes = RecordTensorShapes(*q->graph, *sample, 0);
  ASSERT_TRUE(shapes.ok()) << shapes.status().ToString();
  QdqExportStats stats;
  QdqExportOptions export_options;
  export_options.hardswish_op = q->profile.hardswish_op;
  auto proto = ExportQdqModel(*q->graph, q->plan, &stats, &*shapes, export_options);
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  EXPECT_GE(stats.opset, 13);
  EXPECT_GT(stats.activation_pairs, 10);
  EXPECT_GT(stats.weight_initializers, 10);
  // The exported file satisfies the target's rules on its own.
  QdqVerifyStats verify_stats;
  auto violations = VerifyQdqModel(*proto, q->profile, &verify_stats);
  EXPECT_TRUE(violations.empty()) << violations.size() << " rule violations in the export, first: "
                                  << violations.front().message;
  const std::string out_path = ScratchDir() + "/" + c.kind + "_" + target + ".onnx";
  ASSERT_TRUE(
      SaveQdqModel(*q->graph, q->plan, out_path, model_path, nullptr, &*shapes, export_options).ok());
  if (q->profile.hardswish_op) {
    EXPECT_GT(stats.hardswish_ops, 0) << "det, rec and cls write their HardSwish as one op";
    EXPECT_GE(stats.opset, 14);
  }
  ::setenv("QALIGN_ORT_OPTIMIZATION", "disabled", 1);
  auto ort = testing::RunInOnnxRuntime(out_path, *sample);
  ASSERT_TRUE(ort.ok()) << ort.status().ToString();
  ::setenv("QALIGN_ORT_OPTIMIZATION", "all", 1);
  auto ort_fused = testing::RunInOnnxRuntime(out_path, *sample);
  ASSERT_TRUE(ort_fused.ok()) << ort_fused.status().ToString();
  // What users run: the FP32 model and the export in ONNX Runtime with its optimizations on.
  std::map<std::string, Tensor> fp32;
  if (target.rfind("ort-", 0) == 0) {
    ExpectOrtFusesEveryIntegerOp(c.kind, out_path);
    auto fp32_run = testing::RunInOnnxRuntime(model_path, *sample);
    ASSERT_TRUE(fp32_run.ok()) << fp32_run.status().ToString();
    fp32 = std::move(fp32_run).value();
  }
  auto sim = FakeQuantSimulator::Create(*q->graph, q->plan);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto ours = (*sim)->Run(*sample);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  for (const Variable* out : q->graph->outputs()) {
    // One quantization step of the output tensor (its producer point; an unquantized output takes
    // the step of the quantized tensor feeding it).
    float step = 0.0f;
    const Variable* v = out;
    for (int guard = 0; guard < 8 && step == 0.0f && v != nullptr; ++guard) {
      const int p = q->plan.ProducerPoint(v->name());
      if (p >= 0) {
        step = q->plan.activations[static_cast<size_t>(p)].params.scale[0];
      } else if (v->producer() != nullptr && v->producer()->input(0) != nullptr) {
        v = v->producer()->input(0);
      } else {
        v = nullptr;
      }
    }
    ASSERT_GT(step, 0.0f) << out->name() << ": no quantized tensor feeds it";
    const auto a = ort->at(out->name()).values<float>();
    const auto b = ours->at(out->name()).values<float>();
    ASSERT_EQ(a.size(), b.size());
    // ONNX Runtime against itself: its fused integer kernels against its own DQ -> float -> Q
    // run of the same file. The share within one step is how far "the runtime's answer" is
    // defined at all; the simulation is measured against the same yardstick.
    const auto f = ort_fused->at(out->name()).values<float>();
    ASSERT_EQ(f.size(), a.size());
    double max_diff = 0.0;
    int64_t within = 0;
    int64_t within_fused = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
      max_diff = std::max(max_diff, d);
      within += d <= step * 1.0001;
      within_fused += std::fabs(static_cast<double>(a[i]) - f[i]) <= step * 1.0001;
    }
    ErrorAccumulator agreement, fused, self;
    ASSERT_TRUE(agreement.Add(ort->at(out->name()), ours->at(out->name()), out->name()).ok());
    ASSERT_TRUE(fused.Add(ort_fused->at(out->name()), ours->at(out->name()), out->name()).ok());
    ASSERT_TRUE(self.Add(ort->at(out->name()), ort_fused->at(out->name()), out->name()).ok());
    std::printf("[ e2e ] %s %s %s: max |ort - sim| = %.3g (step %.3g), %.4f%% within a step, "
                "SNR(ort vs sim) %.1f dB; ORT fused kernels vs ORT unfused: %.4f%% within a "
                "step, SNR %.1f dB; fused vs sim: max diff %.3g, SNR %.1f dB; %lld Q/DQ pairs, "
                "%lld requantizes\n",
                c.kind.c_str(), target.c_str(), out->name().c_str(), max_diff, step,
                100.0 * within / a.size(), agreement.SnrDb(), 100.0 * within_fused / a.size(),
                self.SnrDb(), fused.max_abs_error, fused.SnrDb(),
                static_cast<long long>(stats.activation_pairs),
                static_cast<long long>(stats.requantize_pairs));
    // Both sides compute every float op with a different summation order (oneDNN / qalign
    // kernels vs MLAS), so a value sitting on a rounding boundary can land one step apart in some
    // layer, and that step travels through the layers after it. Each such flip is local: nearly
    // every output element still agrees within one step, and the outputs as a whole agree far
    // better than either does with FP32.
    // A share of elements means something only for large outputs; cls has two (its flips show in
    // the printed max difference, and in the SNR bound every output must meet).
    // ONNX Runtime's own two executions of the file (fused integer kernels, DQ -> float -> Q)
    // differ the same way (measured: 99.1% to 99.98% of elements within a step), so the
    // simulation must agree with ONNX Runtime at least as well as ONNX Runtime agrees with itself,
    // give or take 0.1% of the elements.
    // When ONNX Runtime fuses nothing (measured: int8 activations on an AVX-512 machine, which
    // its integer kernels do not take there), its two runs are one computation and agree exactly;
    // that says nothing about how far another implementation may be, and only the 99% floor holds.
    if (a.size() >= 1000) {
      EXPECT_GE(static_cast<double>(within), 0.99 * static_cast<double>(a.size())) << out->name();
      if (self.error_energy > 0.0) {
        EXPECT_GE(static_cast<double>(within),
                  static_cast<double>(within_fused) - 0.001 * static_cast<double>(a.size()))
            << out->name();
      }
    }
    // A flip in rec's sequence head can move one softmax output by most of its range: measured
    // with the (deterministic) blocked Conv layout, rec tflite-int8 agrees on 99.993% of elements
    // but its SNR(ort vs sim) is 13.3 dB (25.7 dB with the plain layout's summation order). A
    // wrong scale, zero point or requantize edge gives 0 dB or less; 10 dB separates the two.
    EXPECT_GE(agreement.SnrDb(), 10.0) << out->name();
    // ORT's fused integer kernels must be as accurate against FP32 as its DQ -> float op -> Q run
    // of the same file, within 1 dB: int16 saturation on a CPU without VNNI costs ~10 dB (the
    // reason ort-qdq-u8s8 stores weights in [-64, 64]).
    if (!fp32.empty()) {
      ErrorAccumulator fused_vs_fp32, unfused_vs_fp32;
      ASSERT_TRUE(fused_vs_fp32.Add(fp32.at(out->name()), ort_fused->at(out->name()), out->name()).ok());
      ASSERT_TRUE(unfused_vs_fp32.Add(fp32.at(out->name()), ort->at(out->name()), out->name()).ok());
      std::printf("[ e2e ] %s %s %s vs FP32 in ORT: optimizations on SNR %.2f dB, cosine %.5f; "
                  "off SNR %.2f dB\n",
                  c.kind.c_str(), target.c_str(), out->name().c_str(), fused_vs_fp32.SnrDb(),
                  fused_vs_fp32.Cosine(), unfused_vs_fp32.SnrDb());
      EXPECT_GE(fused_vs_fp32.SnrDb(), unfused_vs_fp32.SnrDb() - 1.0) << out->name();
    }
  }
}

// The images the cases above calibrate on are seeded: two renderings are byte-identical (bash
// reseeds RANDOM in a subshell; the script once read it in one, and every run drew new images).
TEST(CalibImages, TheSameSeedMakesTheSameFiles) {
  for (const char* kind : {"det", "rec", "cls"}) {
    std::vector<std::string> files[2];
    for (int run = 0; run < 2; ++run) {
      const std::string dir = ScratchDir() + "/seeded_" + kind + std::to_string(run);
      const std::string command = std::string(QALIGN_SOURCE_DIR) + "/scripts/make_calib_images.sh " +
                                  dir + " " + kind + " 3 > /dev/null";
      ASSERT_EQ(std::system(command.c_str()), 0) << command;
      for (int i = 0; i < 3; ++i) {
        auto bytes = ReadFileToString(StrCat(dir, "/", kind, "_00", i, ".png"));
        ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
        files[run].push_back(std::move(bytes).value());
      }
    }
    for (int i = 0; i < 3; ++i) EXPECT_EQ(files[0][i], files[1][i]) << kind << " image " << i;
    EXPECT_NE(files[0][0], files[0][1]) << kind;  // and the images differ from each other
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, PpOcrE2eTest,
    ::testing::Combine(::testing::Values(0, 1, 2),
                       ::testing::Values("tflite-int8", "ort-qdq-u8s8", "qnn-u8")),
    [](const auto& info) {
      std::string name = Cases()[static_cast<size_t>(std::get<0>(info.param))].kind + "_" +
                         std::get<1>(info.param);
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace qalign
