#include "json_format.hpp"

#include "fields.hpp"

namespace mtalog {

void append_json_string(Buffer &out, std::string_view text)
{
    out.push_back('"');
    std::size_t plain = 0; // start of the run not yet copied
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool line_separator = c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
                                    (text[i + 2] == '\xa8' || text[i + 2] == '\xa9');
        if (c != '"' && c != '\\' && !line_separator)
            continue;
        out.append(text.data() + plain, text.data() + i);
        if (line_separator) {
            // U+2028/U+2029 end lines in JavaScript; keep them escaped.
            put(out, text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029");
            i += 2;
        } else {
            out.push_back('\\');
            out.push_back(c);
        }
        plain = i + 1;
    }
    out.append(text.data() + plain, text.data() + text.size());
    out.push_back('"');
}

namespace {

void append_value(Buffer &out, FieldType type, std::string_view value)
{
    switch (type) {
    case FieldType::integer:
    case FieldType::decimal: put(out, value); break;
    case FieldType::string: append_json_string(out, value); break;
    case FieldType::string_list: {
        // Flag names are plain ASCII without commas: split on the separator.
        out.push_back('[');
        std::size_t start = 0;
        for (;;) {
            const auto comma = value.find(',', start);
            append_json_string(out, value.substr(start, comma - start));
            if (comma == std::string_view::npos)
                break;
            out.push_back(',');
            start = comma + 1;
        }
        out.push_back(']');
        break;
    }
    }
}

} // namespace

void format_json(const Record &record, const FormatContext &ctx, Buffer &out)
{
    Buffer value;
    std::string_view open_object;
    bool first = true, first_in_object = true;
    out.push_back('{');
    for (const FieldInfo &info : kFields) {
        if ((info.kinds & kind_bit(record.kind)) == 0)
            continue;
        value.clear();
        if (!info.write(record, ctx, value, ','))
            continue;
        if (info.json_object != open_object) {
            if (!open_object.empty())
                out.push_back('}');
            if (!info.json_object.empty()) {
                if (!first)
                    out.push_back(',');
                append_json_string(out, info.json_object);
                put(out, ":{");
                first = false;
                first_in_object = true;
            }
            open_object = info.json_object;
        }
        if (info.json_object.empty()) {
            if (!first)
                out.push_back(',');
            append_json_string(out, info.name);
            first = false;
        } else {
            if (!first_in_object)
                out.push_back(',');
            append_json_string(out, info.json_key);
            first_in_object = false;
        }
        out.push_back(':');
        append_value(out, info.type, std::string_view(value.data(), value.size()));
    }
    if (!open_object.empty())
        out.push_back('}');
    out.push_back('}');
}

} // namespace mtalog
