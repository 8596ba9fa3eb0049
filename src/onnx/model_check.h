// Checks a parsed ModelProto before anything interprets it: names, declared shapes, attributes.
#pragma once

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include <string>

#include "qalign/status.h"

namespace qalign {

// What ONNX's shape inference and qalign's kernels assume but the protobuf does not guarantee:
//  - the graph has at least one output;
//  - every name (tensors, nodes, op types, domains) is valid UTF-8, because reports and
//    --json output are JSON, which cannot hold anything else; refusing at import keeps every
//    writer simple and the message points at the model, not at the report;
//  - declared dims are >= 0, and a graph input whose dims are all known fits the tensor limit
//    (MaxTensorBytes) without overflowing a 64-bit count;
//  - every attribute of an op ONNX knows has the type its schema declares (strides stored as
//    FLOATS would silently read as the default), and the sizes conv and pool ops divide by
//    (strides, dilations, kernel_shape, group, blocksize) are positive: ONNX's shape inference
//    divides by them without checking.
// Subgraphs (If/Loop/Scan bodies) are checked the same way. Errors are one line naming
// `source` and the op (type and name) or tensor.
Status CheckModelProto(const onnx::ModelProto& model, const std::string& source);

// ONNX's schema registry, with guards in front of every op's shape inference, for what ONNX's
// functions assume without checking (both found by fuzz/fuzz_onnx_import, SIGSEGV):
//  - every required input has a type (an untyped graph input or the output of an op ONNX does
//    not know reaches the function as a null type);
//  - conv and pool ops: the weight's rank equals the input's, and per-axis attributes are as
//    long as the spatial rank (convPoolShapeInference indexes the input's dims with them).
// Types and ranks are only known during inference, so the guards run there: a violation fails
// that op's inference the way ONNX itself does, and its outputs' shapes stay unknown.
const onnx::ISchemaRegistry* GuardedSchemaRegistry();

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool IsValidUtf8(const std::string& text);

// `text` with every byte outside printable ASCII written as \xNN, for messages about bad names.
std::string EscapeBytes(const std::string& text);

}  // namespace qalign
