// The reference core: the hook table, the binding table and the diagnostics
// channel behind one ec_core, the C table handed to modules.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <mtahooks/mtahooks.h>

#include "hook_table.hpp"
#include "message_data.hpp"

namespace mtacore {

struct Binding {
    std::string name;
    std::string group;
};

class Core {
public:
    using PanicSink = std::function<void(int level, std::string_view module, std::string_view message)>;

    Core();
    ~Core();
    Core(const Core &) = delete;
    Core &operator=(const Core &) = delete;

    [[nodiscard]] ec_core *c_api() noexcept { return &api_; }
    [[nodiscard]] HookTable &hooks() noexcept { return hooks_; }

    // Slot 0 is always `default` in group `default`; these get slots 1, 2, ...
    void set_bindings(std::vector<Binding> bindings);
    [[nodiscard]] const Binding *binding(int slot) const noexcept;

    // Where paniclog lines go (default: stderr). Set before modules start.
    void set_panic_sink(PanicSink sink);
    void panic(int level, std::string_view module, std::string_view message);

    // The producer side, callable from any thread. `data`: what the
    // message_protocol and message_header accessors answer for `msg` during
    // the call (none: nothing).
    void log_attempt(ec_message *msg, domain_record *dr, timeval *now, const char *note, int note_len,
                     const MessageData *data = nullptr);
    void log_connection_failure(sockaddr *addr, int err, domain_record *dr, int binding_slot, timeval *now);
    void log_permanent_failure(ec_message *msg, domain_record *dr, timeval *now, const string *note,
                               const MessageData *data = nullptr);
    void log_reopen();

private:
    HookTable hooks_;
    ec_core api_{};
    std::vector<Binding> bindings_; // index = slot
    std::mutex panic_mutex_;
    PanicSink panic_sink_;
};

// The Core behind an ec_core handed out by Core::c_api().
[[nodiscard]] Core &core_of(ec_core *api) noexcept;

const char *level_name(int level) noexcept;

// CLOCK_REALTIME as a timeval: what a NULL `now` means.
timeval current_time() noexcept;

} // namespace mtacore
