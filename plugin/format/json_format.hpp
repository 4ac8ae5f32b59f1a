// JSON lines: one object per record, keys in field-table order (fields.hpp;
// the writer is laid out by hand per record kind, and a test holds it to the
// table's field writers), absent values omitted. The peer and error of a
// connection failure are objects: "peer":{"address":..,"port":..,
// "family":..}, "error":{"code":..,"flags":[..]}.
// String values carry the shared text layer (escape.hpp), then JSON's own
// escapes, so the line is valid JSON and valid UTF-8 whatever the input.
#pragma once

#include "record_values.hpp"

namespace mtalog {

void format_json(const Record &record, const FormatContext &ctx, Buffer &out);

// The binding_group and binding members of slots [0, slots), for
// FormatContext::json_bindings.
BindingTexts json_binding_texts(const FormatContext &ctx, int slots);

// Appends `text` (valid UTF-8, no control bytes) as a JSON string literal.
void append_json_string(Buffer &out, std::string_view text);

} // namespace mtalog
