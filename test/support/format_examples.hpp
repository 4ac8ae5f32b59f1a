// The generated part of docs/formats.md: the field and macro tables and one
// example line per record kind per format, all produced by the formatters.
#pragma once

#include <string>

namespace testing {

std::string render_format_docs();

} // namespace testing
