#include "event.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>

namespace mtacore {

void OwnedMessage::bind()
{
    msg.mailfrom_local = mailfrom_local.c_str();
    msg.mailfrom_domain = mailfrom_domain.c_str();
    msg.rcptto_local = rcptto_local.c_str();
    msg.rcptto_domain = rcptto_domain.c_str();
    if (code) {
        code_string_.buffer = code->data();
        code_string_.len = static_cast<int>(code->size());
        code_string_.allocd = code_string_.len;
        msg._code = &code_string_;
    } else {
        msg._code = nullptr;
    }
    msg.remote_ip = remote_ip ? remote_ip->c_str() : nullptr;
    auto fill = [](const auto &pairs, std::vector<ec_kv> &items, ec_dict &dict) {
        items.clear();
        for (const auto &[k, v] : pairs)
            items.push_back(ec_kv{k.c_str(), v.c_str()});
        dict.items = items.empty() ? nullptr : items.data();
        dict.count = items.size();
    };
    fill(vctx_mess, mess_items_, msg.vctx_mess);
    fill(vctx_conn, conn_items_, msg.vctx_conn);
}

void split_address(const std::string &address, std::string &local, std::string &domain)
{
    const auto at = address.rfind('@');
    if (at == std::string::npos) {
        local = address;
        domain.clear();
    } else {
        local = address.substr(0, at);
        domain = address.substr(at + 1);
    }
}

bool parse_peer(const std::string &text, sockaddr_storage &out)
{
    std::memset(&out, 0, sizeof out);
    std::string host;
    std::string port_text;
    if (!text.empty() && text[0] == '[') {
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return false;
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos)
            return false;
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
    }
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty())
        return false;
    auto *in4 = reinterpret_cast<sockaddr_in *>(&out);
    if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(static_cast<uint16_t>(port));
        return true;
    }
    auto *in6 = reinterpret_cast<sockaddr_in6 *>(&out);
    if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<uint16_t>(port));
        return true;
    }
    return false;
}

} // namespace mtacore
