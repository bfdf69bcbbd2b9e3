// bitexact/bitexact.hpp - one include for everything.
#pragma once
#include "core/config.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"
#include "axis.hpp"
#include "minmax.hpp"
#include "random.hpp"
#include "rowwise.hpp"
#include "reduce.hpp"
#include "curand_compat.hpp"
#include "scatter.hpp"
// gemm family (gemm-cpu branch)
#include "gemm.hpp"
#include "conv.hpp"
#include "pool.hpp"
