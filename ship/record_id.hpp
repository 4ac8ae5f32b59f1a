// A record's message id, "<node>.<file key, 16 hex digits>.<offset>": the
// Nats-Msg-Id of its message, and the name every reader de-duplicates by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mtalog::ship {

struct RecordId {
    std::uint64_t key = 0;
    std::uint64_t offset = 0;
};

// The node, key and offset of `id`; false unless it has exactly that form
// (the node is everything before the key).
[[nodiscard]] bool parse_id(std::string_view id, RecordId &out, std::string_view *node = nullptr);

// Writes the id and a NUL into `out`, which has room for node.size() + 40
// bytes; returns its length.
std::size_t format_id(char *out, std::string_view node, RecordId r);

// The 16 hex digits of a key at `out`; returns their end.
char *write_key_hex(char *out, std::uint64_t key);

} // namespace mtalog::ship
