#include "csv_format.hpp"

#include "fields.hpp"

namespace mtalog {

namespace {

void append_cell(Buffer &out, std::string_view cell)
{
    const bool quote = cell.find_first_of(",\"") != std::string_view::npos ||
                       (!cell.empty() && (cell.front() == ' ' || cell.back() == ' '));
    if (!quote) {
        put(out, cell);
        return;
    }
    out.push_back('"');
    std::size_t plain = 0;
    for (std::size_t q; (q = cell.find('"', plain)) != std::string_view::npos; plain = q + 1) {
        out.append(cell.data() + plain, cell.data() + q + 1);
        out.push_back('"'); // a quote is doubled
    }
    out.append(cell.data() + plain, cell.data() + cell.size());
    out.push_back('"');
}

} // namespace

void format_csv(const Record &record, const FormatContext &ctx, Buffer &out)
{
    Buffer value;
    bool first = true;
    for (const FieldInfo &info : kFields) {
        if (!first)
            out.push_back(',');
        first = false;
        value.clear();
        if ((info.kinds & kind_bit(record.kind)) != 0 && info.write(record, ctx, value, '|'))
            append_cell(out, std::string_view(value.data(), value.size()));
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
