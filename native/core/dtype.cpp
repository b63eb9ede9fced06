// SPDX-License-Identifier: MIT
#include "weightsmith/dtype.h"

namespace ws {

bool dtype_from_st_name(std::string_view name, DType* out) {
  for (const auto& row : kDTypeTable) {
    if (name == row.st_name) {
      *out = row.dtype;
      return true;
    }
  }
  return false;
}

bool dtype_from_name(std::string_view name, DType* out) {
  for (const auto& row : kDTypeTable) {
    if (name == row.name) {
      *out = row.dtype;
      return true;
    }
  }
  return false;
}

}  // namespace ws
