// The quantization vocabulary in one include: schemes and ComputeParams, the TQC, the union-find
// and the table of TQCs with its groups.
#pragma once

#include "quant/quant_table.h"
#include "quant/scheme.h"
#include "quant/tqc.h"
#include "quant/union_find.h"
