// What a formatter needs besides the record: the core (binding names,
// message-id text) and the instance's format settings.
#pragma once

#include <cstddef>

#include <mtahooks/ec_hooks.h>

#include "mtalog_options.hpp"

namespace mtalog {

struct FormatContext {
    ec_core *core = nullptr;
    mtacfg::TimePrecision precision = mtacfg::TimePrecision::seconds;
    std::size_t max_note_bytes = 2048;
};

} // namespace mtalog
