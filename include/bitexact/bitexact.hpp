// bitexact/bitexact.hpp - one include for everything.
#pragma once
#include "core/config.hpp"
#include "execution.hpp"
#include "random.hpp"
#include "reduce.hpp"
#include "curand_compat.hpp"
