// Compact text printer for graphs.
#include "ir/printer.h"

#include <algorithm>
#include <sstream>

namespace qalign {
namespace {

template <typename T>
void PrintList(std::ostringstream& out, const std::vector<T>& values) {
  out << '[';
  for (size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  out << ']';
}

void PrintAttribute(std::ostringstream& out, const Attribute& a) {
  switch (a.kind) {
    case Attribute::Kind::kFloat: out << a.f; break;
    case Attribute::Kind::kInt: out << a.i; break;
    case Attribute::Kind::kString: out << '"' << a.s << '"'; break;
    case Attribute::Kind::kTensor:
      out << "tensor:" << DataTypeName(a.t.dtype()) << ShapeToString(a.t.shape());
      break;
    case Attribute::Kind::kFloats: PrintList(out, a.floats); break;
    case Attribute::Kind::kInts: PrintList(out, a.ints); break;
    case Attribute::Kind::kStrings: PrintList(out, a.strings); break;
    case Attribute::Kind::kOpaque: out << "<" << a.opaque.size() << " bytes>"; break;
  }
}

void PrintOperand(std::ostringstream& out, const Variable* v) {
  if (!v) {
    out << "_";
  } else if (v->is_parameter()) {
    out << '@' << v->name() << ':' << DataTypeName(v->dtype())
        << ShapeToString(v->data()->shape());
  } else {
    out << '%' << v->name();
  }
}

}  // namespace

std::string PrintAttributes(const Operation& op) {
  std::vector<const std::pair<std::string, Attribute>*> sorted;
  for (const auto& entry : op.attributes()) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::ostringstream out;
  out << '{';
  for (size_t i = 0; i < sorted.size(); ++i) {
    out << (i ? ", " : "") << sorted[i]->first << '=';
    PrintAttribute(out, sorted[i]->second);
  }
  out << '}';
  return out.str();
}

std::string PrintGraph(const Graph& graph) {
  std::ostringstream out;
  for (const Variable* v : graph.inputs()) {
    out << "input %" << v->name() << ": " << DataTypeName(v->dtype()) << v->shape().ToString()
        << '\n';
  }
  auto order = graph.TopologicalOrder();
  const std::vector<Operation*> ops = order.ok() ? *order : graph.operations();
  for (const Operation* op : ops) {
    for (size_t i = 0; i < op->outputs().size(); ++i) {
      out << (i ? ", " : "");
      PrintOperand(out, op->outputs()[i]);
    }
    out << " = ";
    if (!op->domain().empty()) out << op->domain() << "::";
    out << op->type() << '(';
    for (size_t i = 0; i < op->inputs().size(); ++i) {
      out << (i ? ", " : "");
      PrintOperand(out, op->inputs()[i]);
    }
    out << ')';
    if (!op->attributes().empty()) out << ' ' << PrintAttributes(*op);
    if (!op->name().empty()) out << "  # " << op->name();
    out << '\n';
  }
  for (const Variable* v : graph.outputs()) out << "output %" << v->name() << '\n';
  return out.str();
}

}  // namespace qalign
