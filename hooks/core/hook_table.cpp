#include "hook_table.hpp"

#include <algorithm>

namespace mtacore {

thread_local int HookTable::depth_ = 0;

const char *hook_name(Hook hook) noexcept
{
    switch (hook) {
    case Hook::log_attempt_v1: return "core_log_attempt_v1";
    case Hook::log_client_connection_failure: return "core_log_client_connection_failure";
    case Hook::log_permanent_failure_v1: return "core_log_permanent_failure_v1";
    case Hook::log_reopen: return "core_log_reopen";
    }
    return "unknown";
}

HookTable::HookTable()
{
    for (auto &slot : lists_)
        slot.store(new List());
}

HookTable::~HookTable()
{
    for (auto &slot : lists_)
        delete slot.load();
}

void HookTable::publish(std::size_t index, std::unique_ptr<List> next)
{
    std::unique_ptr<const List> old(lists_[index].exchange(next.release(), std::memory_order_seq_cst));
    grace_.synchronize(); // no reader can still hold `old`
}

RegisterResult HookTable::add(Hook hook, Position where, AnyFn fn, void *closure)
{
    if (fn == nullptr)
        return RegisterResult::null_function;
    if (!registration_open())
        return RegisterResult::closed;
    std::lock_guard lock(writers_);
    const auto index = static_cast<std::size_t>(hook);
    auto next = std::make_unique<List>(*lists_[index].load());
    if (where == Position::first)
        next->insert(next->begin(), Provider{fn, closure});
    else
        next->push_back(Provider{fn, closure});
    publish(index, std::move(next));
    return RegisterResult::ok;
}

int HookTable::remove_closure(void *closure)
{
    if (depth_ > 0)
        return -1;
    std::lock_guard lock(writers_);
    int removed = 0;
    for (std::size_t index = 0; index < kHookCount; ++index) {
        const List *current = lists_[index].load();
        const auto n = std::count_if(current->begin(), current->end(),
                                     [&](const Provider &p) { return p.closure == closure; });
        if (n == 0)
            continue;
        auto next = std::make_unique<List>();
        std::copy_if(current->begin(), current->end(), std::back_inserter(*next),
                     [&](const Provider &p) { return p.closure != closure; });
        publish(index, std::move(next));
        removed += static_cast<int>(n);
    }
    return removed;
}

std::size_t HookTable::provider_count(Hook hook) const
{
    auto guard = grace_.enter();
    return lists_[static_cast<std::size_t>(hook)].load()->size();
}

} // namespace mtacore
