// Why a message record failed: the reply code and enhanced status in its
// text (the note, or the message's stored DSN when the hook passed none, as
// the core's ec_log_permanent_failure does), and the bounce class the
// instance's rules give it. Worked out once per record, on the calling
// thread, and only when a format shows one of these fields.
#pragma once

#include <array>
#include <atomic>

#include "bounce_classes.hpp"
#include "format_context.hpp"
#include "record.hpp"

namespace mtalog {

// Records classified, by kind (attempt, permanent failure) and class row.
struct BounceCounts {
    std::array<std::array<std::atomic<std::uint64_t>, kBounceClassCount>, 2> by_kind{};
    [[nodiscard]] static constexpr std::size_t kind_index(RecordKind k) noexcept { return k == RecordKind::attempt ? 0 : 1; }
};

// The text a record's reply is read from: the note, or for a permanent
// failure without one the message's stored DSN; empty when it has none.
// Its first `cap` bytes only (max_note_bytes: what the record shows, and
// never more than a caller's note_len may wrongly claim is readable).
[[nodiscard]] std::string_view reply_text(const Record &r, std::size_t cap) noexcept;

// r.reason with the reply parsed (no class worked out): for a format that
// shows the reply only.
const Reason &reply_of(const Record &r, const FormatContext &ctx) noexcept;
// r.reason with the reply and the class, the class worked out on first use
// (and counted in ctx.bounce_counts).
const Reason &reason_of(const Record &r, const FormatContext &ctx) noexcept;

// "5.1.1"; `buf` holds at least 12 bytes. Returns the length.
std::size_t status_text(const SmtpReply &reply, char *buf) noexcept;

} // namespace mtalog
