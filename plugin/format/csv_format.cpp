#include "csv_format.hpp"

#include "fields.hpp"

namespace mtalog {

namespace {

// Whether a cell must be quoted: it holds a comma or a quote, or begins or
// ends with a space.
bool needs_quotes(std::string_view cell)
{
    return !cell.empty() && (cell.front() == ' ' || cell.back() == ' ' || detail::holds_any(cell, ',', '"', false));
}

// Appends `cell` quoted, with its quotes doubled.
void append_quoted(Buffer &out, std::string_view cell)
{
    out.push_back('"');
    std::size_t plain = 0;
    for (std::size_t q; (q = cell.find('"', plain)) != std::string_view::npos; plain = q + 1) {
        append_raw(out, cell.data() + plain, q + 1 - plain);
        out.push_back('"'); // a quote is doubled
    }
    append_raw(out, cell.data() + plain, cell.size() - plain);
    out.push_back('"');
}

} // namespace

void format_csv(const Record &record, const FormatContext &ctx, Buffer &out)
{
    const KindMask kind = kind_bit(record.kind);
    for (std::size_t i = 0; i < kFields.size(); ++i) {
        if (i != 0)
            out.push_back(',');
        const FieldInfo &info = kFields[i];
        if ((info.kinds & kind) == 0)
            continue;
        // The value goes straight into the line; the rare cell that needs
        // quotes is moved aside and written again.
        const std::size_t start = out.size();
        if (!info.write(record, ctx, out, '|') || info.type == FieldType::integer ||
            info.type == FieldType::decimal)
            continue;
        const std::string_view cell(out.data() + start, out.size() - start);
        if (needs_quotes(cell)) {
            Buffer value;
            append_raw(value, cell.data(), cell.size());
            out.resize(start);
            append_quoted(out, std::string_view(value.data(), value.size()));
        }
    }
}

std::string csv_header()
{
    std::string header;
    for (const FieldInfo &info : kFields) {
        if (!header.empty())
            header += ',';
        header += info.name;
    }
    return header;
}

} // namespace mtalog
