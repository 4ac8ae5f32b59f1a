#include "fields.hpp"

#include "field_writers.hpp"

namespace mtalog {

using namespace field_writers;

// clang-format off
constexpr std::array<FieldInfo, 30> kFields{{
    {Field::type,          "type",          FieldType::string,  kAllKinds,     "", "", w_type,          "`attempt`, `connection_failure` or `permanent_failure`"},
    {Field::timestamp,     "timestamp",     FieldType::decimal, kAllKinds,     "", "", w_timestamp,     "unix time of the event, with microseconds"},
    {Field::event_time,    "event_time",    FieldType::string,  kAllKinds,     "", "", w_event_time,    "the same time in RFC 3339, UTC, with microseconds"},
    {Field::message_id,    "message_id",    FieldType::string,  kAllKinds,     "", "", w_message_id,    "the message id, as the core prints it (connection failures: from the Exim adapter only)"},
    {Field::batch_id,      "batch_id",      FieldType::string,  kMessageKinds, "", "", w_batch_id,      "the batch id"},
    {Field::connection_id, "connection_id", FieldType::string,  kMessageKinds, "", "", w_connection_id, "the connection id"},
    {Field::mail_from,     "mail_from",     FieldType::string,  kMessageKinds, "", "", w_mail_from,     "envelope sender (local part @ domain)"},
    {Field::rcpt_to,       "rcpt_to",       FieldType::string,  kMessageKinds, "", "", w_rcpt_to,       "envelope recipient"},
    {Field::domain,        "domain",        FieldType::string,  kAllKinds,     "", "", w_domain,        "routing domain (`domain_record`)"},
    {Field::size,          "size",          FieldType::integer, kMessageKinds, "", "", w_size,          "message size in bytes"},
    {Field::binding_group, "binding_group", FieldType::string,  kAllKinds,     "", "", w_binding_group, "binding group of the slot, when the core knows it"},
    {Field::binding,       "binding",       FieldType::string,  kAllKinds,     "", "", w_binding,       "binding of the slot, when the core knows it"},
    {Field::binding_slot,  "binding_slot",  FieldType::integer, kAllKinds,     "", "", w_binding_slot,  "binding slot number"},
    {Field::stage,         "stage",         FieldType::integer, kMessageKinds, "", "", w_stage,         "connection stage number (Momentum's table)"},
    {Field::stage_name,    "stage_name",    FieldType::string,  kMessageKinds, "", "", w_stage_name,    "connection stage name, e.g. `rcpt_to`"},
    {Field::retries,       "retries",       FieldType::integer, kMessageKinds, "", "", w_retries,       "delivery attempts so far"},
    {Field::elapsed,       "elapsed",       FieldType::integer, kMessageKinds, "", "", w_elapsed,       "whole seconds since the message was created"},
    {Field::remote_ip,     "remote_ip",     FieldType::string,  kMessageKinds, "", "", w_remote_ip,     "remote IP of the delivery attempt"},
    {Field::peer_address,  "peer_address",  FieldType::string,  kAllKinds, "peer",  "address", w_peer_address, "peer IP (JSON: `peer.address`); other kinds than connection failures: from the Exim adapter only"},
    {Field::peer_port,     "peer_port",     FieldType::integer, kAllKinds, "peer",  "port",    w_peer_port,    "peer port (JSON: `peer.port`)"},
    {Field::peer_family,   "peer_family",   FieldType::string,  kAllKinds, "peer",  "family",  w_peer_family,  "`ipv4`, `ipv6`, `unix`, or `af<N>` for another family (JSON: `peer.family`)"},
    {Field::peer_host,     "peer_host",     FieldType::string,  kAllKinds, "peer",  "host",    w_peer_host,    "peer host name (JSON: `peer.host`; Exim adapter only)"},
    {Field::error_code,    "error_code",    FieldType::integer, kConnFail, "error", "code",    w_error_code,   "the `err` bitmask (JSON: `error.code`)"},
    {Field::error_flags,   "error_flags",   FieldType::string_list, kConnFail, "error", "flags", w_error_flags, "`CONN_*` names of its bits, `0x...` for the rest (JSON: `error.flags`; CSV: joined by `|`)"},
    {Field::os_errno,      "os_errno",      FieldType::integer, kConnFail, "error", "errno",   w_os_errno,     "the system errno behind `err` (JSON: `error.errno`; Exim adapter only)"},
    {Field::note,          "note",          FieldType::string,  kMessageKinds, "", "", w_note,          "note (attempt) or DSN (permanent failure), capped at `max_note_bytes`"},
    {Field::reply_code,    "reply_code",    FieldType::integer, kMessageKinds, "reply",  "code",   w_reply_code,   "the SMTP reply code in the note or DSN, e.g. `550` (JSON: `reply.code`)"},
    {Field::reply_status,  "reply_status",  FieldType::string,  kMessageKinds, "reply",  "status", w_reply_status, "the RFC 3463 enhanced status in the note or DSN, e.g. `5.1.1` (JSON: `reply.status`)"},
    {Field::bounce_class,  "bounce_class",  FieldType::integer, kMessageKinds, "bounce", "class",  w_bounce_class, "Momentum's bounce class number of the note or DSN, e.g. `10` (JSON: `bounce.class`)"},
    {Field::bounce_name,   "bounce_name",   FieldType::string,  kMessageKinds, "bounce", "name",   w_bounce_name,  "the bounce class's name, e.g. `Invalid Recipient` (JSON: `bounce.name`)"},
}};
// clang-format on

namespace {

constexpr bool rows_match_enum()
{
    for (std::size_t i = 0; i < kFields.size(); ++i)
        if (static_cast<std::size_t>(kFields[i].field) != i)
            return false;
    return true;
}
static_assert(rows_match_enum(), "kFields rows must be in the order of enum Field");

// JSON opens an object at the first row of a group and closes it after the
// last (json_format.cpp, and the table's own JSON that test_property holds it
// to): a group split in two would repeat its key.
constexpr bool json_groups_contiguous()
{
    for (std::size_t i = 0; i < kFields.size(); ++i)
        for (std::size_t j = i + 1; j < kFields.size(); ++j)
            if (!kFields[i].json_object.empty() && kFields[j].json_object == kFields[i].json_object &&
                kFields[j - 1].json_object != kFields[i].json_object)
                return false;
    return true;
}
static_assert(json_groups_contiguous(), "the rows of one JSON object must follow each other");

// JSON writes the type first without a comma before it, and every later key
// with one: the type must lead every record, outside any object.
static_assert(kFields[0].field == Field::type && kFields[0].kinds == kAllKinds && kFields[0].json_object.empty(),
              "the first row must be the type, in every record kind");

} // namespace

} // namespace mtalog
