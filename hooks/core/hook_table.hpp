// The core's hook table: named lists of (function, closure) providers.
//
// Calls never lock: a call enters a grace-period read section and walks an
// immutable provider list. Registration and unregistration build a new list,
// publish it, and wait out a grace period before freeing the old one, so when
// unregister returns no provider it removed is running or can start.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grace_period.hpp"

namespace mtacore {

enum class Hook : std::size_t {
    log_attempt_v1 = 0,
    log_client_connection_failure,
    log_permanent_failure_v1,
    log_reopen,
};
inline constexpr std::size_t kHookCount = 4;

const char *hook_name(Hook hook) noexcept; // e.g. "core_log_attempt_v1"

enum class Position { first, last };

enum class RegisterResult { ok, closed, null_function };

class HookTable {
public:
    using AnyFn = void (*)();
    struct Provider {
        AnyFn fn;
        void *closure;
    };

    HookTable();
    ~HookTable();
    HookTable(const HookTable &) = delete;
    HookTable &operator=(const HookTable &) = delete;

    // Registration is open only while the core configures its modules.
    void open_registration() noexcept { registration_open_.store(true); }
    void close_registration() noexcept { registration_open_.store(false); }
    [[nodiscard]] bool registration_open() const noexcept { return registration_open_.load(); }

    RegisterResult add(Hook hook, Position where, AnyFn fn, void *closure);

    // Removes every provider with `closure` on every hook; returns how many.
    // Returns -1 (and removes nothing) when called from inside a hook call on
    // this thread, which would otherwise wait for itself forever.
    int remove_closure(void *closure);

    [[nodiscard]] std::size_t provider_count(Hook hook) const;

    // Calls every provider of `hook` in order with (closure, args...).
    template <typename Fn, typename... Args>
    void call(Hook hook, Args... args) const
    {
        CallDepth depth;
        auto guard = grace_.enter();
        const auto *list = lists_[static_cast<std::size_t>(hook)].load(std::memory_order_seq_cst);
        for (const Provider &p : *list)
            reinterpret_cast<Fn>(p.fn)(p.closure, args...);
    }

private:
    using List = std::vector<Provider>;

    // Trivially destructible per-thread depth, to refuse unregister from
    // inside a call.
    struct CallDepth {
        CallDepth() noexcept { ++depth_; }
        ~CallDepth() { --depth_; }
        CallDepth(const CallDepth &) = delete;
        CallDepth &operator=(const CallDepth &) = delete;
    };
    static thread_local int depth_;

    void publish(std::size_t index, std::unique_ptr<List> next);

    mutable GracePeriod grace_;
    std::array<std::atomic<const List *>, kHookCount> lists_{};
    std::mutex writers_;
    std::atomic<bool> registration_open_{false};
};

} // namespace mtacore
