// The named fields of a record: JSON keys and CSV columns, in this order.
// One table documents each field (type, record kinds, meaning) and one
// function reads it, so JSON, CSV and the docs cannot disagree.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "record_values.hpp"

namespace mtalog {

enum class Field {
    type, timestamp, event_time, message_id, batch_id, connection_id, mail_from, rcpt_to, domain, size,
    binding_group, binding, binding_slot, stage, stage_name, retries, elapsed, remote_ip, peer_address,
    peer_port, peer_family, peer_host, error_code, error_flags, os_errno, note,
};

enum class FieldType { string, integer, decimal, string_list };

// Which record kinds carry a field.
using KindMask = unsigned;
inline constexpr KindMask kAttempt = 1u << 0, kConnFail = 1u << 1, kPermFail = 1u << 2;
inline constexpr KindMask kMessageKinds = kAttempt | kPermFail, kAllKinds = kAttempt | kConnFail | kPermFail;
[[nodiscard]] constexpr KindMask kind_bit(RecordKind k) { return 1u << static_cast<unsigned>(k); }

struct FieldInfo {
    Field field;
    std::string_view name;
    FieldType type;
    KindMask kinds;
    std::string_view meaning;
};

extern const std::array<FieldInfo, 26> kFields;

// Appends the field's value to `out` and returns true, or returns false when
// the record has no such value (absent values are omitted, not invented).
// Text is escaped by the shared text layer (escape.hpp); string lists are
// joined by `list_separator`.
bool append_field(Field field, const Record &r, const FormatContext &ctx, Buffer &out, char list_separator);

} // namespace mtalog
