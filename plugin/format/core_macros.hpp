// Template macros whose values only the core can give, through ec_core
// members appended after the first version of the ABI (EC_CORE_HAS): %p, the
// message's protocol, and %h{Name}, a header's value. Against a core without
// the member (an older core, or one that leaves it NULL), for a NULL message
// or an absent value they write nothing.
#pragma once

#include <string>

#include "format_context.hpp"
#include "record.hpp"
#include "escape.hpp"

namespace mtalog {

// The protocol, through the text layer and capped at kMaxFieldBytes like
// every text field.
void write_protocol(const Record &r, const FormatContext &ctx, Buffer &out, const std::string &, int);

// The first header named `name` (the core matches it case-insensitively):
// its value may be any bytes and is escaped by the text layer, capped at
// kMaxFieldBytes of escaped output with the truncation marker (a header is
// a field, not the note: max_note_bytes does not apply).
void write_header(const Record &r, const FormatContext &ctx, Buffer &out, const std::string &name, int);

} // namespace mtalog
