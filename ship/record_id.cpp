#include "record_id.hpp"

#include <algorithm>
#include <charconv>

namespace mtalog::ship {

bool parse_id(std::string_view id, RecordId &out, std::string_view *node)
{
    const auto last = id.rfind('.');
    // node "." 16 hex digits "." offset, the node not empty
    if (last == std::string_view::npos || last < 18 || id[last - 17] != '.' || last + 1 == id.size())
        return false;
    const char *key_begin = id.data() + last - 16, *off_begin = id.data() + last + 1, *end = id.data() + id.size();
    if (!std::all_of(key_begin, key_begin + 16, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
        return false; // one spelling per key
    RecordId r;
    const auto k = std::from_chars(key_begin, key_begin + 16, r.key, 16);
    const auto o = std::from_chars(off_begin, end, r.offset, 10);
    if (k.ec != std::errc() || k.ptr != key_begin + 16 || o.ec != std::errc() || o.ptr != end)
        return false;
    // An offset with leading zeros would name a record twice.
    if (*off_begin == '0' && end - off_begin > 1)
        return false;
    out = r;
    if (node)
        *node = id.substr(0, last - 17);
    return true;
}

char *write_key_hex(char *out, std::uint64_t key)
{
    static constexpr char hex[] = "0123456789abcdef";
    for (int shift = 60; shift >= 0; shift -= 4)
        *out++ = hex[(key >> shift) & 0xf];
    return out;
}

std::size_t format_id(char *out, std::string_view node, RecordId r)
{
    char *p = std::copy(node.begin(), node.end(), out);
    *p++ = '.';
    p = write_key_hex(p, r.key);
    *p++ = '.';
    p = std::to_chars(p, p + 20, r.offset).ptr;
    *p = '\0';
    return static_cast<std::size_t>(p - out);
}

} // namespace mtalog::ship
