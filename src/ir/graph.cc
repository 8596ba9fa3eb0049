// Graph IR: construction, edits and queries.
#include "ir/graph.h"

#include <algorithm>
#include <queue>
#include <sstream>
#include <unordered_set>

namespace qalign {

// ---------------------------------------------------------------- Shape

Shape Shape::Of(const std::vector<int64_t>& dims) {
  Shape s;
  s.rank_known = true;
  for (int64_t d : dims) s.dims.push_back(Dim{d, ""});
  return s;
}

bool Shape::fully_known() const {
  if (!rank_known) return false;
  return std::all_of(dims.begin(), dims.end(), [](const Dim& d) { return d.known(); });
}

std::vector<int64_t> Shape::concrete() const {
  std::vector<int64_t> out;
  for (const Dim& d : dims) out.push_back(d.value);
  return out;
}

std::string Shape::ToString() const {
  if (!rank_known) return "?";
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) out << ',';
    if (dims[i].known()) {
      out << dims[i].value;
    } else if (!dims[i].param.empty()) {
      out << dims[i].param;
    } else {
      out << '?';
    }
  }
  out << ']';
  return out.str();
}

// ---------------------------------------------------------------- Variable

std::vector<Operation*> Variable::consumers() const {
  std::vector<Operation*> out;
  for (const Use& use : uses_) {
    if (std::find(out.begin(), out.end(), use.op) == out.end()) out.push_back(use.op);
  }
  return out;
}

void Variable::set_data(Tensor data) {
  dtype_ = data.dtype();
  shape_ = Shape::Of(data.shape());
  data_ = std::move(data);
  if (origin_ == Origin::kValue) origin_ = Origin::kInitializer;
}

// ---------------------------------------------------------------- Operation

std::string Operation::Describe() const {
  return name_.empty() ? type_ + " (unnamed)" : type_ + " '" + name_ + "'";
}

const Attribute* Operation::FindAttribute(const std::string& name) const {
  for (const auto& [key, value] : attributes_) {
    if (key == name) return &value;
  }
  return nullptr;
}

void Operation::SetAttribute(const std::string& name, Attribute value) {
  for (auto& [key, existing] : attributes_) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  attributes_.emplace_back(name, std::move(value));
}

int64_t Operation::GetInt(const std::string& name, int64_t fallback) const {
  const Attribute* a = FindAttribute(name);
  return a && a->kind == Attribute::Kind::kInt ? a->i : fallback;
}

float Operation::GetFloat(const std::string& name, float fallback) const {
  const Attribute* a = FindAttribute(name);
  return a && a->kind == Attribute::Kind::kFloat ? a->f : fallback;
}

std::string Operation::GetString(const std::string& name, const std::string& fallback) const {
  const Attribute* a = FindAttribute(name);
  return a && a->kind == Attribute::Kind::kString ? a->s : fallback;
}

std::vector<int64_t> Operation::GetInts(const std::string& name,
                                        std::vector<int64_t> fallback) const {
  const Attribute* a = FindAttribute(name);
  return a && a->kind == Attribute::Kind::kInts ? a->ints : fallback;
}

std::vector<float> Operation::GetFloats(const std::string& name,
                                        std::vector<float> fallback) const {
  const Attribute* a = FindAttribute(name);
  return a && a->kind == Attribute::Kind::kFloats ? a->floats : fallback;
}

// ---------------------------------------------------------------- Graph: variables

StatusOr<Variable*> Graph::AddVariable(const std::string& name) {
  if (name.empty()) return InvalidArgumentError("a variable needs a non-empty name");
  if (variables_.count(name)) return InvalidArgumentError("variable '", name, "' already exists");
  variable_storage_.push_back(std::unique_ptr<Variable>(new Variable(name)));
  Variable* v = variable_storage_.back().get();
  variables_[name] = v;
  return v;
}

StatusOr<Variable*> Graph::AddParameter(const std::string& name, Tensor data) {
  QALIGN_ASSIGN_OR_RETURN(Variable * v, AddVariable(name));
  v->set_data(std::move(data));
  return v;
}

Variable* Graph::FindVariable(const std::string& name) const {
  auto it = variables_.find(name);
  return it == variables_.end() ? nullptr : it->second;
}

std::string Graph::UniqueName(const std::string& prefix) {
  if (!variables_.count(prefix) && !operations_by_name_.count(prefix)) return prefix;
  while (true) {
    std::string candidate = prefix + "_" + std::to_string(++unique_counter_);
    if (!variables_.count(candidate) && !operations_by_name_.count(candidate)) return candidate;
  }
}

std::vector<Variable*> Graph::variables() const {
  std::vector<Variable*> out;
  out.reserve(variable_storage_.size());
  for (const auto& v : variable_storage_) out.push_back(v.get());
  return out;
}

Status Graph::RemoveVariable(Variable* variable) {
  if (variable->producer_ || !variable->uses_.empty() || variable->is_graph_input_ ||
      variable->is_graph_output_) {
    return FailedPreconditionError("variable '", variable->name(),
                                   "' is still connected and cannot be removed");
  }
  variables_.erase(variable->name());
  auto it = std::find_if(variable_storage_.begin(), variable_storage_.end(),
                         [&](const auto& p) { return p.get() == variable; });
  if (it != variable_storage_.end()) variable_storage_.erase(it);
  return Status::Ok();
}

// ---------------------------------------------------------------- Graph: operations

void Graph::AddUse(Variable* variable, Operation* op, int index) {
  variable->uses_.push_back(Use{op, index});
}

void Graph::RemoveUse(Variable* variable, Operation* op, int index) {
  auto& uses = variable->uses_;
  auto it = std::find_if(uses.begin(), uses.end(),
                         [&](const Use& u) { return u.op == op && u.index == index; });
  if (it != uses.end()) uses.erase(it);
}

StatusOr<Operation*> Graph::AddOperation(const std::string& type, const std::string& name,
                                         const std::vector<Variable*>& inputs,
                                         const std::vector<Variable*>& outputs,
                                         const std::string& domain) {
  for (Variable* out : outputs) {
    if (out && out->producer_) {
      return InvalidArgumentError(type, " '", name, "': output '", out->name(),
                                  "' is already produced by ", out->producer_->Describe());
    }
    if (out && out->is_parameter()) {
      return InvalidArgumentError(type, " '", name, "': output '", out->name(),
                                  "' is a parameter");
    }
  }
  operations_.push_back(std::unique_ptr<Operation>(new Operation(type, domain, name)));
  Operation* op = operations_.back().get();
  auto opset = info_.opset_imports.find(domain == "ai.onnx" ? "" : domain);
  if (opset != info_.opset_imports.end()) op->opset_ = opset->second;
  op->inputs_ = inputs;
  op->outputs_ = outputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]) AddUse(inputs[i], op, static_cast<int>(i));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i]) {
      outputs[i]->producer_ = op;
      outputs[i]->producer_index_ = static_cast<int>(i);
    }
  }
  if (!name.empty() && !operations_by_name_.count(name)) operations_by_name_[name] = op;
  return op;
}

Status Graph::RemoveOperation(Operation* op) {
  auto it = std::find_if(operations_.begin(), operations_.end(),
                         [&](const auto& p) { return p.get() == op; });
  if (it == operations_.end()) return InternalError("RemoveOperation: op not in this graph");
  for (size_t i = 0; i < op->inputs_.size(); ++i) {
    if (op->inputs_[i]) RemoveUse(op->inputs_[i], op, static_cast<int>(i));
  }
  for (size_t k = 0; k < op->implicit_inputs_.size(); ++k) {
    RemoveUse(op->implicit_inputs_[k], op, -1 - static_cast<int>(k));
  }
  for (Variable* out : op->outputs_) {
    if (out && out->producer_ == op) {
      out->producer_ = nullptr;
      out->producer_index_ = -1;
    }
  }
  auto by_name = operations_by_name_.find(op->name());
  if (by_name != operations_by_name_.end() && by_name->second == op) {
    operations_by_name_.erase(by_name);
    for (const auto& other : operations_) {  // another op may share the name
      if (other.get() != op && other->name() == op->name()) {
        operations_by_name_[op->name()] = other.get();
        break;
      }
    }
  }
  operations_.erase(it);
  return Status::Ok();
}

Operation* Graph::FindOperation(const std::string& name) const {
  auto it = operations_by_name_.find(name);
  return it == operations_by_name_.end() ? nullptr : it->second;
}

std::vector<Operation*> Graph::operations() const {
  std::vector<Operation*> out;
  out.reserve(operations_.size());
  for (const auto& op : operations_) out.push_back(op.get());
  return out;
}

Status Graph::SetStorageOrder(const std::vector<Operation*>& order) {
  if (order.size() != operations_.size()) {
    return InvalidArgumentError("SetStorageOrder: expected ", operations_.size(), " ops, got ",
                                order.size());
  }
  std::unordered_map<Operation*, size_t> position;
  for (size_t i = 0; i < operations_.size(); ++i) position[operations_[i].get()] = i;
  std::vector<std::unique_ptr<Operation>> reordered(operations_.size());
  for (size_t i = 0; i < order.size(); ++i) {
    auto it = position.find(order[i]);
    if (it == position.end() || !operations_[it->second]) {
      return InvalidArgumentError("SetStorageOrder: not a permutation of the graph's ops");
    }
    reordered[i] = std::move(operations_[it->second]);
  }
  operations_ = std::move(reordered);
  return Status::Ok();
}

// ---------------------------------------------------------------- Graph: edits

Status Graph::SetInput(Operation* op, size_t index, Variable* variable) {
  if (index > op->inputs_.size()) {
    return InvalidArgumentError(op->Describe(), ": input index ", index, " out of range");
  }
  if (index == op->inputs_.size()) op->inputs_.push_back(nullptr);
  Variable* old = op->inputs_[index];
  if (old) RemoveUse(old, op, static_cast<int>(index));
  op->inputs_[index] = variable;
  if (variable) AddUse(variable, op, static_cast<int>(index));
  return Status::Ok();
}

void Graph::AddImplicitInput(Operation* op, Variable* variable) {
  const int index = -1 - static_cast<int>(op->implicit_inputs_.size());
  op->implicit_inputs_.push_back(variable);
  AddUse(variable, op, index);
}

Status Graph::SetOutput(Operation* op, size_t index, Variable* variable) {
  if (index >= op->outputs_.size()) {
    return InvalidArgumentError(op->Describe(), ": output index ", index, " out of range");
  }
  if (variable->producer_ != nullptr && variable->producer_ != op) {
    return FailedPreconditionError("variable '", variable->name(), "' is already produced by ",
                                   variable->producer_->Describe());
  }
  Variable* old = op->outputs_[index];
  if (old != nullptr && old->producer_ == op) {
    old->producer_ = nullptr;
    old->producer_index_ = -1;
  }
  op->outputs_[index] = variable;
  variable->producer_ = op;
  variable->producer_index_ = static_cast<int>(index);
  return Status::Ok();
}

void Graph::ReplaceAllUses(Variable* from, Variable* to) {
  if (from == to) return;
  const std::vector<Use> uses = from->uses_;
  for (const Use& use : uses) {
    if (use.implicit()) {
      const size_t k = static_cast<size_t>(-1 - use.index);
      use.op->implicit_inputs_[k] = to;
      RemoveUse(from, use.op, use.index);
      AddUse(to, use.op, use.index);
    } else {
      use.op->inputs_[static_cast<size_t>(use.index)] = to;
      RemoveUse(from, use.op, use.index);
      AddUse(to, use.op, use.index);
    }
  }
  for (Variable*& out : outputs_) {
    if (out == from) {
      out = to;
      from->is_graph_output_ = false;
      to->is_graph_output_ = true;
    }
  }
}

void Graph::AddInput(Variable* variable) {
  variable->is_graph_input_ = true;
  inputs_.push_back(variable);
}

void Graph::AddOutput(Variable* variable) {
  variable->is_graph_output_ = true;
  outputs_.push_back(variable);
}

void Graph::ClearOutputs() {
  for (Variable* v : outputs_) v->is_graph_output_ = false;
  outputs_.clear();
}

// ---------------------------------------------------------------- Graph: queries

StatusOr<std::vector<Operation*>> Graph::TopologicalOrder() const {
  const size_t n = operations_.size();
  std::unordered_map<const Operation*, size_t> position;
  position.reserve(n);
  for (size_t i = 0; i < n; ++i) position[operations_[i].get()] = i;

  // in_degree counts input edges from ops in this graph (a tensor read twice counts twice).
  std::vector<size_t> in_degree(n, 0);
  auto for_each_input = [](const Operation* op, auto&& fn) {
    for (Variable* v : op->inputs_) if (v) fn(v);
    for (Variable* v : op->implicit_inputs_) fn(v);
  };
  for (size_t i = 0; i < n; ++i) {
    for_each_input(operations_[i].get(), [&](Variable* v) {
      if (v->producer_ && position.count(v->producer_)) ++in_degree[i];
    });
  }
  // Min-heap on storage position keeps the order deterministic and close to the file's.
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i) if (in_degree[i] == 0) ready.push(i);
  std::vector<Operation*> order;
  order.reserve(n);
  while (!ready.empty()) {
    const size_t i = ready.top();
    ready.pop();
    Operation* op = operations_[i].get();
    order.push_back(op);
    for (Variable* out : op->outputs_) {
      if (!out) continue;
      for (const Use& use : out->uses_) {
        auto it = position.find(use.op);
        if (it != position.end() && --in_degree[it->second] == 0) ready.push(it->second);
      }
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i) {
      if (in_degree[i] > 0) {
        return FailedPreconditionError("graph has a cycle through ", operations_[i]->Describe());
      }
    }
  }
  return order;
}

std::vector<Operation*> Graph::Upstream(const Operation* op) const {
  std::vector<Operation*> out;
  auto add = [&](Variable* v) {
    if (v && v->producer_ && std::find(out.begin(), out.end(), v->producer_) == out.end()) {
      out.push_back(v->producer_);
    }
  };
  for (Variable* v : op->inputs_) add(v);
  for (Variable* v : op->implicit_inputs_) add(v);
  return out;
}

std::vector<Operation*> Graph::Downstream(const Operation* op) const {
  std::vector<Operation*> out;
  for (Variable* v : op->outputs_) {
    if (!v) continue;
    for (const Use& use : v->uses_) {
      if (std::find(out.begin(), out.end(), use.op) == out.end()) out.push_back(use.op);
    }
  }
  return out;
}

int64_t Graph::ParameterCount() const {
  int64_t count = 0;
  for (const auto& v : variable_storage_) if (v->is_parameter()) count += v->data()->num_elements();
  return count;
}

int64_t Graph::ParameterBytes() const {
  int64_t bytes = 0;
  for (const auto& v : variable_storage_) {
    if (!v->is_parameter()) continue;
    const Tensor* t = v->data();
    if (t->dtype() == DataType::kString) {
      for (const auto& s : t->strings()) bytes += static_cast<int64_t>(s.size());
    } else {
      bytes += static_cast<int64_t>(t->byte_size());
    }
  }
  return bytes;
}

}  // namespace qalign
