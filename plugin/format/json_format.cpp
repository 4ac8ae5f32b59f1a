#include "json_format.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include "fields.hpp"


namespace mtalog {

namespace {

// Appends `text` (valid UTF-8, no control bytes) escaped for the inside of
// a JSON string: `"` and `\` get a backslash; U+2028 and U+2029 end lines in
// JavaScript, so they become \u2028 and \u2029.
void append_json_body(Buffer &out, std::string_view text)
{
    std::size_t plain = 0; // start of the run not yet copied
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool line_separator = c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
                                    (text[i + 2] == '\xa8' || text[i + 2] == '\xa9');
        if (c != '"' && c != '\\' && !line_separator)
            continue;
        append_raw(out, text.data() + plain, i - plain);
        if (line_separator) {
            put(out, text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029");
            i += 2;
        } else {
            const char escaped[2] = {'\\', c};
            append_raw(out, escaped, 2);
        }
        plain = i + 1;
    }
    append_raw(out, text.data() + plain, text.size() - plain);
}

// Whether text needs JSON's own escapes (a quote, a backslash, U+2028/9).
// Most values are ASCII without either: one vector pass says so.
bool needs_json_escape(std::string_view text)
{
    if (!detail::holds_any(text, '"', '\\', true))
        return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"' || c == '\\' ||
            (c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
             (text[i + 2] == '\xa8' || text[i + 2] == '\xa9')))
            return true;
    }
    return false;
}

// A literal run of the line, padded so that it is copied in one fixed-size
// move (two 16-byte stores) instead of a call to memcpy.
struct Literal {
    static constexpr std::size_t kRoom = 32;
    char text[kRoom] = {};
    std::size_t size = 0;

    Literal() = default;
    explicit Literal(std::string_view s) : size(s.size())
    {
        if (s.size() > kRoom)
            throw std::length_error("JSON key longer than a literal run");
        std::memcpy(text, s.data(), s.size());
    }
    void append_to(Buffer &out) const
    {
        const std::size_t at = out.size();
        out.reserve(at + kRoom);
        std::memcpy(out.data() + at, text, kRoom);
        out.try_resize(at + size);
    }
};

// Text that the field's writer makes from known words and digits only: no
// quote, backslash or U+2028/9 to look for.
constexpr bool plain_by_construction(Field f)
{
    return f == Field::type || f == Field::event_time || f == Field::stage_name || f == Field::peer_family;
}

// The literal runs around each value, made once from the field table: the
// key with its comma (and a string's opening quote), and the opening of the
// field's JSON object.
struct JsonRow {
    Literal key;       // `,"name":`, or `"key":` inside an object (first row: `{"type":`)
    Literal key_comma; // inside an object: `,"key":`
    Literal open;      // first row of an object: `,"object":{`
    int object = 0;    // 0: none; else 1 + the object's first row
    bool scan = false; // a string that may need JSON's escapes
};

std::array<JsonRow, kFields.size()> make_rows()
{
    std::array<JsonRow, kFields.size()> rows{};
    for (std::size_t i = 0; i < kFields.size(); ++i) {
        const FieldInfo &f = kFields[i];
        JsonRow &row = rows[i];
        const std::string quote = f.type == FieldType::string ? "\"" : "";
        row.scan = f.type == FieldType::string && !plain_by_construction(f.field);
        if (f.json_object.empty()) {
            row.key = Literal((i == 0 ? "{\"" : ",\"") + std::string(f.name) + "\":" + quote);
            continue;
        }
        row.object = i > 0 && kFields[i - 1].json_object == f.json_object ? rows[i - 1].object : static_cast<int>(i) + 1;
        row.key = Literal("\"" + std::string(f.json_key) + "\":" + quote);
        row.key_comma = Literal(",\"" + std::string(f.json_key) + "\":" + quote);
        row.open = Literal(",\"" + std::string(f.json_object) + "\":{");
    }
    return rows;
}

const std::array<JsonRow, kFields.size()> kRows = make_rows();

void append_string_list(Buffer &out, std::string_view value)
{
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
}

} // namespace

void append_json_string(Buffer &out, std::string_view text)
{
    out.push_back('"');
    append_json_body(out, text);
    out.push_back('"');
}

void format_json(const Record &record, const FormatContext &ctx, Buffer &out)
{
    const KindMask kind = kind_bit(record.kind);
    int object = 0; // the object open now (JsonRow::object)
    for (std::size_t i = 0; i < kFields.size(); ++i) {
        const FieldInfo &info = kFields[i];
        if ((info.kinds & kind) == 0)
            continue;
        const JsonRow &row = kRows[i];
        // Key and opening first, straight into the line; taken back when the
        // record has no such value.
        const std::size_t mark = out.size();
        if (row.object != object) {
            if (object != 0)
                out.push_back('}');
            if (row.object != 0)
                row.open.append_to(out);
            row.key.append_to(out);
        } else {
            (row.object != 0 ? row.key_comma : row.key).append_to(out);
        }
        if (info.type == FieldType::string_list) {
            Buffer value;
            if (!info.write(record, ctx, value, ',')) {
                out.resize(mark);
                continue;
            }
            append_string_list(out, std::string_view(value.data(), value.size()));
        } else if (info.type == FieldType::string) {
            const std::size_t start = out.size();
            if (!info.write(record, ctx, out, ',')) {
                out.resize(mark);
                continue;
            }
            const std::string_view written(out.data() + start, out.size() - start);
            if (row.scan && needs_json_escape(written)) {
                Buffer value;
                append_raw(value, written.data(), written.size());
                out.resize(start);
                append_json_body(out, std::string_view(value.data(), value.size()));
            }
            out.push_back('"');
        } else if (!info.write(record, ctx, out, ',')) {
            out.resize(mark);
            continue;
        }
        object = row.object;
    }
    if (object != 0)
        out.push_back('}');
    out.push_back('}');
}

} // namespace mtalog
