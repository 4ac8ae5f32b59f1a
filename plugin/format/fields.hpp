// The named fields of a record: JSON keys and CSV columns, in this order.
// One table holds everything about a field (name, type, record kinds, its
// place in JSON, the function that writes it, its documentation): the
// template macros that show a field, the CSV header and the docs read that
// row; the writers themselves are in field_writers.hpp. JSON and CSV lines
// are laid out by hand per record kind for speed
// (json_format.cpp, csv_format.cpp); test_property holds them byte for byte
// to what this table's writers give.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "record_values.hpp"

namespace mtalog {

// Row numbers of kFields (fields.cpp checks at compile time that they agree).
enum class Field {
    type, timestamp, event_time, message_id, batch_id, connection_id, mail_from, rcpt_to, domain, size,
    binding_group, binding, binding_slot, stage, stage_name, retries, elapsed, remote_ip, peer_address,
    peer_port, peer_family, peer_host, error_code, error_flags, os_errno, note, reply_code, reply_status,
    bounce_class, bounce_name,
};

enum class FieldType { string, integer, decimal, string_list };

// Which record kinds carry a field.
using KindMask = unsigned;
inline constexpr KindMask kAttempt = 1u << 0, kConnFail = 1u << 1, kPermFail = 1u << 2;
inline constexpr KindMask kMessageKinds = kAttempt | kPermFail, kAllKinds = kAttempt | kConnFail | kPermFail;
[[nodiscard]] constexpr KindMask kind_bit(RecordKind k) { return 1u << static_cast<unsigned>(k); }

// Appends the field's value to `out` and returns true, or returns false
// having written nothing when the record has no such value (absent values
// are omitted, not invented). Text is escaped by the shared text layer
// (escape.hpp) for a field without separator; string lists are joined by
// `list_separator`. Called only for records of the row's kinds (a template
// refuses such a macro when it is compiled; the table's own JSON and CSV in
// test_property skip the others).
using FieldWriter = bool (*)(const Record &r, const FormatContext &ctx, Buffer &out, char list_separator);

struct FieldInfo {
    Field field;
    std::string_view name;
    FieldType type;
    KindMask kinds;
    // JSON groups connection-failure details: "peer": {...}, "error": {...}.
    std::string_view json_object; // "" when the field stands alone
    std::string_view json_key;    // its key inside json_object
    FieldWriter write;
    std::string_view meaning;
};

extern const std::array<FieldInfo, 30> kFields;

[[nodiscard]] inline const FieldInfo &field_info(Field f) { return kFields[static_cast<std::size_t>(f)]; }

} // namespace mtalog
