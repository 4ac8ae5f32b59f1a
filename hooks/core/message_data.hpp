// What the core knows of a message besides its ec_message: the protocol it
// was received with and its headers, answered through ec_core's
// message_protocol and message_header. The C struct has no room for them, so
// a producer hands them to the hook call (Core::log_attempt and
// log_permanent_failure take a MessageData) and the core makes them the
// answers for that message, on that thread, for the call's duration:
// accessors called from inside the hook find them without a lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mtahooks/ec_hooks.h>

namespace mtacore {

struct MessageData {
    std::optional<std::string> protocol; // none: unknown (the accessor answers NULL)
    // (name, value) in message order; values unfolded, without the blanks
    // after the colon. Any bytes are data here: the module escapes them.
    std::vector<std::pair<std::string, std::string>> headers;

    // Appends a header as it appears in a message: `value` is unfolded (CRLF
    // or LF before a blank removed) and its leading blanks dropped.
    void add_header(std::string_view name, std::string_view value);
    // The first header named `name`, ignoring ASCII case; nullptr if none.
    [[nodiscard]] const std::string *header(std::string_view name) const noexcept;
};

// Makes `data` what the accessors answer for `msg` on this thread until the
// scope ends (scopes nest: the previous answer comes back).
class MessageScope {
public:
    MessageScope(const ec_message *msg, const MessageData *data) noexcept;
    ~MessageScope();
    MessageScope(const MessageScope &) = delete;
    MessageScope &operator=(const MessageScope &) = delete;

private:
    const ec_message *previous_msg_;
    const MessageData *previous_data_;
};

// ec_core's message_protocol and message_header.
const char *message_protocol(ec_core *core, const ec_message *msg);
int message_header(ec_core *core, const ec_message *msg, const char *name, const char **value, size_t *value_len);

} // namespace mtacore
