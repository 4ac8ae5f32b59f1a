// C++ view of the CONN_* flags: a constexpr table built from EC_CONN_FLAGS.
#pragma once

#include <array>
#include <string_view>

#include "ec_types.h"

namespace mtahooks {

struct ConnFlag {
    int value;
    std::string_view name;
};

#define MTAHOOKS_CONN_FLAG_ENTRY(flag) ConnFlag{flag, #flag},
inline constexpr std::array kConnFlags{EC_CONN_FLAGS(MTAHOOKS_CONN_FLAG_ENTRY)};
#undef MTAHOOKS_CONN_FLAG_ENTRY

} // namespace mtahooks
