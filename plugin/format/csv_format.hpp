// RFC 4180 CSV with LF line ends: one column per field of the field table
// (fields.hpp; the writer is laid out by hand per record kind, and a test
// holds it to the table), the same columns for every record kind, record
// type first.
// Absent values are empty cells. A cell holding a comma, a quote or a
// leading or trailing space is quoted, with quotes doubled. Text carries the
// shared text layer (escape.hpp), so no cell holds a CR, LF or control byte.
#pragma once

#include <string>

#include "record_values.hpp"

namespace mtalog {

void format_csv(const Record &record, const FormatContext &ctx, Buffer &out);

// The header line (without the line end): the field names.
std::string csv_header();

// The binding_group and binding cells of slots [0, slots), each with its
// comma, for FormatContext::csv_bindings.
BindingTexts csv_binding_texts(const FormatContext &ctx, int slots);

} // namespace mtalog
