// A file's record format, chosen and compiled once at config time.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "template_format.hpp"

namespace mtalog {

class Formatter {
public:
    virtual ~Formatter() = default;
    // Appends one record as one line, without the newline.
    virtual void format(const Record &record, const FormatContext &ctx, Buffer &out) const = 0;
    // A line written first whenever the file is new or empty ("" for none).
    [[nodiscard]] virtual std::string header() const { return {}; }
};

struct FormatterError {
    mtacfg::RecordKind kind; // the record kind whose template failed
    TemplateError error;
};

// `kinds`: the record kinds that will be written with this format (a
// template is compiled for each of them).
std::variant<std::unique_ptr<Formatter>, FormatterError> make_formatter(const mtacfg::FormatSpec &spec, bool classes,
                                                                        KindMask kinds);

// One formatter per settings.files entry, each compiled for the record kinds
// routed to it; "file:line:column: ..." at the offending macro when a
// template does not compile.
std::variant<std::vector<std::unique_ptr<Formatter>>, std::string> make_formatters(const mtacfg::Settings &settings);

// Fills ctx's per-slot binding names, and texts of every format, for slots
// [0, slots), as the core names them now.
void cache_binding_texts(FormatContext &ctx, int slots);

} // namespace mtalog
