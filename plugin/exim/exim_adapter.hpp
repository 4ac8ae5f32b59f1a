// The Exim adapter: Exim's event_action calls mtalog.so through ${dlfunc}
// (exported as mtalog_exim_event) in whichever process is delivering, and
// this maps the events onto mtalog's three records, written with the same
// formatters as the hook path:
//
//   tcp:connect        -> attempt
//   msg:host:defer     -> connection failure (errno -> CONN_* flags, the
//                         errno itself kept as os_errno)
//   msg:fail:delivery  -> permanent failure ($event_data is the DSN text)
//
// Exim forks a process per delivery and often leaves with _exit(), so this
// mode keeps nothing in memory: each record is one write(2) on an O_APPEND
// file (atomic between processes), a file is reopened when the inode at its
// path changes (Exim's own approach, so logrotate needs no signal), and no
// thread is ever started. The config is an mtalog config file, parsed once
// per process.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <mtahooks/ec_hooks.h>

#include "format_context.hpp"
#include "formatter.hpp"

namespace mtalog::exim {

// One dlfunc call's arguments after the config path, as Exim expanded them.
struct Event {
    std::string_view name;        // $event_name
    std::string_view data;        // $event_data
    std::string_view message_id;  // $message_exim_id
    std::string_view recipient;   // $local_part@$domain
    std::string_view host;        // "$host_address $host_port $host"
    std::string_view defer_errno; // $event_defer_errno (defer events only)
    std::string_view size;        // $message_size
};

// CONN_* flags for the errno of a host defer: system errnos and Exim's own
// negative codes (connect timeout, unknown host, DNS defer). Always includes
// CONN_ACTION_REQUEUE1: Exim retries a deferred host.
[[nodiscard]] int conn_flags_for_errno(int err) noexcept;

// The connection stage an SMTP error text names ("... after RCPT TO:<...>").
[[nodiscard]] int stage_of_smtp_error(std::string_view text) noexcept;

class Adapter {
public:
    // Parses `config_path` (mtalog stanzas in Momentum syntax) and compiles
    // the formats; "file:line:column: ..." when it cannot.
    static std::variant<std::unique_ptr<Adapter>, std::string> load(const std::string &config_path);

    ~Adapter();
    Adapter(const Adapter &) = delete;
    Adapter &operator=(const Adapter &) = delete;

    // Writes the record the event maps to (other events are ignored); the
    // error text when a record could not be written.
    std::optional<std::string> handle(const Event &event);

    // The `mtalog:message` call: the protocol ($received_protocol) and
    // "Name: value" header arguments of message `message_id`, which the next
    // events of that message show through %p and %h{Name}. A second call for
    // the same message adds headers (a dlfunc takes at most 8 arguments); a
    // call for another message forgets the last one's. The error text for
    // an argument that is not "Name: value" (an empty one is skipped).
    std::optional<std::string> remember(std::string_view message_id, std::string_view protocol,
                                        const std::vector<std::string_view> &headers);

    // The process-wide adapter for a config path, loaded on first use; an
    // error is kept too, so a broken config is not re-read for every event.
    // Not thread-safe: the dlfunc entry point serializes its callers.
    static std::variant<Adapter *, std::string> for_path(const std::string &config_path);

private:
    struct Instance;
    Adapter();
    static std::size_t message_id_text(ec_core *core, const message_id *id, char *buf, std::size_t buflen);
    static int binding_lookup(ec_core *core, int slot, const char **name, const char **group);
    static const char *message_protocol(ec_core *core, const ec_message *msg);
    static int message_header(ec_core *core, const ec_message *msg, const char *name, const char **value,
                              std::size_t *value_len);
    // The adapter behind `core` when remember() holds data for `msg`, the
    // message being written; nullptr otherwise.
    [[nodiscard]] static const Adapter *remembered_for(ec_core *core, const ec_message *msg) noexcept;

    ec_core core_{};
    FormatContext ctx_;
    std::vector<std::unique_ptr<Instance>> instances_;
    std::string current_id_; // the Exim message id of the event being written
    const ec_message *current_msg_ = nullptr; // its message, while it is formatted
    // From remember(): the message they belong to, its protocol ("" when
    // unknown) and its headers (name, unfolded value).
    std::string remembered_id_, protocol_;
    std::vector<std::pair<std::string, std::string>> headers_;
};

} // namespace mtalog::exim
