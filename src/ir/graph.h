// The graph IR: Operations and Variables with producer/consumer links, model metadata, safe edits.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ir/tensor.h"
#include "qalign/status.h"

namespace qalign {

class Operation;
class Graph;

// One attribute of an operation. Kinds qalign reads (numbers, strings, tensors and their lists)
// are decoded; the rest (subgraphs, sparse tensors, type protos) are kept as the serialized
// ONNX AttributeProto in `opaque`, so export writes them back unchanged.
struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kOpaque };
  Kind kind = Kind::kInt;
  float f = 0.0f;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::string opaque;  // serialized onnx::AttributeProto for Kind::kOpaque
  std::string doc_string;

  static Attribute Float(float v) { Attribute a; a.kind = Kind::kFloat; a.f = v; return a; }
  static Attribute Int(int64_t v) { Attribute a; a.kind = Kind::kInt; a.i = v; return a; }
  static Attribute String(std::string v) {
    Attribute a; a.kind = Kind::kString; a.s = std::move(v); return a;
  }
  static Attribute Floats(std::vector<float> v) {
    Attribute a; a.kind = Kind::kFloats; a.floats = std::move(v); return a;
  }
  static Attribute Ints(std::vector<int64_t> v) {
    Attribute a; a.kind = Kind::kInts; a.ints = std::move(v); return a;
  }
  static Attribute Strings(std::vector<std::string> v) {
    Attribute a; a.kind = Kind::kStrings; a.strings = std::move(v); return a;
  }
  static Attribute FromTensor(Tensor v) {
    Attribute a; a.kind = Kind::kTensor; a.t = std::move(v); return a;
  }
};

// One dimension of a possibly symbolic shape: a value, a named parameter ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  // -1: not a fixed number
  std::string param;   // symbolic name, when the model gives one
  bool known() const { return value >= 0; }
  bool operator==(const Dim&) const = default;
};

// The rank and dims of a Variable, as far as they are known.
struct Shape {
  bool rank_known = false;
  std::vector<Dim> dims;

  static Shape Unknown() { return Shape{}; }
  static Shape Of(const std::vector<int64_t>& dims);
  bool fully_known() const;
  // The dims as numbers; only valid when fully_known().
  std::vector<int64_t> concrete() const;
  std::string ToString() const;  // "[1,3,?,batch]" or "?" for unknown rank
  bool operator==(const Shape&) const = default;
};

// A use of a variable: input slot `index` of `op`; negative indices mark implicit uses by a
// subgraph attribute (If/Loop/Scan bodies reading outer-scope names).
struct Use {
  Operation* op = nullptr;
  int index = 0;
  bool implicit() const { return index < 0; }
};

// A named tensor: a graph input, a parameter (initializer or folded Constant), or an op output.
class Variable {
 public:
  const std::string& name() const { return name_; }
  DataType dtype() const { return dtype_; }
  void set_dtype(DataType dtype) { dtype_ = dtype; }
  const Shape& shape() const { return shape_; }
  void set_shape(Shape shape) { shape_ = std::move(shape); }

  Operation* producer() const { return producer_; }
  int producer_index() const { return producer_index_; }
  const std::vector<Use>& uses() const { return uses_; }
  // Distinct consuming operations, in the order of their first use.
  std::vector<Operation*> consumers() const;

  bool is_parameter() const { return data_.has_value(); }
  const Tensor* data() const { return data_ ? &*data_ : nullptr; }
  Tensor* mutable_data() { return data_ ? &*data_ : nullptr; }
  // Makes this variable a parameter holding `data`; its dtype and shape follow the tensor.
  void set_data(Tensor data);
  void clear_data() { data_.reset(); }

  bool is_graph_input() const { return is_graph_input_; }
  bool is_graph_output() const { return is_graph_output_; }

  // Where a parameter came from, so export can write it back the same way.
  enum class Origin : uint8_t { kValue, kInitializer, kConstantNode };
  Origin origin() const { return origin_; }
  void set_origin(Origin origin) { origin_ = origin; }
  // For kConstantNode: the folded Constant node's name (export re-creates the node).
  std::string constant_node_name;

  std::string doc_string;
  bool has_value_info = false;  // the model listed it in value_info (export keeps it there)

 private:
  friend class Graph;
  explicit Variable(std::string name) : name_(std::move(name)) {}

  std::string name_;
  DataType dtype_ = DataType::kUndefined;
  Shape shape_;
  // Where the tensor comes from and goes to, in one cache line: passes that walk a large graph's
  // consumers read these together, and the Tensor below is large.
  Operation* producer_ = nullptr;
  int producer_index_ = -1;
  bool is_graph_input_ = false;
  bool is_graph_output_ = false;
  Origin origin_ = Origin::kValue;
  std::vector<Use> uses_;
  std::optional<Tensor> data_;
};

// One node. Omitted optional inputs/outputs are nullptr slots.
class Operation {
 public:
  const std::string& type() const { return type_; }
  const std::string& domain() const { return domain_; }
  // The standard ONNX operator set ("" or "ai.onnx"), as opposed to ai.onnx.ml or a vendor's.
  bool in_default_domain() const { return domain_.empty() || domain_ == "ai.onnx"; }
  const std::string& name() const { return name_; }
  // The opset version of this op's domain in the model.
  int64_t opset() const { return opset_; }
  void set_opset(int64_t opset) { opset_ = opset; }
  // "Conv 'conv2d_0'" for messages.
  std::string Describe() const;

  const std::vector<Variable*>& inputs() const { return inputs_; }
  const std::vector<Variable*>& outputs() const { return outputs_; }
  Variable* input(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }
  Variable* output(size_t i) const { return i < outputs_.size() ? outputs_[i] : nullptr; }
  // Outer-scope variables read by subgraph attributes.
  const std::vector<Variable*>& implicit_inputs() const { return implicit_inputs_; }

  // Attributes in model order.
  const std::vector<std::pair<std::string, Attribute>>& attributes() const { return attributes_; }
  const Attribute* FindAttribute(const std::string& name) const;
  bool HasAttribute(const std::string& name) const { return FindAttribute(name) != nullptr; }
  void SetAttribute(const std::string& name, Attribute value);
  int64_t GetInt(const std::string& name, int64_t fallback) const;
  float GetFloat(const std::string& name, float fallback) const;
  std::string GetString(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> GetInts(const std::string& name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> GetFloats(const std::string& name, std::vector<float> fallback = {}) const;

  std::string doc_string;

 private:
  friend class Graph;
  Operation(std::string type, std::string domain, std::string name)
      : type_(std::move(type)), domain_(std::move(domain)), name_(std::move(name)) {}

  std::string type_;
  std::string domain_;
  std::string name_;
  int64_t opset_ = 0;
  std::vector<Variable*> inputs_;
  std::vector<Variable*> outputs_;
  std::vector<Variable*> implicit_inputs_;
  std::vector<std::pair<std::string, Attribute>> attributes_;
};

// Model-level facts kept for inspection and a faithful export.
struct ModelInfo {
  int64_t ir_version = 8;
  std::map<std::string, int64_t> opset_imports;  // domain ("" = ai.onnx) -> version
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  std::vector<std::pair<std::string, std::string>> metadata_props;
  std::vector<std::string> functions;    // serialized onnx::FunctionProto, kept verbatim
  std::vector<std::string> training_info;  // serialized onnx::TrainingInfoProto
  std::string graph_name;
  std::string graph_doc_string;
  // Op-type counts of the file as read, before Constant nodes were folded into parameters.
  std::map<std::string, int64_t> source_op_counts;
  // Initializers the file also listed among the graph inputs (required before IR version 4).
  // They are parameters here, not graph inputs; export lists them as inputs again.
  std::vector<std::string> initializer_inputs;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  ModelInfo& info() { return info_; }
  const ModelInfo& info() const { return info_; }

  // --- variables ---
  // Creates a variable; fails if the name is taken.
  StatusOr<Variable*> AddVariable(const std::string& name);
  // Creates a parameter variable holding `data`.
  StatusOr<Variable*> AddParameter(const std::string& name, Tensor data);
  Variable* FindVariable(const std::string& name) const;
  // A name not used by any variable or operation, derived from `prefix`.
  std::string UniqueName(const std::string& prefix);
  // All variables in creation order.
  std::vector<Variable*> variables() const;
  // Removes a variable that has no producer, no uses and is not a graph input/output.
  Status RemoveVariable(Variable* variable);

  // --- operations ---
  // Adds an op in storage order. Inputs may contain nullptr (omitted optional input); each output
  // must not already have a producer. The op's opset comes from info().opset_imports.
  StatusOr<Operation*> AddOperation(const std::string& type, const std::string& name,
                                    const std::vector<Variable*>& inputs,
                                    const std::vector<Variable*>& outputs,
                                    const std::string& domain = "");
  // Disconnects the op from its inputs and outputs (the outputs remain, without a producer) and
  // deletes it.
  Status RemoveOperation(Operation* op);
  Operation* FindOperation(const std::string& name) const;
  // Operations in storage order (the order they were added or read).
  std::vector<Operation*> operations() const;
  size_t num_operations() const { return operations_.size(); }
  // Reorders storage (tests use this to prove passes do not depend on it). `order` must be a
  // permutation of operations().
  Status SetStorageOrder(const std::vector<Operation*>& order);

  // --- edits ---
  // Points input slot `index` of `op` at `variable` (nullptr clears an optional input).
  Status SetInput(Operation* op, size_t index, Variable* variable);
  void AddImplicitInput(Operation* op, Variable* variable);
  // Makes every use of `from` (including graph outputs) read `to` instead.
  void ReplaceAllUses(Variable* from, Variable* to);
  // Makes `variable` (which must have no producer) output `index` of `op`; the old output keeps
  // its uses but loses its producer.
  Status SetOutput(Operation* op, size_t index, Variable* variable);

  // --- graph inputs and outputs ---
  const std::vector<Variable*>& inputs() const { return inputs_; }
  const std::vector<Variable*>& outputs() const { return outputs_; }
  void AddInput(Variable* variable);
  void AddOutput(Variable* variable);
  void ClearOutputs();

  // --- queries ---
  // Kahn's algorithm; ties broken by storage order so the result is deterministic. Fails naming
  // an op on a cycle.
  StatusOr<std::vector<Operation*>> TopologicalOrder() const;
  // Producers of op's inputs (distinct, excluding parameters and graph inputs).
  std::vector<Operation*> Upstream(const Operation* op) const;
  // Consumers of op's outputs (distinct).
  std::vector<Operation*> Downstream(const Operation* op) const;
  // Number of parameter elements and their total bytes.
  int64_t ParameterCount() const;
  int64_t ParameterBytes() const;

 private:
  void AddUse(Variable* variable, Operation* op, int index);
  void RemoveUse(Variable* variable, Operation* op, int index);

  ModelInfo info_;
  std::vector<std::unique_ptr<Operation>> operations_;
  std::vector<std::unique_ptr<Variable>> variable_storage_;
  std::unordered_map<std::string, Variable*> variables_;
  std::unordered_map<std::string, Operation*> operations_by_name_;
  std::vector<Variable*> inputs_;
  std::vector<Variable*> outputs_;
  int64_t unique_counter_ = 0;
};

}  // namespace qalign
