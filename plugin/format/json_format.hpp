// JSON lines: one object per record, keys in field-table order (fields.hpp),
// absent values omitted. The peer and error of a connection failure are
// objects: "peer":{"address":..,"port":..,"family":..}, "error":{"code":..,"flags":[..]}.
// String values carry the shared text layer (escape.hpp), then JSON's own
// escapes, so the line is valid JSON and valid UTF-8 whatever the input.
#pragma once

#include "record_values.hpp"

namespace mtalog {

void format_json(const Record &record, const FormatContext &ctx, Buffer &out);

// Appends `text` (valid UTF-8, no control bytes) as a JSON string literal.
void append_json_string(Buffer &out, std::string_view text);

} // namespace mtalog
