// A reader-writer lock that prefers writers, with deadlines, for a
// Batcher::Lane's hand-off lock: many calling threads post their own batches under it
// (shared); a reopen, the flusher or unload collect every thread's staged
// records under it (exclusive). Preferring the writer matters for reopen:
// once it waits, no new batch gets in ahead of it, so it gets the lock as soon
// as the batches already being posted are done. Their deadlines can end after
// the reopen's (a batch begun after the reopen began, while the reopen waited
// on another file): the reopen then goes ahead without the lock, as
// Instance::reopen says. std::shared_timed_mutex on glibc prefers readers and
// cannot be told otherwise.
#pragma once

#include <algorithm>
#include <chrono>
#include <ctime>
#include <pthread.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) // clang's way of saying it
#define MTALOG_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(MTALOG_TSAN)
#define MTALOG_RWLOCK_WALL_CLOCK 1
#else
#define MTALOG_RWLOCK_WALL_CLOCK 0
#endif

namespace mtalog {

class HandoffLock {
public:
    using Deadline = std::chrono::steady_clock::time_point;

    HandoffLock() noexcept
    {
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&lock_, &attr);
        pthread_rwlockattr_destroy(&attr);
    }
    ~HandoffLock() { pthread_rwlock_destroy(&lock_); }
    HandoffLock(const HandoffLock &) = delete;
    HandoffLock &operator=(const HandoffLock &) = delete;

    void lock() noexcept { pthread_rwlock_wrlock(&lock_); }
    bool try_lock() noexcept { return pthread_rwlock_trywrlock(&lock_) == 0; }
    bool try_lock_until(Deadline deadline) noexcept
    {
        const timespec at = clock_time(deadline);
#if MTALOG_RWLOCK_WALL_CLOCK
        return pthread_rwlock_timedwrlock(&lock_, &at) == 0;
#else
        return pthread_rwlock_clockwrlock(&lock_, CLOCK_MONOTONIC, &at) == 0;
#endif
    }
    void unlock() noexcept { pthread_rwlock_unlock(&lock_); }

    void lock_shared() noexcept { pthread_rwlock_rdlock(&lock_); }
    bool try_lock_shared() noexcept { return pthread_rwlock_tryrdlock(&lock_) == 0; }
    bool try_lock_shared_until(Deadline deadline) noexcept
    {
        const timespec at = clock_time(deadline);
#if MTALOG_RWLOCK_WALL_CLOCK
        return pthread_rwlock_timedrdlock(&lock_, &at) == 0;
#else
        return pthread_rwlock_clockrdlock(&lock_, CLOCK_MONOTONIC, &at) == 0;
#endif
    }
    void unlock_shared() noexcept { pthread_rwlock_unlock(&lock_); }

private:
#if MTALOG_RWLOCK_WALL_CLOCK
    // The wall-clock form, for ThreadSanitizer only (it does not intercept
    // the calls that take a clock, and would miss their synchronisation): the
    // steady deadline as a CLOCK_REALTIME time, which a clock stepped back
    // during the wait would lengthen.
    static timespec clock_time(Deadline deadline) noexcept
    {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Deadline::clock::now());
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        const long long ns = static_cast<long long>(now.tv_nsec) + std::max<long long>(0, left.count());
        return timespec{now.tv_sec + static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    }
#else
    // steady_clock is CLOCK_MONOTONIC on Linux: the deadline as it is, on a
    // clock that no one steps (glibc 2.30's pthread_rwlock_clock*lock).
    static timespec clock_time(Deadline deadline) noexcept
    {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
        return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    }
#endif

    pthread_rwlock_t lock_;
};

} // namespace mtalog
