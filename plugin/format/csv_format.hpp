// RFC 4180 CSV with LF line ends: one column per field of the field table
// (fields.hpp), the same columns for every record kind, record type first.
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

} // namespace mtalog
