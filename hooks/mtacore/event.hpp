// Owned storage behind the C structs a hook call takes, so replayed and
// generated events can point into memory that outlives the call.
#pragma once

#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <utility>
#include <vector>

#include <mtahooks/ec_types.h>

#include "message_data.hpp"

namespace mtacore {

struct OwnedMessage {
    ec_message msg{};
    std::string mailfrom_local, mailfrom_domain, rcptto_local, rcptto_domain;
    std::optional<std::string> code;
    std::optional<std::string> remote_ip;
    std::vector<std::pair<std::string, std::string>> vctx_mess, vctx_conn;
    MessageData data; // protocol and headers, for the core's accessors

    // Points msg's fields at the strings above; call after filling them.
    void bind();

private:
    string code_string_{};
    std::vector<ec_kv> mess_items_, conn_items_;
};

// Splits "user@example.com" at its last '@' into local part and domain.
void split_address(const std::string &address, std::string &local, std::string &domain);

// "192.0.2.1:25" or "[2001:db8::1]:25" into a sockaddr; false if malformed.
bool parse_peer(const std::string &text, sockaddr_storage &out);

} // namespace mtacore
