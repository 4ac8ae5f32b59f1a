// What a formatter needs besides the record: the core (binding names,
// message-id text) and the instance's format settings.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <mtahooks/ec_hooks.h>

#include "mtalog_options.hpp"

namespace mtalog {

class BounceRules;
struct BounceCounts;

struct FormatContext {
    ec_core *core = nullptr;
    mtacfg::TimePrecision precision = mtacfg::TimePrecision::seconds;
    std::size_t max_note_bytes = 2048;
    // Each format's text for the binding names of the slots the core knew at
    // start (the ABI keeps binding names unchanged while the module is
    // loaded): mainlog's escaped "group@name", JSON's `,"binding_group":..,
    // "binding":..` members, CSV's two cells. A slot not here is looked up on
    // every record; the binding_group and binding fields (templates) each
    // have theirs, the name as the text layer writes it. Filled by
    // cache_binding_texts (formatter.hpp).
    std::vector<std::optional<std::string>> mainlog_bindings, json_bindings, csv_bindings, group_texts, name_texts;
    // The core's own names of those slots, for binding_names().
    struct SlotNames {
        bool known = false;
        const char *group = nullptr;
        const char *name = nullptr;
    };
    std::vector<SlotNames> slot_names;
    // The instance's bounce rules (NULL: records carry no class) and its
    // per-class counts of the records classified.
    const BounceRules *bounce_rules = nullptr;
    BounceCounts *bounce_counts = nullptr;
};

} // namespace mtalog
