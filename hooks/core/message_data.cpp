#include "message_data.hpp"

#include <algorithm>

namespace mtacore {

namespace {

// The message of the hook call running on this thread and its data. Plain
// pointers: trivially destructible TLS.
thread_local const ec_message *current_msg = nullptr;
thread_local const MessageData *current_data = nullptr;

bool blank(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequal(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

const MessageData *data_for(const ec_message *msg) noexcept
{
    return msg != nullptr && msg == current_msg ? current_data : nullptr;
}

} // namespace

void MessageData::add_header(std::string_view name, std::string_view value)
{
    std::string unfolded;
    unfolded.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        // RFC 5322 unfolding: a line break before a blank goes, the blank stays.
        if (value[i] == '\r' && i + 2 < value.size() && value[i + 1] == '\n' && blank(value[i + 2])) {
            ++i;
            continue;
        }
        if (value[i] == '\n' && i + 1 < value.size() && blank(value[i + 1]))
            continue;
        unfolded += value[i];
    }
    const auto start = std::find_if_not(unfolded.begin(), unfolded.end(), blank);
    unfolded.erase(unfolded.begin(), start);
    headers.emplace_back(std::string(name), std::move(unfolded));
}

const std::string *MessageData::header(std::string_view name) const noexcept
{
    for (const auto &[n, v] : headers)
        if (iequal(n, name))
            return &v;
    return nullptr;
}

MessageScope::MessageScope(const ec_message *msg, const MessageData *data) noexcept
    : previous_msg_(current_msg), previous_data_(current_data)
{
    current_msg = msg;
    current_data = data;
}

MessageScope::~MessageScope()
{
    current_msg = previous_msg_;
    current_data = previous_data_;
}

const char *message_protocol(ec_core *, const ec_message *msg)
{
    const MessageData *data = data_for(msg);
    return data && data->protocol ? data->protocol->c_str() : nullptr;
}

int message_header(ec_core *, const ec_message *msg, const char *name, const char **value, size_t *value_len)
{
    const MessageData *data = data_for(msg);
    const std::string *found = data && name ? data->header(name) : nullptr;
    if (value)
        *value = found ? found->data() : nullptr;
    if (value_len)
        *value_len = found ? found->size() : 0;
    return found ? 0 : -1;
}

} // namespace mtacore
