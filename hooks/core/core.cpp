#include "core.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "message_id.hpp"

namespace mtacore {

Core &core_of(ec_core *api) noexcept { return *static_cast<Core *>(api->core_private); }

const char *level_name(int level) noexcept
{
    switch (level) {
    case EC_LOG_ERROR: return "error";
    case EC_LOG_WARNING: return "warning";
    case EC_LOG_NOTICE: return "notice";
    case EC_LOG_DEBUG: return "debug";
    default: return "info";
    }
}

namespace {

// The C entry points of the table. Each is noexcept in effect: nothing in
// them throws past the catch, because exceptions must not cross the ABI.

template <Hook H, Position P, typename Fn>
int register_hook(ec_core *api, Fn fn, void *closure)
{
    try {
        Core &core = core_of(api);
        switch (core.hooks().add(H, P, reinterpret_cast<HookTable::AnyFn>(fn), closure)) {
        case RegisterResult::ok: return 0;
        case RegisterResult::closed:
            core.panic(EC_LOG_ERROR, "core",
                       std::string("refused to register on ") + hook_name(H) +
                           ": registration is only open while modules are configured");
            return -1;
        case RegisterResult::null_function:
            core.panic(EC_LOG_ERROR, "core", std::string("refused a NULL provider for ") + hook_name(H));
            return -1;
        }
    } catch (...) {
    }
    return -1;
}

int unregister_closure(ec_core *api, void *closure)
{
    Core &core = core_of(api);
    const int removed = core.hooks().remove_closure(closure);
    if (removed < 0)
        core.panic(EC_LOG_ERROR, "core", "unregister_closure called from inside a hook call: refused");
    return removed;
}

void paniclog(ec_core *api, int level, const char *module, const char *message)
{
    try {
        core_of(api).panic(level, module ? module : "?", message ? message : "(null)");
    } catch (...) {
    }
}

int binding_lookup(ec_core *api, int slot, const char **name, const char **group)
{
    const Binding *b = core_of(api).binding(slot);
    if (name)
        *name = b ? b->name.c_str() : nullptr;
    if (group)
        *group = b ? b->group.c_str() : nullptr;
    return b ? 0 : -1;
}

size_t message_id_text(ec_core *, const message_id *id, char *buf, size_t buflen)
{
    if (id && buf && buflen > kMessageIdTextLength) { // room for the whole text: write it in place
        const size_t n = write_message_id(*id, buf);
        buf[n] = '\0';
        return n;
    }
    char text[kMessageIdTextLength];
    const size_t n = id ? write_message_id(*id, text) : 0;
    if (buf && buflen) {
        const size_t copy = std::min(n, buflen - 1);
        std::memcpy(buf, text, copy);
        buf[copy] = '\0';
    }
    return n;
}

void stderr_sink(int level, std::string_view module, std::string_view message)
{
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::fprintf(stderr, "%s [%s] %.*s: %.*s\n", stamp, level_name(level), int(module.size()), module.data(),
                 int(message.size()), message.data());
}

} // namespace

timeval current_time() noexcept
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return timeval{ts.tv_sec, static_cast<suseconds_t>(ts.tv_nsec / 1000)};
}

Core::Core() : bindings_{Binding{"default", "default"}}, panic_sink_(stderr_sink)
{
    api_.abi_version = EC_ABI_VERSION;
    api_.size = sizeof(ec_core);
    api_.core_private = this;
    api_.core_name = "mtacore";
    api_.register_core_log_attempt_v1_hook_first = register_hook<Hook::log_attempt_v1, Position::first, core_log_attempt_v1_fn>;
    api_.register_core_log_attempt_v1_hook_last = register_hook<Hook::log_attempt_v1, Position::last, core_log_attempt_v1_fn>;
    api_.register_core_log_client_connection_failure_hook_first =
        register_hook<Hook::log_client_connection_failure, Position::first, core_log_client_connection_failure_fn>;
    api_.register_core_log_client_connection_failure_hook_last =
        register_hook<Hook::log_client_connection_failure, Position::last, core_log_client_connection_failure_fn>;
    api_.register_core_log_permanent_failure_v1_hook_first =
        register_hook<Hook::log_permanent_failure_v1, Position::first, core_log_permanent_failure_v1_fn>;
    api_.register_core_log_permanent_failure_v1_hook_last =
        register_hook<Hook::log_permanent_failure_v1, Position::last, core_log_permanent_failure_v1_fn>;
    api_.register_core_log_reopen_hook_first = register_hook<Hook::log_reopen, Position::first, core_log_reopen_fn>;
    api_.register_core_log_reopen_hook_last = register_hook<Hook::log_reopen, Position::last, core_log_reopen_fn>;
    api_.unregister_closure = unregister_closure;
    api_.paniclog = paniclog;
    api_.binding_lookup = binding_lookup;
    api_.message_id_text = message_id_text;
    api_.message_protocol = mtacore::message_protocol;
    api_.message_header = mtacore::message_header;
}

Core::~Core() = default;

void Core::set_bindings(std::vector<Binding> bindings)
{
    bindings_.resize(1);
    for (auto &b : bindings)
        bindings_.push_back(std::move(b));
}

const Binding *Core::binding(int slot) const noexcept
{
    if (slot < 0 || static_cast<std::size_t>(slot) >= bindings_.size())
        return nullptr;
    return &bindings_[static_cast<std::size_t>(slot)];
}

void Core::set_panic_sink(PanicSink sink)
{
    std::lock_guard lock(panic_mutex_);
    panic_sink_ = std::move(sink);
}

void Core::panic(int level, std::string_view module, std::string_view message)
{
    std::lock_guard lock(panic_mutex_);
    if (panic_sink_)
        panic_sink_(level, module, message);
}

void Core::log_attempt(ec_message *msg, domain_record *dr, timeval *now, const char *note, int note_len,
                       const MessageData *data)
{
    const MessageScope scope(msg, data);
    hooks_.call<core_log_attempt_v1_fn>(Hook::log_attempt_v1, msg, dr, now, note, note_len);
}

void Core::log_connection_failure(sockaddr *addr, int err, domain_record *dr, int binding_slot, timeval *now)
{
    hooks_.call<core_log_client_connection_failure_fn>(Hook::log_client_connection_failure, addr, err, dr,
                                                       binding_slot, now);
}

void Core::log_permanent_failure(ec_message *msg, domain_record *dr, timeval *now, const string *note,
                                 const MessageData *data)
{
    const MessageScope scope(msg, data);
    timeval current{};
    if (now == nullptr) {
        current = current_time();
        now = &current;
    }
    if (note == nullptr && msg != nullptr)
        note = msg->_code;
    const char *text = nullptr;
    int len = 0;
    if (note != nullptr && note->buffer != nullptr && note->len > 0) {
        text = note->buffer;
        len = note->len;
    }
    hooks_.call<core_log_permanent_failure_v1_fn>(Hook::log_permanent_failure_v1, msg, dr, now, text, len);
}

void Core::log_reopen() { hooks_.call<core_log_reopen_fn>(Hook::log_reopen); }

namespace {
std::atomic<ec_core *> default_core{nullptr};
}

} // namespace mtacore

extern "C" {

void ec_core_log_permanent_failure(ec_core *core, ec_message *mess, domain_record *dr, struct timeval *now,
                                   const string *note)
{
    if (core != nullptr)
        mtacore::core_of(core).log_permanent_failure(mess, dr, now, note);
}

void ec_set_default_core(ec_core *core) { mtacore::default_core.store(core); }

void ec_log_permanent_failure(ec_message *mess, domain_record *dr, struct timeval *now, const string *note)
{
    ec_core_log_permanent_failure(mtacore::default_core.load(), mess, dr, now, note);
}

} // extern "C"
